//! Settings of a cluster-mode process. The binary fills them from flags and environment
//! variables; every field has the default a city deployment would start from.

use std::net::SocketAddr;
use std::time::Duration;

/// How a partition's engine clock moves (see ARCHITECTURE.md, "Clocks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Production: event time, and, once a partition has caught up with its log, the wall clock
    /// less `lateness`, so a deadline passes at night even when no window sends anything.
    Wall {
        /// How long an event may take from its window system to jiancha before deadlines that
        /// it could have cancelled are allowed to fire.
        lateness: Duration,
    },
    /// Event time only, as `jiancha replay`: results depend only on the events (re-processing
    /// history, acceptance tests).
    Event,
}

/// Everything a cluster-mode process needs besides the reference data.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Kafka bootstrap servers (`host:port,…`).
    pub brokers: String,
    /// Consumer group shared by every jiancha process of one deployment.
    pub group_id: String,
    /// Events in (SPEC §3).
    pub events_topic: String,
    /// Alerts out (key `alert_id`, value the SPEC §7 JSON).
    pub alerts_topic: String,
    /// Invalid messages out (raw bytes, reason in headers).
    pub dead_letter_topic: String,
    /// Live window status out (key `window_id`); every API process reads it.
    pub status_topic: String,
    /// Inspector actions (key `alert_id`), written and read by API processes so each one shows
    /// the others' actions.
    pub actions_topic: String,
    /// Static group membership (`group.instance.id`): a process restarted with the same id takes
    /// its partitions back at once instead of waiting for the broker to notice the old session
    /// died. Use a stable name per process (a StatefulSet pod name).
    pub instance_id: Option<String>,
    /// Extra librdkafka settings (`key=value`), for SASL/TLS and tuning.
    pub kafka_options: Vec<(String, String)>,
    /// ClickHouse HTTP endpoint.
    pub clickhouse_url: String,
    /// ClickHouse database.
    pub database: String,
    /// ClickHouse cluster (`remote_servers` name) of the replicated layout: start-up migrates
    /// with `ON CLUSTER` DDL (`None`: plain tables on one server).
    pub clickhouse_cluster: Option<String>,
    /// Address of the `/metrics` and `/healthz` endpoints (`None`: not served).
    pub listen: Option<SocketAddr>,
    /// Engine clock.
    pub clock: ClockMode,
    /// A batch of output is written when it holds this many rows …
    pub batch_rows: usize,
    /// … or when its oldest row is this old.
    pub batch_age: Duration,
    /// Engine state is checkpointed (and offsets committed) this often.
    pub checkpoint_interval: Duration,
    /// On shutdown or partition revocation, flushing and committing must finish within this;
    /// past it the process lets go without committing, and the next owner replays from the last
    /// checkpoint.
    pub shutdown_deadline: Duration,
    /// Written batches not yet confirmed before consumption pauses (back-pressure).
    pub max_in_flight: usize,
    /// Serve the dashboard API on `listen` too (`None`: only `/metrics` and `/healthz`).
    pub api: Option<crate::api::ApiSettings>,
    /// Send notifications from this process (`None`: it does not).
    pub notify: Option<notify::config::NotifySettings>,
    /// Topics carrying source tables as JDBC-source rows or Debezium change events
    /// (`[[change_topics]]`), read into the events topic.
    pub change_topics: Vec<crate::change_topics::ChangeTopic>,
    /// The code tables and `sources.csv` the change topics' rows are mapped with.
    pub formats: dashboard_api::formats::FormatSettings,
}

impl ClusterConfig {
    /// Defaults for the given brokers and ClickHouse endpoint.
    pub fn new(brokers: &str, clickhouse_url: &str) -> Self {
        ClusterConfig {
            brokers: brokers.to_string(),
            group_id: "jiancha".into(),
            events_topic: "jiancha.events".into(),
            alerts_topic: "jiancha.alerts".into(),
            dead_letter_topic: "jiancha.dead-letter".into(),
            status_topic: "jiancha.window-status".into(),
            actions_topic: "jiancha.alert-actions".into(),
            instance_id: None,
            kafka_options: Vec::new(),
            clickhouse_url: clickhouse_url.to_string(),
            database: "jiancha".into(),
            clickhouse_cluster: None,
            listen: None,
            clock: ClockMode::Wall {
                lateness: Duration::from_secs(300),
            },
            batch_rows: 20_000,
            batch_age: Duration::from_millis(500),
            checkpoint_interval: Duration::from_secs(60),
            shutdown_deadline: Duration::from_secs(30),
            max_in_flight: 4,
            api: None,
            notify: None,
            change_topics: Vec::new(),
            formats: Default::default(),
        }
    }
}

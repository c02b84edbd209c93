//! jiancha's cluster mode (SPEC §2): events from Kafka, one engine per partition, alerts and
//! history to ClickHouse and Kafka, at-least-once with deterministic ids, state checkpointed
//! with the offsets it covers.
//!
//! - [`pipeline`]: the consumer loop, the engines and the rebalance protocol;
//! - [`writer`]: makes batches and checkpoints durable, in order, with retry;
//! - [`metrics`]: Prometheus metrics and the `/metrics` endpoint.
//!
//! Threads: the caller's thread runs the consumer loop (rdkafka's `BaseConsumer`, engines,
//! decoding); a small tokio runtime runs the writer, the HTTP endpoint and signal handling.

pub mod api;
pub mod change_topics;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod notifier;
mod pipeline;
pub mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureProducer;
use rules::{Policy, Reference};
use store::clickhouse::ClickHouseStore;
use store::Store as _;

pub use config::{ClockMode, ClusterConfig};
use metrics::Metrics;
pub use pipeline::{apply_message, Applied};
use pipeline::{Context, Core, KafkaConsumer};

/// Why cluster mode stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// ClickHouse refused to start or failed its self-test.
    #[error("ClickHouse at {url}: {source}")]
    Store {
        /// Endpoint.
        url: String,
        /// What went wrong.
        source: store::StoreError,
    },
    /// The Kafka client could not be created or used.
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A configured topic does not exist.
    #[error(
        "topic {topic:?} does not exist on {brokers} ({detail}); create it first, e.g. \
         `deploy/local/kafka.sh topic {topic} 12`"
    )]
    MissingTopic {
        /// Topic.
        topic: String,
        /// Brokers asked.
        brokers: String,
        /// The broker's answer.
        detail: String,
    },
    /// The change topics' configuration is unusable.
    #[error("change topics: {0}")]
    Config(String),
    /// The metrics address could not be bound, or the runtime could not start.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A write was refused, state could not be saved or restored, or the shutdown deadline
    /// passed: stopped without committing what is not durable.
    #[error("{0}")]
    Fatal(String),
}

/// How often every client asks the brokers for the topics' partitions again (librdkafka's
/// default is 5 minutes). A group leader whose metadata request found no partitions for a
/// topic (a broker too busy to answer in time) assigns nobody anything, itself included, and
/// only looks again at the next refresh, when the partition count "changes" and it rejoins:
/// seen on a loaded tansu after a crash and restart, a group consuming nothing.
pub(crate) const METADATA_REFRESH_MS: u32 = 10_000;

fn client_config(cfg: &ClusterConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", format!("jiancha-{}", std::process::id()))
        .set(
            "topic.metadata.refresh.interval.ms",
            METADATA_REFRESH_MS.to_string(),
        );
    c
}

fn with_overrides(mut c: ClientConfig, cfg: &ClusterConfig) -> ClientConfig {
    for (k, v) in &cfg.kafka_options {
        c.set(k, v);
    }
    c
}

/// Refuse to start when a topic is missing (tansu and many production brokers do not create
/// topics on demand, and a missing alerts topic would stall every batch).
fn check_topics(consumer: &KafkaConsumer, cfg: &ClusterConfig) -> Result<(), ClusterError> {
    let change_topics = cfg.change_topics.iter().map(|t| &t.topic);
    for topic in [
        &cfg.events_topic,
        &cfg.alerts_topic,
        &cfg.dead_letter_topic,
        &cfg.status_topic,
    ]
    .into_iter()
    .chain(change_topics)
    {
        // A busy or restarting broker may miss one deadline: ask again for up to a minute
        // (a supervisor restarting a process that gave up at once would only add load).
        let asked = std::time::Instant::now();
        let metadata = loop {
            match consumer.fetch_metadata(Some(topic), Duration::from_secs(15)) {
                Ok(m) => break m,
                Err(e) if asked.elapsed() < Duration::from_secs(60) => {
                    log::warn!(
                        "metadata of {topic} from {}: {e}; asking again",
                        cfg.brokers
                    );
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let detail = match metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic.as_str())
        {
            None => Some("not in the broker's metadata".to_string()),
            Some(t) => match t.error() {
                Some(e) => Some(format!("{:?}", rdkafka::types::RDKafkaErrorCode::from(e))),
                None if t.partitions().is_empty() => Some("no partitions".into()),
                None => None,
            },
        };
        if let Some(detail) = detail {
            return Err(ClusterError::MissingTopic {
                topic: topic.clone(),
                brokers: cfg.brokers.clone(),
                detail,
            });
        }
    }
    Ok(())
}

async fn signals(stop: Arc<AtomicBool>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("cannot listen for SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    log::info!("signal received: finishing the current work, then stopping");
    stop.store(true, Ordering::Relaxed);
}

/// Run cluster mode until SIGINT/SIGTERM (then drain, commit and stop) or a fatal error.
pub fn run(
    cfg: ClusterConfig,
    reference: Arc<Reference>,
    policy: Policy,
) -> Result<(), ClusterError> {
    let cfg = Arc::new(cfg);
    let runtime = runtime("jiancha-io")?;
    let store = open_store(&runtime, &cfg)?;

    let metrics = Metrics::new();
    metrics.zero(&["clickhouse", "kafka", "checkpoint"]);
    let stop = Arc::new(AtomicBool::new(false));
    let abort = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicBool::new(false));
    runtime.spawn(signals(stop.clone()));

    let producer = producer(&cfg)?;
    let notifier = match &cfg.notify {
        Some(settings) => Some(notifier::spawn(
            &runtime,
            &cfg,
            settings.clone(),
            notify::Names::from_reference(&reference),
            store.clone(),
            metrics.registry(),
            stop.clone(),
        )?),
        None => None,
    };
    if let Some(addr) = cfg.listen {
        match &cfg.api {
            Some(settings) => {
                let listener = bind(&runtime, addr)?;
                let api = api::start(
                    &runtime,
                    &cfg,
                    settings.clone(),
                    store.clone(),
                    producer.clone(),
                    metrics.registry().clone(),
                    listener,
                )?;
                // A notifier beside the dashboard API keeps its Alertmanager channels in step
                // with the live alerts: what was firing before a restart or a rebalance, and
                // what inspectors resolve (docs/NOTIFICATIONS.md).
                if let Some((_, notifier)) = &notifier {
                    runtime.spawn(node::notifier::follow_hub(
                        notifier.clone(),
                        api.hub().clone(),
                    ));
                }
            }
            None => serve_metrics(&runtime, addr, metrics.clone(), ready.clone())?,
        }
    }
    // The change topics' hand-over goes through the HTTP ingest's sink (events topic, dead
    // letters in ClickHouse and their topic).
    let changes_sink = (!cfg.change_topics.is_empty())
        .then(|| api::KafkaSink::new(&cfg, store.clone(), producer.clone()));
    let registry = metrics.registry().clone();
    let (jobs_tx, jobs_rx) = tokio::sync::mpsc::unbounded_channel();
    let (replies_tx, replies_rx) = mpsc::channel();
    let writer = runtime.spawn(writer::run(
        jobs_rx,
        replies_tx,
        writer::Sinks {
            store: store.clone(),
            producer: producer.clone(),
            alerts_topic: cfg.alerts_topic.clone(),
            status_topic: cfg.status_topic.clone(),
            dead_letter_topic: cfg.dead_letter_topic.clone(),
            group_id: cfg.group_id.clone(),
            events_topic: cfg.events_topic.clone(),
            metrics: metrics.clone(),
            abort: abort.clone(),
        },
    ));
    let reference_for_changes = reference.clone();
    let skew_minutes = policy.future_skew_minutes;
    let core = Core::new(
        cfg.clone(),
        reference,
        policy,
        jobs_tx,
        replies_rx,
        store,
        runtime.handle().clone(),
        metrics,
        abort,
        ready,
    );
    let consumer: KafkaConsumer = with_overrides(
        {
            let mut c = client_config(&cfg);
            c.set("group.id", &cfg.group_id)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("statistics.interval.ms", "1000")
                // A caught-up consumer's fetch waits at most this long for new events: alert
                // latency versus idle fetch requests (librdkafka's default is 500 ms).
                .set("fetch.wait.max.ms", "100");
            if let Some(id) = &cfg.instance_id {
                c.set("group.instance.id", id);
            }
            c
        },
        &cfg,
    )
    .create_with_context(Context {
        core: Mutex::new(core),
    })?;
    check_topics(&consumer, &cfg)?;
    // Change topics (Debezium, JDBC source) become events on the events topic, beside the
    // engines: a thread of their own with a blocking consumer.
    let changes = match changes_sink {
        None => None,
        Some(sink) => {
            let (cfg, reference, stop) = (cfg.clone(), reference_for_changes, stop.clone());
            let rt = runtime.handle().clone();
            let skew = i64::from(skew_minutes) * 60;
            Some(
                std::thread::Builder::new()
                    .name("jiancha-changes".into())
                    .spawn(move || {
                        let run = change_topics::Run {
                            cfg: &cfg,
                            reference,
                            future_skew_secs: skew,
                            sink,
                            rt,
                            stop,
                            registry,
                        };
                        if let Err(e) = run.run() {
                            log::error!("change topics stopped: {e}");
                        }
                    })
                    .map_err(|e| ClusterError::Io {
                        what: "starting the change-topics thread".into(),
                        source: e,
                    })?,
            )
        }
    };
    consumer.subscribe(&[&cfg.events_topic])?;
    log::info!(
        "consuming {} as group {} from {}; alerts to {}, dead letters to {}, ClickHouse {} database {}",
        cfg.events_topic,
        cfg.group_id,
        cfg.brokers,
        cfg.alerts_topic,
        cfg.dead_letter_topic,
        cfg.clickhouse_url,
        cfg.database
    );
    let result = pipeline::consume(&consumer, &stop);
    // The engines have stopped (signal or fatal error): the notifier commits and stops too.
    stop.store(true, Ordering::Relaxed);
    if let Some(changes) = changes {
        let _ = changes.join();
    }
    if let Some((n, _)) = notifier {
        let _ = n.join();
    }
    // Whatever happened, nothing more is drained when the consumer leaves the group.
    consumer.context().lock().release();
    drop(consumer);
    let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), writer).await });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The small runtime for I/O (writer, HTTP, signals, the API's feed).
fn runtime(thread_name: &str) -> Result<tokio::runtime::Runtime, ClusterError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(thread_name)
        .enable_all()
        .build()
        .map_err(|source| ClusterError::Io {
            what: "starting the async runtime".into(),
            source,
        })
}

/// ClickHouse with the schema up to date and a write that reads back.
fn open_store(
    runtime: &tokio::runtime::Runtime,
    cfg: &ClusterConfig,
) -> Result<ClickHouseStore, ClusterError> {
    let store_error = |source| ClusterError::Store {
        url: cfg.clickhouse_url.clone(),
        source,
    };
    let store = ClickHouseStore::new(&cfg.clickhouse_url, &cfg.database).map_err(store_error)?;
    runtime
        .block_on(async {
            match &cfg.clickhouse_cluster {
                Some(cluster) => store.migrate_cluster(cluster).await?,
                None => store.migrate().await?,
            };
            store.self_test().await
        })
        .map_err(store_error)?;
    Ok(store)
}

/// The producer for alerts, dead letters, window status and actions: acknowledged by every
/// in-sync replica before a batch counts as durable.
fn producer(cfg: &ClusterConfig) -> Result<FutureProducer, ClusterError> {
    let mut c = client_config(cfg);
    // murmur2 like Java clients, so events produced by HTTP ingest land in the partition of
    // their centre whoever else produces (docs/CLUSTER.md).
    c.set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("enable.idempotence", "false");
    Ok(with_overrides(c, cfg).create()?)
}

fn bind(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, ClusterError> {
    runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|source| ClusterError::Io {
            what: format!("binding the HTTP endpoint {addr}"),
            source,
        })
}

fn serve_metrics(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
) -> Result<(), ClusterError> {
    let listener = bind(runtime, addr)?;
    runtime.spawn(async move {
        if let Err(e) = metrics::serve(listener, metrics, ready).await {
            log::error!("metrics endpoint stopped: {e}");
        }
    });
    Ok(())
}

/// Run only the dashboard API (no engines): load live alerts and window status from ClickHouse,
/// follow the alerts, status and actions topics, serve clients on `cfg.listen`, until
/// SIGINT/SIGTERM. Scale dashboards out by running more of these behind a load balancer.
pub fn run_api(cfg: ClusterConfig) -> Result<(), ClusterError> {
    let Some(settings) = cfg.api.clone() else {
        return Err(ClusterError::Fatal(
            "the API needs a users file and a token secret".into(),
        ));
    };
    let Some(addr) = cfg.listen else {
        return Err(ClusterError::Fatal(
            "the API needs an address to listen on".into(),
        ));
    };
    let runtime = runtime("jiancha-api")?;
    let store = open_store(&runtime, &cfg)?;
    let producer = producer(&cfg)?;
    let listener = bind(&runtime, addr)?;
    api::start(
        &runtime,
        &cfg,
        settings,
        store,
        producer,
        prometheus::Registry::new(),
        listener,
    )?;
    log::info!("dashboard API on {addr}");
    let stop = Arc::new(AtomicBool::new(false));
    runtime.block_on(signals(stop));
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

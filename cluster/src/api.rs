//! The dashboard API in cluster mode: every API process holds every live alert and window and
//! serves its own clients.
//!
//! ```text
//! start-up: end offsets of alerts/status/actions topics ─▶ load ClickHouse ─▶ consume from those offsets
//! ```
//! Engines write an alert or status to ClickHouse *before* publishing it, and an API process
//! stores an action before publishing it. So anything published before the recorded end offsets
//! is already in ClickHouse, and anything after is read from the topics: nothing falls between
//! the two. What is seen twice (in the load and on a topic) is applied once: alerts and
//! statuses by id and version, actions by (alert, kind, actor, second).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dashboard_api::auth::{TokenKey, Users};
use dashboard_api::backend::{Backend, BackendError, BoxFuture};
use dashboard_api::hub::Input;
use dashboard_api::model::{Action, ActionKind, AlertDoc, WindowDoc};
use dashboard_api::{Api, ApiConfig};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use rules::alert::{AlertStatus, Level};
use rules::time::Instant;
use serde_json::Value;
use store::clickhouse::ClickHouseStore;
use store::rows::{ActionRow, AlertRow};
use store::Store;

use crate::{client_config, with_overrides, ClusterConfig, ClusterError};

/// What the API needs besides the cluster settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The users file (re-read when it changes).
    pub users_path: PathBuf,
    /// Its users, as read (and checked) at start-up.
    pub users: Users,
    /// Token signing key.
    pub key: TokenKey,
    /// API tunables.
    pub config: ApiConfig,
    /// Finished alerts fired within this many days are loaded at start-up (active ones always).
    pub keep_days: u32,
}

/// The store behind the API: ClickHouse for the trail and timelines, Kafka so the other API
/// processes see each action.
struct ClusterBackend {
    store: ClickHouseStore,
    producer: FutureProducer,
    actions_topic: String,
}

fn action_row(a: &Action) -> ActionRow {
    ActionRow {
        alert_id: a.alert_id.clone(),
        action: a.action.as_str().to_string(),
        actor: a.actor.clone(),
        at: store::rows::seconds(a.at),
        reason: a.note.clone(),
        reply_deadline: a.reply_deadline.map_or(0, store::rows::seconds),
        region: a.region.clone(),
    }
}

fn action_of(row: ActionRow) -> Option<Action> {
    Some(Action {
        action: ActionKind::parse(&row.action)?,
        alert_id: row.alert_id,
        actor: row.actor,
        at: Instant(i64::from(row.at)),
        note: row.reason,
        reply_deadline: (row.reply_deadline > 0).then(|| Instant(i64::from(row.reply_deadline))),
        region: row.region,
    })
}

fn alert_of(row: AlertRow) -> Option<AlertDoc> {
    let text = |s: String| (!s.is_empty()).then_some(s);
    Some(AlertDoc {
        level: Level::parse(&row.level)?,
        status: AlertStatus::parse(&row.status)?,
        fired_at: Instant(i64::from(row.fired_at)),
        subject: serde_json::from_str(&row.subject).unwrap_or(Value::Null),
        evidence: serde_json::from_str(&row.evidence).unwrap_or(Value::Null),
        alert_id: row.alert_id,
        rule: row.rule,
        center_id: row.center_id,
        region: row.region,
        department: text(row.department),
        window_id: text(row.window_id),
        staff_id: text(row.staff_id),
        case_id: text(row.case_id),
        item_code: text(row.item_code),
        message: row.message,
    })
}

impl Backend for ClusterBackend {
    /// Durable in ClickHouse first (that is the record). The publish that tells the other API
    /// processes is retried in the background until the broker takes it, so a broker hiccup
    /// does not refuse an inspector's action that is already on record.
    fn record_action<'a>(&'a self, action: &'a Action) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.store
                .insert_actions(&[action_row(action)])
                .await
                .map_err(|e| BackendError(format!("ClickHouse: {e}")))?;
            let payload = serde_json::to_vec(action).unwrap_or_default();
            let producer = self.producer.clone();
            let topic = self.actions_topic.clone();
            let key = action.alert_id.clone();
            tokio::spawn(async move {
                let mut delay = Duration::from_millis(200);
                loop {
                    let record = FutureRecord::to(&topic).key(&key).payload(&payload);
                    match producer.send(record, Duration::from_secs(10)).await {
                        Ok(_) => return,
                        Err((e, _)) => {
                            log::warn!("publishing an action on {key} to {topic}: {e}; retrying");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(30));
                        }
                    }
                }
            });
            Ok(())
        })
    }

    fn case_timeline<'a>(
        &'a self,
        case_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>> {
        Box::pin(async move {
            let raw = self
                .store
                .case_events(case_id, 10_000)
                .await
                .map_err(|e| BackendError(format!("ClickHouse: {e}")))?;
            Ok(raw
                .into_iter()
                .map(|r| serde_json::from_str(&r).unwrap_or(Value::String(r)))
                .collect())
        })
    }
}

/// Start the API on `listener`: load state, follow the topics, serve, run its timers.
pub(crate) fn start(
    runtime: &tokio::runtime::Runtime,
    cfg: &ClusterConfig,
    settings: ApiSettings,
    store: ClickHouseStore,
    producer: FutureProducer,
    registry: prometheus::Registry,
    listener: tokio::net::TcpListener,
) -> Result<Api, ClusterError> {
    // The stream consumer spawns its wake-up task on the current runtime.
    let _runtime = runtime.enter();
    let backend = Arc::new(ClusterBackend {
        store: store.clone(),
        producer,
        actions_topic: cfg.actions_topic.clone(),
    });
    let api = Api::new(
        settings.config.clone(),
        settings.users.clone(),
        settings.key.clone(),
        backend,
        registry,
    );
    let consumer: StreamConsumer = with_overrides(
        {
            let mut c = client_config(cfg);
            // Each API process reads every partition itself (assign, no group coordination);
            // the group id is only a label, nothing is committed.
            c.set(
                "group.id",
                format!("{}-api-{}", cfg.group_id, std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100");
            c
        },
        cfg,
    )
    .create()?;
    let topics = [
        cfg.alerts_topic.clone(),
        cfg.status_topic.clone(),
        cfg.actions_topic.clone(),
    ];
    let start = end_offsets(&consumer, &topics, &cfg.brokers)?;
    let router = api.router();
    runtime.spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            log::error!("API endpoint stopped: {e}");
        }
    });
    runtime.spawn(api.clone().run_timers());
    runtime.spawn(watch_users(api.clone(), settings.users_path.clone()));
    let fed = api.clone();
    let keep_secs = i64::from(settings.keep_days) * 86_400;
    runtime.spawn(async move {
        load(&fed, &store, keep_secs).await;
        if let Err(e) = consumer.assign(&start) {
            log::error!("API: cannot follow {topics:?}: {e}; live changes will not arrive");
            return;
        }
        fed.hub().set_ready();
        log::info!("API ready: following {topics:?}");
        follow(&fed, &consumer, &topics).await;
    });
    Ok(api)
}

/// The end offset of every partition of `topics` (refusing a missing topic).
fn end_offsets(
    consumer: &StreamConsumer,
    topics: &[String],
    brokers: &str,
) -> Result<TopicPartitionList, ClusterError> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(15))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic.as_str() && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(ClusterError::MissingTopic {
                topic: topic.clone(),
                brokers: brokers.to_string(),
                detail: "not in the broker's metadata".into(),
            });
        }
        for p in partitions {
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(15))?;
            tpl.add_partition_offset(topic, p, Offset::Offset(high))?;
        }
    }
    Ok(tpl)
}

/// Load the live alerts, their trails and the window status, retrying until ClickHouse answers
/// (the API stays unready meanwhile).
async fn load(api: &Api, store: &ClickHouseStore, keep_secs: i64) {
    let mut delay = Duration::from_millis(500);
    loop {
        let since = store::rows::seconds(dashboard_api::wall_now().plus_secs(-keep_secs));
        let result = async {
            let alerts = store.live_alerts(since).await?;
            let actions = store.actions().await?;
            let windows = store.window_status().await?;
            Ok::<_, store::StoreError>((alerts, actions, windows))
        }
        .await;
        match result {
            Ok((alerts, actions, windows)) => {
                let n = (alerts.len(), actions.len(), windows.len());
                for a in alerts.into_iter().filter_map(alert_of) {
                    api.apply(Input::Alert(a));
                }
                for a in actions.into_iter().filter_map(action_of) {
                    api.apply(Input::Action(a));
                }
                for w in windows {
                    match serde_json::from_str::<WindowDoc>(&w.doc) {
                        Ok(doc) => api.apply(Input::Window(doc)),
                        Err(e) => log::warn!("window {}: unreadable status: {e}", w.window_id),
                    }
                }
                log::info!(
                    "API loaded {} alerts, {} actions, {} windows from ClickHouse",
                    n.0,
                    n.1,
                    n.2
                );
                return;
            }
            Err(e) => {
                log::warn!("API: loading from ClickHouse failed ({e}); retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Apply every message of the three topics as it arrives.
async fn follow(api: &Api, consumer: &StreamConsumer, topics: &[String; 3]) {
    let mut unreadable: u64 = 0;
    loop {
        let msg = match consumer.recv().await {
            Ok(m) => m,
            Err(e) => {
                log::warn!("API feed: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let payload = msg.payload().unwrap_or_default();
        let input = if msg.topic() == topics[0] {
            serde_json::from_slice::<AlertDoc>(payload).map(Input::Alert)
        } else if msg.topic() == topics[1] {
            serde_json::from_slice::<WindowDoc>(payload).map(Input::Window)
        } else {
            serde_json::from_slice::<Action>(payload).map(Input::Action)
        };
        match input {
            Ok(input) => api.apply(input),
            Err(e) => {
                // Only jiancha writes these topics: an unreadable message is a version mismatch
                // or a bug. Logged with a count, not once per message.
                unreadable += 1;
                if unreadable.is_power_of_two() {
                    log::warn!(
                        "API feed: {unreadable} unreadable messages so far; latest on {} offset {}: {e}",
                        msg.topic(),
                        msg.offset()
                    );
                }
            }
        }
    }
}

/// Re-read the users file when it changes; a file that no longer parses is reported and the
/// previous users stay in force.
async fn watch_users(api: Api, path: PathBuf) {
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&path);
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match Users::load(&path) {
            Ok(users) => {
                log::info!("{}: {} users reloaded", path.display(), users.len());
                api.set_users(users);
            }
            Err(e) => log::error!("users file not reloaded, keeping the previous users: {e}"),
        }
    }
}

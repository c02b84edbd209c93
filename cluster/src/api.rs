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
use dashboard_api::backend::{
    Backend, BackendError, BoxFuture, DeadLetterFilter, HistoryFilter, PerfFilter, SourceFigures,
    SourceFilter,
};
use dashboard_api::events::{Accepted, EventSink, Refused};
use dashboard_api::hub::Input;
use dashboard_api::model::{Action, AlertDoc, WindowDoc};
use dashboard_api::{Api, ApiConfig};
use node::glue;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use store::clickhouse::ClickHouseStore;
use store::rows::DeadLetterRow;
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
    /// The names the dashboards show (from the reference data, when the process has it).
    pub directory: dashboard_api::Directory,
}

/// The store behind the API: ClickHouse for the trail and timelines, Kafka so the other API
/// processes see each action.
struct ClusterBackend {
    store: ClickHouseStore,
    producer: FutureProducer,
    actions_topic: String,
}

impl Backend for ClusterBackend {
    /// Durable in ClickHouse first (that is the record). The publish that tells the other API
    /// processes is retried in the background until the broker takes it, so a broker hiccup
    /// does not refuse an inspector's action that is already on record.
    fn record_action<'a>(&'a self, action: &'a Action) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.store
                .insert_actions(&[glue::action_row(action)])
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

    fn history<'a>(
        &'a self,
        filter: &'a HistoryFilter,
    ) -> BoxFuture<'a, Result<Vec<AlertDoc>, BackendError>> {
        Box::pin(glue::history(&self.store, filter, "ClickHouse"))
    }

    fn actions(&self) -> BoxFuture<'_, Result<Vec<Action>, BackendError>> {
        Box::pin(glue::actions(&self.store, "ClickHouse"))
    }

    fn dead_letters<'a>(
        &'a self,
        filter: &'a DeadLetterFilter,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>> {
        Box::pin(glue::dead_letters(&self.store, filter, "ClickHouse"))
    }

    fn performance<'a>(
        &'a self,
        filter: &'a PerfFilter,
    ) -> BoxFuture<'a, Result<Vec<rules::perf::Counts>, BackendError>> {
        Box::pin(glue::performance(&self.store, filter, "ClickHouse"))
    }

    fn source_health<'a>(
        &'a self,
        filter: &'a SourceFilter,
    ) -> BoxFuture<'a, Result<Vec<SourceFigures>, BackendError>> {
        Box::pin(glue::source_health(&self.store, filter, "ClickHouse"))
    }

    fn case_timeline<'a>(
        &'a self,
        case_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>> {
        Box::pin(async move {
            glue::timeline(&self.store, case_id)
                .await
                .map_err(|e| glue::backend_error("ClickHouse", e))
        })
    }
}

/// HTTP ingest in cluster mode: events to the events topic (key `center_id`), acknowledged by
/// the brokers before the publisher's answer; dead letters to ClickHouse and the dead-letter
/// topic, like the engines' own.
pub(crate) struct KafkaSink {
    store: ClickHouseStore,
    producer: FutureProducer,
    events_topic: String,
    dead_letter_topic: String,
}

impl KafkaSink {
    /// The events and dead-letter topics of `cfg`, dead letters stored in `store` too.
    pub(crate) fn new(
        cfg: &ClusterConfig,
        store: ClickHouseStore,
        producer: FutureProducer,
    ) -> KafkaSink {
        KafkaSink {
            store,
            producer,
            events_topic: cfg.events_topic.clone(),
            dead_letter_topic: cfg.dead_letter_topic.clone(),
        }
    }
}

impl EventSink for KafkaSink {
    fn submit(
        &self,
        accepted: Vec<Accepted>,
        refused: Vec<Refused>,
    ) -> BoxFuture<'_, Result<Vec<usize>, BackendError>> {
        Box::pin(async move {
            let dead: Vec<DeadLetterRow> = refused.iter().map(glue::dead_letter_row).collect();
            self.store
                .insert_dead_letters(&dead)
                .await
                .map_err(|e| glue::backend_error("ClickHouse", e))?;
            let mut pending = Vec::with_capacity(accepted.len() + refused.len());
            for a in &accepted {
                let headers = OwnedHeaders::new().insert(Header {
                    key: "source",
                    value: Some(a.source.as_str()),
                });
                let record = FutureRecord::to(&self.events_topic)
                    .key(&a.center_id)
                    .payload(&a.raw)
                    .headers(headers);
                pending.push(self.enqueue(record).await?);
            }
            for r in &refused {
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "reason",
                        value: Some(r.reason.as_str()),
                    })
                    .insert(Header {
                        key: "source",
                        value: Some(r.source.as_str()),
                    });
                let record = FutureRecord::<(), _>::to(&self.dead_letter_topic)
                    .payload(&r.raw)
                    .headers(headers);
                pending.push(self.enqueue(record).await?);
            }
            for delivery in pending {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(BackendError(format!("Kafka: {e}"))),
                    Err(_) => return Err(BackendError("Kafka: delivery cancelled".into())),
                }
            }
            // Whether an event was seen before is known only to the engine that owns its
            // partition (it drops it there): no duplicates can be named here.
            Ok(Vec::new())
        })
    }
}

impl KafkaSink {
    /// Queue a record, waiting while the producer's queue is full.
    async fn enqueue<K: rdkafka::message::ToBytes + ?Sized>(
        &self,
        mut record: FutureRecord<'_, K, Vec<u8>>,
    ) -> Result<rdkafka::producer::DeliveryFuture, BackendError> {
        let mut waited = 0;
        loop {
            match self.producer.send_result(record) {
                Ok(f) => return Ok(f),
                Err((e, back)) if waited < 300 => {
                    log::debug!("ingest: producer queue: {e}");
                    record = back;
                    waited += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err((e, _)) => return Err(BackendError(format!("Kafka: {e}"))),
            }
        }
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
        producer: producer.clone(),
        actions_topic: cfg.actions_topic.clone(),
    });
    let api = Api::new(
        settings.config.clone(),
        settings.users.clone(),
        settings.key.clone(),
        backend,
        registry,
    );
    api.set_directory(settings.directory.clone());
    api.set_event_sink(Arc::new(KafkaSink::new(cfg, store.clone(), producer)));
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
    api.set_users_file(settings.users_path.clone());
    let served = api.clone();
    runtime.spawn(async move {
        if let Err(e) = dashboard_api::serve(listener, served).await {
            log::error!("API endpoint stopped: {e}");
        }
    });
    runtime.spawn(api.clone().run_timers());
    runtime.spawn(glue::watch_users(api.clone(), settings.users_path.clone()));
    let fed = api.clone();
    let keep_secs = i64::from(settings.keep_days) * 86_400;
    runtime.spawn(async move {
        glue::load(&fed, &store, keep_secs, "ClickHouse").await;
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

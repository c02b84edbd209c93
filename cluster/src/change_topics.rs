//! Change topics (SPEC §9 Transports (c), docs/ADAPTERS.md "Change topics"): Kafka topics
//! carrying a 前置库's tables as Kafka Connect JDBC-source rows or Debezium change events,
//! turned into events on the events topic.
//!
//! ```text
//! topic (configured: envelope, format, table) ─ group <group>.changes ─ batch of messages
//!   ─ adapters::envelope::unwrap ─ Adapter::adapt_change (create/update: events, a higher
//!     data version superseding; delete: withdrawals) ─ events::Judged (decoded as the engine
//!     will; bad rows dead letters with `kafka:<topic>:<partition>:<offset>`)
//!   ─ KafkaSink (events topic keyed by centre, dead letters to ClickHouse and their topic;
//!     acknowledged) ─ then the batch's offsets are committed
//! ```
//!
//! **Invariant:** a source offset is committed only after everything derived from the
//! messages below it is acknowledged by the brokers (or stored as a dead letter), so a crash
//! re-reads them; the re-derived events carry the same ids and the engine drops them as
//! duplicates. A failed hand-over is retried with the same batch until it succeeds or the
//! process stops (then nothing is committed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use adapters::envelope::{unwrap, Envelope};
use adapters::{Adapter, Format};
use dashboard_api::events::{Judged, Sender};
use dashboard_api::wall_now;
use ingest::decode::{DecodeOptions, Receipt};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use rules::Reference;

use crate::api::KafkaSink;
use crate::{client_config, with_overrides, ClusterConfig, ClusterError};

/// One configured topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeTopic {
    /// The topic.
    pub topic: String,
    /// How its messages are wrapped.
    pub envelope: Envelope,
    /// The format of its rows.
    pub format: Format,
    /// The table of its rows (a Debezium topic without it: each message's `source.table`).
    pub table: Option<String>,
    /// The source name events carry (else the format's code file's, else the format's name).
    pub source: Option<String>,
}

/// Messages handed over together (one produce round and one commit).
const BATCH_MESSAGES: usize = 2_000;
/// A batch is handed over when the consumer has nothing more at hand and its first message
/// is at least this old …
const BATCH_QUIET: Duration = Duration::from_millis(200);
/// … or, while messages keep coming, at this age: fewer, larger batches pay the produce round
/// and the commit (seconds each on a loaded broker) less often.
const BATCH_AGE: Duration = Duration::from_secs(1);

/// What the change-topics thread needs.
pub(crate) struct Run<'a> {
    pub cfg: &'a ClusterConfig,
    pub reference: Arc<Reference>,
    /// The policy's `future_skew_minutes`, in seconds.
    pub future_skew_secs: i64,
    pub sink: KafkaSink,
    pub rt: tokio::runtime::Handle,
    pub stop: Arc<AtomicBool>,
    /// Where `jiancha_change_records_total` is registered.
    pub registry: prometheus::Registry,
}

impl Run<'_> {
    /// Read the change topics until `stop`; returns only on stop or a fatal error.
    pub(crate) fn run(self) -> Result<(), ClusterError> {
        let Run {
            cfg,
            reference,
            future_skew_secs,
            sink,
            rt,
            stop,
            registry,
        } = self;
        let records = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "jiancha_change_records_total",
                "Messages of the change topics by topic and outcome: events (handed over), \
                 dead_letter (refused, stored), skipped (tombstones, truncations).",
            ),
            &["topic", "outcome"],
        )
        .map_err(|e| ClusterError::Config(format!("metrics: {e}")))?;
        registry
            .register(Box::new(records.clone()))
            .map_err(|e| ClusterError::Config(format!("metrics: {e}")))?;
        for t in &cfg.change_topics {
            for outcome in ["events", "dead_letter", "skipped"] {
                records
                    .with_label_values(&[t.topic.as_str(), outcome])
                    .inc_by(0);
            }
        }
        let consumer: BaseConsumer = with_overrides(
            {
                let mut c = client_config(cfg);
                c.set("group.id", format!("{}.changes", cfg.group_id))
                    .set("enable.auto.commit", "false")
                    .set("auto.offset.reset", "earliest");
                // Static membership, as for the events topic: a restarted process takes its
                // partitions back at once instead of after the session timeout.
                if let Some(id) = &cfg.instance_id {
                    c.set("group.instance.id", id);
                }
                c
            },
            cfg,
        )
        .create()?;
        let topics: Vec<&str> = cfg.change_topics.iter().map(|t| t.topic.as_str()).collect();
        consumer.subscribe(&topics)?;
        log::info!(
            "change topics: reading {topics:?} as group {}.changes",
            cfg.group_id
        );
        let mut adapters: HashMap<&str, (&ChangeTopic, Adapter<'_>)> = HashMap::new();
        for t in &cfg.change_topics {
            let adapter = Adapter::new(
                t.format,
                cfg.formats.codes(t.format),
                &reference,
                cfg.formats.sources_csv(),
                t.source.as_deref(),
            )
            .map_err(|e| {
                ClusterError::Config(format!(
                    "sources.csv: {}",
                    e.first().map_or(String::new(), |e| e.reason.clone())
                ))
            })?;
            adapters.insert(t.topic.as_str(), (t, adapter));
        }
        let mut events = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let mut judged = Judged::default();
            let mut counts: Vec<(&str, &str)> = Vec::new();
            let mut next: HashMap<(String, i32), i64> = HashMap::new();
            let mut began = WallInstant::now();
            let mut n = 0;
            while n < BATCH_MESSAGES && (n == 0 || began.elapsed() < BATCH_AGE) {
                let msg = match consumer.poll(Duration::from_millis(50)) {
                    None if n > 0 && began.elapsed() >= BATCH_QUIET => break,
                    None if n == 0 && stop.load(Ordering::Relaxed) => break,
                    None => continue,
                    Some(Err(e)) => {
                        log::warn!("change topics: {e}");
                        continue;
                    }
                    Some(Ok(m)) => m,
                };
                if n == 0 {
                    began = WallInstant::now();
                }
                n += 1;
                next.insert((msg.topic().to_string(), msg.partition()), msg.offset() + 1);
                let Some((topic, adapter)) = adapters.get_mut(msg.topic()) else {
                    continue;
                };
                let origin = format!("kafka:{}", topic.topic);
                let place = format!("{origin}:{}:{}", msg.partition(), msg.offset());
                let opts = DecodeOptions {
                    receipt: Receipt::At(wall_now()),
                    default_source: Some(&origin),
                    max_future_skew_secs: future_skew_secs,
                };
                let line = usize::try_from(msg.offset()).unwrap_or(0);
                let payload = msg.payload().unwrap_or_default();
                events.clear();
                let mapped = unwrap(topic.envelope, payload, topic.table.as_deref())
                    .and_then(|change| adapter.adapt_change(change, &mut events));
                let outcome = match &mapped {
                    Ok(()) if events.is_empty() => "skipped",
                    Ok(()) => "events",
                    Err(_) => "dead_letter",
                };
                counts.push((topic.topic.as_str(), outcome));
                match mapped {
                    Ok(()) => {
                        for ev in &events {
                            judged.judge(
                                Some(&reference),
                                Sender::Transport(&origin),
                                &opts,
                                line,
                                ev.to_json().as_bytes(),
                                place.clone(),
                            );
                        }
                    }
                    Err(dead) => judged.refuse(
                        line,
                        dead.reason.to_string(),
                        dead.column.as_deref().unwrap_or(""),
                        dead.message,
                        payload,
                        wall_now().0,
                        place,
                    ),
                }
            }
            if next.is_empty() {
                continue;
            }
            // Hand over, retrying the same batch through outages; commit only after.
            let handing = WallInstant::now();
            let mut waited = Duration::from_millis(200);
            loop {
                match rt.block_on(judged.clone().commit(&sink)) {
                    Ok(_) => break,
                    Err(e) if !stop.load(Ordering::Relaxed) => {
                        log::warn!("change topics: events not handed over ({e}); retrying");
                        std::thread::sleep(waited);
                        waited = (waited * 2).min(Duration::from_secs(10));
                    }
                    Err(e) => {
                        log::warn!("change topics: stopping with a batch not handed over ({e}); it is read again at the next start");
                        return Ok(());
                    }
                }
            }
            for (topic, outcome) in counts {
                records.with_label_values(&[topic, outcome]).inc();
            }
            let mut tpl = TopicPartitionList::new();
            for ((topic, partition), offset) in &next {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
            }
            let committing = WallInstant::now();
            let committed = consumer.commit(&tpl, CommitMode::Sync);
            log::debug!(
                "change topics: {n} messages read in {:?}, handed over in {:?}, committed in {:?}",
                handing - began,
                committing - handing,
                committing.elapsed()
            );
            if let Err(e) = committed {
                // A rebalance took the partition: its new owner re-reads from the last commit, and
                // the engine drops the events it re-derives as duplicates.
                log::warn!("change topics: commit failed ({e}); those messages will be read again");
            }
        }
        Ok(())
    }
}

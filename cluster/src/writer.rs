//! The writer: makes the consumer loop's output durable, in order.
//!
//! A batch goes to ClickHouse first ([`Store::write`]: events, dead letters, case facts, alerts
//! and window status, concurrently), then to Kafka (alerts keyed by `alert_id`, dead letters with
//! their reason in headers). Two stages do this, so that one batch's ClickHouse write overlaps
//! the previous batch's publication: the first stores batches in order, the second publishes
//! them in order and replies. A checkpoint job passes through the first stage untouched and is
//! written by the second, after every batch sent before it is stored and published, so a
//! checkpoint never covers an offset whose output is not durable. Transient failures are retried with backoff for
//! as long as it takes (consumption pauses meanwhile); a refusal is fatal, because retrying
//! would be refused again and skipping would lose data.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rules::window::WindowStatus;
use rules::{Alert, CaseFact};
use store::batch::{retry, Backoff};
use store::clickhouse::ClickHouseStore;
use store::rows::{AlertRow, CaseFactRow, DeadLetterRow, EventRow, WindowStatusRow};
use store::{CheckpointKey, RowBatch, Store, StoreError};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::metrics::Metrics;

/// An invalid message: its stored row and what goes to the dead-letter topic.
#[derive(Debug)]
pub struct DeadLetter {
    /// The row for the `dead_letters` table.
    pub row: DeadLetterRow,
    /// The original message key.
    pub key: Option<Vec<u8>>,
    /// The original bytes.
    pub payload: Vec<u8>,
}

/// Output of a run of events, written together.
#[derive(Debug, Default)]
pub struct Batch {
    /// Raw valid events.
    pub events: Vec<EventRow>,
    /// Alert lines (firings and retractions).
    pub alerts: Vec<Alert>,
    /// Invalid messages and refused events.
    pub dead: Vec<DeadLetter>,
    /// Finished cases.
    pub facts: Vec<CaseFact>,
    /// Acceptances, ratings and complaints (for the metrics).
    pub activities: Vec<rules::fact::Activity>,
    /// Windows whose live status changed (latest state of each).
    pub windows: Vec<WindowStatus>,
}

impl Batch {
    /// Take in what `engine` collected since the last batch: finished cases, activities and
    /// window status changes.
    pub fn gather(&mut self, engine: &mut rules::Engine) {
        self.facts.extend(engine.drain_facts());
        self.activities.extend(engine.drain_activities());
        self.windows.extend(engine.drain_window_status());
    }

    /// The rows ClickHouse stores of the batch (its event rows are moved out: only the stored
    /// copy needs them; Kafka gets the alerts and dead letters, which stay).
    pub fn store_rows(&mut self) -> RowBatch {
        RowBatch {
            events: std::mem::take(&mut self.events),
            alerts: self.alerts.iter().map(AlertRow::from).collect(),
            dead: self.dead.iter().map(|d| d.row.clone()).collect(),
            facts: self.facts.iter().map(CaseFactRow::from).collect(),
            windows: self.windows.iter().map(node::glue::window_row).collect(),
            activity: self
                .activities
                .iter()
                .map(node::glue::activity_row)
                .collect(),
        }
    }

    /// The batch so far, leaving an empty one with room for as many events and alerts: one
    /// batch is much like the next, and growing each from nothing copied its rows a dozen
    /// times.
    pub fn take(&mut self) -> Batch {
        let room = Batch {
            events: Vec::with_capacity(self.events.len()),
            alerts: Vec::with_capacity(self.alerts.len()),
            ..Batch::default()
        };
        std::mem::replace(self, room)
    }

    /// Rows in all tables.
    pub fn rows(&self) -> usize {
        self.events.len()
            + self.alerts.len()
            + self.dead.len()
            + self.facts.len()
            + self.activities.len()
            + self.windows.len()
    }
}

/// One partition's engine state, to be stored.
#[derive(Debug)]
pub struct PartCheckpoint {
    /// Partition.
    pub partition: i32,
    /// Slot to write (alternates).
    pub slot: u8,
    /// First offset the state does not cover: the offset to commit once stored.
    pub next_offset: i64,
    /// [`rules::Engine::snapshot`] bytes.
    pub snapshot: Vec<u8>,
}

/// Work for the writer.
#[derive(Debug)]
pub enum Job {
    /// Make a batch durable.
    Batch(Batch),
    /// Store the partitions' checkpoints (after every batch before them).
    Checkpoint(Vec<PartCheckpoint>),
}

/// What the writer reports back to the consumer loop.
#[derive(Debug)]
pub enum Reply {
    /// A batch is durable.
    Written,
    /// Checkpoints are durable: these offsets may be committed. (partition, next offset,
    /// snapshot bytes) of each.
    Checkpointed(Vec<(i32, i64, usize)>),
    /// The writer stopped: this job cannot be written. Nothing after it is committed.
    Failed(String),
}

/// Where the writer writes.
pub struct Sinks {
    /// ClickHouse.
    pub store: ClickHouseStore,
    /// Kafka producer for alerts and dead letters.
    pub producer: FutureProducer,
    /// Alerts topic.
    pub alerts_topic: String,
    /// Window status topic (key `window_id`, value the status JSON).
    pub status_topic: String,
    /// Dead-letter topic.
    pub dead_letter_topic: String,
    /// Consumer group (checkpoint key).
    pub group_id: String,
    /// Events topic (checkpoint key).
    pub events_topic: String,
    /// Metrics.
    pub metrics: Metrics,
    /// Set when the process gives up waiting (shutdown deadline): retries stop.
    pub abort: Arc<AtomicBool>,
}

/// Why a write did not happen.
#[derive(Debug)]
enum WriteError {
    /// Refused by the sink: fatal.
    Refused(String),
    /// Shutdown deadline passed while retrying.
    Aborted,
}

/// What the storing stage hands to the publishing stage, in job order.
enum Stored {
    /// A batch in ClickHouse, to publish (with its window status rows).
    Batch(Batch, Vec<WindowStatusRow>),
    /// Checkpoints to write once everything before them is published.
    Checkpoint(Vec<PartCheckpoint>),
    /// The storing stage gave up (replied in order, after the batches before it).
    Failed(WriteError),
}

/// Run jobs until the sender is dropped or a write fails for good.
pub async fn run(jobs: UnboundedReceiver<Job>, replies: mpsc::Sender<Reply>, sinks: Sinks) {
    // One batch may wait between the stages: enough to overlap the two sinks, and the consumer
    // loop's in-flight limit still bounds what is queued in all.
    let (stored, to_publish) = tokio::sync::mpsc::channel(1);
    tokio::join!(
        store_stage(jobs, stored, &sinks),
        publish_stage(to_publish, replies, &sinks)
    );
}

/// First stage: each batch into ClickHouse, in order.
async fn store_stage(
    mut jobs: UnboundedReceiver<Job>,
    stored: tokio::sync::mpsc::Sender<Stored>,
    sinks: &Sinks,
) {
    while let Some(job) = jobs.recv().await {
        let next = match job {
            Job::Batch(batch) => match store_batch(sinks, batch).await {
                Ok((batch, windows)) => Stored::Batch(batch, windows),
                Err(e) => Stored::Failed(e),
            },
            Job::Checkpoint(parts) => Stored::Checkpoint(parts),
        };
        let failed = matches!(next, Stored::Failed(_));
        // A closed channel: the publishing stage has failed and replied why.
        if stored.send(next).await.is_err() || failed {
            return;
        }
    }
}

/// Second stage: publish each stored batch, write checkpoints, reply, in order.
async fn publish_stage(
    mut stored: tokio::sync::mpsc::Receiver<Stored>,
    replies: mpsc::Sender<Reply>,
    sinks: &Sinks,
) {
    while let Some(next) = stored.recv().await {
        let result = match next {
            Stored::Batch(batch, windows) => publish_batch(sinks, &batch, &windows)
                .await
                .map(|()| Reply::Written),
            Stored::Checkpoint(parts) => write_checkpoints(sinks, parts).await,
            Stored::Failed(e) => Err(e),
        };
        match result {
            Ok(reply) => {
                if replies.send(reply).is_err() {
                    return;
                }
            }
            Err(e) => {
                let message = match e {
                    WriteError::Refused(m) => m,
                    WriteError::Aborted => "shutdown deadline passed while retrying".into(),
                };
                let _ = replies.send(Reply::Failed(message));
                return;
            }
        }
    }
}

/// Retry `op` while it fails transiently (backoff from 100 ms doubling to 5 s, for as long as
/// it takes, unless the process gives up at its shutdown deadline); time it and count failures.
async fn persist<F, Fut>(sinks: &Sinks, sink: &str, op: F) -> Result<(), WriteError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_secs(5),
        attempts: u32::MAX,
    };
    let started = Instant::now();
    let mut failures = 0u32;
    let result = retry(backoff, op, |e| {
        sinks
            .metrics
            .write_failures
            .with_label_values(&[sink, "transient"])
            .inc();
        if failures == 0 {
            log::warn!("{sink}: {e}; retrying with backoff, consumption paused");
        }
        failures += 1;
        !sinks.abort.load(Ordering::Relaxed)
    })
    .await;
    match result {
        Ok(()) => {
            sinks
                .metrics
                .write_seconds
                .with_label_values(&[sink])
                .observe(started.elapsed().as_secs_f64());
            if failures > 0 {
                log::warn!("{sink}: written after {failures} failed attempts");
            }
            Ok(())
        }
        Err(e) if e.is_transient() => Err(WriteError::Aborted),
        Err(e) => {
            sinks
                .metrics
                .write_failures
                .with_label_values(&[sink, "refused"])
                .inc();
            Err(WriteError::Refused(format!("{sink}: {e}")))
        }
    }
}

/// Store a batch in ClickHouse; give back what its publication needs.
async fn store_batch(
    sinks: &Sinks,
    mut batch: Batch,
) -> Result<(Batch, Vec<WindowStatusRow>), WriteError> {
    sinks.metrics.batch_rows.observe(batch.rows() as f64);
    let rows = batch.store_rows();
    for a in &rows.alerts {
        sinks
            .metrics
            .alerts
            .with_label_values(&[&a.rule, &a.level, &a.status])
            .inc();
    }
    persist(sinks, "clickhouse", || sinks.store.write(&rows)).await?;
    Ok((batch, rows.windows))
}

/// Publish a stored batch's alerts, window status and dead letters.
async fn publish_batch(
    sinks: &Sinks,
    batch: &Batch,
    windows: &[WindowStatusRow],
) -> Result<(), WriteError> {
    if batch.alerts.is_empty() && batch.dead.is_empty() && windows.is_empty() {
        return Ok(());
    }
    let json: Vec<Vec<u8>> = batch
        .alerts
        .iter()
        .map(|a| serde_json::to_vec(a).unwrap_or_default())
        .collect();
    persist(sinks, "kafka", || publish(sinks, batch, &json, windows)).await
}

/// Publish a batch's alerts and dead letters and wait until the broker has them all. A failed
/// delivery fails the whole publish, which is then retried: consumers see an alert at least
/// once, and its id makes a repeat recognisable.
async fn publish(
    sinks: &Sinks,
    batch: &Batch,
    json: &[Vec<u8>],
    windows: &[WindowStatusRow],
) -> Result<(), StoreError> {
    let mut pending = Vec::with_capacity(json.len() + batch.dead.len() + windows.len());
    let unavailable = |e: rdkafka::error::KafkaError| StoreError::Unavailable(e.to_string());
    for (alert, payload) in batch.alerts.iter().zip(json) {
        let record = FutureRecord::to(&sinks.alerts_topic)
            .key(alert.alert_id.as_bytes())
            .payload(payload.as_slice());
        pending.push(enqueue(&sinks.producer, record).await?);
    }
    for w in windows {
        let record = FutureRecord::to(&sinks.status_topic)
            .key(w.window_id.as_bytes())
            .payload(w.doc.as_bytes());
        pending.push(enqueue(&sinks.producer, record).await?);
    }
    for d in &batch.dead {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "reason",
                value: Some(d.row.reason.as_bytes()),
            })
            .insert(Header {
                key: "field",
                value: Some(d.row.field.as_bytes()),
            })
            .insert(Header {
                key: "message",
                value: Some(d.row.message.as_bytes()),
            })
            .insert(Header {
                key: "source",
                value: Some(d.row.source.as_bytes()),
            });
        let mut record = FutureRecord::to(&sinks.dead_letter_topic)
            .payload(d.payload.as_slice())
            .headers(headers);
        if let Some(key) = &d.key {
            record = record.key(key.as_slice());
        }
        pending.push(enqueue(&sinks.producer, record).await?);
    }
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(unavailable(e)),
            Err(_) => return Err(StoreError::Unavailable("producer closed".into())),
        }
    }
    Ok(())
}

/// Hand a record to the producer, waiting while its queue is full; the returned future
/// resolves once the brokers acknowledged it (also used by the front-database pollers).
pub async fn enqueue<'a>(
    producer: &FutureProducer,
    mut record: FutureRecord<'a, [u8], [u8]>,
) -> Result<rdkafka::producer::DeliveryFuture, StoreError> {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    loop {
        match producer.send_result(record) {
            Ok(future) => return Ok(future),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(StoreError::Unavailable(e.to_string())),
        }
    }
}

async fn write_checkpoints(sinks: &Sinks, parts: Vec<PartCheckpoint>) -> Result<Reply, WriteError> {
    let mut offsets = Vec::with_capacity(parts.len());
    for part in parts {
        let key = CheckpointKey {
            group_id: &sinks.group_id,
            topic: &sinks.events_topic,
            partition: part.partition as u32,
        };
        persist(sinks, "checkpoint", || {
            sinks
                .store
                .save_checkpoint(key, part.slot, part.next_offset, &part.snapshot)
        })
        .await?;
        offsets.push((part.partition, part.next_offset, part.snapshot.len()));
    }
    Ok(Reply::Checkpointed(offsets))
}

//! The consumer loop: one engine per assigned partition, fed in offset order.
//!
//! Events are keyed by `center_id`, so a centre's whole history is in one partition and one
//! engine sees all of it. The loop owns the engines; output goes to the writer in batches;
//! engine state is checkpointed with the offset it covers, and that offset is committed only
//! after the checkpoint (and, before it, every batch) is durable. So the committed offset of a
//! partition always equals the offset of a stored checkpoint, and a new owner restores that
//! checkpoint and continues from that offset: nothing lost, nothing counted twice (re-emitted
//! alerts are identical and collapse by `alert_id`).
//!
//! Rebalances run inside `poll`: on revoke the loop drains (batch, checkpoint, commit) within
//! the shutdown deadline; on assign the new partitions are paused until their checkpoint is
//! loaded, which happens in the loop so that a ClickHouse outage delays them without blocking
//! the group.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ingest::decode::{decode_str, text, DecodeOptions, Receipt};
use node::checkpoint::{restore_newest, Restored};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Headers, Message, OwnedMessage};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use rules::{Engine, Kind, Outcome, Policy, Reference};
use store::clickhouse::ClickHouseStore;
use store::rows::{DeadLetterRow, EventRow};
use store::{CheckpointKey, Store};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::{ClockMode, ClusterConfig};
use crate::metrics::Metrics;
use crate::writer::{Batch, DeadLetter, Job, PartCheckpoint, Reply};
use crate::ClusterError;

/// A partition's engine and where it stands in the log.
struct Live {
    engine: Engine,
    /// Offset of the next message to apply (the checkpoint's offset until one arrives; -1 for
    /// a new engine). Messages below it are already in the state (after a crash between storing
    /// a checkpoint and committing its offset, the log is re-read from the older commit).
    next_offset: i64,
    /// Changed since the last checkpoint.
    dirty: bool,
    /// Slot the next checkpoint goes to.
    slot: u8,
    /// Log end offset, from client statistics.
    high_watermark: i64,
    /// No message applied since the state was loaded (the first one is logged, with the time
    /// since the process started: how long a restart kept the partition from consuming).
    fresh: bool,
}

enum Part {
    /// Assigned, paused until its checkpoint is loaded; messages that arrived meanwhile.
    Loading(Vec<OwnedMessage>),
    Ready(Box<Live>),
}

/// The loop's state, shared with the rebalance callbacks (which run inside `poll`, on the
/// loop's thread, while the loop holds no lock).
pub(crate) struct Core {
    cfg: Arc<ClusterConfig>,
    reference: Arc<Reference>,
    policy: Policy,
    skew_secs: i64,
    parts: HashMap<i32, Part>,
    /// Engines of partitions revoked after a complete drain, kept in case the next assignment
    /// gives them back (the eager protocol revokes everything at every membership change).
    parked: HashMap<i32, Box<Live>>,
    batch: Batch,
    batch_started: Option<Instant>,
    /// Events per kind (indexed by `Kind::index`) since the last batch, for the metrics.
    kinds: Vec<u64>,
    jobs: UnboundedSender<Job>,
    replies: mpsc::Receiver<Reply>,
    in_flight: usize,
    paused: bool,
    last_checkpoint: Instant,
    last_tick: Instant,
    last_load_attempt: Instant,
    store: ClickHouseStore,
    runtime: tokio::runtime::Handle,
    metrics: Metrics,
    abort: Arc<AtomicBool>,
    /// Every assigned partition has its state (for `/healthz`).
    ready: Arc<AtomicBool>,
    /// Set when the writer or a checkpoint fails for good: the loop stops without committing.
    pub(crate) fatal: Option<String>,
    /// The loop has ended: rebalance callbacks while the consumer closes do nothing.
    released: bool,
}

/// rdkafka context: rebalance callbacks and statistics.
pub(crate) struct Context {
    pub(crate) core: Mutex<Core>,
}

pub(crate) type KafkaConsumer = BaseConsumer<Context>;

impl Context {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ClientContext for Context {
    fn stats(&self, statistics: Statistics) {
        let mut core = self.lock();
        let topic = core.cfg.events_topic.clone();
        if let Some(t) = statistics.topics.get(&topic) {
            for (p, s) in &t.partitions {
                if let Some(Part::Ready(live)) = core.parts.get_mut(p) {
                    live.high_watermark = s.hi_offset;
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &KafkaConsumer, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut core = self.lock();
            if core.released {
                return;
            }
            let topic = core.cfg.events_topic.clone();
            let revoked: Vec<i32> = tpl
                .elements()
                .iter()
                .filter(|e| e.topic() == topic)
                .map(|e| e.partition())
                .collect();
            log::info!("partitions {revoked:?} revoked: draining");
            let deadline = Instant::now() + core.cfg.shutdown_deadline;
            core.drain(consumer, Some(&revoked), deadline);
            let durable = core.in_flight == 0 && core.fatal.is_none();
            for p in revoked {
                if let Some(Part::Ready(live)) = core.parts.remove(&p) {
                    if durable && !live.dirty {
                        core.parked.insert(p, live);
                    }
                }
                core.metrics.forget_partition(p);
            }
            core.metrics.partitions.set(core.parts.len() as i64);
        }
    }

    fn post_rebalance(&self, consumer: &KafkaConsumer, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut core = self.lock();
            if core.released {
                return;
            }
            let topic = core.cfg.events_topic.clone();
            let mut loading = TopicPartitionList::new();
            for e in tpl.elements().iter().filter(|e| e.topic() == topic) {
                core.parts.insert(e.partition(), Part::Loading(Vec::new()));
                loading.add_partition(&topic, e.partition());
            }
            let Core { parked, parts, .. } = &mut *core;
            parked.retain(|p, _| parts.contains_key(p));
            if loading.count() == 0 {
                log::warn!(
                    "no partition of {topic} assigned to this process: the group has more members \
                     than partitions, or its leader saw none (it looks again within {} s)",
                    crate::METADATA_REFRESH_MS / 1000
                );
            } else {
                log::info!(
                    "partitions {:?} assigned: loading checkpoints",
                    loading
                        .elements()
                        .iter()
                        .map(|e| e.partition())
                        .collect::<Vec<_>>()
                );
            }
            if let Err(e) = consumer.pause(&loading) {
                log::warn!("could not pause partitions while loading their state: {e}");
            }
            core.metrics.partitions.set(core.parts.len() as i64);
            // Load now if the store answers, so the group does not wait a loop turn.
            core.load_pending(consumer);
        }
    }
}

/// What one message of the events topic did, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new event of this kind: applied, and its row is in the batch.
    Event(Kind),
    /// A duplicate (same region, source and event id as one already applied): nothing stored.
    Duplicate(Kind),
    /// Decoded but refused by the engine (this reason code): a dead letter.
    Refused(Kind, &'static str),
    /// Not a valid event (this reason code): a dead letter.
    Undecodable(&'static str),
}

impl Applied {
    /// The kind of the event, if the message was one.
    pub fn kind(self) -> Option<Kind> {
        match self {
            Applied::Event(k) | Applied::Duplicate(k) | Applied::Refused(k, _) => Some(k),
            Applied::Undecodable(_) => None,
        }
    }
}

/// One message of the events topic applied to its partition's engine: decoded with its
/// receipt time (the message's timestamp) and its `source` header (the publisher of events
/// posted over HTTP: the namespace of their event ids when they name no source,
/// docs/RULES.md), then the engine's alerts, the event's row or the dead letter go to `batch`.
/// The loop's per-message work, and what `examples/mock_ceiling.rs` measures.
pub fn apply_message<M: Message>(
    engine: &mut Engine,
    msg: &M,
    skew_secs: i64,
    batch: &mut Batch,
) -> Applied {
    let payload = msg.payload().unwrap_or_default();
    let receipt = msg
        .timestamp()
        .to_millis()
        .map_or_else(unix_now, |ms| ms.div_euclid(1000));
    // The `source` header is read below, only for an event that names no source itself.
    let opts = DecodeOptions {
        receipt: Receipt::At(rules::Instant(receipt)),
        default_source: None,
        max_future_skew_secs: skew_secs,
    };
    let dead = |reason: &str, field: &str, message: String| DeadLetter {
        row: DeadLetterRow {
            received_at: receipt.clamp(0, i64::from(u32::MAX)) as u32,
            source: format!("kafka:{}/{}/{}", msg.topic(), msg.partition(), msg.offset()),
            reason: reason.to_string(),
            field: field.to_string(),
            message,
            raw: String::from_utf8_lossy(payload).into_owned(),
        },
        key: msg.key().map(<[u8]>::to_vec),
        payload: payload.to_vec(),
    };
    // The text checked once, for the event and its row.
    let (mut ev, line) = match text(payload).and_then(|line| Ok((decode_str(line, &opts)?, line))) {
        Ok(decoded) => decoded,
        Err(e) => {
            let code = e.code.as_str();
            batch
                .dead
                .push(dead(code, e.field.unwrap_or(""), e.message));
            return Applied::Undecodable(code);
        }
    };
    // Events posted over HTTP carry their publisher in a header (`http:<publisher>`): the
    // source of those that name none, and so the namespace of their event ids (docs/RULES.md).
    // What the decoder's `default_source` would give, read only when needed: librdkafka
    // parses a message's headers the first time they are asked for (≈ 1,700 instructions a
    // message), and adapters' events name their source.
    if ev.source.is_none() {
        ev.source = msg
            .headers()
            .and_then(|h| {
                h.iter()
                    .find(|h| h.key == "source")
                    .and_then(|h| std::str::from_utf8(h.value?).ok())
            })
            .map(std::borrow::Cow::Borrowed);
    }
    let kind = ev.body.kind();
    match engine.on_event(&ev, &mut batch.alerts) {
        Ok(Outcome::Duplicate) => Applied::Duplicate(kind),
        Ok(_) => {
            batch
                .events
                .push(EventRow::new(&ev, line, rules::Instant(receipt)));
            Applied::Event(kind)
        }
        Err(rejection) => {
            let code = rejection.code();
            batch
                .dead
                .push(dead(code, rejection.field(), rejection.to_string()));
            Applied::Refused(kind, code)
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cfg: Arc<ClusterConfig>,
        reference: Arc<Reference>,
        policy: Policy,
        jobs: UnboundedSender<Job>,
        replies: mpsc::Receiver<Reply>,
        store: ClickHouseStore,
        runtime: tokio::runtime::Handle,
        metrics: Metrics,
        abort: Arc<AtomicBool>,
        ready: Arc<AtomicBool>,
    ) -> Core {
        let now = Instant::now();
        Core {
            skew_secs: i64::from(policy.future_skew_minutes) * 60,
            cfg,
            reference,
            policy,
            parts: HashMap::new(),
            parked: HashMap::new(),
            batch: Batch::default(),
            batch_started: None,
            kinds: vec![0; Kind::ALL.len()],
            jobs,
            replies,
            in_flight: 0,
            paused: false,
            last_checkpoint: now,
            last_tick: now,
            last_load_attempt: now - Duration::from_secs(60),
            store,
            runtime,
            metrics,
            abort,
            ready,
            fatal: None,
            released: false,
        }
    }

    /// The loop has ended: forget the engines, so closing the consumer drains nothing more.
    pub(crate) fn release(&mut self) {
        self.released = true;
        self.parts.clear();
    }

    /// True when every assigned partition has its state.
    fn all_ready(&self) -> bool {
        self.parts.values().all(|p| matches!(p, Part::Ready(_)))
    }

    /// Apply one message from the events topic.
    pub(crate) fn on_message<M: Message>(&mut self, msg: &M, owned: impl FnOnce() -> OwnedMessage) {
        let partition = msg.partition();
        let live = match self.parts.get_mut(&partition) {
            Some(Part::Ready(live)) => live,
            Some(Part::Loading(buffer)) => {
                buffer.push(owned());
                return;
            }
            None => return, // not ours any more: the next owner has it
        };
        let offset = msg.offset();
        if offset < live.next_offset {
            return;
        }
        if live.fresh {
            live.fresh = false;
            log::info!(
                "partition {partition}: consuming from offset {offset}, {:.2} s after the process started",
                crate::logging::uptime().as_secs_f64()
            );
        }
        live.next_offset = offset + 1;
        if !live.dirty {
            live.dirty = true;
            self.metrics.checkpoint_pending.changed(partition);
        }
        self.batch_started.get_or_insert_with(Instant::now);
        let applied = apply_message(&mut live.engine, msg, self.skew_secs, &mut self.batch);
        if let Some(kind) = applied.kind() {
            self.kinds[kind.index()] += 1;
        }
        match applied {
            Applied::Event(_) => {}
            Applied::Duplicate(_) => self.metrics.duplicates.inc(),
            Applied::Refused(_, code) => self.metrics.refused.with_label_values(&[code]).inc(),
            Applied::Undecodable(code) => self
                .metrics
                .decode_failures
                .with_label_values(&[code])
                .inc(),
        }
    }

    /// In wall-clock mode, move engines that have caught up with their log (by the log end
    /// offset of the client's statistics, refreshed every second) to now less the allowed
    /// lateness.
    fn advance_caught_up(&mut self) {
        let ClockMode::Wall { lateness } = self.cfg.clock else {
            return;
        };
        let target = rules::Instant(unix_now() - lateness.as_secs() as i64);
        for (p, part) in &mut self.parts {
            if let Part::Ready(live) = part {
                let caught_up =
                    live.high_watermark >= 0 && live.next_offset.max(0) >= live.high_watermark;
                if caught_up && live.engine.clock() < target {
                    let before = self.batch.alerts.len();
                    live.engine.advance_to(target, &mut self.batch.alerts);
                    // A clock move that fired nothing need not be checkpointed: after a restore
                    // the same move happens again with the same effect.
                    if self.batch.alerts.len() > before {
                        if !live.dirty {
                            self.metrics.checkpoint_pending.changed(*p);
                        }
                        live.dirty = true;
                        self.batch_started.get_or_insert_with(Instant::now);
                    }
                }
            }
        }
    }

    /// Periodic work between messages: writer replies, batch sealing, clock, checkpoints,
    /// gauges, back-pressure.
    pub(crate) fn tick(&mut self, consumer: &KafkaConsumer) {
        self.take_replies(consumer, None);
        let now = Instant::now();
        if self.batch.rows() >= self.cfg.batch_rows
            || self
                .batch_started
                .is_some_and(|t| now.duration_since(t) >= self.cfg.batch_age)
        {
            self.seal();
        }
        if now.duration_since(self.last_tick) >= Duration::from_secs(1) {
            self.last_tick = now;
            self.advance_caught_up();
            self.gauges();
            if !self.all_ready() {
                self.load_pending(consumer);
            }
            self.ready.store(
                !self.parts.is_empty() && self.all_ready(),
                Ordering::Relaxed,
            );
        }
        if now.duration_since(self.last_checkpoint) >= self.cfg.checkpoint_interval {
            self.checkpoint(None);
        }
        self.back_pressure(consumer);
    }

    fn gauges(&self) {
        for (p, part) in &self.parts {
            if let Part::Ready(live) = part {
                let label = p.to_string();
                self.metrics
                    .open_cases
                    .with_label_values(&[&label])
                    .set(live.engine.tracked_cases() as i64);
                if live.high_watermark >= 0 {
                    self.metrics
                        .lag
                        .with_label_values(&[&label])
                        .set((live.high_watermark - live.next_offset.max(0)).max(0));
                }
            }
        }
    }

    /// Pause consumption while too many batches wait for the writer; resume when it catches up.
    fn back_pressure(&mut self, consumer: &KafkaConsumer) {
        let full = self.in_flight >= self.cfg.max_in_flight;
        if full == self.paused {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, part) in &self.parts {
            if matches!(part, Part::Ready(_)) {
                tpl.add_partition(&self.cfg.events_topic, *p);
            }
        }
        let result = if full {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        match result {
            Ok(()) => self.paused = full,
            Err(e) => log::warn!(
                "could not {} consumption: {e}",
                if full { "pause" } else { "resume" }
            ),
        }
    }

    /// Hand the current batch (with the engines' finished cases) to the writer.
    fn seal(&mut self) {
        for part in self.parts.values_mut() {
            if let Part::Ready(live) = part {
                self.batch.gather(&mut live.engine);
            }
        }
        self.batch_started = None;
        for (kind, n) in Kind::ALL.iter().zip(&mut self.kinds) {
            if *n > 0 {
                self.metrics
                    .events
                    .with_label_values(&[kind.as_str()])
                    .inc_by(std::mem::take(n));
            }
        }
        if self.batch.rows() == 0 {
            return;
        }
        let batch = self.batch.take();
        self.send(Job::Batch(batch));
    }

    fn send(&mut self, job: Job) {
        if self.jobs.send(job).is_ok() {
            self.in_flight += 1;
        } else if self.fatal.is_none() {
            // The writer has stopped; its last reply says why. (Checkpoints it confirmed just
            // before are not committed: stopping, the conservative choice is to replay them.)
            let why = std::iter::from_fn(|| self.replies.try_recv().ok()).find_map(|r| match r {
                Reply::Failed(message) => Some(message),
                _ => None,
            });
            self.fatal = Some(why.unwrap_or_else(|| "the writer stopped".into()));
        }
    }

    /// Seal the batch and checkpoint the changed partitions (all, or `only`).
    fn checkpoint(&mut self, only: Option<&[i32]>) {
        self.seal();
        self.last_checkpoint = Instant::now();
        let mut parts = Vec::new();
        for (p, part) in &mut self.parts {
            let Part::Ready(live) = part else { continue };
            if !live.dirty || live.next_offset < 0 || only.is_some_and(|o| !o.contains(p)) {
                continue;
            }
            match live.engine.snapshot() {
                Ok(snapshot) => {
                    parts.push(PartCheckpoint {
                        partition: *p,
                        slot: live.slot,
                        next_offset: live.next_offset,
                        snapshot,
                    });
                    live.slot ^= 1;
                    live.dirty = false;
                    self.metrics.checkpoint_pending.snapshotted(*p);
                }
                Err(e) => {
                    self.fatal = Some(format!("snapshot of partition {p} failed: {e}"));
                    return;
                }
            }
        }
        if !parts.is_empty() {
            self.send(Job::Checkpoint(parts));
        }
    }

    /// Handle the writer's replies; with a deadline, wait until nothing is in flight or it
    /// passes. Offsets of stored checkpoints are committed (synchronously when waiting).
    fn take_replies(&mut self, consumer: &KafkaConsumer, wait_until: Option<Instant>) {
        loop {
            let reply = match wait_until {
                None => match self.replies.try_recv() {
                    Ok(r) => r,
                    Err(_) => return,
                },
                Some(deadline) => {
                    if self.in_flight == 0 {
                        return;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.replies.recv_timeout(left) {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                }
            };
            self.in_flight = self.in_flight.saturating_sub(1);
            match reply {
                Reply::Written => {}
                Reply::Failed(message) => {
                    self.fatal.get_or_insert(message);
                    return;
                }
                Reply::Checkpointed(offsets) => {
                    let mut tpl = TopicPartitionList::new();
                    for (p, next_offset, bytes) in offsets {
                        self.metrics.checkpoint_pending.stored(p);
                        self.metrics
                            .checkpoint_bytes
                            .with_label_values(&[&p.to_string()])
                            .set(bytes as i64);
                        if let Err(e) = tpl.add_partition_offset(
                            &self.cfg.events_topic,
                            p,
                            Offset::Offset(next_offset),
                        ) {
                            log::warn!("partition {p}: {e}");
                        }
                    }
                    let mode = if wait_until.is_some() {
                        CommitMode::Sync
                    } else {
                        CommitMode::Async
                    };
                    if let Err(e) = consumer.commit(&tpl, mode) {
                        // Harmless: the next checkpoint commits a later offset, and a restart
                        // before it replays from the stored checkpoint's offset.
                        log::warn!("commit after a checkpoint failed: {e}");
                    }
                }
            }
        }
    }

    /// Make everything so far durable and commit it (revocation or shutdown), giving up at
    /// `deadline`: then nothing more is committed and the next owner replays from the last
    /// checkpoint.
    pub(crate) fn drain(
        &mut self,
        consumer: &KafkaConsumer,
        only: Option<&[i32]>,
        deadline: Instant,
    ) {
        self.checkpoint(only);
        self.take_replies(consumer, Some(deadline));
        if self.in_flight > 0 {
            self.abort.store(true, Ordering::Relaxed);
            log::warn!(
                "{} writes still pending at the deadline: not committed; the next owner replays from the last checkpoint",
                self.in_flight
            );
        }
    }

    /// Restore the state of partitions waiting for it, when the store answers.
    fn load_pending(&mut self, consumer: &KafkaConsumer) {
        let now = Instant::now();
        if now.duration_since(self.last_load_attempt) < Duration::from_secs(1) {
            return;
        }
        self.last_load_attempt = now;
        let waiting: Vec<i32> = self
            .parts
            .iter()
            .filter(|(_, p)| matches!(p, Part::Loading(_)))
            .map(|(p, _)| *p)
            .collect();
        for p in waiting {
            let parked = self.parked.remove(&p);
            match self.load(p, parked) {
                Ok(live) => {
                    self.metrics.checkpoint_pending.clean(p);
                    let Some(Part::Loading(buffered)) =
                        self.parts.insert(p, Part::Ready(Box::new(live)))
                    else {
                        continue;
                    };
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&self.cfg.events_topic, p);
                    if !self.paused {
                        if let Err(e) = consumer.resume(&tpl) {
                            log::warn!("could not resume partition {p}: {e}");
                        }
                    }
                    for msg in &buffered {
                        self.on_message(msg, || msg.clone());
                    }
                }
                Err(LoadError::Later(e)) => {
                    log::warn!("partition {p}: cannot load its checkpoint yet: {e}");
                }
                Err(LoadError::Fatal(e)) => {
                    self.fatal.get_or_insert(e);
                    return;
                }
            }
        }
    }

    /// The partition's state: the parked engine when the newest stored checkpoint is the one it
    /// wrote (nobody else has moved the partition on), else the newest checkpoint that restores.
    fn load(&self, partition: i32, parked: Option<Box<Live>>) -> Result<Live, LoadError> {
        let key = CheckpointKey {
            group_id: &self.cfg.group_id,
            topic: &self.cfg.events_topic,
            partition: partition as u32,
        };
        let store = &self.store;
        let timeout = Duration::from_secs(30);
        let found = self
            .runtime
            .block_on(async {
                let metas = tokio::time::timeout(timeout, store.checkpoints(key)).await??;
                let newest = metas.first().map_or(-1, |m| m.next_offset);
                if let Some(live) = parked.filter(|live| live.next_offset == newest) {
                    return Ok::<_, LoadFailure>(Found::Kept(live));
                }
                let read = async |meta: &store::CheckpointMeta| {
                    Ok::<_, LoadFailure>(
                        tokio::time::timeout(timeout, store.checkpoint_data(key, meta)).await??,
                    )
                };
                let (restored, problems) =
                    restore_newest(metas, read, &self.reference, &self.policy, "offset").await?;
                Ok(Found::Stored(restored.map(Box::new), problems))
            })
            .map_err(|e| match e {
                LoadFailure::Store(e) if !e.is_transient() => {
                    LoadError::Fatal(format!("partition {partition}: reading checkpoints: {e}"))
                }
                other => LoadError::Later(other.to_string()),
            })?;
        let (restored, problems) = match found {
            Found::Kept(mut live) => {
                log::info!(
                    "partition {partition}: state kept in memory at offset {} ({} cases)",
                    live.next_offset,
                    live.engine.tracked_cases()
                );
                live.high_watermark = -1;
                return Ok(*live);
            }
            Found::Stored(restored, problems) => (restored, problems),
        };
        let (mut engine, next_offset, slot) = match restored {
            Some(restored) => {
                let Restored {
                    meta,
                    engine,
                    timing,
                } = *restored;
                log::info!(
                    "partition {partition}: state restored at offset {} ({timing})",
                    meta.next_offset
                );
                (engine, meta.next_offset, meta.slot ^ 1)
            }
            None if problems.is_empty() => {
                log::info!("partition {partition}: no checkpoint, starting with an empty engine");
                (
                    Engine::new(self.reference.clone(), self.policy.clone()),
                    -1,
                    0,
                )
            }
            None => {
                return Err(LoadError::Fatal(format!(
                    "partition {partition}: no stored checkpoint can be restored ({}); refusing to start from nothing. \
                     To rebuild state from the whole topic, reset the group's offsets to the earliest and delete the group's checkpoints",
                    problems.join("; ")
                )))
            }
        };
        engine.collect_facts(true);
        engine.collect_window_status(true);
        Ok(Live {
            engine,
            next_offset,
            dirty: false,
            slot,
            high_watermark: -1,
            fresh: true,
        })
    }
}

/// What [`Core::load`] found.
enum Found {
    /// The parked engine is current.
    Kept(Box<Live>),
    /// The newest checkpoint that restores (if any), and why newer ones did not.
    Stored(Option<Box<Restored>>, Vec<String>),
}

enum LoadError {
    /// The store is unavailable: try again later, the partition stays paused.
    Later(String),
    /// The state cannot be restored: stop.
    Fatal(String),
}

#[derive(Debug, thiserror::Error)]
enum LoadFailure {
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("timed out")]
    Timeout(#[from] tokio::time::error::Elapsed),
}

/// The loop. Returns when `stop` is set (after draining) or on a fatal error.
pub(crate) fn consume(consumer: &KafkaConsumer, stop: &AtomicBool) -> Result<(), ClusterError> {
    let ctx = consumer.context();
    let shutdown_deadline = ctx.lock().cfg.shutdown_deadline;
    while !stop.load(Ordering::Relaxed) {
        // No lock across poll: rebalance and statistics callbacks run inside it.
        let polled = consumer.poll(Duration::from_millis(100));
        let mut core = ctx.lock();
        match polled {
            Some(Ok(msg)) => core.on_message(&msg, || BorrowedMessage::detach(&msg)),
            Some(Err(e)) => log::warn!("kafka: {e}"),
            None => {}
        }
        core.tick(consumer);
        if let Some(fatal) = core.fatal.take() {
            return Err(ClusterError::Fatal(fatal));
        }
    }
    log::info!("stopping: draining within {shutdown_deadline:?}");
    let mut core = ctx.lock();
    let deadline = Instant::now() + shutdown_deadline;
    core.drain(consumer, None, deadline);
    match core.fatal.take() {
        Some(fatal) => Err(ClusterError::Fatal(fatal)),
        None if core.in_flight > 0 => Err(ClusterError::Fatal(
            "shutdown deadline passed before the last writes were durable (not committed)".into(),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders, Timestamp};

    /// A message of the events topic, as HTTP ingest produces it when `publisher` is given.
    fn message(line: &str, publisher: Option<&str>) -> OwnedMessage {
        let headers = publisher.map(|p| {
            OwnedHeaders::new().insert(Header {
                key: "source",
                value: Some(p),
            })
        });
        let payload = Some(line.as_bytes().to_vec());
        let at = Timestamp::NotAvailable; // received now
        OwnedMessage::new(payload, None, "events".into(), at, 0, 0, headers)
    }

    #[test]
    fn an_events_own_source_wins_over_the_header_which_names_the_others() {
        let reference = Reference::parse(&rules::synth::reference_files()).expect("reference");
        let mut engine = Engine::new(Arc::new(reference), Policy::default());
        let mut lines = Vec::new();
        rules::synth::Workload::new(7, 3, 1000).warm_up(3, |l| lines.push(l.to_string()));
        let named = lines[0].replacen('{', r#"{"source":"frontdb:pj","#, 1);
        let mut batch = Batch::default();
        for (line, publisher) in [
            (named.as_str(), Some("http:pj-pub")),
            (lines[1].as_str(), Some("http:pj-pub")),
            (lines[2].as_str(), None),
        ] {
            let applied = apply_message(&mut engine, &message(line, publisher), 600, &mut batch);
            assert!(matches!(applied, Applied::Event(_)), "{applied:?}: {line}");
        }
        let sources: Vec<&str> = batch
            .events
            .iter()
            .map(|row| row.health.as_ref().map_or("?", |h| h.source.as_str()))
            .collect();
        assert_eq!(sources, ["frontdb:pj", "http:pj-pub", ""]);
    }
}

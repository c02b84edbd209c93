//! Notifications in cluster mode: a consumer of the alerts topic in a group of its own
//! (`[notify] group`, default `<group>.notify`), in every `jiancha cluster` process with
//! `[notify] enabled`.
//!
//! Why here and not in the engine loop: the alerts topic is written only after ClickHouse has
//! the batch, so an alert read from it is durable; the consumer group gives each partition of
//! the topic to exactly one notifier, so several processes never send the same alert; and the
//! committed offset is the notifier's durable position: an offset is committed only when every
//! alert below it has ended (sent, held back by the storm limit, refused or given up) and its
//! record is in the `notifications` table. A notifier that loses a partition in a rebalance
//! first waits (up to [`REVOKE_DRAIN`]) until what it took from that partition has ended and is
//! recorded, and commits, so the next owner starts after it; one that crashes leaves the rest to
//! the next owner, which skips what the table already records. What remains is the window
//! between a receiver's 200 and the record: a crash there (or a drain past its deadline) sends
//! that message again (at least once towards HTTP receivers; docs/NOTIFICATIONS.md).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use store::clickhouse::ClickHouseStore;

use crate::{client_config, with_overrides, ClusterConfig, ClusterError};

/// Offsets fit in 40 bits (a trillion messages per partition), partitions in the rest.
const OFFSET_BITS: u32 = 40;

fn token(partition: i32, offset: i64) -> u64 {
    (u64::from(partition.unsigned_abs()) << OFFSET_BITS)
        | (offset as u64 & ((1 << OFFSET_BITS) - 1))
}

fn untoken(t: u64) -> (i32, i64) {
    (
        (t >> OFFSET_BITS) as i32,
        (t & ((1 << OFFSET_BITS) - 1)) as i64,
    )
}

/// How long a notifier losing partitions waits for their notices to end before letting go.
const REVOKE_DRAIN: Duration = Duration::from_secs(20);

type NotifyConsumer = BaseConsumer<Drain>;

/// What the loop and the rebalance callback share: the loop never holds it across `poll`,
/// inside which the callback runs.
struct Shared {
    parts: HashMap<i32, Progress>,
    done: tokio::sync::mpsc::UnboundedReceiver<u64>,
}

impl Shared {
    /// Take the ended notices off the channel.
    fn take_done(&mut self) {
        while let Ok(t) = self.done.try_recv() {
            let (partition, offset) = untoken(t);
            if let Some(p) = self.parts.get_mut(&partition) {
                p.pending.remove(&offset);
            }
        }
    }
}

/// The consumer's context: on revoke, drain the revoked partitions and commit them.
struct Drain {
    shared: Mutex<Shared>,
}

impl Drain {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ClientContext for Drain {}

impl ConsumerContext for Drain {
    fn pre_rebalance(&self, consumer: &NotifyConsumer, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let mut shared = self.lock();
        let revoked: BTreeSet<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        let deadline = Instant::now() + REVOKE_DRAIN;
        loop {
            shared.take_done();
            let waiting: usize = revoked
                .iter()
                .filter_map(|p| shared.parts.get(p))
                .map(|p| p.pending.len())
                .sum();
            if waiting == 0 {
                break;
            }
            if Instant::now() >= deadline {
                log::warn!(
                    "notifications: partitions {revoked:?} revoked with {waiting} notices not ended after {} s; the next owner may send them again",
                    REVOKE_DRAIN.as_secs()
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut leaving: HashMap<i32, Progress> = revoked
            .iter()
            .filter_map(|p| Some((*p, shared.parts.remove(p)?)))
            .collect();
        commit_parts(consumer, &mut leaving, CommitMode::Sync);
    }
}

/// Per partition: offsets handed to the notifier and not yet ended, and the next offset.
#[derive(Default)]
struct Progress {
    pending: BTreeSet<i64>,
    next: i64,
    committed: i64,
}

impl Progress {
    /// The offset that may be committed: the lowest still pending, or the next.
    fn safe(&self) -> i64 {
        self.pending.first().copied().unwrap_or(self.next)
    }
}

/// Start the notifier thread; it stops when `stop` is set (after a last commit).
pub fn spawn(
    runtime: &tokio::runtime::Runtime,
    cfg: &ClusterConfig,
    settings: notify::config::NotifySettings,
    names: notify::Names,
    store: ClickHouseStore,
    registry: &prometheus::Registry,
    stop: Arc<AtomicBool>,
) -> Result<(std::thread::JoinHandle<()>, node::notifier::Notifier), ClusterError> {
    let group = if settings.group.is_empty() {
        format!("{}.notify", cfg.group_id)
    } else {
        settings.group.clone()
    };
    let mut c = client_config(cfg);
    c.set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    if let Some(id) = &cfg.instance_id {
        c.set("group.instance.id", format!("{id}.notify"));
    }
    let (notifier, done) = {
        let _guard = runtime.enter();
        node::notifier::Notifier::start(settings, names, store, registry)
    };
    let consumer: NotifyConsumer = with_overrides(c, cfg).create_with_context(Drain {
        shared: Mutex::new(Shared {
            parts: HashMap::new(),
            done,
        }),
    })?;
    consumer.subscribe(&[&cfg.alerts_topic])?;
    log::info!(
        "notifications: following {} as group {group}",
        cfg.alerts_topic
    );
    let handle = notifier.clone();
    let thread = std::thread::Builder::new()
        .name("jiancha-notify".into())
        .spawn(move || follow(&consumer, &notifier, &stop))
        .map_err(|source| ClusterError::Io {
            what: "starting the notifier thread".into(),
            source,
        })?;
    Ok((thread, handle))
}

fn follow(consumer: &NotifyConsumer, notifier: &node::notifier::Notifier, stop: &AtomicBool) {
    let mut last_commit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let polled = consumer.poll(Duration::from_millis(100));
        let mut shared = consumer.context().lock();
        match polled {
            Some(Ok(m)) => {
                let p = shared
                    .parts
                    .entry(m.partition())
                    .or_insert_with(|| Progress {
                        committed: m.offset(),
                        ..Progress::default()
                    });
                p.next = p.next.max(m.offset() + 1);
                match m.payload().map(notify::Notice::from_json) {
                    Some(Ok(notice)) => {
                        p.pending.insert(m.offset());
                        notifier.offer_notice(notice, token(m.partition(), m.offset()));
                    }
                    // Not an alert (nothing jiancha writes): nothing to send, move past it.
                    other => log::warn!(
                        "notifications: message at {}/{} is not an alert: {:?}",
                        m.partition(),
                        m.offset(),
                        other.map(|r| r.err())
                    ),
                }
            }
            Some(Err(e)) => log::warn!("notifications: consumer: {e}"),
            None => {}
        }
        shared.take_done();
        if last_commit.elapsed() >= Duration::from_secs(1) {
            commit(consumer, &mut shared.parts, CommitMode::Async);
            last_commit = Instant::now();
        }
    }
    let mut shared = consumer.context().lock();
    shared.take_done();
    commit(consumer, &mut shared.parts, CommitMode::Sync);
}

/// Commit each owned partition's safe offset when it moved; forget partitions no longer
/// assigned (their next owner starts from the committed offset).
fn commit(consumer: &NotifyConsumer, parts: &mut HashMap<i32, Progress>, mode: CommitMode) {
    let assigned: BTreeSet<i32> = consumer
        .assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default();
    parts.retain(|p, _| assigned.contains(p));
    commit_parts(consumer, parts, mode);
}

/// Commit the safe offset of each of `parts` that moved since its last commit.
fn commit_parts(consumer: &NotifyConsumer, parts: &mut HashMap<i32, Progress>, mode: CommitMode) {
    let mut tpl = TopicPartitionList::new();
    let topic = consumer
        .subscription()
        .ok()
        .and_then(|s| s.elements().first().map(|e| e.topic().to_string()))
        .unwrap_or_default();
    for (&partition, p) in parts.iter_mut() {
        let safe = p.safe();
        if safe > p.committed
            && tpl
                .add_partition_offset(&topic, partition, Offset::Offset(safe))
                .is_ok()
        {
            p.committed = safe;
        }
    }
    if tpl.count() > 0 {
        if let Err(e) = consumer.commit(&tpl, mode) {
            log::warn!("notifications: commit: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_the_safe_offset_waits_for_the_lowest_pending() {
        assert_eq!(untoken(token(11, 123_456_789)), (11, 123_456_789));
        let mut p = Progress {
            next: 10,
            ..Progress::default()
        };
        p.pending.extend([4, 7]);
        assert_eq!(p.safe(), 4);
        p.pending.remove(&4);
        assert_eq!(p.safe(), 7);
        p.pending.remove(&7);
        assert_eq!(p.safe(), 10);
    }
}

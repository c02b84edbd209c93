//! The metrics of the engine and its store, one vocabulary for both modes (docs/RELIABILITY.md,
//! "Operations"): cluster mode labels them with the Kafka partition and the sinks `clickhouse`
//! and `kafka`; embedded mode is one partition, `0` (its ingest log), and one sink, `sqlite`.
//! So the shipped Grafana dashboard and alert rules read the same series from a county hall's
//! single binary as from a province's cluster.
//!
//! Hot-path counts (events by kind) are kept in an array by the consumer loop and added to the
//! registry once per batch, so the per-event cost is an array increment, not a label lookup.
//!
//! Liveness: `jiancha_checkpoint_pending_seconds` is how long the oldest change to a
//! partition's state has waited for a stored checkpoint, computed when scraped. An idle
//! partition has nothing waiting (0), so a quiet night never pages; a partition whose changes
//! cannot be stored, or whose engine stopped after a change, grows without bound.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Events consumed, by kind (valid events, duplicates included).
    pub events: IntCounterVec,
    /// Messages that were not valid events, by reason code.
    pub decode_failures: IntCounterVec,
    /// Valid events the engine refused (e.g. unknown item), by reason code.
    pub refused: IntCounterVec,
    /// Duplicate `event_id`s ignored.
    pub duplicates: IntCounter,
    /// Alert lines emitted (firings and retractions), by rule, level and status.
    pub alerts: IntCounterVec,
    /// Messages not yet consumed, per partition (high watermark − next offset).
    pub lag: IntGaugeVec,
    /// Rows per written batch (all tables).
    pub batch_rows: Histogram,
    /// Seconds to make one batch durable (ClickHouse, then Kafka), by sink.
    pub write_seconds: HistogramVec,
    /// Failed write attempts, by sink and kind (`transient`: retried; `refused`: fatal).
    pub write_failures: IntCounterVec,
    /// Seconds the oldest change to the partition's state has waited for a stored checkpoint.
    pub checkpoint_pending: CheckpointPending,
    /// Bytes of the partition's last checkpoint.
    pub checkpoint_bytes: IntGaugeVec,
    /// Open cases tracked, per partition.
    pub open_cases: IntGaugeVec,
    /// Partitions this process owns.
    pub partitions: IntGauge,
}

/// Register a collector and hand it back (names and labels are literals here: a failure is a
/// typo in this file, caught by the first test that builds `Metrics`).
fn register<C: Collector + Clone + 'static>(registry: &Registry, c: prometheus::Result<C>) -> C {
    let c = c.expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(registry, IntGaugeVec::new(Opts::new(name, help), labels))
}

impl Metrics {
    /// The registry (the dashboard API registers its own metrics in it and serves it whole).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A fresh registry with every metric (call [`Metrics::zero`] for the labelled series).
    pub fn new() -> Self {
        let registry = Registry::new();
        let duplicates = register(
            &registry,
            IntCounter::new(
                "jiancha_duplicate_events_total",
                "Events whose event_id was seen before (ignored)",
            ),
        );
        let batch_rows = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "jiancha_store_batch_rows",
                    "Rows per batch written to the store",
                )
                .buckets(prometheus::exponential_buckets(10.0, 4.0, 8).expect("buckets")),
            ),
        );
        let write_seconds = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "jiancha_store_write_seconds",
                    "Seconds to make one batch durable, by sink",
                )
                .buckets(prometheus::exponential_buckets(0.002, 2.5, 10).expect("buckets")),
                &["sink"],
            ),
        );
        let partitions = register(
            &registry,
            IntGauge::new("jiancha_partitions", "Partitions this process owns"),
        );
        Metrics {
            events: counter(
                &registry,
                "jiancha_events_consumed_total",
                "Valid events consumed, by kind",
                &["kind"],
            ),
            decode_failures: counter(
                &registry,
                "jiancha_decode_failures_total",
                "Messages that were not valid events (sent to the dead letters), by reason",
                &["reason"],
            ),
            refused: counter(
                &registry,
                "jiancha_events_refused_total",
                "Valid events the engine refused (sent to the dead letters), by reason",
                &["reason"],
            ),
            duplicates,
            alerts: counter(
                &registry,
                "jiancha_alerts_total",
                "Alert lines emitted (firings and retractions)",
                &["rule", "level", "status"],
            ),
            lag: gauge(
                &registry,
                "jiancha_consumer_lag",
                "Messages in the partition not yet consumed",
                &["partition"],
            ),
            batch_rows,
            write_seconds,
            write_failures: counter(
                &registry,
                "jiancha_store_write_failures_total",
                "Failed write attempts (transient ones are retried)",
                &["sink", "kind"],
            ),
            checkpoint_pending: register(&registry, Ok(CheckpointPending::new())),
            checkpoint_bytes: gauge(
                &registry,
                "jiancha_checkpoint_bytes",
                "Size of the partition's last checkpoint",
                &["partition"],
            ),
            open_cases: gauge(
                &registry,
                "jiancha_open_cases",
                "Cases the partition's engine tracks",
                &["partition"],
            ),
            partitions,
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }

    /// Forget a partition's gauges (it moved to another process).
    pub fn forget_partition(&self, partition: i32) {
        let p = partition.to_string();
        for g in [&self.lag, &self.checkpoint_bytes, &self.open_cases] {
            let _ = g.remove_label_values(&[&p]);
        }
        self.checkpoint_pending.forget(partition);
    }

    /// Put at zero every series whose label values are known before anything happens (event
    /// kinds, decode and refusal reasons, the `sinks`' failure kinds), so that the first
    /// occurrence is an increase Prometheus sees: a series that first appears at 1 has none.
    pub fn zero(&self, sinks: &[&str]) {
        for kind in rules::Kind::ALL {
            self.events.with_label_values(&[kind.as_str()]).inc_by(0);
        }
        for reason in ingest::decode::Reason::ALL {
            self.decode_failures
                .with_label_values(&[reason.as_str()])
                .inc_by(0);
        }
        for code in rules::Rejection::CODES {
            self.refused.with_label_values(&[code]).inc_by(0);
        }
        for sink in sinks {
            for kind in ["transient", "refused"] {
                self.write_failures
                    .with_label_values(&[sink, kind])
                    .inc_by(0);
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `jiancha_checkpoint_pending_seconds{partition}`: per partition, how long the oldest change to
/// its engine state has waited for a stored checkpoint (0 when the stored checkpoint covers
/// everything applied). Computed at scrape time from when the changes happened, so a stuck
/// engine, which no longer updates anything, still shows its wait growing.
#[derive(Clone)]
pub struct CheckpointPending {
    gauge: IntGaugeVec,
    since: Arc<Mutex<BTreeMap<i32, Waiting>>>,
}

#[derive(Default)]
struct Waiting {
    /// The oldest change not in any snapshot yet.
    changed: Option<Instant>,
    /// The oldest change in a snapshot handed to the store but not yet stored.
    snapshotted: Option<Instant>,
}

impl CheckpointPending {
    fn new() -> CheckpointPending {
        CheckpointPending {
            gauge: IntGaugeVec::new(
                Opts::new(
                    "jiancha_checkpoint_pending_seconds",
                    "Seconds the oldest change to the partition's engine state has waited for a \
                     stored checkpoint (0: the stored checkpoint covers everything applied)",
                ),
                &["partition"],
            )
            .expect("valid metric"),
            since: Arc::default(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<i32, Waiting>) -> R) -> R {
        // Every update is an assignment: a poisoned lock holds consistent data.
        f(&mut self.since.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The partition is owned and its stored checkpoint covers its state (start-up, restore).
    pub fn clean(&self, partition: i32) {
        self.with(|m| m.insert(partition, Waiting::default()));
    }

    /// The partition's state changed (call on the first change after a snapshot: the oldest
    /// one counts).
    pub fn changed(&self, partition: i32) {
        self.with(|m| {
            m.entry(partition)
                .or_default()
                .changed
                .get_or_insert_with(Instant::now);
        });
    }

    /// A snapshot of the partition's state went to the store.
    pub fn snapshotted(&self, partition: i32) {
        self.with(|m| {
            let w = m.entry(partition).or_default();
            let changed = w.changed.take();
            w.snapshotted = w.snapshotted.or(changed);
        });
    }

    /// The snapshot is stored: what it covers waits no more.
    pub fn stored(&self, partition: i32) {
        self.with(|m| {
            if let Some(w) = m.get_mut(&partition) {
                w.snapshotted = None;
            }
        });
    }

    /// The partition went to another process.
    pub fn forget(&self, partition: i32) {
        self.with(|m| m.remove(&partition));
    }
}

impl Collector for CheckpointPending {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.gauge.reset();
        self.with(|m| {
            for (p, w) in m.iter() {
                let oldest = match (w.changed, w.snapshotted) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let secs = oldest.map_or(0, |t| t.elapsed().as_secs());
                self.gauge
                    .with_label_values(&[&p.to_string()])
                    .set(i64::try_from(secs).unwrap_or(i64::MAX));
            }
        });
        self.gauge.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_under_its_documented_name() {
        let m = Metrics::new();
        m.zero(&["sqlite"]);
        m.events.with_label_values(&["case.accepted"]).inc_by(3);
        m.lag.with_label_values(&["2"]).set(7);
        m.checkpoint_pending.clean(2);
        m.forget_partition(2);
        let text = m.render();
        assert!(text.contains(r#"jiancha_events_consumed_total{kind="case.accepted"} 3"#));
        assert!(
            !text.contains("jiancha_consumer_lag{"),
            "a moved partition's gauges go"
        );
        assert!(!text.contains("jiancha_checkpoint_pending_seconds{"));
        for series in [
            "jiancha_duplicate_events_total 0",
            "jiancha_store_batch_rows",
            "jiancha_partitions",
            r#"jiancha_decode_failures_total{reason="not_json"} 0"#,
            r#"jiancha_events_refused_total{reason="unknown_item"} 0"#,
            r#"jiancha_store_write_failures_total{kind="transient",sink="sqlite"} 0"#,
            r#"jiancha_events_consumed_total{kind="complaint.filed"} 0"#,
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }

    #[test]
    fn only_a_change_waiting_for_its_checkpoint_counts() {
        let m = Metrics::new();
        let pending = |m: &Metrics| {
            let text = m.render();
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(r#"jiancha_checkpoint_pending_seconds{partition="0"} "#)
                })
                .map(|v| v.parse::<i64>().expect("number"))
        };
        m.checkpoint_pending.clean(0);
        assert_eq!(pending(&m), Some(0), "idle and stored: nothing waits");
        let long_ago = Instant::now() - std::time::Duration::from_secs(900);
        m.checkpoint_pending
            .with(|w| w.entry(0).or_default().changed = Some(long_ago));
        assert!(
            pending(&m).is_some_and(|s| s >= 900),
            "a change waiting 15 min"
        );
        m.checkpoint_pending.snapshotted(0);
        m.checkpoint_pending.changed(0);
        assert!(
            pending(&m).is_some_and(|s| s >= 900),
            "a snapshot not yet stored still waits, from its oldest change"
        );
        m.checkpoint_pending.stored(0);
        assert!(
            pending(&m).is_some_and(|s| s < 5),
            "only the newer change waits"
        );
        m.checkpoint_pending.snapshotted(0);
        m.checkpoint_pending.stored(0);
        assert_eq!(pending(&m), Some(0));
    }
}

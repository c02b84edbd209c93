//! Prometheus metrics of a cluster-mode process, served as text on `/metrics`.
//!
//! Hot-path counts (events by kind) are kept in an array by the consumer loop and added to the
//! registry once per batch, so the per-event cost is an array increment, not a label lookup.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use prometheus::core::Collector;
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
    /// Seconds since the partition's state was last checkpointed.
    pub checkpoint_age: IntGaugeVec,
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

    /// A fresh registry with every metric at zero.
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
            checkpoint_age: gauge(
                &registry,
                "jiancha_checkpoint_age_seconds",
                "Seconds since the partition's engine state was last checkpointed",
                &["partition"],
            ),
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
        for g in [
            &self.lag,
            &self.checkpoint_age,
            &self.checkpoint_bytes,
            &self.open_cases,
        ] {
            let _ = g.remove_label_values(&[&p]);
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Serve `/metrics` (Prometheus text) and `/healthz` (200 once partitions are being consumed,
/// 503 before) on `listener` until the runtime stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
) -> std::io::Result<()> {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let ok = ready.load(Ordering::Relaxed);
                async move {
                    if ok {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
                    }
                }
            }),
        );
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_under_its_documented_name() {
        let m = Metrics::new();
        m.events.with_label_values(&["case.accepted"]).inc_by(3);
        m.lag.with_label_values(&["2"]).set(7);
        m.forget_partition(2);
        let text = m.render();
        assert!(text.contains(r#"jiancha_events_consumed_total{kind="case.accepted"} 3"#));
        assert!(
            !text.contains("jiancha_consumer_lag{"),
            "a moved partition's gauges go"
        );
        for name in [
            "jiancha_duplicate_events_total",
            "jiancha_store_batch_rows",
            "jiancha_partitions",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
    }
}

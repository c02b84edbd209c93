//! The API's Prometheus metrics, registered into the process's registry (so one `/metrics`
//! serves the engine's and the API's together).

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The API's metrics.
#[derive(Clone)]
pub struct ApiMetrics {
    /// HTTP requests answered, by route template and status code.
    pub requests: IntCounterVec,
    /// WebSocket clients connected.
    pub ws_clients: IntGauge,
    /// Messages sent to WebSocket clients (snapshots, changes, heartbeats).
    pub ws_messages: IntCounter,
    /// Clients that fell behind and were sent a fresh snapshot.
    pub ws_resyncs: IntCounter,
    /// Clients closed because they stopped answering or could not take a message in time.
    pub ws_dropped: IntCounterVec,
    /// Actions on alerts, by action.
    pub actions: IntCounterVec,
    /// Failed logins.
    pub login_failures: IntCounter,
    /// Alerts held, and those still active.
    pub alerts_held: IntGauge,
    /// Active (open, acknowledged, supervising) alerts.
    pub alerts_active: IntGauge,
    /// Seconds from a change entering the hub to its being written to a socket.
    pub push_seconds: Histogram,
    /// Events received over HTTP, by outcome (`accepted`, `rejected`).
    pub ingested: IntCounterVec,
    /// Connections refused: over `max_connections` (`connections`) or over the WebSockets a
    /// user may hold (`live_per_user`).
    pub refused: IntCounterVec,
}

fn register<C: Collector + Clone + 'static>(registry: &Registry, c: prometheus::Result<C>) -> C {
    // Names and labels are literals in this file: a failure is a typo caught by the unit test.
    let c = c.expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

impl ApiMetrics {
    /// Register every API metric in `registry`.
    pub fn new(registry: &Registry) -> ApiMetrics {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let m = ApiMetrics {
            ingested: counter(
                "jiancha_http_events_total",
                "Events received on POST /api/v1/events, by outcome",
                &["outcome"],
            ),
            requests: counter(
                "jiancha_api_requests_total",
                "HTTP requests answered, by route and status",
                &["route", "status"],
            ),
            refused: counter(
                "jiancha_api_refused_total",
                "Connections refused over a cap, by cap (connections, live_per_user)",
                &["cap"],
            ),
            ws_clients: register(
                registry,
                IntGauge::new("jiancha_ws_clients", "WebSocket clients connected"),
            ),
            ws_messages: register(
                registry,
                IntCounter::new(
                    "jiancha_ws_messages_sent_total",
                    "Messages written to WebSocket clients",
                ),
            ),
            ws_resyncs: register(
                registry,
                IntCounter::new(
                    "jiancha_ws_resyncs_total",
                    "WebSocket clients that fell behind and were resynchronised with a snapshot",
                ),
            ),
            ws_dropped: counter(
                "jiancha_ws_closed_total",
                "WebSocket clients closed by the server, by reason",
                &["reason"],
            ),
            actions: counter(
                "jiancha_alert_actions_total",
                "Actions on alerts, by action",
                &["action"],
            ),
            login_failures: register(
                registry,
                IntCounter::new("jiancha_login_failures_total", "Failed logins"),
            ),
            alerts_held: register(
                registry,
                IntGauge::new("jiancha_api_alerts", "Alerts held by this API process"),
            ),
            alerts_active: register(
                registry,
                IntGauge::new(
                    "jiancha_api_alerts_active",
                    "Open, acknowledged or supervised alerts held by this API process",
                ),
            ),
            push_seconds: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "jiancha_ws_push_seconds",
                        "Seconds from a change entering the hub to its write to a socket",
                    )
                    .buckets(vec![0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
                ),
            ),
        };
        // Series whose label values are known start at zero, so that the first rejected event
        // or closed client is an increase Prometheus sees.
        for outcome in ["accepted", "rejected"] {
            m.ingested.with_label_values(&[outcome]).inc_by(0);
        }
        // `clear` is the engine's, never an inspector's action: no series.
        for action in crate::model::ActionKind::ALL
            .into_iter()
            .filter(|a| *a != crate::model::ActionKind::Clear)
        {
            m.actions.with_label_values(&[action.as_str()]).inc_by(0);
        }
        for reason in ["slow", "silent", "refused"] {
            m.ws_dropped.with_label_values(&[reason]).inc_by(0);
        }
        m
    }
}

/// Render a registry as Prometheus text.
pub fn render(registry: &Registry) -> String {
    prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_metrics_are_exposed_under_their_names() {
        let registry = Registry::new();
        let m = ApiMetrics::new(&registry);
        m.requests
            .with_label_values(&["/api/v1/alerts", "200"])
            .inc();
        m.ws_clients.set(3);
        let text = render(&registry);
        assert!(
            text.contains(r#"jiancha_api_requests_total{route="/api/v1/alerts",status="200"} 1"#)
        );
        assert!(text.contains("jiancha_ws_clients 3"));
        for zero in [
            r#"jiancha_http_events_total{outcome="rejected"} 0"#,
            r#"jiancha_alert_actions_total{action="resolve"} 0"#,
            r#"jiancha_ws_closed_total{reason="slow"} 0"#,
        ] {
            assert!(text.contains(zero), "{zero} in {text}");
        }
    }
}

//! The `/metrics` and `/healthz` endpoint of a cluster-mode process without the dashboard API.
//! The metrics themselves are the vocabulary both modes share ([`node::metrics`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use node::metrics::Metrics;

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

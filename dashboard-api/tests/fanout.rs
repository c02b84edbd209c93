//! A thousand dashboards at once: every one of them receives a broadcast alert.
//! (Latency and memory per connection are measured by `examples/ws_fanout.rs`, in
//! docs/BENCHMARKS.md, not asserted here.)

mod support;

use dashboard_api::hub::Input;
use dashboard_api::{ApiConfig, Limits};
use rules::alert::Level;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_all_receive_a_broadcast_alert() {
    // A thousand sockets of one user: far above the per-user cap a deployment would set.
    let s = start(ApiConfig {
        limits: Limits {
            max_live_per_user: 2000,
            ..Limits::default()
        },
        ..ApiConfig::default()
    })
    .await;
    let n = 1000;
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        // Half county leaders, half city leaders: everyone is in scope of a 平江 alert.
        let user = if i % 2 == 0 { "pj-leader" } else { "yy-leader" };
        let mut live = s.live(user, "").await;
        assert_eq!(live.next().await["type"], "snapshot");
        clients.push(live);
    }
    assert_eq!(s.api.hub().receivers(), n, "every socket subscribed");
    s.feed(Input::Alert(alert(
        "broadcast",
        PINGJIANG,
        Level::Red,
        "W1",
    )));
    let mut tasks = Vec::new();
    for mut live in clients {
        tasks.push(tokio::spawn(async move {
            let m = live.next().await;
            m["alert"]["alert_id"].as_str().map(str::to_string)
        }));
    }
    let mut received = 0;
    for t in tasks {
        if t.await.expect("client task").as_deref() == Some("broadcast") {
            received += 1;
        }
    }
    assert_eq!(received, n, "all {n} clients got the alert");
}

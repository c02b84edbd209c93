//! Hostile and careless clients (issue "Reliability", item 5): every endpoint but health, login
//! and static assets wants a token; expired tokens are refused with the reason; oversized or
//! malformed requests and WebSocket frames are refused with a clear error; a client that stops
//! reading never delays the others.

mod support;

use std::time::{Duration, Instant};

use dashboard_api::hub::Input;
use dashboard_api::wall_now;
use dashboard_api::ApiConfig;
use futures_util::{SinkExt, StreamExt};
use rules::Level;
use serde_json::json;
use support::{alert, start, PINGJIANG};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Paths anyone may read: probes, the login itself, the API description and the pages.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/api/v1/auth/login",
    "/api/v1/openapi.json",
    "/ui/",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_but_probes_login_and_pages_wants_a_token() {
    let s = start(ApiConfig::default()).await;
    let (_, doc) = s.call("GET", "/api/v1/openapi.json", None, None).await;
    let mut checked = 0;
    for (path, methods) in doc["paths"].as_object().expect("paths") {
        if PUBLIC.contains(&path.as_str()) {
            continue;
        }
        let concrete = path.replace("{alert_id}", "a1").replace("{case_id}", "c1");
        for method in methods.as_object().expect("methods").keys() {
            let method = method.to_uppercase();
            let (status, body) = s.call(&method, &concrete, None, Some(json!({}))).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (401, Some("unauthorized")),
                "{method} {concrete} without a token: {body}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} endpoints checked");
    // Pages and assets are public (they hold no data; the API they call is not).
    for path in ["/ui/leader", "/ui/assets/common.js"] {
        assert_eq!(s.call("GET", path, None, None).await.0, 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_everywhere_with_the_reason() {
    let s = start(ApiConfig::default()).await;
    let user = support::users().get("pj-leader").expect("user").clone();
    // Issued 13 hours ago, valid for 12.
    let (stale, _) = s.key.issue(&user, wall_now().0 - 13 * 3600, 12 * 3600);
    let (status, body) = s.call("GET", "/api/v1/alerts", Some(&stale), None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("expired"),
        "{body}"
    );
    let url = format!("ws://{}/api/v1/live?access_token={stale}", s.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401)
        }
        other => panic!("an expired token opened the live feed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_get_a_json_error_a_person_can_act_on() {
    let s = start(ApiConfig::default()).await;
    s.feed(Input::Alert(alert("a1", PINGJIANG, Level::Yellow, "W1")));
    // A login body just over the 2 MiB limit (far above any username and password). Only
    // 32 KiB over: the server answers once it has read the limit, and what the client still
    // has to send must fit in the socket's buffer, or the client sees a broken pipe.
    let huge = json!({"username": "pj-leader", "password": "x".repeat((2 << 20) + (32 << 10))});
    let (status, body) = s.call("POST", "/api/v1/auth/login", None, Some(huge)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "bad_request", "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("too large"),
        "{body}"
    );
    // Not JSON at all.
    let (status, body) = s
        .post_raw(
            "/api/v1/alerts/a1/actions",
            "pj-inspector",
            "application/json",
            "{\"action\": \"acknowledge\"".into(),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{body}");
    // JSON of the wrong shape, and an unknown action.
    let (status, body) = s
        .post(
            "/api/v1/alerts/a1/actions",
            "pj-inspector",
            json!({"action": 7}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = s
        .post(
            "/api/v1/alerts/a1/actions",
            "pj-inspector",
            json!({"action": "delete", "note": "x"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("acknowledge"),
        "the message lists the actions: {body}"
    );
    // Query parameters of the wrong type or unknown ones.
    let (status, body) = s.get("/api/v1/alerts?limit=many", "pj-leader").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (status, body) = s.get("/api/v1/alerts?colour=red", "pj-leader").await;
    assert_eq!(status, 400, "{body}");
    // The live feed asked for without a WebSocket handshake.
    let (status, body) = s.get("/api/v1/live", "pj-leader").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("connect with a WebSocket client"),
        "{body}"
    );
    // Events just above the 16 MiB limit (only a little over, as above).
    let line = format!(
        "{{\"kind\":\"window.opened\",\"pad\":\"{}\"}}\n",
        "x".repeat(1000)
    );
    let (status, body) = s
        .post_raw(
            "/api/v1/events",
            "pj-publisher",
            "application/x-ndjson",
            line.repeat(16 * 1024 + 32),
        )
        .await;
    assert_eq!(status, 413, "{body}");
}

/// A WebSocket client that has not read anything yet.
async fn connect(s: &support::Server, user: &str) -> support::Live {
    s.live(user, "").await
}

/// The close frame that ends the socket (skipping data frames), within 5 s.
async fn close_of(live: &mut support::Live) -> (CloseCode, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, live.ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return (f.code, f.reason.to_string()),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_only_listen_and_a_big_frame_is_refused() {
    let s = start(ApiConfig::default()).await;
    let mut bystander = connect(&s, "pj-leader").await;
    assert_eq!(bystander.next().await["type"], "snapshot");

    let mut talker = connect(&s, "pj-leader").await;
    assert_eq!(talker.next().await["type"], "snapshot");
    talker
        .ws
        .send(Message::Text("{\"subscribe\":\"everything\"}".into()))
        .await
        .expect("send");
    let (code, reason) = close_of(&mut talker).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("one-way"), "{reason}");

    let mut flooder = connect(&s, "pj-leader").await;
    assert_eq!(flooder.next().await["type"], "snapshot");
    let _ = flooder
        .ws
        .send(Message::Binary(vec![0u8; 1 << 20].into()))
        .await;
    let (code, reason) = close_of(&mut flooder).await;
    assert_eq!(code, CloseCode::Size, "{reason}");

    // Pongs and pings are fine, and the bystander was never disturbed.
    bystander
        .ws
        .send(Message::Ping(Vec::new().into()))
        .await
        .expect("ping");
    s.feed(Input::Alert(alert("after", PINGJIANG, Level::Red, "W1")));
    let m = bystander.next().await;
    assert_eq!(m["alert"]["alert_id"], "after", "{m}");
    let admin = s.token("hn-admin");
    let (_, metrics) = s.call("GET", "/metrics", Some(&admin), None).await;
    let text = metrics.as_str().unwrap_or_default();
    assert!(
        text.contains("jiancha_ws_closed_total{reason=\"refused\"} 2"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_delay_the_others() {
    let s = start(ApiConfig {
        live_buffer: 64,
        ..ApiConfig::default()
    })
    .await;
    // Five stalled clients: connected, never reading again.
    let mut stalled = Vec::new();
    for _ in 0..5 {
        let mut l = connect(&s, "yy-leader").await;
        assert_eq!(l.next().await["type"], "snapshot");
        stalled.push(l);
    }
    let mut reader = connect(&s, "yy-leader").await;
    assert_eq!(reader.next().await["type"], "snapshot");
    // 2,000 alerts of 4 KB: more than the stalled clients' socket buffers hold.
    let reading = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        let mut seen = 0;
        while seen < 2000 {
            let m = reader.next().await;
            match m["type"].as_str() {
                Some("alert") => {
                    let sent: u128 = m["alert"]["evidence"]["sent_ns"]
                        .as_str()
                        .and_then(|t| t.parse().ok())
                        .expect("stamp");
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("clock")
                        .as_nanos();
                    worst = worst.max(Duration::from_nanos((now - sent) as u64));
                    seen += 1;
                }
                Some("snapshot") => panic!("the reading client was resynchronised: it was delayed"),
                _ => {}
            }
        }
        worst
    });
    for i in 0..2000 {
        let mut a = alert(&format!("bulk-{i:05}"), PINGJIANG, Level::Yellow, "W1");
        a.evidence = json!({
            "note": "证".repeat(1400),
            "sent_ns": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
                .to_string(),
        });
        s.feed(Input::Alert(a));
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let worst = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the reader got every alert")
        .expect("reader task");
    assert!(
        worst < Duration::from_secs(1),
        "the reading client waited {worst:?} for an alert while others stalled"
    );
    drop(stalled);
}

//! WebSocket fan-out benchmark: N clients on `/api/v1/live`, K broadcast alerts; delivery latency
//! (hub → every client's read) p50/p99, and the server's memory per connection.
//!
//! ```text
//! cargo run --release -p dashboard-api --example ws_fanout -- [CLIENTS] [ALERTS]
//! ```
//! The parent re-runs itself as the server (`--serve`), so the server's RSS (read from
//! `/proc/<pid>/status`) excludes the clients. Each alert carries the wall-clock nanosecond at
//! which it entered the hub; a client's latency is its receive time minus that (one machine,
//! one clock).

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use dashboard_api::backend::MemoryBackend;
use dashboard_api::hub::Input;
use dashboard_api::model::AlertDoc;
use dashboard_api::{wall_now, Api, ApiConfig};
use futures_util::StreamExt;
use serde_json::{json, Value};

const SECRET: [u8; 32] = [9u8; 32];

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn user() -> User {
    User {
        username: "leader".into(),
        name: String::new(),
        role: Role::Leader,
        region: Region::try_from("43".to_string()).expect("region"),
        password_hash: hash_password("x").expect("hash"),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The server: prints its port, then feeds one alert per stdin line.
async fn serve() {
    let mut users = Users::default();
    users.upsert(user());
    let api = Api::new(
        ApiConfig::default(),
        users,
        TokenKey::new(&SECRET).expect("key"),
        Arc::new(MemoryBackend::default()),
        prometheus::Registry::new(),
    );
    api.hub().set_ready();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("{}", listener.local_addr().expect("addr").port());
    let router = api.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    // Read stdin line by line without blocking the runtime.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(id) = rx.recv().await {
        let doc: AlertDoc = serde_json::from_value(json!({
            "alert_id": id, "rule": "case.overdue", "level": "red", "status": "open",
            "fired_at": wall_now().to_string(), "center_id": "C1", "region": "430626",
            "window_id": "W1", "case_id": id, "subject": {"case_id": id},
            "message": "办件超过法定时限", "evidence": {"sent_ns": now_ns().to_string()},
        }))
        .expect("alert");
        api.apply(Input::Alert(doc));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn bench(clients: usize, alerts: usize) {
    let exe = std::env::current_exe().expect("exe");
    let mut server = Command::new(exe)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server");
    let pid = server.id();
    let mut out = std::io::BufReader::new(server.stdout.take().expect("stdout"));
    let mut port = String::new();
    out.read_line(&mut port).expect("port");
    let port: u16 = port.trim().parse().expect("port number");
    let mut stdin = server.stdin.take().expect("stdin");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib(pid);

    let token = TokenKey::new(&SECRET)
        .expect("key")
        .issue(&user(), wall_now().0, 3600)
        .0;
    let url = format!("ws://127.0.0.1:{port}/api/v1/live?access_token={token}");
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for _ in 0..clients {
        let url = url.clone();
        let lat_tx = lat_tx.clone();
        let ready_tx = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("connect");
            let mut got = 0;
            while let Some(Ok(msg)) = ws.next().await {
                let tokio_tungstenite::tungstenite::Message::Text(t) = msg else {
                    continue;
                };
                let v: Value = serde_json::from_str(&t).expect("json");
                match v["type"].as_str() {
                    Some("snapshot") => {
                        let _ = ready_tx.send(());
                    }
                    Some("alert") => {
                        let sent: u128 = v["alert"]["evidence"]["sent_ns"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        let _ = lat_tx.send((now_ns() - sent) as f64 / 1e6);
                        got += 1;
                        if got == alerts {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }));
    }
    for _ in 0..clients {
        ready_rx.recv().await.expect("client ready");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    let mut latencies = Vec::with_capacity(clients * alerts);
    for i in 0..alerts {
        writeln!(stdin, "bench-{i}").expect("feed");
        stdin.flush().expect("flush");
        for _ in 0..clients {
            latencies.push(lat_rx.recv().await.expect("latency"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    drop(stdin);
    let _ = server.kill();
    let _ = server.wait();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "clients={clients} alerts={alerts} deliveries={} p50={:.2}ms p99={:.2}ms max={:.2}ms \
         server_rss_before={}KiB after_connect={}KiB per_connection={:.1}KiB",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        before,
        after,
        (after.saturating_sub(before)) as f64 / clients as f64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if args.first().map(String::as_str) == Some("--serve") {
        rt.block_on(serve());
        return;
    }
    let clients = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let alerts = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    rt.block_on(bench(clients, alerts));
}

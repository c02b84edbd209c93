//! WebSocket fan-out benchmark: N clients on `/api/v1/live`, K broadcast alerts; delivery latency
//! (hub → every client's read) p50/p99/max, and the server's memory per idle connection.
//!
//! ```text
//! cargo run --release -p dashboard-api --example ws_fanout -- [CLIENTS] [ALERTS] [ACTIVE]
//! ```
//! (`scripts/bench-ws.sh` raises the open-file limit first and runs the documented cases.)
//! The parent re-runs itself as the server (`--serve ACTIVE`), so the server's RSS (read from
//! `/proc/<pid>/status`) and CPU time exclude the clients, and each process needs one file
//! descriptor per connection, not two. The server starts with ACTIVE open alerts (default 0),
//! which every client's snapshot carries. Each alert carries the wall-clock nanosecond at which
//! it was handed to the hub; a client's latency is its receive time minus that (one machine,
//! one clock). The run fails unless every client receives every alert, in order.
//! `WS_FANOUT_EACH=1` also prints each alert's percentiles (on stderr).

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use dashboard_api::backend::MemoryBackend;
use dashboard_api::hub::Input;
use dashboard_api::model::AlertDoc;
use dashboard_api::{wall_now, Api, ApiConfig};
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

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
        token_epoch: 0,
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
async fn serve(active: usize) {
    let mut users = Users::default();
    users.upsert(user());
    // Every client is the same user: no per-user cap on live sockets here.
    let api = Api::new(
        ApiConfig {
            limits: dashboard_api::Limits {
                max_live_per_user: usize::MAX,
                ..dashboard_api::Limits::default()
            },
            ..ApiConfig::default()
        },
        users,
        TokenKey::new(&SECRET).expect("key"),
        Arc::new(MemoryBackend::default()),
        prometheus::Registry::new(),
    );
    for i in 0..active {
        api.apply(Input::Alert(alert(&format!("active-{i}"))));
    }
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
        api.apply(Input::Alert(alert(&id)));
    }
}

/// An open alert in every client's scope; `evidence.sent_ns` is the time it is made.
fn alert(id: &str) -> AlertDoc {
    serde_json::from_value(json!({
        "alert_id": id, "rule": "case.overdue", "level": "red", "status": "open",
        "fired_at": wall_now().to_string(), "center_id": "C1", "region": "430626",
        "window_id": "W1", "case_id": id, "subject": {"case_id": id},
        "message": "办件超过法定时限", "evidence": {"sent_ns": now_ns().to_string()},
    }))
    .expect("alert")
}

/// The string value after `key` (which ends with its opening quote), up to the closing quote.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(key)? + key.len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// Deliveries so far, across clients; `all` is notified when an alert has reached every client.
#[derive(Default)]
struct Progress {
    count: AtomicUsize,
    all: tokio::sync::Notify,
}

impl Progress {
    /// One more delivery; `complete` is the count at which the current alert is everywhere
    /// (the next alert is sent only then, so counts of different alerts never mix).
    fn delivered(&self, complete: usize) {
        if self.count.fetch_add(1, Ordering::Relaxed) + 1 == complete {
            self.all.notify_one();
        }
    }
}

/// CPU time (user + system) a process has used so far, in milliseconds (`/proc/<pid>/stat`).
fn cpu_ms(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks * 10.0 // USER_HZ is 100 on Linux
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn bench(clients: usize, alerts: usize, active: usize) {
    let exe = std::env::current_exe().expect("exe");
    let mut server = Command::new(exe)
        .args(["--serve", &active.to_string()])
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
    let progress = Arc::new(Progress::default());
    // Clients hang up only once every client has every alert: 10,000 closes while the last
    // alert is still going out would be measured as its latency (they doubled it).
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    // A client reads with a 4 KiB buffer: tungstenite's default (128 KiB) is zeroed on every
    // read, which cost the clients more CPU than the server spent sending (docs/BENCHMARKS.md).
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    // At most this many handshakes at once: the listener's backlog is 1,024, and 10,000
    // simultaneous SYNs overflow it.
    let connecting = Arc::new(tokio::sync::Semaphore::new(256));
    for _ in 0..clients {
        let url = url.clone();
        let ready_tx = ready_tx.clone();
        let progress = progress.clone();
        let mut done = done_rx.clone();
        let connecting = connecting.clone();
        tasks.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.expect("semaphore");
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(url, Some(config), false)
                    .await
                    .expect("connect");
            let mut permit = Some(permit);
            let mut latencies = Vec::with_capacity(alerts);
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(t) = msg else {
                    continue;
                };
                // No JSON parse: the clients share the cores with the server, and a parse per
                // delivery would be measured as latency. The alert's id and stamp are found as
                // text (serde_json writes them without spaces).
                if t.starts_with(r#"{"type":"snapshot""#) {
                    drop(permit.take());
                    let _ = ready_tx.send(());
                } else if t.starts_with(r#"{"type":"alert""#) {
                    let sent = field(&t, r#""sent_ns":""#).and_then(|s| s.parse::<u128>().ok());
                    let latency_ms = (now_ns() - sent.expect("alert carries sent_ns")) as f64 / 1e6;
                    let expected = format!("bench-{}", latencies.len());
                    let id = field(&t, r#""alert_id":""#);
                    assert_eq!(
                        id,
                        Some(expected.as_str()),
                        "alerts arrive in order, none missed"
                    );
                    latencies.push(latency_ms);
                    progress.delivered(latencies.len() * clients);
                    if latencies.len() == alerts {
                        break;
                    }
                }
            }
            let _ = done.wait_for(|&d| d).await;
            latencies
        }));
    }
    for _ in 0..clients {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv())
            .await
            .ok()
            .flatten()
            .expect("every client connects and gets its snapshot");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    let (server_cpu, client_cpu) = (cpu_ms(&pid.to_string()), cpu_ms("self"));
    for i in 0..alerts {
        writeln!(stdin, "bench-{i}").expect("feed");
        stdin.flush().expect("flush");
        // A client that misses the alert (or fails its check) must not hang the benchmark.
        tokio::time::timeout(Duration::from_secs(30), progress.all.notified())
            .await
            .unwrap_or_else(|_| panic!("alert {i} did not reach every client"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let server_cpu = (cpu_ms(&pid.to_string()) - server_cpu) / alerts as f64;
    let client_cpu = (cpu_ms("self") - client_cpu) / alerts as f64;
    let _ = done_tx.send(true);
    let mut per_client = Vec::with_capacity(clients);
    for t in tasks {
        per_client.push(t.await.expect("client task"));
    }
    assert!(
        per_client.iter().all(|l| l.len() == alerts),
        "every client received every alert"
    );
    if std::env::var_os("WS_FANOUT_EACH").is_some() {
        for i in 0..alerts {
            let mut this: Vec<f64> = per_client.iter().map(|l| l[i]).collect();
            this.sort_by(|a, b| a.total_cmp(b));
            eprintln!(
                "alert {i}: p50={:.1}ms p99={:.1}ms max={:.1}ms",
                percentile(&this, 0.5),
                percentile(&this, 0.99),
                this[this.len() - 1]
            );
        }
    }
    let mut latencies: Vec<f64> = per_client.into_iter().flatten().collect();
    drop(stdin);
    let _ = server.kill();
    let _ = server.wait();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "clients={clients} alerts={alerts} active={active} deliveries={} p50={:.2}ms p99={:.2}ms max={:.2}ms \
         server_rss_before={}KiB after_connect={}KiB per_connection={:.1}KiB \
         cpu_per_alert: server={server_cpu:.0}ms clients={client_cpu:.0}ms",
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
    if args.first().map(String::as_str) == Some("--serve") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(serve(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0)));
        return;
    }
    // The clients on one thread: they cost less CPU than on a worker per core (no wake-ups
    // across threads), and what they save is left to the server they share the cores with.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let clients = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let alerts = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let active = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    rt.block_on(bench(clients, alerts, active));
}

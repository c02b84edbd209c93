//! Notifications from `jiancha serve` (embedded mode) to a local HTTP receiver, configured by
//! the configuration file: the receiver is down when the alert fires and the process is killed
//! before it could deliver; the next start delivers it (nothing lost); a later kill and restart
//! sends nothing again (nothing twice).

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../notify/tests/support/receiver.rs"]
mod receiver;
mod support;
use receiver::Receiver;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_jiancha")
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// `jiancha serve --config FILE`, ready to take events.
fn serve(config: &Path, api: SocketAddr) -> Child {
    let mut child = Command::new(bin())
        .args(["serve", "--config", config.to_str().unwrap_or_default()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start jiancha serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = ureq::get(&format!("http://{api}/readyz")).call() {
            if r.status() == 200 {
                return child;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("jiancha serve did not become ready");
}

fn post_complaint(api: SocketAddr, token: &str, n: u32) {
    let now = rules::Instant(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
            - 60,
    );
    let event = format!(
        r#"{{"event_id":"notify-test-{n}","kind":"complaint.filed","occurred_at":"{now}","center_id":"PJ-ZWFW","region":"430626","complaint_id":"T-{n}","category":"integrity","window_id":"PJ-W07","staff_id":"PJ0701"}}"#
    );
    let r = ureq::post(&format!("http://{api}/api/v1/events"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .send(event.as_bytes())
        .expect("ingest");
    assert_eq!(r.status(), 200);
}

fn kill(mut child: Child) {
    let _ = child.kill(); // SIGKILL: no drain, no checkpoint
    let _ = child.wait();
}

/// The WeCom markdown contents the receiver got.
fn wecom(receiver: &Receiver) -> Vec<String> {
    receiver
        .got()
        .iter()
        .map(|(_, b)| {
            let v: serde_json::Value = serde_json::from_str(b).expect("json");
            v["markdown"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn wait_for(receiver: &Receiver, n: usize, secs: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while wecom(receiver).len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    wecom(receiver)
}

#[test]
fn serve_notifies_each_alert_once_across_an_outage_and_crashes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("notify-serve");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let users = dir.join("users.toml");
    let secret = dir.join("token.secret");
    fs::write(&secret, "0123456789abcdef0123456789abcdef-notify-test").expect("secret");
    let (u, s) = (
        users.to_str().unwrap_or_default(),
        secret.to_str().unwrap_or_default(),
    );
    // A window system that publishes, and the account Prometheus scrapes with.
    let add = |name: &str, role: &str, region: &str| {
        support::add_user(&users, name, role, region, &[], "a-long-password")
    };
    add("ws", "publisher", "430626");
    add("prometheus", "admin", "43");
    let token_of = |name: &str| support::token(&users, &secret, name);
    let (token, scrape) = (token_of("ws"), token_of("prometheus"));

    let receiver_addr = free_addr(); // closed for now: the receiver is down
    let api = free_addr();
    let config = dir.join("jiancha.toml");
    fs::write(
        &config,
        format!(
            r#"[reference]
dir = "{reference}"

[engine]
clock = "event"

[api]
listen = "{api}"
users = "{u}"
token_secret_file = "{s}"

[embedded]
data = "{data}"

[notify]
enabled = true
retry_first_seconds = 1
retry_max_seconds = 1

[[notify.channels]]
name = "xiaoneng"
kind = "wecom"
url = "http://{receiver_addr}/cgi-bin/webhook/send?key=test"

[[notify.routes]]
channels = ["xiaoneng"]
min_level = "red"
"#,
            reference = root.join("demo/pingjiang").display(),
            data = dir.join("data").display(),
        ),
    )
    .expect("config");
    let check = Command::new(bin())
        .args([
            "config",
            "check",
            "--config",
            config.to_str().unwrap_or_default(),
        ])
        .output()
        .expect("config check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // 1. The alert fires while the receiver is down; the process dies before delivering.
    let first = serve(&config, api);
    post_complaint(api, &token, 1);
    std::thread::sleep(Duration::from_millis(1500));
    kill(first);

    // 2. Receiver up, process restarted: the stored, undelivered alert goes out.
    let receiver = Receiver::start(TcpListener::bind(receiver_addr).expect("receiver up"));
    let second = serve(&config, api);
    let got = wait_for(&receiver, 1, 20);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with("**【红牌】群众投诉**\n\n> 单位：PJ-ZWFW")
            && got[0].contains("窗口 PJ-W07\n> 人员：王芳（PJ0701）\n> 时间："),
        "{}",
        got[0]
    );
    assert!(got[0]
        .contains("> 说明：红牌：收到针对窗口 PJ-W07 工作人员 PJ0701 的廉政类投诉 T-1\n> 编号："));
    // 3. A new alert while running: delivered once.
    post_complaint(api, &token, 2);
    let got = wait_for(&receiver, 2, 20);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[1].contains("廉政类投诉 T-2"), "{}", got[1]);
    // What Prometheus scrapes (with an admin token, as deploy/prometheus/prometheus.yml does):
    // this process sent both, the first in its catch-up.
    let metrics = ureq::get(&format!("http://{api}/metrics"))
        .header("authorization", &format!("Bearer {scrape}"))
        .call()
        .expect("metrics")
        .into_body()
        .read_to_string()
        .expect("metrics text");
    assert!(
        metrics.contains("jiancha_notifications_total{channel=\"xiaoneng\",outcome=\"sent\"} 2"),
        "{metrics}"
    );
    kill(second);

    // 4. Killed and started again: the catch-up finds both recorded, nothing is repeated.
    let third = serve(&config, api);
    std::thread::sleep(Duration::from_millis(2500));
    kill(third);
    let got = wecom(&receiver);
    assert_eq!(got.len(), 2, "sent again after a restart: {got:#?}");
    let ids: Vec<&str> = got
        .iter()
        .map(|c| c.rsplit("编号：").next().unwrap_or_default())
        .collect();
    assert_ne!(ids[0], ids[1]);
}

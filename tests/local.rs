//! Embedded mode and the simulator end to end, with no external services: what someone trying
//! jiancha on one machine sees. `jiancha simulate` must produce a hall whose replay raises
//! exactly the alerts its ground truth lists; `jiancha demo` must serve a live hall, refuse an
//! inspector's events, stop cleanly on SIGTERM and come back with the same login and alerts;
//! it sends notifications as its configuration file's `[notify]` says, and refuses a file with
//! sections it would ignore.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rules::Calendar;
use serde_json::Value;

#[path = "../notify/tests/support/receiver.rs"]
mod receiver;

fn jiancha() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jiancha"))
}

/// A fresh scratch directory under the target directory (removed first if left over).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("local-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Run to completion: (standard output, standard error), or a panic naming the command.
fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().expect("run jiancha");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{stderr}");
    (stdout, stderr)
}

/// An alert as the user tells it apart: rule, level, subject (canonical JSON: serde_json sorts
/// object keys), and when it fired.
type Seen = (String, String, String, String);

fn seen(v: &Value) -> Seen {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    (
        s("rule"),
        s("level"),
        v["subject"].to_string(),
        s("fired_at"),
    )
}

/// Sorted, duplicates kept: an alert raised twice must show as twice.
fn sorted(mut v: Vec<Seen>) -> Vec<Seen> {
    v.sort();
    v
}

#[test]
fn a_simulated_hall_replays_to_exactly_its_ground_truth() {
    let dir = scratch("simulate");
    let (reference, truth, events) = (
        dir.join("reference"),
        dir.join("truth.ndjson"),
        dir.join("events.ndjson"),
    );
    let (_, log) = run_ok(
        jiancha()
            .args(["simulate", "--profile", "hall", "--seed", "3"])
            .args(["--start", "2026-09-21", "--days", "21"])
            .arg("--reference-out")
            .arg(&reference)
            .arg("--truth")
            .arg(&truth)
            .arg("--out")
            .arg(&events),
    );
    let until = log
        .split_once("--until ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("simulate names the --until instant:\n{log}"));

    let (check, _) = run_ok(jiancha().arg("check").arg("--reference").arg(&reference));
    assert!(check.contains("40 windows"), "{check}");

    let (replayed, log) = run_ok(
        jiancha()
            .arg("replay")
            .arg("--reference")
            .arg(&reference)
            .arg("--events")
            .arg(&events)
            .args(["--until", until]),
    );
    assert!(log.contains(" 0 invalid, 0 refused"), "{log}");
    // What is on record at the end: a retraction takes its alert off.
    let mut on_record = std::collections::BTreeMap::new();
    for line in replayed.lines() {
        let alert: Value = serde_json::from_str(line).expect("an alert per line");
        let id = alert["alert_id"].as_str().expect("alert_id").to_string();
        if alert["status"] == "retracted" {
            on_record.remove(&id);
        } else {
            on_record.insert(id, seen(&alert));
        }
    }
    let got = sorted(on_record.into_values().collect());
    let expected = sorted(
        fs::read_to_string(&truth)
            .expect("ground truth")
            .lines()
            .map(|l| seen(&serde_json::from_str(l).expect("a truth line is JSON")))
            .collect(),
    );

    let rules: BTreeSet<&str> = expected.iter().map(|a| a.0.as_str()).collect();
    assert!(
        expected.len() > 100 && rules.len() >= 10,
        "three weeks of a hall inject misconduct of many kinds: {} alerts, rules {rules:?}",
        expected.len()
    );
    let missing: Vec<_> = expected.iter().filter(|a| !got.contains(a)).collect();
    let unexpected: Vec<_> = got.iter().filter(|a| !expected.contains(a)).collect();
    assert!(
        got == expected,
        "replay ≠ ground truth ({} vs {} alerts)\nmissing: {missing:#?}\nunexpected: {unexpected:#?}",
        got.len(),
        expected.len()
    );
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address").port()
}

/// `curl URL ARGS…` (`--data-binary` makes it a POST): (HTTP status, body).
fn curl(url: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "30", "-w", "\n%{http_code}", url])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

const JSON: &str = "Content-Type: application/json";

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// GET a JSON document that must be there.
fn get_json(url: &str, token: &str) -> Value {
    let (status, body) = curl(url, &["-H", &bearer(token)]);
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).expect("JSON body")
}

fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < timeout, "not within {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The fewest days back (at least 2) that include a working day before today, so the demo
/// has a finished working day to catch up on whatever day the test runs (a Monday with
/// `--days-back 2` would start on Saturday and show nothing until visitors come).
fn days_back_with_a_working_day() -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let today = rules::Instant(now as i64).day();
    let calendar = Calendar::official();
    (2..60)
        .find(|&back| (1..=back).any(|k| calendar.is_working(rules::Day(today.0 - k))))
        .expect("a working day within 60 days")
}

/// A running `jiancha demo`, killed when dropped (also when the test fails).
struct Demo {
    child: Child,
    base: String,
    password: String,
    stderr: PathBuf,
    /// What it printed on its console (stdout), line by line.
    console: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    /// Start it and wait (≤ 60 s) for the banner that gives the password.
    fn start(data: &Path, port: u16, days_back: u32, run: &str) -> Demo {
        Demo::start_with(data, port, days_back, run, &[])
    }

    /// The same, with more arguments (`--config FILE`).
    fn start_with(data: &Path, port: u16, days_back: u32, run: &str, extra: &[&str]) -> Demo {
        let stderr = data.with_extension(format!("{run}.log"));
        let mut child = jiancha()
            .arg("demo")
            .args(extra)
            .arg("--data")
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--days-back", &days_back.to_string(), "--speed", "20000"])
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).expect("log file"))
            .spawn()
            .expect("start jiancha demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let console = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&console);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().expect("console lines").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut demo = Demo {
            child,
            base: format!("http://127.0.0.1:{port}"),
            password: String::new(),
            stderr,
            console,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while demo.password.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, p)) = line.split_once("password ") {
                        demo.password = p.trim().to_string();
                    }
                }
                Err(e) => panic!("no banner with a password ({e:?}):\n{}", demo.log()),
            }
        }
        demo
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn login(&self, username: &str) -> String {
        let body = serde_json::json!({ "username": username, "password": self.password });
        let (status, reply) = curl(
            &format!("{}/api/v1/auth/login", self.base),
            &["-H", JSON, "--data-binary", &body.to_string()],
        );
        assert_eq!(status, 200, "login as {username}: {reply}");
        let reply: Value = serde_json::from_str(&reply).expect("login JSON");
        reply["token"].as_str().expect("a token").to_string()
    }

    /// Every open alert (all pages).
    fn open_alerts(&self, token: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let url = format!("{}/api/v1/alerts?status=open&limit=500{cursor}", self.base);
            let page = get_json(&url, token);
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return items,
            }
        }
    }

    fn events_applied(&self) -> f64 {
        let token = self.login("demo-admin");
        let (_, text) = curl(&format!("{}/metrics", self.base), &["-H", &bearer(&token)]);
        text.lines()
            .find_map(|l| l.strip_prefix("jiancha_embedded_events_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// SIGTERM; the exit status (≤ 30 s) and what it logged.
    fn terminate(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM");
        let exit = wait_for("exit after SIGTERM", Duration::from_secs(30), || {
            self.child.try_wait().expect("wait for jiancha demo")
        });
        (exit, self.log())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ids(alerts: &[Value]) -> BTreeSet<String> {
    alerts
        .iter()
        .filter_map(|a| a["alert_id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_demo_serves_a_live_hall_and_keeps_its_alerts_across_a_restart() {
    let data = scratch("demo").join("data");
    let (port, days_back) = (free_port(), days_back_with_a_working_day());

    let demo = Demo::start(&data, port, days_back, "first");
    let on_file = fs::read_to_string(data.join("demo-login.txt")).expect("demo-login.txt");
    assert_eq!(
        demo.password,
        on_file.trim(),
        "the banner gives the stored password"
    );
    let inspector = demo.login("demo-inspector");

    wait_for("an open alert", Duration::from_secs(90), || {
        (!demo.open_alerts(&inspector).is_empty()).then_some(())
    });
    let windows = get_json(&format!("{}/api/v1/windows", demo.base), &inspector);
    assert_eq!(
        windows["items"].as_array().map(Vec::len),
        Some(40),
        "{windows}"
    );
    // The console tells a newcomer what is happening: the catch-up day by day…
    let console = demo.console.lock().expect("console lines").join("\n");
    assert!(console.contains("追赶中 · 模拟到 "), "{console}");
    let (status, reply) = curl(
        &format!("{}/api/v1/events", demo.base),
        &[
            "-H",
            &bearer(&inspector),
            "-H",
            JSON,
            "--data-binary",
            r#"{"event_id":"x","kind":"queue.ticket_issued"}"#,
        ],
    );
    assert_eq!(status, 403, "an inspector may not publish events: {reply}");
    // The latest view, taken just before stopping: all of it must come back.
    let before = ids(&demo.open_alerts(&inspector));
    let applied = demo.events_applied();
    assert!(applied > 0.0, "jiancha_embedded_events_total is {applied}");

    let (exit, log) = demo.terminate();
    assert!(exit.success(), "SIGTERM is a clean stop ({exit}):\n{log}");
    assert!(log.contains("stopping"), "{log}");

    let demo = Demo::start(&data, port, days_back, "second");
    assert_eq!(
        demo.password,
        on_file.trim(),
        "the same login after a restart"
    );
    wait_for("/readyz", Duration::from_secs(60), || {
        let (status, _) = curl(&format!("{}/readyz", demo.base), &[]);
        (status == 200).then_some(())
    });
    let inspector = demo.login("demo-inspector");
    let after = ids(&demo.open_alerts(&inspector));
    let lost: Vec<_> = before.difference(&after).collect();
    assert!(lost.is_empty(), "open alerts lost in the restart: {lost:?}");

    // The restarted simulator sends the same history again: once it has all been applied,
    // nothing is shown twice.
    wait_for("the history re-sent", Duration::from_secs(90), || {
        (demo.events_applied() >= applied).then_some(())
    });
    let open = demo.open_alerts(&inspector);
    let shown = sorted(open.iter().map(seen).collect());
    let twice: Vec<_> = shown.windows(2).filter(|w| w[0] == w[1]).collect();
    assert!(twice.is_empty(), "alerts shown twice: {twice:#?}");
    assert!(
        ids(&open).is_superset(&before),
        "open alerts lost after re-sending"
    );
    // …and when it has reached the present.
    wait_for(
        "已追上实时 on the console",
        Duration::from_secs(120),
        || {
            let console = demo.console.lock().expect("console lines");
            console
                .iter()
                .any(|l| l.contains("已追上实时"))
                .then_some(())
        },
    );
}

#[test]
fn the_demo_notifies_as_its_configuration_says_and_refuses_sections_it_would_ignore() {
    let dir = scratch("demo-config");
    let data = dir.join("data");
    let (port, days_back) = (free_port(), days_back_with_a_working_day());

    // A section the demo makes for itself: refused, with the reason, before anything starts.
    let ignored = dir.join("ignored.toml");
    fs::write(&ignored, "[api]\nlisten = \"127.0.0.1:9\"\n").expect("config");
    let out = jiancha()
        .args(["demo", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&ignored)
        .output()
        .expect("jiancha demo");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("[api]") && said.contains("jiancha serve"),
        "{said}"
    );
    assert!(
        !data.exists(),
        "nothing is made for a refused configuration"
    );

    // [notify]: the simulated hall's alerts reach a webhook.
    let listener = TcpListener::bind("127.0.0.1:0").expect("receiver");
    let hook = listener.local_addr().expect("address");
    let receiver = receiver::Receiver::start(listener);
    let config = dir.join("notify.toml");
    fs::write(
        &config,
        format!(
            r#"[notify]
enabled = true
# The simulation starts days back: its alerts are that old.
max_age_hours = 720

[[notify.channels]]
name = "hook"
kind = "webhook"
url = "http://{hook}/hook"

[[notify.routes]]
channels = ["hook"]
"#
        ),
    )
    .expect("config");
    let config = config.to_str().expect("UTF-8 path").to_string();
    let demo = Demo::start_with(&data, port, days_back, "notify", &["--config", &config]);
    let start = Instant::now();
    let got = loop {
        let got = receiver.got();
        if !got.is_empty() {
            break got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no notification from the demo within 90 s; its log:\n{}",
            demo.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let first: Value = serde_json::from_str(&got[0].1).expect("webhook JSON");
    assert_eq!(first["type"], "jiancha.notification.v1", "{first}");
    assert!(
        first["alert"]["alert_id"].is_string(),
        "{first}\n{}",
        demo.log()
    );
}

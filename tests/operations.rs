//! Operations against the real services from Debian's packages (`prometheus`,
//! `prometheus-alertmanager`, installed by `deploy/local/prometheus.sh` from `scripts/test.sh`):
//!
//! - `promtool check config` on the shipped Prometheus configuration laid out as Compose mounts
//!   it, and `promtool check rules` / `promtool test rules` on the shipped rules and their unit
//!   tests, which must cover every alert rule (firing, and silent on the quiet night);
//! - `jiancha serve` → a real Alertmanager → a webhook receiver: open alerts stay active past
//!   Alertmanager's `resolve_timeout`, a retraction and an inspector's resolution arrive
//!   resolved, nothing is refused; and a real Prometheus scraping the same process with the
//!   shipped configuration and rules: every Grafana panel has data, every rule evaluates, and
//!   the first rejected event fires its alert while nothing else does.
//!
//! By hand a missing tool skips the test; with `CI` set it fails.

use std::collections::BTreeSet;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "../notify/tests/support/receiver.rs"]
mod receiver;
mod support;
use receiver::Receiver;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Whether `tool` runs (see `support::have`).
fn have(tool: &str) -> bool {
    support::have(tool, "--version", "deploy/local/prometheus.sh")
}

use support::run;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A YAML file as JSON (PyYAML, which the machine image has; YAML is a superset of JSON, so
/// what this gives back can be written as the configuration a tool reads).
fn yaml_file(path: &Path) -> Value {
    let out = run(Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(path));
    assert!(out.status.success(), "{}: {}", path.display(), text(&out));
    serde_json::from_slice(&out.stdout).expect("YAML as JSON")
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd` (output to `log`) and wait until `ready_url` answers 200.
fn start(what: &'static str, cmd: &mut Command, log: &Path, ready_url: &str) -> Running {
    let log = fs::File::create(log).expect("log file");
    let child = cmd
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ureq::get(ready_url).call().is_ok_and(|r| r.status() == 200) {
            return running;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not become ready at {ready_url}");
}

/// Poll `f` every 200 ms until it gives `Some`, at most `secs`.
fn wait_until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get_json(url: &str) -> Value {
    ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_body()
        .read_json()
        .expect("JSON")
}

#[test]
fn promtool_checks_the_shipped_configuration_as_compose_mounts_it() {
    if !have("promtool") {
        return;
    }
    // Lay the files out where Compose's prometheus service mounts them, so the configuration
    // is checked with the paths Prometheus resolves when it runs.
    let compose = yaml_file(&root().join("deploy/compose/compose.yaml"));
    let dir = scratch("ops-compose-prometheus");
    let mut config = None;
    for volume in compose["services"]["prometheus"]["volumes"]
        .as_array()
        .expect("prometheus volumes")
    {
        let spec = volume.as_str().expect("short volume syntax");
        let mut parts = spec.split(':');
        let (from, to) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let target = dir.join(to.trim_start_matches('/'));
        fs::create_dir_all(target.parent().expect("parent")).expect("mount dir");
        let source = root().join("deploy/compose").join(from);
        if source.exists() {
            fs::copy(&source, &target).expect("copy mounted file");
        } else {
            // The operator makes it (`jiancha user token …`, see the file's comment).
            assert!(from.ends_with(".token"), "{from} is not in the repository");
            fs::write(&target, "a-token\n").expect("token");
        }
        if to.ends_with("/prometheus.yml") {
            config = Some(target);
        }
    }
    let config = config.expect("Compose mounts prometheus.yml");
    let rules = yaml_file(&root().join("deploy/prometheus/alerts.yml"));
    let n_rules = rules["groups"][0]["rules"].as_array().expect("rules").len();
    let out = run(Command::new("promtool")
        .arg("check")
        .arg("config")
        .arg(&config));
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("SUCCESS: {n_rules} rules found")),
        "the rules file the configuration names must be found and checked: {said}"
    );
    // (prometheus-k8s.yml is not checked here: Debian builds Prometheus without Kubernetes
    // service discovery, so its promtool cannot parse `kubernetes_sd_configs`.)
}

#[test]
fn promtool_unit_tests_cover_every_alert_rule_and_pass() {
    if !have("promtool") {
        return;
    }
    let dir = root().join("deploy/prometheus");
    let out = run(Command::new("promtool")
        .args(["check", "rules"])
        .arg(dir.join("alerts.yml")));
    assert!(out.status.success(), "{}", text(&out));

    let rules = yaml_file(&dir.join("alerts.yml"));
    let alerts: BTreeSet<String> = rules["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect();
    let tests = yaml_file(&dir.join("alerts_test.yml"));
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for t in tests["tests"].as_array().expect("tests") {
        for case in t["alert_rule_test"].as_array().expect("alert_rule_test") {
            let name = case["alertname"].as_str().unwrap_or_default().to_string();
            let expects_some = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
            if expects_some {
                fired.insert(name);
            } else if t["name"] == "quiet night" {
                quiet.insert(name);
            }
        }
    }
    assert_eq!(fired, alerts, "every rule needs a case where it fires");
    assert_eq!(
        quiet, alerts,
        "every rule must be silent on the quiet night"
    );

    let out = run(Command::new("promtool")
        .args(["test", "rules"])
        .arg(dir.join("alerts_test.yml")));
    assert!(out.status.success(), "{}", text(&out));
}

/// Alertmanager's configuration: everything to the webhook receiver, one group per alert,
/// resolved notifications on, and a `resolve_timeout` far shorter than the test.
fn alertmanager_config(hook: SocketAddr) -> String {
    format!(
        r#"global:
  resolve_timeout: 3s
route:
  receiver: hook
  group_by: [alert_id]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://{hook}/hook
        send_resolved: true
"#
    )
}

/// Every alert in the webhook notifications so far: (status, labels, startsAt, endsAt).
fn hooked(receiver: &Receiver) -> Vec<(String, Value, String, String)> {
    let mut out = Vec::new();
    for (_, body) in receiver.got() {
        let v: Value = serde_json::from_str(&body).expect("webhook JSON");
        for a in v["alerts"].as_array().into_iter().flatten() {
            out.push((
                a["status"].as_str().unwrap_or_default().to_string(),
                a["labels"].clone(),
                a["startsAt"].as_str().unwrap_or_default().to_string(),
                a["endsAt"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

fn post_events(api: SocketAddr, token: &str, lines: &[String]) -> Value {
    let r = ureq::post(&format!("http://{api}/api/v1/events"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/x-ndjson")
        .config()
        .http_status_as_error(false)
        .build()
        .send(lines.join("\n").as_bytes())
        .expect("ingest");
    r.into_body().read_json().expect("ingest answer")
}

/// A metric's value in Prometheus text (`None`: no such series).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn scrape(api: SocketAddr, token: &str) -> String {
    ureq::get(&format!("http://{api}/metrics"))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .expect("metrics")
        .into_body()
        .read_to_string()
        .expect("metrics text")
}

#[test]
fn serve_to_real_alertmanager_and_prometheus() {
    if !have("prometheus-alertmanager") || !have("prometheus") {
        return;
    }
    let dir = scratch("ops-serve");
    let users = dir.join("users.toml");
    let secret = dir.join("token.secret");
    fs::write(&secret, "0123456789abcdef0123456789abcdef-operations").expect("secret");
    let add = |name: &str, role: &str, region: &str| {
        support::add_user(&users, name, role, region, &[], "a-long-password")
    };
    add("ws", "publisher", "430626");
    add("inspector", "inspector", "430626");
    add("prometheus", "admin", "43");
    let token_of = |name: &str| support::token(&users, &secret, name);
    let (publisher, inspector, admin) = (
        token_of("ws"),
        token_of("inspector"),
        token_of("prometheus"),
    );

    // The webhook receiver, then Alertmanager.
    let listener = TcpListener::bind("127.0.0.1:0").expect("receiver");
    let hook = listener.local_addr().expect("receiver address");
    let receiver = Receiver::start(listener);
    let am = free_addr();
    fs::write(dir.join("alertmanager.yml"), alertmanager_config(hook)).expect("am config");
    let _alertmanager = start(
        "alertmanager",
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address={am}"))
            .arg("--cluster.listen-address="),
        &dir.join("alertmanager.log"),
        &format!("http://{am}/-/ready"),
    );

    // jiancha serve, notifying that Alertmanager, re-sending every 2 s (endsAt 8 s ahead).
    let api = free_addr();
    let config = dir.join("jiancha.toml");
    fs::write(
        &config,
        format!(
            r#"[reference]
dir = "{reference}"

[api]
listen = "{api}"
users = "{users}"
token_secret_file = "{secret}"

[embedded]
data = "{data}"

[notify]
enabled = true
retry_first_seconds = 1
retry_max_seconds = 1
# The test's complaint was filed 25 days ago.
max_age_hours = 1000

[[notify.channels]]
name = "am"
kind = "alertmanager"
url = "http://{am}"
resend_seconds = 2

[[notify.routes]]
channels = ["am"]
"#,
            reference = root().join("demo/pingjiang").display(),
            users = users.display(),
            secret = secret.display(),
            data = dir.join("data").display(),
        ),
    )
    .expect("config");
    let _jiancha = start(
        "jiancha serve",
        Command::new(env!("CARGO_BIN_EXE_jiancha"))
            .args(["serve", "--config"])
            .arg(&config),
        &dir.join("jiancha.log"),
        &format!("http://{api}/readyz"),
    );

    // Prometheus with the shipped configuration (its jiancha-api job, authorisation and rules),
    // pointed at this process and made fast.
    let prom = free_addr();
    let mut prom_config = yaml_file(&root().join("deploy/prometheus/prometheus.yml"));
    prom_config["global"] = json!({"scrape_interval": "1s", "evaluation_interval": "1s"});
    let job = prom_config["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .find(|j| j["job_name"] == "jiancha-api")
        .cloned()
        .expect("the jiancha-api job");
    let mut job = job;
    job["static_configs"] = json!([{"targets": [api.to_string()]}]);
    prom_config["scrape_configs"] = json!([job]);
    fs::write(dir.join("prometheus.yml"), prom_config.to_string()).expect("prometheus.yml");
    fs::copy(
        root().join("deploy/prometheus/alerts.yml"),
        dir.join("alerts.yml"),
    )
    .expect("rules");
    fs::write(dir.join("jiancha.token"), &admin).expect("token");
    let _prometheus = start(
        "prometheus",
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prom-data").display()
            ))
            .arg(format!("--web.listen-address={prom}")),
        &dir.join("prometheus.log"),
        &format!("http://{prom}/-/ready"),
    );

    // 1. A complaint filed 25 days ago, unanswered: the warning at filing, then yellow and red
    //    as the engine's clock catches up with today.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let filed = rules::Instant(now - 25 * 86_400);
    let complaint = |kind: &str, id: &str, at: &str, extra: &str| {
        format!(
            r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"{at}","center_id":"PJ-ZWFW","region":"430626","complaint_id":"K1"{extra}}}"#
        )
    };
    let answer = post_events(
        api,
        &publisher,
        &[complaint(
            "complaint.filed",
            "ops-1",
            &filed.to_string(),
            r#","category":"attitude","window_id":"PJ-W07","staff_id":"PJ0701""#,
        )],
    );
    assert_eq!(answer["accepted"], 1, "{answer}");
    let firing_levels = |receiver: &Receiver| -> BTreeSet<String> {
        hooked(receiver)
            .iter()
            .filter(|(status, ..)| status == "firing")
            .map(|(_, l, ..)| {
                format!(
                    "{} {}",
                    l["rule"].as_str().unwrap_or(""),
                    l["level"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    wait_until(30, "three alerts firing at the webhook", || {
        let f = firing_levels(&receiver);
        (f.contains("complaint.overdue red")
            && f.contains("complaint.overdue yellow")
            && f.contains("complaint.filed warning"))
        .then_some(())
    });
    let first_firing = Instant::now();
    // Labels carry the routing keys; the summary separates level and rule.
    let alerts = get_json(&format!("http://{am}/api/v2/alerts"));
    let red = alerts
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["labels"]["rule"] == "complaint.overdue" && a["labels"]["level"] == "red")
        .cloned()
        .expect("the red alert at Alertmanager");
    for (label, value) in [
        ("center_id", "PJ-ZWFW"),
        ("region", "430626"),
        ("window_id", "PJ-W07"),
        ("staff_id", "PJ0701"),
        ("severity", "critical"),
    ] {
        assert_eq!(red["labels"][label], value, "{label}: {red}");
    }
    assert_eq!(
        red["annotations"]["summary"], "红牌：投诉超期未办结",
        "{red}"
    );

    // 2. The answer to the complaint, which happened an hour after the yellow (before the
    //    red), arrives late: the red is retracted and reaches the receiver resolved.
    let instant = |t: &str| rules::time::parse_rfc3339(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    let yellow_at = hooked(&receiver)
        .into_iter()
        .find(|(_, l, ..)| l["level"] == "yellow")
        .map(|(_, _, starts, _)| instant(&starts))
        .expect("the yellow");
    let answer = post_events(
        api,
        &publisher,
        &[complaint(
            "complaint.resolved",
            "ops-2",
            &yellow_at.plus_secs(3600).to_string(),
            r#","substantiated":false"#,
        )],
    );
    assert_eq!(answer["accepted"], 1, "{answer}");
    let (_, labels, starts, ends) = wait_until(30, "the retraction, resolved", || {
        hooked(&receiver).into_iter().find(|(status, l, ..)| {
            status == "resolved" && l["rule"] == "complaint.overdue" && l["level"] == "red"
        })
    });
    // A retraction says the alert should never have fired: it ends where it started, in
    // event time (never before startsAt, whatever the wall clock says).
    assert_eq!(instant(&ends), instant(&starts), "{labels}");

    // 3. Past Alertmanager's resolve_timeout (3 s) and past one endsAt (8 s) the open alerts
    //    are still firing: jiancha re-sent them.
    std::thread::sleep(Duration::from_secs(12).saturating_sub(first_firing.elapsed()));
    let active: BTreeSet<String> = get_json(&format!("http://{am}/api/v2/alerts?active=true"))
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["status"]["state"] == "active")
        .map(|a| {
            format!(
                "{} {}",
                a["labels"]["rule"].as_str().unwrap_or(""),
                a["labels"]["level"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        active.contains("complaint.filed warning") && active.contains("complaint.overdue yellow"),
        "open alerts must stay active: {active:?}"
    );
    assert!(!active.contains("complaint.overdue red"), "{active:?}");
    let resolved_open: Vec<_> = hooked(&receiver)
        .into_iter()
        .filter(|(status, l, ..)| status == "resolved" && l["level"] != "red")
        .collect();
    assert!(
        resolved_open.is_empty(),
        "open alerts resolved by themselves: {resolved_open:?}"
    );

    // 4. An inspector resolves the yellow: it reaches the receiver resolved.
    let yellow_id = hooked(&receiver)
        .into_iter()
        .find(|(_, l, ..)| l["level"] == "yellow")
        .and_then(|(_, l, ..)| l["alert_id"].as_str().map(str::to_string))
        .expect("the yellow's id");
    let r = ureq::post(&format!("http://{api}/api/v1/alerts/{yellow_id}/actions"))
        .header("authorization", &format!("Bearer {inspector}"))
        .send_json(json!({"action": "resolve", "note": "已当面答复投诉人"}))
        .expect("resolve");
    assert_eq!(r.status(), 200);
    wait_until(30, "the resolution, resolved", || {
        hooked(&receiver)
            .into_iter()
            .any(|(status, l, ..)| status == "resolved" && l["alert_id"] == yellow_id.as_str())
            .then_some(())
    });

    // 5. Nothing was refused, by Alertmanager or by jiancha's count.
    let am_metrics = ureq::get(&format!("http://{am}/metrics"))
        .call()
        .expect("alertmanager metrics")
        .into_body()
        .read_to_string()
        .expect("text");
    let invalid: f64 = am_metrics
        .lines()
        .filter(|l| l.starts_with("alertmanager_alerts_invalid_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        am_metrics.contains("alertmanager_alerts_invalid_total"),
        "{am_metrics}"
    );
    assert_eq!(invalid, 0.0, "Alertmanager refused alerts");
    let ours = scrape(api, &admin);
    assert_eq!(
        metric(
            &ours,
            r#"jiancha_notifications_total{channel="am",outcome="failed"}"#
        ),
        Some(0.0),
        "{ours}"
    );
    assert!(
        metric(
            &ours,
            r#"jiancha_notifications_total{channel="am",outcome="resent"}"#
        )
        .is_some_and(|n| n >= 3.0),
        "{ours}"
    );

    // 6. Prometheus: every rule evaluates, every dashboard panel has data from this single
    //    binary, and one rejected line fires JianchaEventsRejected — and nothing else fires.
    let query = |q: &str| -> Vec<Value> {
        let v: Value = ureq::get(&format!("http://{prom}/api/v1/query"))
            .query("query", q)
            .call()
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .into_body()
            .read_json()
            .expect("JSON");
        assert_eq!(v["status"], "success", "{q}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    };
    let dash: Value = serde_json::from_str(
        &fs::read_to_string(root().join("deploy/grafana/dashboards/jiancha.json"))
            .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let panels: Vec<(String, String)> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| {
            p["targets"].as_array().into_iter().flatten().map(|t| {
                (
                    p["title"].as_str().unwrap_or("").to_string(),
                    t["expr"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect();
    let mut empty: Vec<&(String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        empty = panels.iter().filter(|(_, q)| query(q).is_empty()).collect();
        if empty.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        empty.is_empty(),
        "dashboard panels without data: {empty:#?}"
    );
    let rules = get_json(&format!("http://{prom}/api/v1/rules"));
    let rule_list: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    wait_until(20, "every rule evaluated", || {
        get_json(&format!("http://{prom}/api/v1/rules"))["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .all(|r| r["health"] == "ok")
            .then_some(())
    });
    assert!(rule_list.len() >= 9, "{rules}");
    let answer = post_events(
        api,
        &publisher,
        &[r#"{"event_id":"ops-bad","kind":"complaint.filed"}"#.to_string()],
    );
    assert_eq!(answer["rejected"], 1, "{answer}");
    let firing = wait_until(30, "JianchaEventsRejected firing", || {
        let firing: BTreeSet<String> = query(r#"ALERTS{alertstate="firing"}"#)
            .iter()
            .filter_map(|a| a["metric"]["alertname"].as_str().map(str::to_string))
            .collect();
        firing.contains("JianchaEventsRejected").then_some(firing)
    });
    assert_eq!(
        firing.into_iter().collect::<Vec<_>>(),
        ["JianchaEventsRejected"],
        "a healthy instance pages for nothing else"
    );
    let pending: Vec<Value> = query(r#"ALERTS{alertstate="pending"}"#);
    assert!(
        pending.is_empty(),
        "nothing on its way to paging: {pending:?}"
    );
}

//! The dashboards in a real browser: Debian's headless Chromium driven by playwright-core
//! (`web-tests/dashboards.mjs`), against a running `jiancha serve`.
//!
//! This test prepares what the script needs — a simulated week of 平江 and its reference data
//! (plus one window of another county, 岳阳楼区, that 平江's users must never see), users of
//! every role, a running `jiancha serve --clock event` — then runs the script and fails with its
//! output if any step fails. Screenshots of every view are left in
//! `target/web-screenshots/`.
//!
//! Needs `chromium`, `node` and `web-tests/node_modules` (`scripts/test.sh` installs them). By
//! hand without them the test is skipped with a note; with `CI` set it fails.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

const PASSWORD: &str = "看板测试-correct horse";

fn jiancha() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jiancha"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the browser test needs, or why it cannot run here.
fn tools() -> Result<PathBuf, String> {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("no chromium (apt-get install chromium)")?;
    if Command::new("node").arg("--version").output().is_err() {
        return Err("no node".into());
    }
    if !root()
        .join("web-tests/node_modules/playwright-core")
        .is_dir()
    {
        return Err("no web-tests/node_modules (cd web-tests && npm ci)".into());
    }
    Ok(chromium)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jiancha-web-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run jiancha");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn add_user(users: &Path, username: &str, role: &str, region: &str, name: &str) {
    support::add_user(users, username, role, region, &["--name", name], PASSWORD);
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open reference file");
    f.write_all(text.as_bytes()).expect("append");
}

/// `jiancha serve`, killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_dashboards_work_in_a_real_browser() {
    let chromium = match tools() {
        Ok(c) => c,
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {why}");
            return;
        }
        Err(why) => panic!("CI must run the browser tests: {why}"),
    };
    let dir = scratch("dashboards");
    let reference = dir.join("reference");
    let events = dir.join("events.ndjson");
    run_ok(
        jiancha()
            .args(["simulate", "--profile", "hall", "--seed", "1"])
            .args(["--start", "2026-11-16", "--days", "5", "--reference-out"])
            .arg(&reference)
            .arg("--out")
            .arg(&events),
    );
    // The hall's window system publishes through its token: the publisher is its source
    // (`http:web-publisher`), so the simulator's own feed names are taken off.
    let sent = std::fs::read_to_string(&events).expect("simulated events");
    let stripped: String = sent
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("event JSON");
            if let Some(m) = v.as_object_mut() {
                m.remove("source");
            }
            v.to_string() + "\n"
        })
        .collect();
    std::fs::write(&events, stripped).expect("write events");
    // A centre of another county (岳阳楼区): its window, staff member and name.
    append(
        &reference.join("windows.csv"),
        "YY-ZWFW-W001,YY-ZWFW,430602,D01,true\n",
    );
    append(
        &reference.join("staff.csv"),
        "YY-ZWFW-S001,岳阳楼甲,D01,YY-ZWFW-W001,true,\n",
    );
    append(
        &reference.join("centers.csv"),
        "YY-ZWFW,岳阳楼区政务服务中心\n",
    );
    // The source systems (SPEC §10): 平江's window system (the publisher's HTTP source), one
    // that never reported, and 岳阳楼区's, which 平江's users must never see.
    std::fs::write(
        reference.join("sources.csv"),
        "source,name,center_id,region,vendor,transport\n\
         http:web-publisher,平江窗口系统,PJ-ZWFW,430626,某窗口厂商,http\n\
         pj-old-approval,平江旧审批系统,,430626,旧厂商,poll\n\
         yy-approval,岳阳楼审批系统,YY-ZWFW,430602,某厂商,poll\n",
    )
    .expect("sources.csv");
    let users = dir.join("users.toml");
    for (username, role, region, name) in [
        ("web-leader", "leader", "430626", "平江县长办公室"),
        ("web-inspector", "inspector", "430626", "平江县效能监察室"),
        ("web-auditor", "auditor", "430626", "平江县审计局"),
        ("web-publisher", "publisher", "430626", "平江窗口系统"),
        ("web-leader-yy", "leader", "430602", "岳阳楼区长办公室"),
        ("web-leader-city", "leader", "4306", "岳阳市政务服务管理局"),
        ("web-admin", "admin", "43", "省运维"),
    ] {
        add_user(&users, username, role, region, name);
    }
    let secret = dir.join("token.secret");
    std::fs::write(&secret, "a web-test token secret of at least 32 bytes").expect("secret");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("serve.log")).expect("log file");
    let _serve = Serve(
        jiancha()
            .args(["serve", "--clock", "event", "--reference"])
            .arg(&reference)
            .arg("--data")
            .arg(dir.join("data"))
            .arg("--users")
            .arg(&users)
            .arg("--token-secret-file")
            .arg(&secret)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start jiancha serve"),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "jiancha serve did not listen: {}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shots = root().join("target/web-screenshots");
    let out = Command::new("node")
        .arg("dashboards.mjs")
        .current_dir(root().join("web-tests"))
        .env("JIANCHA_URL", &base)
        .env("WEB_PASSWORD", PASSWORD)
        .env("EVENTS_FILE", &events)
        .env("ITEMS_CSV", reference.join("items.csv"))
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "browser test failed (screenshots in {}):\n{report}\n{}\n--- jiancha serve log (tail) ---\n{}",
        shots.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("serve.log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! End-to-end tests of the `jiancha` binary: what an operator sees when running it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn jiancha(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .args(args)
        .output()
        .expect("run jiancha")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory under the target directory (removed first if left over).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn stdout_alerts(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is a JSON alert"))
        .collect()
}

fn replay_demo() -> Output {
    let demo = root().join("demo/pingjiang");
    jiancha(&[
        "replay",
        "--reference",
        demo.to_str().unwrap_or_default(),
        "--events",
        demo.join("events.ndjson").to_str().unwrap_or_default(),
        "--until",
        "2026-11-30T00:00:00+08:00",
    ])
}

#[test]
fn replay_of_the_bundled_example_prints_the_expected_alerts() {
    let out = replay_demo();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = stdout_alerts(&out);
    let find = |case: &str, rule: &str, level: &str, status: &str| {
        alerts.iter().find(|a| {
            a["case_id"] == case
                && a["rule"] == rule
                && a["level"] == level
                && a["status"] == status
        })
    };
    // The transfer registration stuck over 国庆: 7 working days from 09-28 end on 10-13.
    let yellow = find("PJ2026-0928-002", "case.overdue", "yellow", "open").expect("yellow card");
    assert_eq!(yellow["fired_at"], "2026-10-14T00:00:00+08:00");
    assert_eq!(yellow["evidence"]["deadline_date"], "2026-10-13");
    assert!(yellow["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("黄牌"));
    assert_eq!(yellow["window_id"], "PJ-W02");
    assert!(find("PJ2026-0928-002", "case.overdue", "red", "open").is_some());
    // Deemed acceptance (§32) for the construction permit left undecided.
    let deemed = find("PJ2026-0924-005", "case.overdue", "yellow", "open").expect("deemed");
    assert_eq!(deemed["evidence"]["start_reason"], "deemed_accepted");
    assert!(find(
        "PJ2026-1009-006",
        "case.rejected_without_reason",
        "yellow",
        "open"
    )
    .is_some());
    assert!(find("PJ2026-1012-007", "case.special_overdue", "yellow", "open").is_some());
    // The late-reported completion retracts the yellow card that fired meanwhile.
    assert!(find("PJ2026-1013-008", "case.overdue", "yellow", "retracted").is_some());
    // The cases finished in time raise no deadline alert (case 003's later fee is another matter).
    for on_time in ["PJ2026-0920-001", "PJ2026-0929-003", "PJ2026-1027-009"] {
        let clock = |a: &&Value| {
            a["case_id"] == on_time && a["rule"].as_str().is_some_and(|r| r.starts_with("case."))
        };
        assert!(!alerts.iter().any(|a| clock(&a)), "{on_time}");
    }
    // Out of the hall and complaints: a fee with no case (以票管审) fires at 00:00 after the next
    // working day; a fee charged at 出件 for a finished, forgotten hall case matches it (no
    // alert) but is off its standard; back-office review (前店后场); an integrity complaint.
    let caseless = alerts
        .iter()
        .find(|a| a["rule"] == "hall.fee_without_case" && a["subject"]["receipt_no"] == "PJ-R-0001")
        .expect("fee with no case");
    assert!(caseless["case_id"].is_null());
    assert_eq!(caseless["fired_at"], "2026-10-29T00:00:00+08:00");
    assert!(
        alerts.iter().all(|a| a["subject"]["receipt_no"] != "PJ-R-0002"
            || a["rule"] == "hall.fee_irregular"),
        "the 出件 fee of case 003 is matched"
    );
    assert!(find("PJ2026-0929-003", "hall.fee_irregular", "yellow", "open").is_some());
    assert!(find("PJ2026-1027-009", "hall.back_office", "warning", "open").is_some());
    let complaint = alerts
        .iter()
        .find(|a| a["rule"] == "complaint.filed")
        .expect("complaint");
    assert_eq!(
        complaint["level"], "red",
        "integrity complaints are red cards"
    );
    let unrectified = alerts
        .iter()
        .filter(|a| a["rule"] == "evaluation.unrectified")
        .map(|a| {
            (
                a["level"].as_str().unwrap_or_default(),
                a["fired_at"].as_str().unwrap_or_default(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(
        unrectified,
        [
            ("yellow", "2026-11-04T00:00:00+08:00"),
            ("red", "2026-11-07T00:00:00+08:00")
        ]
    );
    // The bad line is reported with its number and reason, and the stream went on.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 16: bad_region"), "{stderr}");
    assert!(stderr.contains("1 duplicates"), "{stderr}");
}

#[test]
fn replay_is_deterministic() {
    let (a, b) = (replay_demo(), replay_demo());
    assert_eq!(a.stdout, b.stdout);
    let ids: Vec<Value> = stdout_alerts(&a)
        .iter()
        .map(|x| x["alert_id"].clone())
        .collect();
    assert!(ids
        .iter()
        .all(|id| id.as_str().is_some_and(|s| s.len() == 32)));
}

/// `jiancha replay` of `demo`'s reference data reading its events from standard input.
fn replay_stdin(demo: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .args([
            "replay",
            "--reference",
            demo.to_str().unwrap_or_default(),
            "--events",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

#[test]
fn replay_reads_standard_input() {
    let demo = root().join("demo/pingjiang");
    let mut child = replay_stdin(&demo);
    let events = fs::read(demo.join("events.ndjson")).expect("events");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&events)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert!(!stdout_alerts(&out).is_empty());
}

#[test]
fn bad_reference_data_is_refused_with_file_line_and_reason() {
    let dir = scratch("bad-reference");
    fs::copy(
        root().join("demo/pingjiang/items.csv"),
        dir.join("items.csv"),
    )
    .expect("copy");
    let mut items = fs::read_to_string(dir.join("items.csv")).expect("read");
    items.push_str("BAD-1,坏事项,X,promised,20,working,5,fortnights,,,,true,hall,,accept\n");
    fs::write(dir.join("items.csv"), items).expect("write");
    fs::write(
        dir.join("windows.csv"),
        "window_id,center_id,region,department,in_hall\nW1,C,99,D,true\n",
    )
    .expect("write");
    fs::create_dir_all(dir.join("calendar")).expect("mkdir");
    fs::write(
        dir.join("calendar/2027.json"),
        "{\"year\":2027,\"days\":[\n{\"name\":\"元旦\",\"date\":\"2027-01-32\",\"isOffDay\":true}]}",
    )
    .expect("write");
    fs::write(
        dir.join("policy.toml"),
        "warn_before_working_days = 1\nsupervise_days = 3\n",
    )
    .expect("write");
    fs::write(
        dir.join("sources.csv"),
        "source,name,center_id,region,vendor,transport\nsdjc:pj,平江审批,C,430626,,poll\nsdjc:pj,又一个,C,430626,,poll\n",
    )
    .expect("write");
    let out = jiancha(&["check", "--reference", dir.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let items_line = 10; // header + 8 demo items + the bad one
    for want in [
        format!("items.csv:{items_line}: promised_unit"),
        "windows.csv:2: region".to_string(),
        "2027.json:2: date \"2027-01-32\"".to_string(),
        "policy.toml:2: unknown field `supervise_days`".to_string(),
        "sources.csv:3: source \"sdjc:pj\" is listed twice".to_string(),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }
    // replay refuses the same directory before reading any event.
    let out = jiancha(&[
        "replay",
        "--reference",
        dir.to_str().unwrap_or_default(),
        "--events",
        "/nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn check_accepts_the_bundled_reference() {
    let out = jiancha(&[
        "check",
        "--reference",
        root().join("demo/pingjiang").to_str().unwrap_or_default(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok: 8 items, 7 windows, 9 staff"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[2027"),
        "2027 has no official data yet: {stdout}"
    );
}

#[test]
fn unusable_arguments_exit_non_zero_with_a_reason() {
    let out = jiancha(&["replay", "--reference", "/nonexistent", "--events", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
    let out = jiancha(&[
        "replay",
        "--reference",
        ".",
        "--events",
        "x",
        "--until",
        "tomorrow",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    let demo = root().join("demo/pingjiang");
    let out = jiancha(&[
        "replay",
        "--reference",
        demo.to_str().unwrap_or_default(),
        "--events",
        "/nonexistent.ndjson",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open events file"));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["replay", "--help"],
        vec!["check", "--help"],
        vec!["migrate", "--help"],
        vec!["serve", "--help"],
        vec!["demo", "--help"],
        vec!["simulate", "--help"],
        vec!["cluster", "--help"],
        vec!["poll", "--help"],
        vec!["api", "--help"],
        vec!["export", "--help"],
        vec!["user", "add", "--help"],
    ] {
        let out = jiancha(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: jiancha"),
            "{args:?}"
        );
    }
}

#[test]
fn help_lists_the_commands_in_the_order_a_newcomer_needs_them() {
    let out = jiancha(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        listed,
        [
            "demo", "replay", "check", "serve", "simulate", "adapt", "lint", "export", "user",
            "config", "cluster", "poll", "migrate", "api", "help"
        ],
        "{text}"
    );
}

#[test]
fn migrate_creates_the_clickhouse_schema_and_is_idempotent() {
    let url =
        std::env::var("JIANCHA_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let db = format!("jiancha_cli_{}", std::process::id());
    let out = jiancha(&["migrate", "--clickhouse-url", &url, "--database", &db]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unavailable") && std::env::var_os("CI").is_none() {
        eprintln!("skipping: no ClickHouse at {url}; ./scripts/test.sh starts one");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("applied migrations [1, 2, 3, 5, 6, 7, 10]")
            && stdout.contains("self-test read back"),
        "{stdout}"
    );
    let again = jiancha(&["migrate", "--clickhouse-url", &url, "--database", &db]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("applied migrations []"));
    // Clean up with the server's HTTP interface.
    let _ = Command::new("curl")
        .args([
            "-s",
            &format!("{url}/"),
            "--data",
            &format!("DROP DATABASE IF EXISTS {db}"),
        ])
        .output();
    let down = jiancha(&[
        "migrate",
        "--clickhouse-url",
        "http://127.0.0.1:1",
        "--database",
        &db,
    ]);
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("unavailable"));
}

#[test]
fn serve_refuses_unusable_users_secrets_and_data_directories_with_the_file_named() {
    let dir = scratch("serve-refusals");
    let demo = root().join("demo/pingjiang");
    let users = dir.join("users.toml");
    let secret = dir.join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef-test").expect("secret");
    std::fs::write(&users, "[[user]]\nusername = \"x\"\nrole = \"boss\"\n").expect("users");
    let serve = |data: &std::path::Path, secret: &std::path::Path| {
        jiancha(&[
            "serve",
            "--reference",
            demo.to_str().unwrap_or_default(),
            "--data",
            data.to_str().unwrap_or_default(),
            "--users",
            users.to_str().unwrap_or_default(),
            "--token-secret-file",
            secret.to_str().unwrap_or_default(),
            "--listen",
            "127.0.0.1:0",
        ])
    };
    let out = serve(&dir.join("data"), &secret);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("users.toml:"), "file and line named: {err}");

    // A valid users file, but the secret is missing.
    std::fs::remove_file(&users).expect("remove");
    let ok = jiancha_with_stdin(
        &[
            "user",
            "add",
            "--users",
            users.to_str().unwrap_or_default(),
            "--username",
            "ws",
            "--role",
            "publisher",
            "--region",
            "430626",
        ],
        "a-long-password\n",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = serve(&dir.join("data"), &dir.join("no-secret"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no-secret"), "{err}");

    // The data directory is a file.
    let not_a_dir = dir.join("plain-file");
    std::fs::write(&not_a_dir, "x").expect("file");
    let out = serve(&not_a_dir, &secret);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("plain-file"), "{err}");
}

fn jiancha_with_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("jiancha");
    // A command that refuses its arguments exits without reading: its closed pipe is its
    // answer, not a failure of the test.
    match child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write: {e}"),
        _ => {}
    }
    child.wait_with_output().expect("output")
}

#[test]
fn the_committed_configuration_reference_is_up_to_date() {
    let out = jiancha(&["config", "doc"]);
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("UTF-8");
    let committed = fs::read_to_string(root().join("docs/CONFIG.md")).unwrap_or_default();
    assert!(
        generated == committed,
        "docs/CONFIG.md is out of date: run `cargo run -- config doc > docs/CONFIG.md`"
    );
    // Every key of every section is in it, with its environment variable.
    for needle in [
        "| `brokers` | string | `\"127.0.0.1:9092\"` | `JIANCHA_KAFKA_BROKERS` |",
        "## `[[notify.channels]]`",
        "| `min_level` | string | `\"warning\"` | – |",
    ] {
        assert!(generated.contains(needle), "{needle}");
    }
}

#[test]
fn config_check_accepts_the_shipped_example_and_reports_typos_with_file_and_line() {
    let example = root().join("deploy/jiancha.toml");
    let out = jiancha(&[
        "config",
        "check",
        "--config",
        example.to_str().unwrap_or_default(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));

    let dir = scratch("config-typo");
    let bad = dir.join("jiancha.toml");
    // Write `text` as the file and check it: refused (exit 2); what it says.
    let refused = |text: &str| {
        fs::write(&bad, text).expect("write");
        let out = jiancha(&[
            "config",
            "check",
            "--config",
            bad.to_str().unwrap_or_default(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr =
        refused("[kafka]\nbrokers = \"kafka-0:9092\"\n\n[cluster]\nbatch_rows = \"many\"\n");
    assert!(
        stderr.starts_with(&format!(
            "error: {}:5: invalid type: string \"many\", expected usize",
            bad.display()
        )),
        "{stderr}"
    );
    // A route naming a channel that does not exist, pointed at by line.
    let stderr = refused("[notify]\nenabled = true\n\n[[notify.channels]]\nname = \"wecom\"\nkind = \"wecom\"\nurl = \"http://127.0.0.1:1/\"\n\n[[notify.routes]]\nchannels = [\"wecom\", \"dingtalk\"]\nmin_level = \"yellow\"\n");
    assert!(
        stderr.starts_with(&format!(
            "error: {}:10: [[notify.routes]] #1 channels: no channel named \"dingtalk\"",
            bad.display()
        )),
        "{stderr}"
    );
    // The same settings, refused from the environment, name the variable.
    let out = Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .args(["config", "check"])
        .env("JIANCHA_CHECKPOINT_SECONDS", "soon")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("error: JIANCHA_CHECKPOINT_SECONDS: expected a non-negative integer"));
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    // `replay` reads [reference] dir from the file; the environment and then a flag override it.
    let dir = scratch("config-precedence");
    let cfg = dir.join("jiancha.toml");
    fs::write(&cfg, "[reference]\ndir = \"/nonexistent/from-file\"\n").expect("write");
    let events = root().join("demo/pingjiang/events.ndjson");
    let run = |env: Option<&str>, flag: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jiancha"));
        cmd.args(["replay", "--config", cfg.to_str().unwrap_or_default()])
            .args(["--events", events.to_str().unwrap_or_default()])
            .env_remove("JIANCHA_REFERENCE");
        if let Some(e) = env {
            cmd.env("JIANCHA_REFERENCE", e);
        }
        if let Some(f) = flag {
            cmd.args(["--reference", f]);
        }
        cmd.output().expect("run")
    };
    let demo = root().join("demo/pingjiang");
    let demo = demo.to_str().unwrap_or_default();
    let from_file = run(None, None);
    assert_eq!(from_file.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&from_file.stderr).contains("/nonexistent/from-file"));
    let from_env = run(Some(demo), None);
    assert!(
        from_env.status.success(),
        "{}",
        String::from_utf8_lossy(&from_env.stderr)
    );
    let from_flag = run(Some("/nonexistent/from-env"), Some(demo));
    assert!(
        from_flag.status.success(),
        "{}",
        String::from_utf8_lossy(&from_flag.stderr)
    );
    assert_eq!(from_env.stdout, from_flag.stdout);
}

#[test]
fn migrate_print_shows_the_replicated_layout_without_a_server() {
    let out = jiancha(&[
        "migrate",
        "--print",
        "--cluster",
        "city",
        "--database",
        "jc",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ddl = String::from_utf8_lossy(&out.stdout);
    let statements: Vec<&str> = ddl.split(";\n").filter(|s| !s.trim().is_empty()).collect();
    assert!(statements[0].starts_with("CREATE DATABASE IF NOT EXISTS jc ON CLUSTER city"));
    assert!(statements.iter().all(|s| s.contains("ON CLUSTER city")));
    assert!(ddl.contains(
        "CREATE TABLE IF NOT EXISTS jc.alerts ON CLUSTER city AS jc.alerts_local ENGINE = Distributed(city, jc, alerts_local, cityHash64(alert_id))"
    ));
    let bad = jiancha(&["migrate", "--print", "--cluster", "a-b"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn config_check_files_opens_what_the_configuration_names() {
    let dir = scratch("config-files");
    let cfg = dir.join("jiancha.toml");
    let demo = root().join("demo/pingjiang");
    let users = dir.join("users.toml");
    fs::write(
        &cfg,
        format!(
            "[reference]\ndir = \"{}\"\n[api]\nusers = \"{}\"\n",
            demo.display(),
            users.display()
        ),
    )
    .expect("write");
    let check = |files: bool| {
        let mut args = vec![
            "config",
            "check",
            "--config",
            cfg.to_str().unwrap_or_default(),
        ];
        if files {
            args.push("--files");
        }
        jiancha(&args)
    };
    // Without --files only the file itself is judged; with it, the missing users file is named.
    assert!(check(false).status.success());
    let out = check(true);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("error: [api] users: {}", users.display())),
        "{stderr}"
    );
    fs::write(&users, "").expect("empty users file");
    assert!(
        check(true).status.success(),
        "{}",
        String::from_utf8_lossy(&check(true).stderr)
    );
}

#[test]
fn replay_into_a_reader_that_stops_early_exits_quietly_and_stops_reading() {
    // `jiancha replay ... | head -1`: the closed pipe ends the replay at once, with status 0 and
    // no error message, instead of decoding the rest of a year of events into nowhere.
    let demo = root().join("demo/pingjiang");
    let mut child = replay_stdin(&demo);
    drop(child.stdout.take());
    let events = fs::read(demo.join("events.ndjson")).expect("events");
    let mut stdin = child.stdin.take().expect("stdin");
    // The demo's events first (they raise alerts, whose printing meets the closed pipe), then
    // up to 256 MiB of blank lines, which replay reads and skips unless it has stopped.
    let blank = vec![b'\n'; 1 << 20];
    let mut written = 0usize;
    let fed_everything = stdin.write_all(&events).is_ok()
        && (0..256).all(|_| {
            let ok = stdin.write_all(&blank).is_ok();
            written += blank.len();
            ok
        });
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(
        !fed_everything,
        "replay kept reading after its output closed ({written} bytes of input taken)"
    );
    assert!(out.status.success(), "{:?}", out.status);
    // The demo's one invalid line is reported as always; nothing about the pipe is.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("error") && !err.contains("pipe"), "{err}");
}

/// `jiancha user add` refuses names that would turn into markup, quotes or terminal escapes in
/// dashboards, logs and CSV files; `jiancha user revoke` raises the user's token epoch, so
/// their tokens stop working.
#[test]
fn user_add_refuses_hostile_names_and_user_revoke_ends_sessions() {
    let dir = std::env::temp_dir().join(format!("jiancha-cli-users-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let users = dir.join("users.toml");
    let path = users.to_str().unwrap_or_default();
    let add = |username: &str, name: &str| {
        jiancha_with_stdin(
            &[
                "user",
                "add",
                "--users",
                path,
                "--username",
                username,
                "--role",
                "leader",
                "--region",
                "430626",
                "--name",
                name,
            ],
            "a-long-password\n",
        )
    };
    for (username, name) in [
        ("pj\"admin", ""),
        ("pj'x", ""),
        ("pj\u{7}bell", ""),
        ("pj\u{1b}[31m", ""),
        ("<b>pj</b>", ""),
        ("pj leader", ""),
        ("pj-leader", "张三\u{1b}[2J"),
        ("pj-leader", "<script>"),
    ] {
        let out = add(username, name);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{username:?} {name:?} accepted");
        assert!(err.contains("name"), "{username:?}: {err}");
    }
    assert!(!users.exists(), "nothing written for refused names");
    let out = add("pj-leader", "平江县 张三");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let epoch = || {
        dashboard_api::auth::Users::load(&users)
            .expect("users")
            .get("pj-leader")
            .map(|u| u.token_epoch)
    };
    assert_eq!(epoch(), Some(0));
    let out = jiancha(&["user", "revoke", "--users", path, "--username", "pj-leader"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(epoch(), Some(1));
    let out = jiancha(&["user", "revoke", "--users", path, "--username", "nobody"]);
    assert!(!out.status.success());
    let _ = fs::remove_dir_all(&dir);
}

//! Front-database pollers (SPEC §9 Transports (a), docs/ADAPTERS.md "Front databases") against
//! real PostgreSQL 15 and MariaDB, each started by the test in a directory of its own
//! (`deploy/local/postgres.sh`, `deploy/local/mariadb.sh`, installed by `scripts/test.sh`).
//!
//! A simulated hall's two days of `sdjc` rows are written into the 前置库 tables a chunk at a
//! time while `jiancha serve` polls; jiancha is SIGKILLed mid-poll and restarted, the database
//! is restarted mid-run; then rows are re-reported with a higher `DATAVER`, deleted
//! (`CD_OPERATION = D`) and two bad rows arrive before a good one. The ingest log must then hold
//! exactly the events `jiancha adapt` gives for the same rows — each once — and the bad rows
//! must be dead letters with their reasons. Cluster mode (`jiancha poll`) is checked against
//! the real broker: every event on the topic, the position in ClickHouse.
//!
//! Without the databases these tests skip when run by hand, and fail when `CI` is set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn jiancha() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jiancha"))
}

fn skip(why: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI: {why}");
    eprintln!("skipped: {why}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jiancha-frontdb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Postgres,
    MariaDb,
}

/// A database server of the test's own.
struct Db {
    kind: Kind,
    port: u16,
    dir: PathBuf,
}

impl Db {
    fn script(&self) -> PathBuf {
        root().join(match self.kind {
            Kind::Postgres => "deploy/local/postgres.sh",
            Kind::MariaDb => "deploy/local/mariadb.sh",
        })
    }

    fn env(&self) -> [(&'static str, String); 2] {
        match self.kind {
            Kind::Postgres => [
                ("JIANCHA_PG_PORT", self.port.to_string()),
                ("JIANCHA_PG_DIR", self.dir.display().to_string()),
            ],
            Kind::MariaDb => [
                ("JIANCHA_MARIADB_PORT", self.port.to_string()),
                ("JIANCHA_MARIADB_DIR", self.dir.display().to_string()),
            ],
        }
    }

    fn run(&self, action: &str) -> bool {
        Command::new(self.script())
            .arg(action)
            .envs(self.env())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Start a server, or skip (by hand) / fail (CI) when the package is not installed.
    fn start(kind: Kind, name: &str) -> Option<Db> {
        let installed = match kind {
            Kind::Postgres => Path::new("/usr/lib/postgresql/15/bin/initdb").exists(),
            Kind::MariaDb => Path::new("/usr/sbin/mariadbd").exists(),
        };
        if !installed {
            skip(&format!(
                "{kind:?} is not installed (scripts/test.sh installs it)"
            ));
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("jiancha-frontdb-{name}-{}-db", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = Db {
            kind,
            port: free_port(),
            dir,
        };
        assert!(db.run("start"), "{kind:?} did not start");
        db.sql_admin(match kind {
            Kind::Postgres => "CREATE DATABASE qzk ENCODING 'UTF8' TEMPLATE template0",
            Kind::MariaDb => "CREATE DATABASE qzk CHARACTER SET utf8mb4",
        });
        Some(db)
    }

    fn restart(&self) {
        assert!(self.run("stop"), "{:?} did not stop", self.kind);
        std::thread::sleep(Duration::from_secs(2));
        assert!(self.run("start"), "{:?} did not start again", self.kind);
    }

    fn url(&self) -> String {
        match self.kind {
            Kind::Postgres => format!("postgresql://postgres@127.0.0.1:{}/qzk", self.port),
            Kind::MariaDb => format!("mysql://root@127.0.0.1:{}/qzk", self.port),
        }
    }

    fn client(&self, database: &str) -> Command {
        match self.kind {
            Kind::Postgres => {
                let mut c = Command::new("/usr/lib/postgresql/15/bin/psql");
                c.args([
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-At",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                ])
                .args(["-p", &self.port.to_string(), "-d", database]);
                c
            }
            Kind::MariaDb => {
                let mut c = Command::new("mariadb");
                c.args([
                    "--default-character-set=utf8mb4",
                    "--protocol=tcp",
                    "-N",
                    "-B",
                ])
                .args([
                    "-h",
                    "127.0.0.1",
                    "-u",
                    "root",
                    "-P",
                    &self.port.to_string(),
                    database,
                ]);
                c
            }
        }
    }

    fn sql_in(&self, database: &str, text: &str) -> String {
        use std::io::Write;
        let mut child = self
            .client(database)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("database client");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write SQL");
        let out = child.wait_with_output().expect("database client");
        assert!(
            out.status.success(),
            "SQL failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            text.chars().take(400).collect::<String>()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn sql(&self, text: &str) -> String {
        self.sql_in("qzk", text)
    }

    fn sql_admin(&self, text: &str) -> String {
        self.sql_in(
            match self.kind {
                Kind::Postgres => "postgres",
                Kind::MariaDb => "mysql",
            },
            text,
        )
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.run("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The simulated hall's rows (`jiancha simulate --format sdjc`, two days) and its reference
/// directory.
fn simulated_rows(dir: &Path) -> Vec<serde_json::Map<String, Value>> {
    simulated_days(dir, 2)
}

/// [`simulated_rows`] of `days` calendar days.
fn simulated_days(dir: &Path, days: u32) -> Vec<serde_json::Map<String, Value>> {
    let out = jiancha()
        .args([
            "simulate",
            "--start",
            "2026-03-02",
            "--format",
            "sdjc",
            "--days",
        ])
        .arg(days.to_string())
        .arg("--reference-out")
        .arg(dir.join("ref"))
        .output()
        .expect("simulate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<serde_json::Map<String, Value>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(m)) => m,
            other => panic!("simulated row {l}: {other:?}"),
        })
        .collect();
    // A 前置库 writes MAKETIME = SYSDATE as rows arrive: insert them in that order.
    rows.sort_by(|a, b| a["MAKETIME"].as_str().cmp(&b["MAKETIME"].as_str()));
    rows
}

/// The tables of the rows' columns, as a 前置库 declares them: `MAKETIME` a timestamp,
/// `DATAVER` a number, the rest text (so a malformed date can be stored), `CD_OPERATION` and a
/// `SIGNSTATE` flag defaulting to 0; primary key `PROJID, ORGBUSNO, DATAVER` (+ `SN`).
fn ddl(kind: Kind, rows: &[serde_json::Map<String, Value>]) -> String {
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        let cols = tables.entry(table_of(r)).or_default();
        for k in r.keys().filter(|k| *k != "_table") {
            if !cols.contains(k) {
                cols.push(k.clone());
            }
        }
    }
    let time = if kind == Kind::Postgres {
        "TIMESTAMP"
    } else {
        "DATETIME"
    };
    let mut sql = String::new();
    for (t, cols) in &tables {
        let mut defs: Vec<String> = cols
            .iter()
            .map(|c| match c.as_str() {
                "MAKETIME" => format!("{c} {time} NOT NULL"),
                "DATAVER" => format!("{c} INTEGER NOT NULL"),
                "SN" | "PROJID" | "ORGBUSNO" => format!("{c} VARCHAR(64) NOT NULL"),
                _ => format!("{c} VARCHAR(200)"),
            })
            .collect();
        defs.push("CD_OPERATION VARCHAR(1)".into());
        defs.push("SIGNSTATE INTEGER DEFAULT 0".into());
        let mut key = vec!["PROJID", "ORGBUSNO", "DATAVER"];
        if cols.iter().any(|c| c == "SN") {
            key.push("SN");
        }
        defs.push(format!("PRIMARY KEY ({})", key.join(", ")));
        sql.push_str(&format!("CREATE TABLE {t} ({});\n", defs.join(", ")));
    }
    sql
}

fn table_of(r: &serde_json::Map<String, Value>) -> String {
    r.get("_table")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn literal(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        Value::Null => "NULL".into(),
        other => format!("'{other}'"),
    }
}

/// One `INSERT` per row, in one transaction.
fn inserts(rows: &[serde_json::Map<String, Value>]) -> String {
    let mut sql = String::from("BEGIN;\n");
    for r in rows {
        let cols: Vec<&String> = r.keys().filter(|k| *k != "_table").collect();
        sql.push_str(&format!(
            "INSERT INTO {} ({}) VALUES ({});\n",
            table_of(r),
            cols.iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            cols.iter()
                .map(|c| literal(&r[c.as_str()]))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    sql.push_str("COMMIT;\n");
    sql
}

/// What `jiancha adapt` makes of `rows` in this order: (event lines, dead-letter lines).
fn adapt(dir: &Path, source: &str, rows: &[serde_json::Map<String, Value>]) -> (Vec<Value>, usize) {
    let input = dir.join("adapt-input.ndjson");
    let text: String = rows
        .iter()
        .map(|r| Value::Object(r.clone()).to_string() + "\n")
        .collect();
    std::fs::write(&input, text).expect("adapt input");
    let out = jiancha()
        .args([
            "adapt",
            "--format",
            "sdjc",
            "--source",
            source,
            "--reference",
        ])
        .arg(dir.join("ref"))
        .arg(&input)
        .output()
        .expect("adapt");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    let dead = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("line "))
        .count();
    (events, dead)
}

/// The ingest log's events and the dead letters (reason, raw) of an embedded data directory:
/// those of the poller (`frontdb:…`), not the engine's refusals of log entries (`log:…`).
fn ingested(data: &Path) -> (Vec<Value>, Vec<(String, String)>) {
    let path = data.join("jiancha.db");
    if !path.exists() {
        return (Vec::new(), Vec::new());
    }
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database");
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let events = match conn.prepare("SELECT payload FROM ingest_log ORDER BY seq") {
        Ok(mut stmt) => stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .expect("log")
            .map(|p| serde_json::from_slice(&p.expect("row")).expect("logged event"))
            .collect(),
        Err(_) => Vec::new(),
    };
    let dead = match conn.prepare(
        "SELECT reason, raw FROM dead_letters WHERE source LIKE 'frontdb:%' ORDER BY reason",
    ) {
        Ok(mut stmt) => stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("dead letters")
            .map(|d| d.expect("row"))
            .collect(),
        Err(_) => Vec::new(),
    };
    (events, dead)
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `jiancha serve` over `data` with one `[[frontdb]]` source.
struct Serve {
    dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    port: u16,
}

impl Serve {
    fn new(dir: &Path, db: &Db, source: &str, extra: &str) -> Serve {
        let users = dir.join("users.toml");
        support::add_user(&users, "ops", "admin", "43", &[], "correct horse battery");
        std::fs::write(
            dir.join("secret"),
            "0123456789abcdef0123456789abcdef-frontdb",
        )
        .expect("secret");
        let port = free_port();
        let config = dir.join("jiancha.toml");
        std::fs::write(
            &config,
            format!(
                "[reference]\ndir = {ref_:?}\n[api]\nusers = {users:?}\ntoken_secret_file = {secret:?}\n\
                 listen = \"127.0.0.1:{port}\"\n[engine]\nclock = \"event\"\n[embedded]\ndata = {data:?}\n\n\
                 [[frontdb]]\nname = {source:?}\nformat = \"sdjc\"\nurl = {url:?}\n\
                 tables = [\"PRE_APASINFO\", \"EA_JC_STEP_BASICINFO\", \"EA_JC_STEP_PROC\", \"EA_JC_STEP_DONE\", \"EA_JC_FEEINFO\", \"EA_JC_SERVEVAL\"]\n\
                 batch_rows = 200\ninterval_milliseconds = 100\nsettle_seconds = 0\n{extra}",
                ref_ = dir.join("ref").display().to_string(),
                users = users.display().to_string(),
                secret = dir.join("secret").display().to_string(),
                data = dir.join("data").display().to_string(),
                url = db.url(),
            ),
        )
        .expect("config");
        Serve {
            dir: dir.to_path_buf(),
            config,
            child: None,
            port,
        }
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .expect("log");
        let child = jiancha()
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("jiancha serve");
        self.child = Some(child);
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn metrics(&self) -> String {
        let token = support::token(
            &self.dir.join("users.toml"),
            &self.dir.join("secret"),
            "ops",
        );
        let out = Command::new("curl")
            .args(["-sf", "-H", &format!("Authorization: Bearer {token}")])
            .arg(format!("http://127.0.0.1:{}/metrics", self.port))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The re-reports, deletions and bad rows of the second phase, and a good row after them.
fn corrections(
    rows: &[serde_json::Map<String, Value>],
) -> (String, Vec<serde_json::Map<String, Value>>) {
    let mut sql = String::from("BEGIN;\n");
    let mut after = Vec::new();
    let mut minute = 0;
    let mut next_time = || {
        minute += 1;
        format!("2026-03-05 09:{minute:02}:00")
    };
    // 20 acceptances re-reported with DATAVER 2 (another transactor).
    let mut re = rows
        .iter()
        .filter(|r| table_of(r) == "EA_JC_STEP_BASICINFO")
        .take(20)
        .cloned()
        .collect::<Vec<_>>();
    for r in &mut re {
        r.insert("DATAVER".into(), Value::from(2));
        r.insert("MAKETIME".into(), Value::from(next_time()));
    }
    sql.push_str(
        &inserts(&re)
            .replace("BEGIN;\n", "")
            .replace("COMMIT;\n", ""),
    );
    after.extend(re);
    // 10 completions deleted at the source.
    for r in rows
        .iter()
        .filter(|r| table_of(r) == "EA_JC_STEP_DONE")
        .take(10)
    {
        let time = next_time();
        sql.push_str(&format!(
            "UPDATE EA_JC_STEP_DONE SET CD_OPERATION = 'D', MAKETIME = '{time}' WHERE PROJID = {} AND DATAVER = 1;\n",
            literal(&r["PROJID"])
        ));
        let mut d = r.clone();
        d.insert("CD_OPERATION".into(), Value::from("D"));
        d.insert("MAKETIME".into(), Value::from(time));
        after.push(d);
    }
    // Two bad rows: a malformed date and an unknown code; then a good row.
    let template = rows
        .iter()
        .find(|r| table_of(r) == "EA_JC_STEP_BASICINFO")
        .expect("an acceptance")
        .clone();
    let mut bad = Vec::new();
    for (n, (column, value)) in [("OCCURTIME", "2026-13-45 25:00"), ("SUBMIT", "X9")]
        .into_iter()
        .enumerate()
    {
        let mut b = template.clone();
        b.insert("PROJID".into(), Value::from(format!("BAD-{n}")));
        b.insert("ORGBUSNO".into(), Value::from(format!("BAD-{n}")));
        b.insert(column.into(), Value::from(value));
        b.insert("MAKETIME".into(), Value::from(next_time()));
        bad.push(b);
    }
    let mut good = rows
        .iter()
        .find(|r| table_of(r) == "PRE_APASINFO")
        .expect("an application")
        .clone();
    good.insert("PROJID".into(), Value::from("AFTER-THE-BAD-ROWS"));
    good.insert("ORGBUSNO".into(), Value::from("AFTER-THE-BAD-ROWS"));
    good.insert("MAKETIME".into(), Value::from(next_time()));
    bad.push(good);
    sql.push_str(
        &inserts(&bad)
            .replace("BEGIN;\n", "")
            .replace("COMMIT;\n", ""),
    );
    after.extend(bad);
    sql.push_str("COMMIT;\n");
    (sql, after)
}

/// The whole embedded scenario on one database.
fn embedded_scenario(kind: Kind, name: &str) {
    let Some(db) = Db::start(kind, name) else {
        return;
    };
    let dir = scratch(name);
    let rows = simulated_rows(&dir);
    db.sql(&ddl(kind, &rows));
    let source = format!("sdjc:{name}");
    let mut serve = Serve::new(&dir, &db, &source, "");
    serve.start();

    // Phase 1: the rows arrive in ten chunks while jiancha polls; after the third jiancha is
    // SIGKILLed mid-poll and restarted, after the sixth the database is restarted.
    let chunks: Vec<_> = rows.chunks(rows.len().div_ceil(10)).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        db.sql(&inserts(chunk));
        std::thread::sleep(Duration::from_millis(300));
        if n == 3 {
            serve.kill();
            serve.start();
        }
        if n == 6 {
            db.restart();
        }
    }
    let (expected_first, dead_first) = adapt(&dir, &source, &rows);
    assert_eq!(dead_first, 0, "the simulated rows are all good");
    wait_until(
        "every row of phase 1 in the ingest log",
        Duration::from_secs(120),
        || ingested(&serve.data()).0.len() >= expected_first.len(),
    );

    // Progress on /metrics.
    let metrics = serve.metrics();
    for series in [
        format!("jiancha_frontdb_up{{source=\"{source}\"}} 1"),
        "jiancha_frontdb_rows_total{".to_string(),
        "jiancha_frontdb_watermark_seconds{".to_string(),
    ] {
        assert!(metrics.contains(&series), "no {series} on /metrics");
    }
    // The database restart was noticed (connection or query failures, retried) and survived.
    let failures: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("jiancha_frontdb_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        failures > 0.0,
        "the database restart left no trace on /metrics"
    );

    // Phase 2: corrections, deletions, bad rows, a good row after them; then another SIGKILL
    // once they are in (nothing may be taken twice after it).
    let (sql, after) = corrections(&rows);
    db.sql(&sql);
    let mut all = rows.clone();
    all.extend(after);
    let (expected_all, dead_all) = adapt(&dir, &source, &all);
    assert_eq!(dead_all, 2, "adapt refuses the two bad rows too");
    wait_until(
        "every row in the ingest log",
        Duration::from_secs(120),
        || {
            let (events, dead) = ingested(&serve.data());
            events.len() >= expected_all.len() && dead.len() >= 2
        },
    );
    let metrics = serve.metrics();
    assert!(
        metrics.contains(&format!(
            "jiancha_frontdb_dead_letters_total{{reason=\"unmapped_code\",source=\"{source}\"}} 1"
        )),
        "no dead letter on /metrics"
    );
    serve.kill();
    serve.start();
    std::thread::sleep(Duration::from_secs(3)); // anything taken again would be logged by now
    let (events, dead) = ingested(&serve.data());

    // Nothing lost, nothing doubled: the log holds exactly adapt's events, each once.
    let got = ids(&events);
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "an event appended twice");
    let want: BTreeSet<String> = ids(&expected_all).into_iter().collect();
    let got: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(
        got.symmetric_difference(&want).take(5).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "ingest log differs from adapt's events"
    );
    // The re-reports supersede their first version; the deletions withdraw theirs.
    let supersedes: Vec<&Value> = events
        .iter()
        .filter(|e| e.get("supersedes").is_some())
        .collect();
    assert_eq!(supersedes.len(), 20);
    for e in &supersedes {
        let id = e["event_id"].as_str().unwrap_or_default();
        assert_eq!(
            e["supersedes"].as_str(),
            Some(id.replace(":v2", ":v1").as_str())
        );
        assert!(want.contains(e["supersedes"].as_str().unwrap_or_default()));
    }
    let withdrawn: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "event.withdrawn")
        .collect();
    assert_eq!(withdrawn.len(), 10);
    for w in &withdrawn {
        assert!(
            want.contains(w["withdraws"].as_str().unwrap_or_default()),
            "{w}"
        );
    }
    // The bad rows are dead letters with their reasons, attributed to the source; the good row
    // after them was taken (no stall).
    let reasons: Vec<&str> = dead.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(reasons, ["bad_timestamp", "unmapped_code"], "{dead:?}");
    for (_, raw) in &dead {
        let raw: Value = serde_json::from_str(raw).expect("raw row");
        assert_eq!(raw["source"], source.as_str());
        assert!(raw["projid"]
            .as_str()
            .or(raw["PROJID"].as_str())
            .unwrap_or("")
            .starts_with("BAD-"));
    }
    assert!(events.iter().any(|e| e["case_id"] == "AFTER-THE-BAD-ROWS"));
}

#[test]
fn postgres_rows_reach_the_ingest_log_once_through_kills_and_a_database_restart() {
    embedded_scenario(Kind::Postgres, "pg");
}

#[test]
fn mariadb_rows_reach_the_ingest_log_once_through_kills_and_a_database_restart() {
    embedded_scenario(Kind::MariaDb, "maria");
}

/// Flag mode: rows are taken where `SIGNSTATE` is not 1, and marked 1 only once durable.
#[test]
fn flag_mode_marks_rows_only_after_they_are_durable() {
    let Some(db) = Db::start(Kind::MariaDb, "flag") else {
        return;
    };
    let dir = scratch("flag");
    let rows = simulated_rows(&dir);
    db.sql(&ddl(Kind::MariaDb, &rows));
    let source = "sdjc:flag";
    let mut serve = Serve::new(
        &dir,
        &db,
        source,
        "mode = \"flag\"\ntime_column = \"MAKETIME\"\n",
    );
    let half = rows.len() / 2;
    db.sql(&inserts(&rows[..half]));
    serve.start();
    wait_until("some rows taken", Duration::from_secs(60), || {
        !ingested(&serve.data()).0.is_empty()
    });
    serve.kill(); // mid-poll
    db.sql(&inserts(&rows[half..]));
    serve.start();
    let (expected, _) = adapt(&dir, source, &rows);
    wait_until("every row flagged", Duration::from_secs(120), || {
        let pending: u64 = [
            "PRE_APASINFO",
            "EA_JC_STEP_BASICINFO",
            "EA_JC_STEP_PROC",
            "EA_JC_STEP_DONE",
            "EA_JC_FEEINFO",
            "EA_JC_SERVEVAL",
        ]
        .iter()
        .map(|t| {
            db.sql(&format!("SELECT COUNT(*) FROM {t} WHERE SIGNSTATE <> 1"))
                .trim()
                .parse::<u64>()
                .unwrap_or(1)
        })
        .sum();
        pending == 0
    });
    let (events, dead) = ingested(&serve.data());
    let got = ids(&events);
    assert_eq!(
        got.iter().collect::<BTreeSet<_>>().len(),
        got.len(),
        "an event appended twice"
    );
    let got: BTreeSet<String> = got.into_iter().collect();
    let want: BTreeSet<String> = ids(&expected).into_iter().collect();
    assert_eq!(
        (
            got.difference(&want).take(3).collect::<Vec<_>>(),
            want.difference(&got).take(3).collect::<Vec<_>>(),
            got.len(),
            want.len()
        ),
        (Vec::new(), Vec::new(), want.len(), want.len()),
        "(unexpected, missing, got, wanted)"
    );
    assert!(dead.is_empty(), "{dead:?}");
}

/// The polled corrections and deletions apply: the alerts after them equal a replay of the
/// corrected history.
#[test]
fn corrections_from_a_front_database_apply() {
    let Some(db) = Db::start(Kind::Postgres, "corr") else {
        return;
    };
    let dir = scratch("corr");
    let rows = simulated_rows(&dir);
    db.sql(&ddl(Kind::Postgres, &rows));
    db.sql(&inserts(&rows));
    let source = "sdjc:corr";
    let mut serve = Serve::new(&dir, &db, source, "");
    serve.start();
    let (first, _) = adapt(&dir, source, &rows);
    wait_until(
        "the first versions in the ingest log",
        Duration::from_secs(120),
        || ingested(&serve.data()).0.len() >= first.len(),
    );
    let (sql, after) = corrections(&rows);
    db.sql(&sql);
    let mut all = rows.clone();
    all.extend(after);
    let (expected, _) = adapt(&dir, source, &all);
    wait_until(
        "every row in the ingest log",
        Duration::from_secs(120),
        || ingested(&serve.data()).0.len() >= expected.len(),
    );
    std::thread::sleep(Duration::from_secs(3));
    // The alerts on record equal a replay of the corrected history: the superseded and the
    // withdrawn events never happened, the correcting ones did (SPEC §3 Corrections).
    let superseded: BTreeSet<&str> = expected
        .iter()
        .filter_map(|e| e["supersedes"].as_str())
        .collect();
    let withdrawn: BTreeSet<&str> = expected
        .iter()
        .filter_map(|e| e["withdraws"].as_str())
        .collect();
    let corrected: String = expected
        .iter()
        .filter(|e| e["kind"] != "event.withdrawn")
        .filter(|e| {
            let id = e["event_id"].as_str().unwrap_or_default();
            !superseded.contains(id) && !withdrawn.contains(id)
        })
        .map(|e| e.to_string() + "\n")
        .collect();
    std::fs::write(dir.join("corrected.ndjson"), corrected).expect("corrected history");
    let replay = jiancha()
        .args(["replay", "--reference"])
        .arg(dir.join("ref"))
        .arg("--events")
        .arg(dir.join("corrected.ndjson"))
        .output()
        .expect("replay");
    let mut want: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in String::from_utf8_lossy(&replay.stdout).lines() {
        let a: Value = serde_json::from_str(line).expect("alert");
        let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
        want.insert(s("alert_id"), (s("rule"), s("status")));
    }
    let conn = rusqlite::Connection::open(serve.data().join("jiancha.db")).expect("database");
    let got: BTreeMap<String, (String, String)> = conn
        .prepare("SELECT alert_id, rule, status FROM alerts")
        .expect("alerts")
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .expect("alerts")
        .map(|r| r.expect("row"))
        .collect();
    let differ: Vec<_> = want
        .iter()
        .filter(|(id, v)| got.get(*id) != Some(v))
        .map(|(id, v)| (id.clone(), v.clone(), got.get(id).cloned()))
        .take(5)
        .collect();
    assert!(
        differ.is_empty(),
        "alerts differ from the corrected replay: {differ:?}"
    );
    // No correction may be refused once the engine applies them.
    let refused: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM dead_letters WHERE reason = 'correction_unsupported'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(refused, 0, "corrections were refused by the engine");
}

/// Cluster mode: `jiancha poll` produces to the real broker; positions live in ClickHouse.
#[test]
fn cluster_poll_produces_every_row_to_the_events_topic_through_a_kill() {
    let brokers =
        std::env::var("JIANCHA_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let clickhouse =
        std::env::var("JIANCHA_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let up = std::net::TcpStream::connect_timeout(
        &brokers
            .split(',')
            .next()
            .unwrap_or_default()
            .parse()
            .expect("broker address"),
        Duration::from_secs(2),
    )
    .is_ok()
        && Command::new("curl")
            .args(["-sf", &format!("{clickhouse}/ping")])
            .output()
            .is_ok_and(|o| o.status.success());
    if !up {
        skip("the broker or ClickHouse is not running (scripts/test.sh starts them)");
        return;
    }
    let Some(db) = Db::start(Kind::Postgres, "poll") else {
        return;
    };
    let dir = scratch("poll");
    // One day: the shared broker is slow when other suites load it.
    let rows = simulated_days(&dir, 1);
    db.sql(&ddl(Kind::Postgres, &rows));
    let topic = format!("frontdb-{}-{}", std::process::id(), free_port());
    let database = format!("frontdb_{}_{}", std::process::id(), free_port());
    let made = Command::new(root().join("deploy/local/kafka.sh"))
        .args(["topic", &topic, "1"])
        .status()
        .expect("kafka.sh");
    assert!(made.success(), "topic {topic}");
    let source = "sdjc:poll";
    let config = dir.join("poll.toml");
    std::fs::write(
        &config,
        format!(
            "[reference]\ndir = {ref_:?}\n[kafka]\nbrokers = {brokers:?}\nevents_topic = {topic:?}\n\
             [clickhouse]\nurl = {clickhouse:?}\ndatabase = {database:?}\n[cluster]\nlisten = \"127.0.0.1:{port}\"\n\
             [[frontdb]]\nname = {source:?}\nurl = {url:?}\nbatch_rows = 300\ninterval_milliseconds = 100\nsettle_seconds = 0\n\
             tables = [\"PRE_APASINFO\", \"EA_JC_STEP_BASICINFO\", \"EA_JC_STEP_PROC\", \"EA_JC_STEP_DONE\", \"EA_JC_FEEINFO\", \"EA_JC_SERVEVAL\"]\n",
            ref_ = dir.join("ref").display().to_string(),
            port = free_port(),
            url = db.url(),
        ),
    )
    .expect("config");
    let poll = || {
        Killed(
            jiancha()
                .arg("poll")
                .arg("--config")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("jiancha poll"),
        )
    };
    let half = rows.len() / 2;
    db.sql(&inserts(&rows[..half]));
    let child = poll();
    std::thread::sleep(Duration::from_millis(1500));
    drop(child); // SIGKILL mid-poll
    db.sql(&inserts(&rows[half..]));
    let child = poll();
    let (expected, _) = adapt(&dir, source, &rows);
    let want: BTreeSet<String> = ids(&expected).into_iter().collect();
    let mut got = Vec::new();
    wait_until("every event on the topic", Duration::from_secs(300), || {
        got = read_topic(&brokers, &topic);
        got.iter().collect::<BTreeSet<_>>().len() >= want.len()
    });
    drop(child);
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(distinct, want, "the topic differs from adapt's events");
    // A kill can repeat at most the batch in flight (the engine drops repeats by event id).
    assert!(
        got.len() - distinct.len() <= 6 * 300,
        "{} repeats",
        got.len() - distinct.len()
    );
    // The position is stored in ClickHouse.
    let out = Command::new("curl")
        .args([
            "-sf",
            &format!("{clickhouse}/?database={database}"),
            "--data-binary",
        ])
        .arg("SELECT count() FROM checkpoints WHERE group_id = 'frontdb'")
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
            > 0
    );
    let _ = Command::new("curl")
        .args(["-sf", &clickhouse, "--data-binary"])
        .arg(format!("DROP DATABASE IF EXISTS {database}"))
        .output();
}

/// A child process SIGKILLed when dropped (also when a test fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Event ids of every message of a one-partition topic.
fn read_topic(brokers: &str, topic: &str) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", free_port()))
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    c.assign(&tpl).expect("assign");
    let Ok((_, high)) = c.fetch_watermarks(topic, 0, Duration::from_secs(10)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let start = Instant::now();
    while (out.len() as i64) < high && start.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(500)) {
            let v: Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default();
            out.push(v["event_id"].as_str().unwrap_or_default().to_string());
        }
    }
    out
}

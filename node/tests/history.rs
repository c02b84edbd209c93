//! The auditor's desk end to end in embedded mode: a week of 平江's hall worked out by hand
//! (events below), posted over HTTP, through the engine into SQLite, and read back through the
//! history, CSV, timeline, dead-letter and 绩效 endpoints.

use std::sync::Arc;
use std::time::Duration;

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use ingest::reference_dir;
use node::embedded::{start, Clock, Embedded, EmbeddedConfig};
use serde_json::Value;
use store::Store;

const PASSWORD: &str = "auditor-password";

fn users() -> Users {
    let hash = hash_password(PASSWORD).expect("hash");
    let mut users = Users::default();
    for (name, role, region) in [
        ("pub", Role::Publisher, "430626"),
        ("audit", Role::Auditor, "430626"),
        ("admin", Role::Admin, "43"),
        ("xiangyin", Role::Auditor, "430624"),
    ] {
        users.upsert(User {
            username: name.into(),
            name: name.into(),
            role,
            region: Region::try_from(region.to_string()).expect("region"),
            password_hash: hash.clone(),
            token_epoch: 0,
        });
    }
    users
}

/// One event; `extra` are the kind's own fields.
fn ev(id: &str, kind: &str, at: &str, who: (&str, &str, &str), extra: &str) -> String {
    let (dept, window, staff) = who;
    format!(
        r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-{at}:00+08:00","reported_at":"2026-11-{at}:05+08:00","center_id":"PJ-ZWFW","region":"430626","department":"{dept}","window_id":"{window}","staff_id":"{staff}"{extra}}}"#
    )
}

/// The week (all in November 2026; no holiday):
/// - A (SC-002, promised 1 working day, legal 15): accepted Mon 02 09:00 at W07 by PJ0701,
///   finished the same day → on time, early (before D = Tue 03), on site, 0 working days used.
/// - B (SC-002): accepted Mon 02 09:30, finished Wed 04 10:00 → late (deadline Wed 04 00:00):
///   预警 Tue 03 00:00 and 黄牌 Wed 04 00:00 on PJ0701; 2 working days used.
/// - C (BDC-001, promised 5, legal 30): accepted Tue 03 10:00 at W01 by PJ0101, finished Fri 06
///   → on time, early (D = Tue 10), not on site, 3 working days used.
/// - D (BDC-001): accepted Thu 05 by PJ0101, still open.
/// - Ratings: E1 5 for A (PJ0701), E2 2 for B (PJ0701: 差评 预警, rectified Thu 05), E3 4 for C
///   (PJ0101). Complaint K1 against PJ0701 (attitude: 预警), resolved substantiated Thu 05 by a
///   supervisor.
fn week() -> Vec<String> {
    let sc = ("SC", "PJ-W07", "PJ0701");
    let bdc = ("BDC", "PJ-W01", "PJ0101");
    let case = |c: &str, item: &str| format!(r#","case_id":"{c}","item_code":"{item}""#);
    let stage = |c: &str, s: &str| format!(r#","case_id":"{c}","stage":"{s}","result":"agree""#);
    let done = |c: &str| format!(r#","case_id":"{c}","result":"approved""#);
    vec![
        ev(
            "a1",
            "case.accepted",
            "02T09:00",
            sc,
            &(case("A", "430626-SC-002") + r#","channel":"hall""#),
        ),
        ev("a2", "case.stage", "02T10:00", sc, &stage("A", "undertake")),
        ev("a3", "case.completed", "02T15:00", sc, &done("A")),
        ev(
            "b1",
            "case.accepted",
            "02T09:30",
            sc,
            &(case("B", "430626-SC-002") + r#","channel":"hall""#),
        ),
        ev("b2", "case.stage", "02T10:30", sc, &stage("B", "undertake")),
        ev(
            "c1",
            "case.accepted",
            "03T10:00",
            bdc,
            &(case("C", "430626-BDC-001") + r#","channel":"hall""#),
        ),
        ev("b3", "case.completed", "04T10:00", sc, &done("B")),
        ev(
            "c2",
            "case.stage",
            "04T10:00",
            bdc,
            &stage("C", "undertake"),
        ),
        ev("c3", "case.stage", "05T10:00", bdc, &stage("C", "review")),
        ev("c4", "case.stage", "05T11:00", bdc, &stage("C", "approve")),
        ev(
            "d1",
            "case.accepted",
            "05T14:00",
            bdc,
            &(case("D", "430626-BDC-001") + r#","channel":"hall""#),
        ),
        ev("c5", "case.completed", "06T16:00", bdc, &done("C")),
        ev(
            "e1",
            "evaluation.submitted",
            "02T15:10",
            sc,
            r#","case_id":"A","evaluation_id":"E1","score":5"#,
        ),
        ev(
            "e2",
            "evaluation.submitted",
            "04T10:10",
            sc,
            r#","case_id":"B","evaluation_id":"E2","score":2"#,
        ),
        ev(
            "e2r",
            "evaluation.rectified",
            "05T16:00",
            sc,
            r#","evaluation_id":"E2""#,
        ),
        ev(
            "e3",
            "evaluation.submitted",
            "06T16:10",
            bdc,
            r#","case_id":"C","evaluation_id":"E3","score":4"#,
        ),
        ev(
            "k1",
            "complaint.filed",
            "04T11:00",
            sc,
            r#","complaint_id":"K1","category":"attitude""#,
        ),
        ev(
            "k2",
            "complaint.resolved",
            "05T09:00",
            // A supervisor of the department (back office, in staff.csv) records the outcome.
            ("SC", "PJ-W07", "PJ0799"),
            r#","complaint_id":"K1","substantiated":true"#,
        ),
    ]
}

struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    fn new(node: &Embedded) -> Client {
        Client {
            base: format!("http://{}", node.addr),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    fn token(&self, user: &str) -> String {
        let mut r = self
            .agent
            .post(&format!("{}/api/v1/auth/login", self.base))
            .send_json(serde_json::json!({"username": user, "password": PASSWORD}))
            .expect("login");
        let v: Value = r.body_mut().read_json().expect("json");
        v["token"].as_str().expect("token").to_string()
    }

    /// (status, body text).
    fn get(&self, path: &str, token: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("get");
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().expect("body"),
        )
    }

    fn json(&self, path: &str, token: &str) -> Value {
        let (st, text) = self.get(path, token);
        assert_eq!(st, 200, "{path}: {text}");
        serde_json::from_str(&text).expect("json")
    }
}

/// An embedded node on the 平江 reference in a fresh directory `name`, with `body` posted by the
/// publisher (NDJSON) and applied: the node, a client, the directory and the post's status.
async fn node_with(name: &str, body: &str) -> (Embedded, Client, std::path::PathBuf, u16) {
    let dir = std::env::temp_dir().join(format!("jiancha-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/pingjiang");
    let loaded = reference_dir::load(&root, None).expect("reference");
    let mut cfg = EmbeddedConfig::new(
        dir.join("data"),
        Arc::new(loaded.reference),
        loaded.policy,
        "127.0.0.1:0".parse().expect("addr"),
        dir.join("users.toml"),
        users(),
        TokenKey::new(&[9u8; 32]).expect("key"),
    );
    cfg.clock = Clock::Event;
    let node = start(cfg).await.expect("start");
    let c = Client::new(&node);
    let publisher = tokio::task::block_in_place(|| c.token("pub"));
    let status = tokio::task::block_in_place(|| {
        c.agent
            .post(&format!("{}/api/v1/events", c.base))
            .header("Authorization", &format!("Bearer {publisher}"))
            .header("Content-Type", "application/x-ndjson")
            .send(body.as_bytes())
            .expect("post")
            .status()
            .as_u16()
    });
    let end = node.store.log_end().await.expect("end");
    for _ in 0..200 {
        if node.applied() >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (node, c, dir, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_history_timelines_and_the_performance_table_worked_by_hand() {
    let mut body = week().join("\n");
    body.push_str("\n{\"event_id\":\"broken\"}");
    let (node, c, dir, status) = node_with("history", &body).await;
    assert_eq!(status, 422, "one broken line");
    let (audit, admin, other) =
        tokio::task::block_in_place(|| (c.token("audit"), c.token("admin"), c.token("xiangyin")));

    tokio::task::block_in_place(|| {
        // 绩效 by staff member, November.
        let perf = c.json("/api/v1/performance?by=staff&month=2026-11", &audit);
        let rows = perf["rows"].as_array().expect("rows");
        let keys: Vec<&str> = rows
            .iter()
            .map(|r| r["key"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(keys, ["PJ0101", "PJ0701"], "ranked by score: {perf}");
        let (w01, w07) = (&rows[0], &rows[1]);
        let n = |r: &Value, k: &str| r[k].as_u64().unwrap_or(u64::MAX);
        let f = |r: &Value, k: &str| r["rates"][k].as_f64().unwrap_or(-1.0);
        // PJ0701: accepted A, B; finished A (on time, early, on site, 0 days) and B (late,
        // 2 days); 承诺件 base 2 cases, legal 15 + 15, promised 1 + 1; 预警 B, 差评 E2,
        // complaint K1 → 3 warnings; 黄牌 B → 1 yellow; K1 filed and substantiated; ratings E1
        // (5) and E2 (2).
        let expect_0701 = [
            ("accepted", 2),
            ("completed", 2),
            ("on_time", 1),
            ("early", 1),
            ("on_site", 1),
            ("late", 1),
            ("days_used", 2),
            ("speedup_cases", 2),
            ("legal_days", 30),
            ("promised_days", 2),
            ("warnings", 3),
            ("yellows", 1),
            ("reds", 0),
            ("complaints", 1),
            ("substantiated", 1),
            ("evaluations", 2),
            ("satisfied", 1),
        ];
        for (k, v) in expect_0701 {
            assert_eq!(n(w07, k), v, "PJ0701 {k}: {w07}");
        }
        // Rates: 办结率 2/2, 按时 1/2, 提前 1/2, 现场 1/2 (of accepted), 提速 (30−2)/30,
        // 1 working day on average, 满意 1/2.
        for (k, v) in [
            ("completion", 1.0),
            ("on_time", 0.5),
            ("early", 0.5),
            ("on_site", 0.5),
            ("speedup", 28.0 / 30.0),
            ("avg_days_used", 1.0),
            ("satisfaction", 0.5),
        ] {
            assert!((f(w07, k) - v).abs() < 1e-9, "PJ0701 rate {k}: {w07}");
        }
        // Score: 100 − 3×3 − 5 − 10 = 76; bonus 提速 93.3 % → 3 + 6, 提前 50 % → 1 + 4, capped
        // at 10, in its own column: the score stays on the 100-point scale. 590 fails on all
        // three counts.
        assert_eq!(w07["score"]["score"].as_f64(), Some(76.0), "{w07}");
        assert_eq!(w07["score"]["bonus"].as_f64(), Some(10.0), "{w07}");
        assert_eq!(w07["check_590"]["pass"], false);
        assert_eq!(w07["check_590"]["all_on_time"], false);
        assert_eq!(w07["check_590"]["on_site"], false);
        assert_eq!(w07["rank"], 2);
        // PJ0101: accepted C, D; finished C on time and early, 3 days; base 1 case, 30/5;
        // no alerts; E3 (4) satisfied. Score 100, bonus min(10, (3+5) + (1+9)) = 10 beside it.
        for (k, v) in [
            ("accepted", 2),
            ("completed", 1),
            ("on_time", 1),
            ("early", 1),
            ("on_site", 0),
            ("late", 0),
            ("days_used", 3),
            ("speedup_cases", 1),
            ("legal_days", 30),
            ("promised_days", 5),
            ("warnings", 0),
            ("yellows", 0),
            ("complaints", 0),
            ("substantiated", 0),
            ("evaluations", 1),
            ("satisfied", 1),
        ] {
            assert_eq!(n(w01, k), v, "PJ0101 {k}: {w01}");
        }
        assert_eq!(w01["score"]["score"].as_f64(), Some(100.0), "{w01}");
        assert_eq!(w01["score"]["bonus"].as_f64(), Some(10.0), "{w01}");
        assert_eq!(w01["check_590"]["all_on_time"], true);
        assert_eq!(
            w01["check_590"]["on_site"], false,
            "0 of 2 accepted on site"
        );
        assert_eq!(perf["total"]["counts"]["accepted"], 4);
        // By department the same cases split SC / BDC; October is empty.
        let dept = c.json("/api/v1/performance?by=department&month=2026-11", &audit);
        let keys: Vec<&str> = dept["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["key"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(keys, ["BDC", "SC"]);
        let october = c.json("/api/v1/performance?by=staff&month=2026-10", &audit);
        assert_eq!(october["rows"].as_array().map(Vec::len), Some(0));
        // Another county sees nothing of 平江.
        let theirs = c.json("/api/v1/performance?by=staff&month=2026-11", &other);
        assert_eq!(theirs["rows"].as_array().map(Vec::len), Some(0));

        // History: PJ0701's alerts — 预警 and 黄牌 of B, 差评, complaint, two ladder steps.
        let h = c.json(
            "/api/v1/history/alerts?month=2026-11&staff=PJ0701&limit=4",
            &audit,
        );
        let first = h["items"].as_array().expect("items").clone();
        assert_eq!(first.len(), 4);
        let cursor = h["next_cursor"].as_str().expect("a second page");
        let h2 = c.json(
            &format!("/api/v1/history/alerts?month=2026-11&staff=PJ0701&limit=4&cursor={cursor}"),
            &audit,
        );
        let second = h2["items"].as_array().expect("items").clone();
        let mut rules: Vec<String> = first
            .iter()
            .chain(&second)
            .map(|a| {
                format!(
                    "{}/{}",
                    a["rule"].as_str().unwrap_or(""),
                    a["level"].as_str().unwrap_or("")
                )
            })
            .collect();
        rules.sort();
        assert_eq!(
            rules,
            [
                "case.overdue/warning",
                "case.overdue/yellow",
                "complaint.filed/warning",
                "discipline.ladder/warning",
                "discipline.ladder/yellow",
                "evaluation.bad/warning",
            ]
        );
        let times: Vec<&str> = first
            .iter()
            .chain(&second)
            .map(|a| a["fired_at"].as_str().unwrap_or(""))
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "newest first: {times:?}"
        );
        let yellow = c.json(
            "/api/v1/history/alerts?month=2026-11&level=yellow&rule=case.overdue",
            &audit,
        );
        assert_eq!(yellow["items"][0]["case_id"], "B");
        assert_eq!(
            c.get("/api/v1/history/alerts?month=2026-11&region=430624", &audit)
                .0,
            403
        );

        // CSV: BOM, header, one line per alert.
        let (st, csv) = c.get(
            "/api/v1/history/alerts.csv?month=2026-11&staff=PJ0701",
            &audit,
        );
        assert_eq!(st, 200);
        assert!(csv.starts_with('\u{feff}'), "BOM for Excel");
        let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
        assert!(
            lines[0].contains("告警编号,规则,级别,状态,触发时间,中心编码,中心"),
            "{}",
            lines[0]
        );
        assert_eq!(lines.len(), 1 + 6, "{csv}");
        // Names beside codes: rule, level and status in Chinese, times local to the minute.
        for line in &lines[1..] {
            let cells: Vec<&str> = line.split(',').collect();
            assert!(
                rules::Rule::ALL.iter().any(|r| r.zh() == cells[1]),
                "rule {:?} in {line}",
                cells[1]
            );
            assert!(["预警", "黄牌", "红牌"].contains(&cells[2]), "{line}");
            assert!(["有效", "已撤销"].contains(&cells[3]), "{line}");
            assert!(
                cells[4].len() == 16 && cells[4].as_bytes()[10] == b' ',
                "time {:?}",
                cells[4]
            );
            assert_eq!(cells[12], "PJ0701", "{line}");
        }

        // B's timeline: accepted, stage, completed, and the rating that names it.
        let t = c.json("/api/v1/cases/B/timeline", &audit);
        let kinds: Vec<&str> = t["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            kinds,
            [
                "case.accepted",
                "case.stage",
                "case.completed",
                "evaluation.submitted"
            ]
        );
        assert_eq!(c.get("/api/v1/cases/B/timeline", &other).0, 404);

        // Dead letters: admins only.
        let dl = c.json("/api/v1/dead-letters", &admin);
        assert_eq!(dl["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(dl["items"][0]["reason"], "missing_field");
        assert_eq!(c.get("/api/v1/dead-letters", &audit).0, 403);
    });
    tokio::task::block_in_place(|| node.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A minimal CSV reader (RFC 4180: quoted cells, doubled quotes, CRLF rows).
fn csv_cells(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![vec![String::new()]];
    let mut quoted = false;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(ch) = chars.next() {
        let row = rows.last_mut().expect("a row");
        let cell = row.last_mut().expect("a cell");
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(String::new()),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                rows.push(vec![String::new()]);
            }
            (false, c) => cell.push(c),
        }
    }
    rows.retain(|r| r.len() > 1 || !r[0].is_empty());
    rows
}

/// OWASP CSV injection: a window system that names its cases like formulas does not get them
/// run in the auditor's spreadsheet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_neutralises_cells_that_a_spreadsheet_would_run() {
    let cases = ["=1+2", "+1", "-2+3", "@SUM(1)"];
    let lines: Vec<String> = cases
        .iter()
        .enumerate()
        .flat_map(|(i, case)| {
            let who = ("SC", "PJ-W07", "PJ0701");
            [
                ev(
                    &format!("s{i}"),
                    "case.submitted",
                    "02T09:00",
                    who,
                    &format!(r#","case_id":"{case}","item_code":"430626-SC-002","channel":"hall""#),
                ),
                ev(
                    &format!("r{i}"),
                    "case.rejected",
                    "02T10:00",
                    who,
                    &format!(r#","case_id":"{case}","reason":"""#),
                ),
            ]
        })
        .collect();
    let (node, c, dir, status) = node_with("csv", &lines.join("\n")).await;
    assert_eq!(status, 200, "every line accepted");
    tokio::task::block_in_place(|| {
        let audit = c.token("audit");
        let (st, csv) = c.get("/api/v1/history/alerts.csv?month=2026-11", &audit);
        assert_eq!(st, 200, "{csv}");
        let rows = csv_cells(&csv);
        for row in &rows[1..] {
            for cell in row {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "a cell a spreadsheet would run: {cell:?} in {row:?}"
                );
            }
        }
        // One yellow card per case (and the discipline ladder's steps, which name no case).
        let mut case_cells: Vec<&str> = rows[1..]
            .iter()
            .filter(|r| r[1] == rules::Rule::RejectedWithoutReason.zh())
            .map(|r| r[14].as_str())
            .collect();
        case_cells.sort_unstable();
        assert_eq!(case_cells, ["'+1", "'-2+3", "'=1+2", "'@SUM(1)"], "{csv}");
    });
    tokio::task::block_in_place(|| node.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The embedded store keeps each event's line once, in the ingest log: the events table refers
/// to the entry, and a case's events read back are the lines as posted, byte for byte (spacing,
/// key order and fields jiancha does not know included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cases_events_are_its_posted_lines_stored_once() {
    let who = ("SC", "PJ-W07", "PJ0701");
    let odd = r#"{ "kind" : "case.stage", "event_id":"s2","occurred_at":"2026-11-02T10:00:00+08:00","center_id":"PJ-ZWFW","region":"430626","department":"SC","window_id":"PJ-W07","staff_id":"PJ0701","case_id":"S","stage":"undertake","result":"agree","窗口备注":"材料 已核"}"#;
    let lines = [
        ev(
            "s1",
            "case.accepted",
            "02T09:00",
            who,
            r#","case_id":"S","item_code":"430626-SC-002","channel":"hall""#,
        ),
        odd.to_string(),
        ev(
            "s3",
            "case.completed",
            "02T15:00",
            who,
            r#","case_id":"S","result":"approved""#,
        ),
    ];
    let (node, c, dir, status) = node_with("lines", &lines.join("\n")).await;
    assert_eq!(status, 200, "every line accepted");
    let read = node.store.case_events("S", 10).await.expect("case events");
    assert_eq!(read, lines, "the lines as posted, in time order");
    tokio::task::block_in_place(|| {
        let audit = c.token("audit");
        let t = c.json("/api/v1/cases/S/timeline", &audit);
        assert_eq!(t["events"][1]["窗口备注"], "材料 已核", "{t}");
    });
    tokio::task::block_in_place(|| node.shutdown());
    let db = rusqlite::Connection::open(dir.join("data/jiancha.db")).expect("open");
    let (copies, referred): (i64, i64) = db
        .query_row(
            "SELECT SUM(raw != ''), COUNT(l.seq) FROM events e \
             LEFT JOIN ingest_log l ON l.seq = e.log_seq WHERE case_id = 'S'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("events");
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        (copies, referred),
        (0, 3),
        "each event's row refers to its log entry and holds no copy"
    );
}

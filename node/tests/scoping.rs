//! Jurisdiction, through every endpoint and the WebSocket, on the real store (embedded mode,
//! SQLite): two counties of one city (平江 430626, 湘阴 430624) share department codes, and a
//! 平江 user of every role tries to reach 湘阴's data every way the API offers. Nothing of 湘阴
//! may come back — not a record, not a count, not a name — while a city user sees both (so an
//! empty answer is not mistaken for scoping).

mod support;

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use node::embedded::{start, Clock, Embedded, EmbeddedConfig};
use rules::{Policy, Reference, ReferenceFiles};
use serde_json::Value;
use support::caught_up;

const PASSWORD: &str = "scoping-password";

fn users() -> Users {
    let hash = hash_password(PASSWORD).expect("hash");
    let mut users = Users::default();
    for (name, role, region) in [
        ("pj-leader", Role::Leader, "430626"),
        ("pj-inspector", Role::Inspector, "430626"),
        ("pj-auditor", Role::Auditor, "430626"),
        ("pj-admin", Role::Admin, "430626"),
        ("city-auditor", Role::Auditor, "4306"),
        ("province-admin", Role::Admin, "43"),
        ("pj-pub", Role::Publisher, "430626"),
        ("xy-pub", Role::Publisher, "430624"),
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

fn reference() -> Reference {
    Reference::parse(&ReferenceFiles {
        items: Some((
            "items.csv".into(),
            "item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n\
             P1,不动产查询,BDC,promised,5,working,1,working,,,,true,hall,,accept\n"
                .into(),
        )),
        windows: Some((
            "windows.csv".into(),
            "window_id,center_id,region,department,in_hall\nPJ-W01,PJ,430626,BDC,true\nXY-W01,XY,430624,BDC,true\n".into(),
        )),
        staff: Some((
            "staff.csv".into(),
            "staff_id,name,department,window_id,in_hall\nPJ-S01,李明,BDC,PJ-W01,true\nXY-S01,王芳,BDC,XY-W01,true\n".into(),
        )),
        ..Default::default()
    })
    .expect("reference")
}

/// A county's day: a window opens, a case is accepted, a complaint and a bad rating come in.
fn county(p: &str, region: &str) -> Vec<String> {
    let ev = |id: &str, kind: &str, at: &str, extra: &str| {
        format!(
            r#"{{"event_id":"{p}-{id}","kind":"{kind}","occurred_at":"2026-11-{at}:00+08:00","reported_at":"2026-11-{at}:01+08:00","center_id":"{p}","region":"{region}","department":"BDC","window_id":"{p}-W01","staff_id":"{p}-S01"{extra}}}"#
        )
    };
    vec![
        ev("1", "window.opened", "02T08:55", ""),
        ev("2", "staff.signed_in", "02T08:56", ""),
        ev(
            "3",
            "case.accepted",
            "02T09:00",
            &format!(r#","case_id":"{p}-C1","item_code":"P1","channel":"hall""#),
        ),
        ev(
            "4",
            "complaint.filed",
            "02T10:00",
            &format!(r#","complaint_id":"{p}-K1","category":"attitude""#),
        ),
        ev(
            "5",
            "evaluation.submitted",
            "02T10:30",
            &format!(r#","case_id":"{p}-C1","evaluation_id":"{p}-E1","score":1"#),
        ),
    ]
}

struct Client {
    base: String,
    addr: std::net::SocketAddr,
    agent: ureq::Agent,
}

impl Client {
    fn token(&self, user: &str) -> String {
        let mut r = self
            .agent
            .post(&format!("{}/api/v1/auth/login", self.base))
            .send_json(serde_json::json!({"username": user, "password": PASSWORD}))
            .expect("login");
        let v: Value = r.body_mut().read_json().expect("json");
        v["token"].as_str().expect("token").to_string()
    }

    fn call(&self, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {token}");
        let mut r = match method {
            "GET" => self.agent.get(&url).header("Authorization", &auth).call(),
            _ => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header(
                    "Content-Type",
                    if path == "/api/v1/events" {
                        "application/x-ndjson"
                    } else {
                        "application/json"
                    },
                )
                .send(body.as_bytes()),
        }
        .expect("HTTP");
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().expect("body"),
        )
    }

    fn json(&self, path: &str, token: &str) -> Value {
        let (st, text) = self.call("GET", path, token, "");
        assert_eq!(st, 200, "{path}: {text}");
        serde_json::from_str(&text).expect("json")
    }

    fn send(&self, token: &str, lines: &[String]) {
        let (st, text) = self.call("POST", "/api/v1/events", token, &lines.join("\n"));
        assert_eq!(st, 200, "{text}");
    }
}

/// Everything 湘阴 that could leak, as text.
const XY_MARKS: &[&str] = &["430624", "XY-", "王芳"];

fn assert_no_xy(what: &str, text: &str) {
    for m in XY_MARKS {
        assert!(!text.contains(m), "{what} shows 湘阴's {m:?}: {text}");
    }
}

/// The first text frame of a live feed (the snapshot), and a way to wait for more.
struct Feed(tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>);

impl Feed {
    fn open(addr: std::net::SocketAddr, token: &str, query: &str) -> Feed {
        let (ws, _) = tungstenite::connect(format!(
            "ws://{addr}/api/v1/live?access_token={token}{query}"
        ))
        .expect("WebSocket");
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
        }
        Feed(ws)
    }

    /// Every non-heartbeat message within `ms`.
    fn drain(&mut self, ms: u64) -> Vec<String> {
        let until = std::time::Instant::now() + Duration::from_millis(ms);
        let mut out = Vec::new();
        while std::time::Instant::now() < until {
            match self.0.read() {
                Ok(tungstenite::Message::Text(t)) if !t.contains("\"heartbeat\"") => {
                    out.push(t.to_string())
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("live feed: {e}"),
            }
        }
        out
    }
}

/// A fresh embedded node on the event clock holding the two counties' reference, a client, and
/// the node's directory (to remove at the end).
async fn two_counties(tag: &str) -> (Embedded, Client, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("jiancha-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = EmbeddedConfig::new(
        dir.join("data"),
        Arc::new(reference()),
        Policy::default(),
        "127.0.0.1:0".parse().expect("addr"),
        dir.join("users.toml"),
        users(),
        TokenKey::new(&[7u8; 32]).expect("key"),
    );
    cfg.clock = Clock::Event;
    let node = start(cfg).await.expect("start");
    let c = Client {
        base: format!("http://{}", node.addr),
        addr: node.addr,
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into(),
    };
    (node, c, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoint_and_no_socket_shows_another_countys_data() {
    let (node, c, dir) = two_counties("scoping").await;
    let admin = tokio::task::block_in_place(|| c.token("province-admin"));
    let mut both = county("PJ", "430626");
    both.extend(county("XY", "430624"));
    // Four days on: the cases are overdue in both counties.
    both.push(
        r#"{"event_id":"tick","kind":"window.paused","occurred_at":"2026-11-06T10:00:00+08:00","center_id":"PJ","region":"430626","window_id":"PJ-W01"}"#.into(),
    );
    tokio::task::block_in_place(|| {
        c.send(&admin, &both);
        // Each county's window system sends one broken line: a dead letter each.
        for (user, marker) in [("pj-pub", "PJ-BROKEN"), ("xy-pub", "XY-BROKEN")] {
            let t = c.token(user);
            let line = format!(r#"{{"event_id":"{marker}","kind":"case.accepted"}}"#);
            let (st, text) = c.call("POST", "/api/v1/events", &t, &line);
            assert_eq!(st, 422, "{text}");
        }
    });
    caught_up(&node).await;

    tokio::task::block_in_place(|| {
        // The city sees both counties: there is something to leak.
        let city = c.token("city-auditor");
        let all = c.json("/api/v1/history/alerts?month=2026-11", &city);
        let regions: std::collections::BTreeSet<&str> = all["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|a| a["region"].as_str())
            .collect();
        assert_eq!(
            regions.into_iter().collect::<Vec<_>>(),
            ["430624", "430626"]
        );
        let xy_alerts: Vec<String> = all["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|a| a["region"] == "430624")
            .filter_map(|a| a["alert_id"].as_str().map(str::to_string))
            .collect();
        assert!(xy_alerts.len() >= 3, "{all}");

        for user in ["pj-leader", "pj-inspector", "pj-auditor", "pj-admin"] {
            let t = c.token(user);
            // Lists, pages, CSV, names, window status, the performance table.
            for path in [
                "/api/v1/alerts?limit=500",
                "/api/v1/alerts?status=open,acknowledged,supervising,resolved,dismissed,retracted",
                "/api/v1/alerts?center=XY",
                "/api/v1/alerts?staff=XY-S01",
                "/api/v1/windows",
                "/api/v1/windows?center=XY",
                "/api/v1/history/alerts?month=2026-11",
                "/api/v1/history/alerts?month=2026-11&center=XY",
                "/api/v1/history/alerts?month=2026-11&window=XY-W01",
                "/api/v1/history/alerts.csv?month=2026-11",
                "/api/v1/export/gb39046?month=2026-11",
                "/api/v1/performance?by=department&month=2026-11",
                "/api/v1/performance?by=window&month=2026-11",
                "/api/v1/performance?by=staff&month=2026-11",
                "/api/v1/performance?by=item&month=2026-11",
                "/api/v1/directory",
                "/api/v1/me",
            ] {
                let (status, text) = c.call("GET", path, &t, "");
                assert!(
                    status == 200 || status == 403,
                    "{user} {path}: {status} {text}"
                );
                assert_no_xy(&format!("{user} GET {path}"), &text);
            }
            // The department code is shared: 平江's counts are 平江's alone.
            let perf = c.json("/api/v1/performance?by=department&month=2026-11", &t);
            assert_eq!(perf["total"]["counts"]["accepted"], 1, "{user}: {perf}");
            assert_eq!(perf["total"]["counts"]["complaints"], 1, "{user}: {perf}");
            // Asking for 湘阴 by region is refused, not answered empty.
            for path in [
                "/api/v1/alerts?region=430624",
                "/api/v1/history/alerts?month=2026-11&region=430624",
                "/api/v1/history/alerts.csv?month=2026-11&region=430624",
                "/api/v1/export/gb39046?month=2026-11&region=430624",
                "/api/v1/performance?by=department&month=2026-11&region=430624",
            ] {
                let (status, text) = c.call("GET", path, &t, "");
                assert_eq!(status, 403, "{user} {path}: {text}");
            }
            // 湘阴's alerts and case do not exist for 平江: the same 404 as a made-up id.
            for id in &xy_alerts {
                let (status, text) = c.call("GET", &format!("/api/v1/alerts/{id}"), &t, "");
                assert_eq!(status, 404, "{user} alert {id}: {text}");
                assert_no_xy("a 404", &text);
                let (status, text) = c.call(
                    "POST",
                    &format!("/api/v1/alerts/{id}/actions"),
                    &t,
                    r#"{"action":"dismiss","note":"not ours"}"#,
                );
                assert!(
                    status == 404 || status == 403,
                    "{user} acts on {id}: {status} {text}"
                );
            }
            let (status, text) = c.call("GET", "/api/v1/cases/XY-C1/timeline", &t, "");
            assert!(
                status == 404 || status == 403,
                "{user} timeline: {status} {text}"
            );
            // The answer is the same as for a case that does not exist (it names what was asked).
            assert_no_xy("a timeline", &text.replace("XY-C1", "the case asked for"));
            let (_, made_up) = c.call("GET", "/api/v1/cases/NO-SUCH-CASE/timeline", &t, "");
            assert_eq!(
                text.replace("XY-C1", "?"),
                made_up.replace("NO-SUCH-CASE", "?")
            );
            // Dead letters are admins' business, and only their own county's.
            let (status, text) = c.call("GET", "/api/v1/dead-letters", &t, "");
            if user == "pj-admin" {
                assert_eq!(status, 200, "{text}");
                assert!(text.contains("PJ-BROKEN"), "平江's own dead letter: {text}");
                assert_no_xy("dead letters", &text);
            } else {
                assert_eq!(status, 403, "{user} dead letters: {text}");
            }
        }
        let all = c.json("/api/v1/dead-letters", &admin);
        let all = all.to_string();
        assert!(
            all.contains("PJ-BROKEN") && all.contains("XY-BROKEN"),
            "{all}"
        );
        // Nothing an action did to 湘阴 happened.
        let xy = c.json("/api/v1/alerts?region=430624&limit=500", &admin);
        assert!(
            xy["items"]
                .as_array()
                .expect("items")
                .iter()
                .all(|a| a["status"] == "open" || a["status"] == "retracted"),
            "{xy}"
        );
    });

    // The live feed: the snapshot and every later message stay in 平江.
    let leader = tokio::task::block_in_place(|| c.token("pj-leader"));
    let addr = c.addr;
    let mut feed = tokio::task::block_in_place(|| Feed::open(addr, &leader, ""));
    let mut spy = tokio::task::block_in_place(|| Feed::open(addr, &leader, "&center=XY"));
    let first = tokio::task::block_in_place(|| feed.drain(1000));
    assert!(first[0].contains("\"snapshot\""), "{first:?}");
    assert!(
        first[0].contains("PJ-W01"),
        "the snapshot has 平江's window"
    );
    assert_no_xy("the snapshot", &first.join("\n"));
    let spied = tokio::task::block_in_place(|| spy.drain(1000));
    assert_no_xy("a snapshot filtered to 湘阴's centre", &spied.join("\n"));
    let more = |p: &str, region: &str| {
        format!(
            r#"{{"event_id":"{p}-late","kind":"complaint.filed","occurred_at":"2026-11-06T11:00:00+08:00","center_id":"{p}","region":"{region}","window_id":"{p}-W01","staff_id":"{p}-S01","complaint_id":"{p}-K2","category":"fee"}}"#
        )
    };
    tokio::task::block_in_place(|| c.send(&admin, &[more("XY", "430624"), more("PJ", "430626")]));
    caught_up(&node).await;
    let later = tokio::task::block_in_place(|| feed.drain(1500));
    assert!(
        later.iter().any(|m| m.contains("PJ-K2")),
        "平江's new complaint arrives: {later:?}"
    );
    assert_no_xy("the live feed", &later.join("\n"));
    let spied = tokio::task::block_in_place(|| spy.drain(500));
    assert_no_xy("a feed filtered to 湘阴's centre", &spied.join("\n"));

    tokio::task::block_in_place(|| node.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

/// What 湘阴 sees after its own events, with or without 平江's publisher forging events about it.
struct XyView {
    history: Vec<Value>,
    windows: Value,
    ladder: Value,
    perf: Value,
    dead: Vec<Value>,
    resend: Value,
}

/// Run 湘阴's day (window staffed then left empty, an overdue case, complaints) through a fresh
/// embedded node, with `forged` lines posted by 平江's publisher in between.
async fn xy_day(tag: &str, forged: &[String]) -> XyView {
    let (node, c, _dir) = two_counties(&format!("forgery-{tag}")).await;
    let xy_ev = |id: &str, kind: &str, at: &str, extra: &str| {
        format!(
            r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-{at}:00+08:00","reported_at":"2026-11-{at}:01+08:00","center_id":"XY","region":"430624","window_id":"XY-W01","staff_id":"XY-S01"{extra}}}"#
        )
    };
    let mut xy = county("XY", "430624");
    // The member leaves the open window at 11:00: 空岗 15 minutes later.
    xy.push(xy_ev("XY-6", "staff.signed_out", "02T11:00", ""));
    // An integrity complaint whose event id 平江 tries to take first.
    let integrity = xy_ev(
        "XY-9",
        "complaint.filed",
        "02T11:30",
        r#","complaint_id":"XY-K2","category":"integrity""#,
    );
    let tick = xy_ev("XY-10", "window.paused", "06T10:00", "");
    tokio::task::block_in_place(|| {
        let xy_pub = c.token("xy-pub");
        let pj_pub = c.token("pj-pub");
        c.send(&xy_pub, &xy);
        if !forged.is_empty() {
            // One request: lines naming another jurisdiction's centre, window or staff member
            // are refused at the door (the field named in the answer); the others are taken,
            // and reach only 平江's own records.
            let (st, text) = c.call("POST", "/api/v1/events", &pj_pub, &forged.join("\n"));
            assert_eq!(st, 422, "{text}");
            let answer: Value = serde_json::from_str(&text).expect("json");
            let outcome: Vec<String> = answer["results"]
                .as_array()
                .expect("results")
                .iter()
                .map(|r| match r["reason"].as_str() {
                    Some(reason) => format!("{reason} {}", r["field"].as_str().unwrap_or("")),
                    None => r["status"].as_str().unwrap_or("").to_string(),
                })
                .collect();
            assert_eq!(
                outcome,
                [
                    "accepted",
                    "accepted",
                    "region_mismatch center_id",
                    "region_mismatch window_id",
                    "region_mismatch staff_id",
                    "region_mismatch staff_id",
                    "accepted"
                ],
                "{text}"
            );
        }
        c.send(&xy_pub, std::slice::from_ref(&integrity));
        c.send(&xy_pub, std::slice::from_ref(&tick));
    });
    caught_up(&node).await;
    tokio::task::block_in_place(|| {
        let admin = c.token("province-admin");
        let city = c.token("city-auditor");
        let history = c.json(
            "/api/v1/history/alerts?month=2026-11&region=430624&limit=500",
            &city,
        )["items"]
            .as_array()
            .expect("items")
            .clone();
        let dead = c.json("/api/v1/dead-letters?limit=500", &admin)["items"]
            .as_array()
            .expect("items")
            .clone();
        let (st, resend) = c.call("POST", "/api/v1/events", &c.token("xy-pub"), &integrity);
        assert_eq!(st, 200, "{resend}");
        // The answers without their wall-clock `as_of`.
        let at_rest = |mut v: Value| {
            if let Some(o) = v.as_object_mut() {
                o.remove("as_of");
            }
            v
        };
        XyView {
            history,
            windows: at_rest(c.json("/api/v1/windows?center=XY", &admin)),
            ladder: at_rest(c.json("/api/v1/alerts?staff=XY-S01&limit=500", &admin)),
            perf: at_rest(c.json(
                "/api/v1/performance?by=staff&month=2026-11&region=430624",
                &city,
            )),
            dead,
            resend: serde_json::from_str(&resend).expect("json"),
        }
    })
}

/// 平江's publisher (region 430626 is all it may send) forges events about 湘阴 every way the
/// issue that found this tried: completing 湘阴's overdue case, opening 湘阴's window and signing
/// its staff in, fees that would push 湘阴's staff up the discipline ladder, resolving 湘阴's
/// complaint, and taking the event id of 湘阴's integrity complaint first. 湘阴's alerts, window
/// tiles, ladder and 绩效 must be exactly those of the same day without the forgeries, and
/// the refusals are dead letters naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_cannot_forge_or_hide_another_countys_record() {
    let pj = |id: &str, kind: &str, at: &str, center: &str, extra: &str| {
        format!(
            r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-{at}:00+08:00","center_id":"{center}","region":"430626"{extra}}}"#
        )
    };
    let forged = vec![
        // The event id of 湘阴's integrity complaint, taken first (a harmless 平江 event).
        pj(
            "XY-9",
            "window.opened",
            "02T09:30",
            "PJ",
            r#","window_id":"PJ-W01""#,
        ),
        // 湘阴's case completed from 平江's centre (reaches only 平江's own "XY-C1") ...
        pj(
            "f1",
            "case.completed",
            "02T12:00",
            "PJ",
            r#","case_id":"XY-C1","result":"approved""#,
        ),
        // ... and naming 湘阴's centre.
        pj(
            "f2",
            "case.completed",
            "02T12:00",
            "XY",
            r#","case_id":"XY-C1","result":"approved""#,
        ),
        // 湘阴's window opened and its staff signed in, hiding the 空岗.
        pj(
            "f3",
            "staff.signed_in",
            "02T11:05",
            "PJ",
            r#","window_id":"XY-W01","staff_id":"XY-S01""#,
        ),
        pj(
            "f4",
            "staff.signed_in",
            "02T11:05",
            "PJ",
            r#","window_id":"PJ-W01","staff_id":"XY-S01""#,
        ),
        // Fees without a case charged by 湘阴's member: cards for the ladder.
        pj(
            "f5",
            "fee.charged",
            "02T13:00",
            "PJ",
            r#","window_id":"PJ-W01","staff_id":"XY-S01","item_code":"P1","receipt_no":"R1","amount_fen":100,"payer_id":"p""#,
        ),
        // 湘阴's complaint resolved as unfounded.
        pj(
            "f6",
            "complaint.resolved",
            "02T14:00",
            "PJ",
            r#","complaint_id":"XY-K1","substantiated":false"#,
        ),
    ];
    let clean = xy_day("clean", &[]).await;
    let attacked = xy_day("attacked", &forged).await;

    let rules_of = |v: &XyView| -> Vec<String> {
        v.history
            .iter()
            .map(|a| format!("{} {} {}", a["rule"], a["level"], a["status"]))
            .collect()
    };
    for want in [
        r#""case.overdue" "yellow" "open""#,
        r#""window.unstaffed""#,
        r#""complaint.filed" "red""#,
    ] {
        assert!(
            rules_of(&clean).iter().any(|r| r.contains(want)),
            "湘阴 has a {want} to lose: {:?}",
            rules_of(&clean)
        );
    }
    assert_eq!(
        clean.history, attacked.history,
        "湘阴's alert history is the same with and without 平江's forgeries"
    );
    assert_eq!(clean.windows, attacked.windows, "湘阴's window tiles");
    assert_eq!(
        clean.ladder, attacked.ladder,
        "湘阴's member's alerts and ladder"
    );
    assert_eq!(clean.perf, attacked.perf, "湘阴's 绩效");

    // The refusals are dead letters naming the field that crosses jurisdictions.
    let refused: Vec<(String, String)> = attacked
        .dead
        .iter()
        .filter(|d| d["reason"] == "region_mismatch")
        .map(|d| {
            (
                d["field"].as_str().unwrap_or_default().to_string(),
                d["raw"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (field, event) in [
        ("center_id", "\"f2\""),
        ("window_id", "\"f3\""),
        ("staff_id", "\"f4\""),
        ("staff_id", "\"f5\""),
    ] {
        assert!(
            refused
                .iter()
                .any(|(f, raw)| f == field && raw.contains(event)),
            "{event} refused for {field}: {refused:?}"
        );
    }
    assert!(clean.dead.is_empty(), "{:?}", clean.dead);
    // 湘阴 sending its complaint again is told it is a duplicate, not accepted twice.
    for view in [&clean, &attacked] {
        assert_eq!(
            view.resend["results"][0]["status"], "duplicate",
            "{}",
            view.resend
        );
        assert_eq!(view.resend["duplicates"], 1);
        assert_eq!(view.resend["accepted"], 0);
    }
}

/// Source health (SPEC §10): a county's leader sees its own sources — named from sources.csv,
/// an unlisted one unnamed — with their figures, and never the other county's; asking for the
/// other county is refused; roles other than admin and leader are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_health_shows_only_the_jurisdictions_sources() {
    let dir = std::env::temp_dir().join(format!("jiancha-sources-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = EmbeddedConfig::new(
        dir.join("data"),
        Arc::new(reference()),
        Policy::default(),
        "127.0.0.1:0".parse().expect("addr"),
        dir.join("users.toml"),
        users(),
        TokenKey::new(&[7u8; 32]).expect("key"),
    );
    cfg.clock = Clock::Event;
    let listed =
        |source: &str, name: &str, center: &str, region: &str| dashboard_api::SourceEntry {
            source: source.into(),
            name: name.into(),
            center_id: center.into(),
            region: region.into(),
            vendor: "某厂商".into(),
            transport: "poll".into(),
        };
    cfg.sources = vec![
        listed("sdjc:pj", "平江审批系统", "PJ", "430626"),
        listed("sdjc:xy", "湘阴审批系统", "XY", ""),
    ];
    let node = start(cfg).await.expect("start");
    let c = Client {
        base: format!("http://{}", node.addr),
        addr: node.addr,
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into(),
    };
    let with_source = |lines: Vec<String>, source: &str| -> Vec<String> {
        lines
            .into_iter()
            .map(|l| l.replacen('{', &format!(r#"{{"source":"{source}","#), 1))
            .collect()
    };
    let mut events = with_source(county("PJ", "430626"), "sdjc:pj");
    events.extend(with_source(county("XY", "430624"), "sdjc:xy"));
    // One event from a system sources.csv does not list.
    events.push(
        r#"{"source":"vendor:other","event_id":"PJ-9","kind":"window.paused","occurred_at":"2026-11-03T10:00:00+08:00","reported_at":"2026-11-03T12:00:00+08:00","center_id":"PJ","region":"430626","window_id":"PJ-W01"}"#.into(),
    );
    tokio::task::block_in_place(|| {
        let admin = c.token("province-admin");
        c.send(&admin, &events);
        // 平江's window system: one event of its own and one broken line (a dead letter).
        let publisher = c.token("pj-pub");
        c.send(
            &publisher,
            &[r#"{"event_id":"PJ-P1","kind":"window.closed","occurred_at":"2026-11-02T17:00:00+08:00","center_id":"PJ","region":"430626","window_id":"PJ-W01"}"#.into()],
        );
        let (st, text) = c.call(
            "POST",
            "/api/v1/events",
            &publisher,
            r#"{"event_id":"PJ-BROKEN","kind":"case.accepted"}"#,
        );
        assert_eq!(st, 422, "{text}");
    });
    caught_up(&node).await;

    tokio::task::block_in_place(|| {
        let path = "/api/v1/sources?from=2026-11-01&to=2026-11-07";
        let leader = c.token("pj-leader");
        let answer = c.json(path, &leader);
        let text = answer.to_string();
        for mark in ["sdjc:xy", "湘阴", "430624"] {
            assert!(!text.contains(mark), "平江's leader sees {mark:?}: {text}");
        }
        let sources = answer["sources"].as_array().expect("sources");
        let names: Vec<&str> = sources
            .iter()
            .filter_map(|s| s["source"].as_str())
            .collect();
        assert_eq!(
            names,
            ["http:pj-pub", "sdjc:pj", "vendor:other"],
            "{answer}"
        );
        assert_eq!(answer["days"].as_array().map(Vec::len), Some(7));
        let pj = &sources[1];
        assert_eq!(pj["name"], "平江审批系统");
        assert_eq!(pj["events"], 5, "{pj}");
        // All five on 2 November, the second day of the period.
        assert_eq!(
            pj["per_day"],
            serde_json::json!([0, 5, 0, 0, 0, 0, 0]),
            "{pj}"
        );
        assert_eq!(pj["by_kind"]["case.accepted"], 1, "{pj}");
        // Each reported a second after it happened.
        assert_eq!(
            (
                pj["delay_p50_seconds"].as_i64(),
                pj["delay_p95_seconds"].as_i64()
            ),
            (Some(1), Some(1))
        );
        assert_eq!(pj["last_reported_at"], "2026-11-02T10:30:01+08:00", "{pj}");
        // Weeks ago, by the wall clock: silent since the 60th office minute after it.
        assert_eq!(pj["status"], "silent", "{pj}");
        assert_eq!(pj["silent_since"], "2026-11-02T11:30:01+08:00", "{pj}");
        let other = &sources[2];
        assert_eq!(
            (other["listed"].as_bool(), other["name"].is_null()),
            (Some(false), true),
            "{other}"
        );
        assert_eq!(other["delay_p50_seconds"], 7200, "{other}");
        // Dead letters count by when they were received (today): the default period, the
        // last two weeks, has the broken line. Its publisher gave no `reported_at`, so its
        // delay runs from 2 November to the receipt: weeks, hence late.
        assert_eq!(sources[0]["status"], "late", "{}", sources[0]);
        let recent = c.json("/api/v1/sources", &leader);
        let publisher = recent["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .find(|s| s["source"] == "http:pj-pub")
            .expect("the publisher's source")
            .clone();
        assert_eq!(
            publisher["dead_letters"],
            serde_json::json!({"missing_field": 1}),
            "{publisher}"
        );

        let (st, text) = c.call("GET", "/api/v1/sources?region=430624", &leader, "");
        assert_eq!(st, 403, "{text}");
        for user in ["pj-inspector", "pj-auditor"] {
            let (st, text) = c.call("GET", path, &c.token(user), "");
            assert_eq!(st, 403, "{user}: {text}");
        }
        // The province sees both counties' sources (so the county's answer was not just empty).
        let province = c.json(path, &c.token("province-admin"));
        let names: Vec<&str> = province["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .filter_map(|s| s["source"].as_str())
            .collect();
        assert!(
            names.contains(&"sdjc:xy") && names.contains(&"sdjc:pj"),
            "{province}"
        );
    });
    tokio::task::block_in_place(|| node.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

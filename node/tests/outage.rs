//! Embedded mode when its SQLite file is locked by someone else (a backup tool, an operator's
//! `sqlite3` shell left in a transaction): window systems get a 503 that says why and that
//! nothing was kept, and once the lock is gone the same request is accepted and nothing is lost
//! or doubled. And when the engine's outputs cannot be stored (a write that keeps failing),
//! ingest goes on, the dashboards show nothing unstored, no checkpoint runs ahead of them, and
//! once writes succeed again everything appears once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use ingest::reference_dir;
use node::embedded::{start, Clock, EmbeddedConfig};
use serde_json::Value;

const PASSWORD: &str = "outage-password";

fn users() -> Users {
    let hash = hash_password(PASSWORD).expect("hash");
    let mut users = Users::default();
    // The admin scrapes /metrics, which is for province-wide operators (docs/SECURITY.md).
    for (name, role, region) in [
        ("pub", Role::Publisher, "430626"),
        ("audit", Role::Auditor, "430626"),
        ("insp", Role::Inspector, "430626"),
        ("adm", Role::Admin, "43"),
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

fn event(id: &str, kind: &str, at: &str, extra: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-02T{at}:00+08:00","center_id":"PJ-ZWFW","region":"430626","window_id":"PJ-W01","staff_id":"PJ0101","case_id":"K1"{extra}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_refuses_with_a_reason_and_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("jiancha-outage-{}", std::process::id()));
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
        TokenKey::new(&[3u8; 32]).expect("key"),
    );
    cfg.clock = Clock::Event;
    let node = start(cfg).await.expect("start");
    let base = format!("http://{}", node.addr);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let login = |user: &str| {
        let mut r = agent
            .post(&format!("{base}/api/v1/auth/login"))
            .send_json(serde_json::json!({"username": user, "password": PASSWORD}))
            .expect("login");
        let v: Value = r.body_mut().read_json().expect("json");
        v["token"].as_str().expect("token").to_string()
    };
    let send = |token: &str, body: &str| {
        let mut r = agent
            .post(&format!("{base}/api/v1/events"))
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/x-ndjson")
            .send(body.as_bytes())
            .expect("post");
        let status = r.status().as_u16();
        let v: Value = r.body_mut().read_json().expect("json");
        (status, v)
    };
    let accepted = event(
        "e1",
        "case.accepted",
        "09:00",
        r#","item_code":"430626-BDC-001","channel":"hall""#,
    );
    let stage = event(
        "e2",
        "case.stage",
        "10:00",
        r#","stage":"undertake","result":"agree""#,
    );
    tokio::task::block_in_place(|| {
        let publisher = login("pub");
        assert_eq!(send(&publisher, &accepted).0, 200);

        // Someone holds the write lock.
        let other = rusqlite::Connection::open(dir.join("data/jiancha.db")).expect("open");
        other.execute_batch("BEGIN EXCLUSIVE;").expect("lock");
        let asked = Instant::now();
        let (status, body) = send(&publisher, &stage);
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "unavailable", "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("locked") && message.contains("again"),
            "the window system is told why and what to do: {message}"
        );
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "answered within the busy timeout, not hung"
        );
        drop(other);

        // The same request again: accepted, and the first attempt left nothing behind.
        let (status, body) = send(&publisher, &stage);
        assert_eq!(status, 200, "{body}");
    });
    let end = node.store.log_end().await.expect("end");
    for _ in 0..200 {
        if node.applied() >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::task::block_in_place(|| {
        let auditor = login("audit");
        let mut r = agent
            .get(&format!("{base}/api/v1/cases/K1/timeline"))
            .header("Authorization", &format!("Bearer {auditor}"))
            .call()
            .expect("timeline");
        let v: Value = r.body_mut().read_json().expect("json");
        let ids: Vec<&str> = v["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["event_id"].as_str())
            .collect();
        assert_eq!(ids, ["e1", "e2"], "each event once: {v}");
        node.shutdown();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_that_cannot_be_stored_are_not_shown_nor_checkpointed_and_appear_once_stored() {
    let dir = std::env::temp_dir().join(format!("jiancha-writer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/pingjiang");
    let loaded = reference_dir::load(&root, None).expect("reference");
    let config = || {
        let mut cfg = EmbeddedConfig::new(
            dir.join("data"),
            Arc::new(loaded.reference.clone()),
            loaded.policy.clone(),
            "127.0.0.1:0".parse().expect("addr"),
            dir.join("users.toml"),
            users(),
            TokenKey::new(&[3u8; 32]).expect("key"),
        );
        cfg.clock = Clock::Event;
        cfg.checkpoint_interval = Duration::from_millis(100);
        cfg
    };
    let node = start(config()).await.expect("start");
    let db = dir.join("data/jiancha.db");
    // Every alert write fails while `blocked` has a row: the engine's output write fails as a
    // whole (one transaction) and is retried.
    let sql = rusqlite::Connection::open(&db).expect("open");
    sql.execute_batch(
        "CREATE TABLE blocked (x INTEGER);
         INSERT INTO blocked VALUES (1);
         CREATE TRIGGER block_alerts BEFORE INSERT ON alerts WHEN EXISTS (SELECT 1 FROM blocked)
         BEGIN SELECT RAISE(ABORT, 'alert writes blocked by the test'); END;",
    )
    .expect("block");
    let checkpointed = |sql: &rusqlite::Connection| -> i64 {
        sql.query_row(
            "SELECT COALESCE(MAX(next_offset), 0) FROM checkpoints",
            [],
            |r| r.get(0),
        )
        .expect("checkpoints")
    };
    let stored_alerts = |sql: &rusqlite::Connection| -> i64 {
        sql.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0))
            .expect("alerts")
    };
    let base = format!("http://{}", node.addr);
    let client = Client::new(&base);
    let complaint = |id: &str, at: &str| {
        event(
            id,
            "complaint.filed",
            at,
            &format!(r#","complaint_id":"C-{id}","category":"integrity""#),
        )
    };
    tokio::task::block_in_place(|| {
        let publisher = client.login("pub");
        let (status, body) = client.send(&publisher, &complaint("c1", "09:00"));
        assert_eq!(
            status, 200,
            "ingest does not wait for the engine's writes: {body}"
        );
        let (status, body) = client.send(&publisher, &complaint("c2", "09:05"));
        assert_eq!(status, 200, "{body}");
        std::thread::sleep(Duration::from_millis(1500));
        let inspector = client.login("insp");
        assert_eq!(
            client.live_alerts(&inspector),
            0,
            "the dashboards show no alert that is not stored"
        );
        assert_eq!(stored_alerts(&sql), 0);
        assert_eq!(
            checkpointed(&sql),
            0,
            "no checkpoint covers entries whose outputs are not stored"
        );
        assert_eq!(
            node.applied(),
            0,
            "not applied until its outputs are stored"
        );
        let admin = client.login("adm");
        assert_eq!(
            client.metric(
                &admin,
                r#"jiancha_events_consumed_total{kind="complaint.filed"}"#
            ),
            Some(2.0),
            "the engine went on with the log while its outputs waited to be stored"
        );

        sql.execute("DELETE FROM blocked", []).expect("unblock");
        let until = Instant::now() + Duration::from_secs(30);
        while node.applied() < 2 {
            assert!(
                Instant::now() < until,
                "applied once its outputs are stored"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let shown = client.live_alerts(&inspector);
        assert!(shown >= 2, "both red cards, at least: {shown}");
        assert_eq!(
            stored_alerts(&sql),
            shown as i64,
            "every alert shown is stored, once"
        );
        while checkpointed(&sql) < 3 {
            assert!(Instant::now() < until, "the checkpoint follows its outputs");
            std::thread::sleep(Duration::from_millis(50));
        }
        node.shutdown();
    });

    // Restarted from that checkpoint, nothing is derived twice.
    let node = start(config()).await.expect("restart");
    let client = Client::new(&format!("http://{}", node.addr));
    tokio::task::block_in_place(|| {
        let inspector = client.login("insp");
        let shown = client.live_alerts(&inspector);
        assert!(shown >= 2, "{shown}");
        assert_eq!(stored_alerts(&sql), shown as i64, "nothing derived twice");
        node.shutdown();
    });
    drop(sql);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dashboard's view of one embedded process.
struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    fn new(base: &str) -> Client {
        Client {
            base: base.to_string(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        }
    }

    fn login(&self, user: &str) -> String {
        let mut r = self
            .agent
            .post(&format!("{}/api/v1/auth/login", self.base))
            .send_json(serde_json::json!({"username": user, "password": PASSWORD}))
            .expect("login");
        let v: Value = r.body_mut().read_json().expect("json");
        v["token"].as_str().expect("token").to_string()
    }

    fn send(&self, token: &str, body: &str) -> (u16, Value) {
        let mut r = self
            .agent
            .post(&format!("{}/api/v1/events", self.base))
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/x-ndjson")
            .send(body.as_bytes())
            .expect("post");
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().expect("json"))
    }

    /// One series of `/metrics`.
    fn metric(&self, token: &str, series: &str) -> Option<f64> {
        let mut r = self
            .agent
            .get(&format!("{}/metrics", self.base))
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("metrics");
        let text = r.body_mut().read_to_string().expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Alerts on the live dashboards (the hub).
    fn live_alerts(&self, token: &str) -> usize {
        let mut r = self
            .agent
            .get(&format!("{}/api/v1/alerts", self.base))
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("alerts");
        let v: Value = r.body_mut().read_json().expect("json");
        v["items"].as_array().expect("items").len()
    }
}

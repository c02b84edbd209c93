//! Embedded mode end to end: a simulated hall's events posted over HTTP, the engine's alerts in
//! SQLite and on the API equal to a replay of the same events, a restart that resumes from the
//! checkpoint without losing or repeating anything, and invalid lines kept as dead letters.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use dashboard_api::wall_now;
use ingest::decode::{decode_str, DecodeOptions};
use node::embedded::{start, Clock, Embedded, EmbeddedConfig};
use rules::{AlertStatus, Day, Engine, Policy, Reference};
use serde_json::Value;
use sim::{Profile, Rates, Simulator, World};
use store::{AlertFilter, Store};
use support::caught_up;

const PASSWORD: &str = "demo-password-1";

fn users() -> Users {
    let hash = hash_password(PASSWORD).expect("hash");
    let mut users = Users::default();
    // The admin scrapes /metrics, which is for province-wide operators (docs/SECURITY.md).
    for (name, role, region) in [
        ("pub", Role::Publisher, "430626"),
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

fn config(dir: &Path, reference: Arc<Reference>) -> EmbeddedConfig {
    let users_path = dir.join("users.toml");
    let mut cfg = EmbeddedConfig::new(
        dir.join("data"),
        reference,
        Policy::default(),
        "127.0.0.1:0".parse().expect("addr"),
        users_path,
        users(),
        TokenKey::new(&[7u8; 32]).expect("key"),
    );
    cfg.clock = Clock::Event;
    cfg.checkpoint_interval = Duration::from_millis(200);
    cfg.batch = 700;
    cfg
}

fn token(node: &Embedded, user: &str) -> String {
    let url = format!("http://{}/api/v1/auth/login", node.addr);
    let mut resp = ureq::post(&url)
        .send_json(serde_json::json!({"username": user, "password": PASSWORD}))
        .expect("login");
    let body: Value = resp.body_mut().read_json().expect("json");
    body["token"].as_str().expect("token").to_string()
}

/// POST lines in batches; returns (status, answer) of the last batch.
fn post(node: &Embedded, token: &str, lines: &[String]) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut last = (0, Value::Null);
    for chunk in lines.chunks(2000) {
        let mut resp = agent
            .post(&format!("http://{}/api/v1/events", node.addr))
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/x-ndjson")
            .send(chunk.join("\n").as_bytes())
            .expect("post");
        last = (
            resp.status().as_u16(),
            resp.body_mut().read_json().expect("json"),
        );
    }
    last
}

/// Open alert ids a replay of `lines` gives.
fn replay(reference: &Arc<Reference>, lines: &[String]) -> BTreeSet<String> {
    let policy = Policy::default();
    let opts = DecodeOptions::replay(&policy);
    let mut engine = Engine::new(reference.clone(), policy);
    let mut out = Vec::new();
    for l in lines {
        if let Ok(ev) = decode_str(l, &opts) {
            let _ = engine.on_event(&ev, &mut out);
        }
    }
    let mut open = BTreeSet::new();
    for a in out {
        // A cleared warning (its case finished in time) is no longer open either.
        if matches!(a.status, AlertStatus::Retracted | AlertStatus::Cleared) {
            open.remove(&a.alert_id);
        } else {
            open.insert(a.alert_id);
        }
    }
    open
}

async fn stored_open(node: &Embedded) -> BTreeSet<String> {
    let rows = node
        .store
        .alerts(&AlertFilter {
            limit: 100_000,
            ..AlertFilter::default()
        })
        .await
        .expect("alerts");
    rows.into_iter()
        .filter(|r| r.status == "open")
        .map(|r| r.alert_id)
        .collect()
}

fn api_open(node: &Embedded, token: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let url = format!(
            "http://{}/api/v1/alerts?status=open&limit=500{cursor}",
            node.addr
        );
        let mut resp = ureq::get(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("alerts");
        let page: Value = resp.body_mut().read_json().expect("json");
        for a in page["items"].as_array().expect("items") {
            ids.insert(a["alert_id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hall_runs_on_one_binary_and_resumes_after_a_restart_without_loss_or_repeats() {
    let dir = std::env::temp_dir().join(format!("jiancha-embedded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let world = World::new(&Profile::hall(), 5);
    let reference = Arc::new(Reference::parse(&world.reference_files()).expect("reference"));
    // Two working weeks ending before today (events may not come from the future).
    let start_day = Day::from_ymd(2026, 10, 26).expect("day");
    let lines: Vec<String> = Simulator::new(world, Rates::default(), 5, start_day, 14)
        .map(|(_, l)| l)
        .collect();
    assert!(wall_now() > start_day.plus(14).start());
    let half = lines.len() / 2;

    // First run: half the events, plus one bad line.
    let node = start(config(&dir, reference.clone())).await.expect("start");
    let publisher = token(&node, "pub");
    let mut first: Vec<String> = lines[..half].to_vec();
    first.push(r#"{"event_id":"bad","kind":"case.teleported"}"#.into());
    let (status, answer) = tokio::task::block_in_place(|| post(&node, &publisher, &first));
    assert_eq!(status, 422, "the last batch carries the bad line: {answer}");
    assert_eq!(answer["rejected"], 1);
    caught_up(&node).await;
    let expected_half = replay(&reference, &lines[..half]);
    assert!(!expected_half.is_empty());
    assert_eq!(stored_open(&node).await, expected_half);
    let inspector = token(&node, "insp");
    let open = tokio::task::block_in_place(|| api_open(&node, &inspector));
    assert_eq!(open, expected_half, "the API shows what the engine stored");
    assert_eq!(node.store.count("dead_letters").await.expect("count"), 1);
    // Let a checkpoint land: then nothing waits for one, and idle time adds nothing (a quiet
    // night pages no one). The series are cluster mode's, as partition 0.
    let admin = token(&node, "adm");
    let scrape = |series: &str| {
        let text = tokio::task::block_in_place(|| {
            ureq::get(&format!("http://{}/metrics", node.addr))
                .header("Authorization", &format!("Bearer {admin}"))
                .call()
                .expect("metrics")
                .body_mut()
                .read_to_string()
                .expect("text")
        });
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .parse::<f64>()
                .ok()
        })
    };
    let pending = r#"jiancha_checkpoint_pending_seconds{partition="0"}"#;
    for _ in 0..100 {
        if scrape(pending) == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(scrape(pending), Some(0.0), "idle and checkpointed");
    assert_eq!(scrape(r#"jiancha_consumer_lag{partition="0"}"#), Some(0.0));
    assert_eq!(
        scrape(r#"jiancha_http_events_total{outcome="rejected"}"#),
        Some(1.0)
    );
    assert!(scrape(r#"jiancha_events_consumed_total{kind="case.accepted"}"#) > Some(0.0));
    assert_eq!(
        scrape(r#"jiancha_store_write_failures_total{kind="refused",sink="sqlite"}"#),
        Some(0.0)
    );
    assert!(scrape(r#"jiancha_checkpoint_bytes{partition="0"}"#) > Some(0.0));
    // Then a few more events that only the log will cover.
    let extra = &lines[half..half + 500];
    tokio::task::block_in_place(|| post(&node, &publisher, extra));
    caught_up(&node).await;
    let applied_before = node.applied();
    tokio::task::block_in_place(|| node.shutdown());

    // Second run on the same directory: state restored, the rest of the stream.
    let node = start(config(&dir, reference.clone()))
        .await
        .expect("restart");
    assert_eq!(node.applied(), applied_before, "restored where it stopped");
    let publisher = token(&node, "pub");
    let inspector = token(&node, "insp");
    let loaded = tokio::task::block_in_place(|| api_open(&node, &inspector));
    assert_eq!(
        loaded,
        replay(&reference, &lines[..half + 500]),
        "the API loads what was stored before the restart"
    );
    // Re-sending an already stored batch is harmless (duplicates by event_id).
    tokio::task::block_in_place(|| post(&node, &publisher, extra));
    tokio::task::block_in_place(|| post(&node, &publisher, &lines[half + 500..]));
    caught_up(&node).await;
    let expected = replay(&reference, &lines);
    assert_eq!(
        stored_open(&node).await,
        expected,
        "no alert lost or repeated"
    );
    let open = tokio::task::block_in_place(|| api_open(&node, &inspector));
    assert_eq!(open, expected);
    let (events, windows) = (
        node.store.count("events").await.expect("count"),
        node.store.window_status().await.expect("windows"),
    );
    assert_eq!(events as usize, lines.len(), "each event stored once");
    assert_eq!(windows.len(), 40, "every window of the hall has a status");
    tokio::task::block_in_place(|| node.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines every one of which is refused (an unknown kind), numbered 1..=n in their request.
fn refused_lines(request: usize, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!(r#"{{"event_id":"bad-{request}-{i}","kind":"case.teleported"}}"#))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_refused_lines_keeps_every_dead_letter() {
    let dir = std::env::temp_dir().join(format!("jiancha-dead-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let world = World::new(&Profile::hall(), 5);
    let reference = Arc::new(Reference::parse(&world.reference_files()).expect("reference"));
    let node = start(config(&dir, reference)).await.expect("start");
    let publisher = token(&node, "pub");
    // Five requests of ten refused lines, one after the other: they land within a second or
    // two, and their lines share numbers (1..=10), which is all a dead letter's source used to
    // tell them apart by.
    let started = std::time::Instant::now();
    for request in 0..5 {
        let (status, answer) =
            tokio::task::block_in_place(|| post(&node, &publisher, &refused_lines(request, 10)));
        assert_eq!(
            (status, answer["rejected"].as_u64()),
            (422, Some(10)),
            "{answer}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(node.store.count("dead_letters").await.expect("count"), 50);
    let stored = node
        .store
        .dead_letters(&store::DeadLetterQuery {
            from: 0,
            to: u32::MAX,
            limit: 1000,
            ..store::DeadLetterQuery::default()
        })
        .await
        .expect("read");
    let raws: BTreeSet<&str> = stored.iter().map(|d| d.raw.as_str()).collect();
    assert_eq!(raws.len(), 50, "every refused line, once");
    assert!(stored.iter().all(|d| d.source.starts_with("http:pub:")));
    tokio::task::block_in_place(|| node.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `jiancha user revoke` (the users file's `token_epoch` raised) reaches a running node through
/// its users-file watcher: an open dashboard is closed with 1008 within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_in_the_users_file_closes_an_open_dashboard_within_seconds() {
    let dir = std::env::temp_dir().join(format!("jiancha-revoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let world = World::new(&Profile::hall(), 5);
    let reference = Arc::new(Reference::parse(&world.reference_files()).expect("reference"));
    let cfg = config(&dir, reference);
    let path = cfg.users_path.clone();
    cfg.users.save(&path).expect("users file");
    let node = start(cfg).await.expect("start");
    let inspector = token(&node, "insp");
    let url = format!("ws://{}/api/v1/live?access_token={inspector}", node.addr);
    let (close, waited) = tokio::task::block_in_place(|| {
        let (mut ws, _) = tungstenite::connect(url).expect("handshake");
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(15)))
                .expect("timeout");
        }
        assert!(
            matches!(ws.read(), Ok(tungstenite::Message::Text(_))),
            "snapshot"
        );
        let mut file = Users::load(&path).expect("users");
        assert!(file.revoke("insp"));
        file.save(&path).expect("save");
        let revoked = std::time::Instant::now();
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Close(frame)) => return (frame, revoked.elapsed()),
                Ok(_) => continue,
                Err(e) => panic!("no close frame after the revocation: {e}"),
            }
        }
    });
    let frame = close.expect("a close frame with a reason");
    assert_eq!(
        frame.code,
        tungstenite::protocol::frame::coding::CloseCode::Policy
    );
    assert!(frame.reason.contains("revoked"), "{}", frame.reason);
    assert!(waited < Duration::from_secs(8), "closed after {waited:?}");
    tokio::task::block_in_place(|| node.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

//! The ClickHouse backend against a real server (Debian's 18.16 here; current releases in
//! production). `./scripts/test.sh` starts one (deploy/local/clickhouse.sh). Run by hand without
//! a server, these tests skip; with `CI` set they fail instead.

use std::sync::atomic::{AtomicU32, Ordering};

use store::clickhouse::{AlertFilter, ClickHouseStore};
use store::rows::{ActionRow, AlertRow, DeadLetterRow, WindowStatusRow};
use store::StoreError;

fn url() -> String {
    std::env::var("JIANCHA_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A store on a fresh database, or `None` (skip) when no server runs and this is not CI.
async fn fresh_store(name: &str) -> Option<ClickHouseStore> {
    static N: AtomicU32 = AtomicU32::new(0);
    let db = format!(
        "jiancha_test_{name}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let store = ClickHouseStore::new(&url(), &db).expect("valid database name");
    match store.server_version().await {
        Ok(_) => Some(store),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipping: no ClickHouse at {} ({e}); ./scripts/test.sh starts one",
                url()
            );
            None
        }
        Err(e) => panic!("CI needs ClickHouse at {}: {e}", url()),
    }
}

fn alert(id: &str, region: &str, status: &str) -> AlertRow {
    AlertRow {
        alert_id: id.into(),
        rule: "case.overdue".into(),
        level: "yellow".into(),
        status: status.into(),
        version: u8::from(status == "retracted"),
        fired_at: 1_791_820_800, // 2026-10-13T00:00:00+08:00
        center_id: "PJ".into(),
        region: region.into(),
        department: "BDC".into(),
        window_id: "W01".into(),
        staff_id: "S001".into(),
        case_id: format!("case-{id}"),
        item_code: "P5".into(),
        subject: format!(r#"{{"case_id":"case-{id}"}}"#),
        message: "黄牌：办件已超过承诺时限".into(),
        evidence: r#"{"deadline_date":"2026-10-12"}"#.into(),
    }
}

#[tokio::test]
async fn migrate_creates_the_schema_once_and_the_self_test_reads_back() {
    let Some(store) = fresh_store("migrate").await else {
        return;
    };
    let version = store.server_version().await.expect("version");
    assert!(
        version.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "{version}"
    );
    assert_eq!(store.migrate().await.expect("migrate"), vec![1, 2, 3]);
    assert!(
        store.migrate().await.expect("again").is_empty(),
        "nothing left to apply"
    );
    for table in [
        "events",
        "alerts",
        "alert_actions",
        "dead_letters",
        "case_facts",
        "checkpoints",
        "window_status",
    ] {
        assert_eq!(
            store.count(table).await.expect(table),
            0,
            "{table} exists and is empty"
        );
    }
    store.self_test().await.expect("a write reads back");
    store.drop_database().await.expect("drop");
}

#[tokio::test]
async fn redelivered_alerts_never_show_twice_and_a_retraction_wins() {
    let Some(store) = fresh_store("alerts").await else {
        return;
    };
    store.migrate().await.expect("migrate");
    let first = vec![alert("a1", "430626", "open"), alert("a2", "430621", "open")];
    store.insert_alerts(&first).await.expect("insert");
    // At-least-once: the same batch again after a crash, then a retraction of a1, then the
    // open a1 once more (a replay) — which must not resurrect it.
    store.insert_alerts(&first).await.expect("redelivery");
    store
        .insert_alerts(&[alert("a1", "430626", "retracted")])
        .await
        .expect("retraction");
    store.insert_alerts(&first[..1]).await.expect("replay");
    assert_eq!(
        store.count("alerts").await.expect("count"),
        6,
        "raw rows are all kept"
    );

    let all = store.alerts(&AlertFilter::default()).await.expect("query");
    let mut seen: Vec<(&str, &str)> = all
        .iter()
        .map(|a| (a.alert_id.as_str(), a.status.as_str()))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, [("a1", "retracted"), ("a2", "open")]);
    let row = all.iter().find(|a| a.alert_id == "a2").expect("a2");
    assert_eq!(
        row, &first[1],
        "every column round-trips, Chinese text included"
    );

    let county = store
        .alerts(&AlertFilter {
            region_prefix: "430626".into(),
            ..AlertFilter::default()
        })
        .await
        .expect("scoped");
    assert_eq!(
        county.len(),
        1,
        "jurisdiction prefix 430626 sees only its own alert"
    );
    let open = store
        .alerts(&AlertFilter {
            status: Some("open".into()),
            ..AlertFilter::default()
        })
        .await
        .expect("open");
    assert_eq!(open.len(), 1);
    store.drop_database().await.expect("drop");
}

#[tokio::test]
async fn dead_letters_and_raw_events_are_kept() {
    let Some(store) = fresh_store("dead").await else {
        return;
    };
    store.migrate().await.expect("migrate");
    let row = DeadLetterRow {
        received_at: 1_791_820_800,
        source: "kafka:jiancha.events/3/1042".into(),
        reason: "missing_field".into(),
        field: "case_id".into(),
        message: "required when kind is case.accepted".into(),
        raw: r#"{"kind":"case.accepted"}"#.into(),
    };
    store.insert_dead_letters(&[row]).await.expect("insert");
    assert_eq!(store.count("dead_letters").await.expect("count"), 1);
    let event = store::rows::EventRow {
        event_id: "e1".into(),
        kind: "case.accepted".into(),
        occurred_at: 1_791_820_800,
        received_at: 1_791_820_801,
        center_id: "PJ".into(),
        region: "430626".into(),
        case_id: "C1".into(),
        raw: r#"{"kind":"case.accepted","reason":"材料齐全"}"#.into(),
    };
    store.insert_events(&[event]).await.expect("insert event");
    assert_eq!(store.count("events").await.expect("count"), 1);
    store.drop_database().await.expect("drop");
}

#[tokio::test]
async fn failures_are_classified_for_retry() {
    let Some(store) = fresh_store("errors").await else {
        return;
    };
    // No schema yet: the server refuses, and retrying would not help.
    let refused = store.count("alerts").await.expect_err("no such database");
    assert!(!refused.is_transient(), "{refused}");
    assert!(
        matches!(refused, StoreError::Refused { code: Some(_), .. }),
        "{refused}"
    );
    // Nothing listens there: an outage, worth retrying.
    let nowhere = ClickHouseStore::new("http://127.0.0.1:1", "jiancha").expect("store");
    let down = nowhere.server_version().await.expect_err("unreachable");
    assert!(down.is_transient(), "{down}");
    assert!(ClickHouseStore::new(&url(), "bad-name; DROP").is_err());
    assert!(
        store.count("system.users; --").await.is_err(),
        "only jiancha's tables"
    );
}

/// The finished cases of the bundled 平江 example, as the engine records them.
fn demo_facts() -> Vec<rules::CaseFact> {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/pingjiang");
    let loaded = ingest::reference_dir::load(&demo, None).expect("demo reference");
    let opts = ingest::DecodeOptions::replay(&loaded.policy);
    let mut engine = rules::Engine::new(std::sync::Arc::new(loaded.reference), loaded.policy);
    engine.collect_facts(true);
    let events = std::fs::read_to_string(demo.join("events.ndjson")).expect("events");
    let mut alerts = Vec::new();
    for line in events.lines() {
        if let Ok(ev) = ingest::decode_str(line, &opts) {
            let _ = engine.on_event(&ev, &mut alerts);
        }
    }
    engine.drain_facts()
}

#[tokio::test]
async fn case_facts_from_the_engine_are_stored_once_and_measured() {
    let Some(store) = fresh_store("facts").await else {
        return;
    };
    store.migrate().await.expect("migrate");
    let mut facts = demo_facts();
    assert_eq!(
        facts.len(),
        5,
        "five cases of the example are accepted and completed"
    );
    // Make one late, to see the rate move: its completion after its deadline.
    facts[0].on_time = false;
    let rows: Vec<store::rows::CaseFactRow> = facts.iter().map(Into::into).collect();
    store.insert_case_facts(&rows).await.expect("insert");
    store.insert_case_facts(&rows).await.expect("redelivery");
    let (on_time, finished) = store.on_time_rate("430626").await.expect("rate");
    assert_eq!((on_time, finished), (4, 5), "each case counted once");
    assert_eq!(
        store.on_time_rate("4307").await.expect("other city"),
        (0, 0)
    );
    store.drop_database().await.expect("drop");
}

#[tokio::test]
async fn checkpoints_alternate_slots_and_read_back_whole() {
    use store::clickhouse::{CheckpointKey, CHECKPOINT_CHUNK};
    let Some(store) = fresh_store("checkpoints").await else {
        return;
    };
    store.migrate().await.unwrap();
    let key = CheckpointKey {
        group_id: "jiancha",
        topic: "jiancha.events",
        partition: 3,
    };
    assert!(store.checkpoints(key).await.unwrap().is_empty());
    // Larger than one chunk, with a byte pattern that shows misordered chunks.
    let first: Vec<u8> = (0..CHECKPOINT_CHUNK + 1000)
        .map(|i| (i % 251) as u8)
        .collect();
    store.save_checkpoint(key, 0, 100, &first).await.unwrap();
    let second = b"second snapshot".to_vec();
    store.save_checkpoint(key, 1, 250, &second).await.unwrap();
    // Another partition's checkpoint is not this one's.
    let other = CheckpointKey {
        partition: 4,
        ..key
    };
    store.save_checkpoint(other, 0, 999, b"x").await.unwrap();

    let found = store.checkpoints(key).await.unwrap();
    let offsets: Vec<(u8, i64, u32)> = found
        .iter()
        .map(|m| (m.slot, m.next_offset, m.chunks))
        .collect();
    assert_eq!(offsets, vec![(1, 250, 1), (0, 100, 2)], "newest first");
    assert_eq!(store.checkpoint_data(key, &found[0]).await.unwrap(), second);
    assert_eq!(store.checkpoint_data(key, &found[1]).await.unwrap(), first);

    // The next checkpoint replaces slot 0 and keeps slot 1 as the fallback.
    store.save_checkpoint(key, 0, 400, b"third").await.unwrap();
    let found = store.checkpoints(key).await.unwrap();
    assert_eq!(found[0].next_offset, 400);
    assert_eq!(found[1].next_offset, 250);
    assert_eq!(
        store.checkpoint_data(key, &found[0]).await.unwrap(),
        b"third"
    );
    store.drop_database().await.unwrap();
}

#[tokio::test]
async fn the_api_loads_live_alerts_their_trails_and_window_status() {
    let Some(store) = fresh_store("api").await else {
        return;
    };
    store.migrate().await.expect("migrate");
    let old = |id: &str| AlertRow {
        fired_at: 1_700_000_000,
        ..alert(id, "430626", "open")
    };
    // Old: one still open (must load), one resolved (must not), one retracted (must not);
    // recent: loaded whatever its state.
    store
        .insert_alerts(&[
            old("old-open"),
            old("old-resolved"),
            AlertRow {
                fired_at: 1_700_000_000,
                ..alert("old-retracted", "430626", "retracted")
            },
            alert("recent", "430626", "open"),
        ])
        .await
        .expect("alerts");
    let action = |id: &str, action: &str, at: u32| ActionRow {
        alert_id: id.into(),
        action: action.into(),
        actor: "pj-inspector".into(),
        at,
        reason: "经核实已整改".into(),
        reply_deadline: 0,
        region: "430626".into(),
    };
    store
        .insert_actions(&[
            action("old-resolved", "acknowledge", 1_700_000_100),
            action("old-resolved", "resolve", 1_700_000_200),
        ])
        .await
        .expect("actions");
    let live = store.live_alerts(1_791_000_000).await.expect("live");
    let ids: Vec<&str> = live.iter().map(|a| a.alert_id.as_str()).collect();
    assert_eq!(ids, ["old-open", "recent"]);
    let trail = store.actions().await.expect("trail");
    assert_eq!(trail.len(), 2);
    assert_eq!(
        (trail[0].action.as_str(), trail[1].reason.as_str()),
        ("acknowledge", "经核实已整改")
    );

    let status = |at: u32, state: &str| WindowStatusRow {
        window_id: "W1".into(),
        center_id: "PJ".into(),
        region: "430626".into(),
        updated_at: at,
        doc: format!(r#"{{"state":"{state}"}}"#),
    };
    store
        .insert_window_status(&[status(100, "serving"), status(300, "paused")])
        .await
        .expect("status");
    store
        .insert_window_status(&[status(200, "open_idle")])
        .await
        .expect("late status");
    let windows = store.window_status().await.expect("windows");
    assert_eq!(windows.len(), 1);
    assert_eq!(
        windows[0].doc, r#"{"state":"paused"}"#,
        "the newest wins, not the last written"
    );

    let event = |id: &str, at: u32| store::rows::EventRow {
        event_id: id.into(),
        kind: "case.accepted".into(),
        occurred_at: at,
        received_at: at,
        center_id: "PJ".into(),
        region: "430626".into(),
        case_id: "K1".into(),
        raw: format!(r#"{{"event_id":"{id}"}}"#),
    };
    store
        .insert_events(&[event("e2", 200), event("e1", 100), event("e2", 200)])
        .await
        .expect("events");
    let timeline = store.case_events("K1", 100).await.expect("timeline");
    assert_eq!(timeline, [r#"{"event_id":"e1"}"#, r#"{"event_id":"e2"}"#]);
    store.drop_database().await.expect("drop");
}

//! The behaviour every [`Store`] backend must have, as checks both backends' test binaries run
//! (`conformance_tests!` makes one `#[tokio::test]` per check). A check starts from an empty,
//! unmigrated store and asserts only what a caller of the trait can observe.

use std::future::Future;

use store::rows::{ActionRow, AlertRow, CaseFactRow, DeadLetterRow, EventRow, WindowStatusRow};
use store::{AlertFilter, CheckpointKey, RowBatch, Store};

/// How a backend's [`Store::count`] counts re-delivered rows.
#[allow(dead_code)] // each test binary constructs one of the two
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Every row written (ClickHouse, before its background merges).
    Raw,
    /// Only the winning row of each key (SQLite upserts).
    Collapsed,
}

impl Counting {
    /// `raw` or `collapsed`, whichever this backend counts.
    pub fn pick(self, raw: u64, collapsed: u64) -> u64 {
        match self {
            Counting::Raw => raw,
            Counting::Collapsed => collapsed,
        }
    }
}

/// A fresh store for one test, and how to clean up after it.
pub trait Fixture {
    /// The backend.
    type S: Store;
    /// How its `count` counts.
    const COUNTING: Counting;
    /// The store.
    fn store(&self) -> &Self::S;
    /// Remove what the test created.
    fn finish(self) -> impl Future<Output = ()>;
}

/// One `#[tokio::test]` per check, on stores from `$fresh(name) -> Option<impl Fixture>`
/// (`None`: skip).
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!(@each $fresh;
            migrate_is_idempotent_and_the_self_test_reads_back,
            alerts_keep_the_highest_version_and_filter,
            live_alerts_are_recent_or_still_open,
            actions_come_oldest_first,
            window_status_keeps_the_latest,
            case_events_come_in_order_up_to_the_limit,
            on_time_rate_counts_each_case_once,
            dead_letters_collapse_by_time_and_source,
            checkpoints_alternate_slots_newest_first,
            a_written_batch_is_visible_to_every_read,
            facts_from_the_engine_round_trip,
        );
    };
    (@each $fresh:path; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                use conformance::Fixture as _;
                let Some(fixture) = $fresh(stringify!($check)).await else {
                    return;
                };
                conformance::$check(fixture.store(), conformance_counting(&fixture)).await;
                fixture.finish().await;
            }
        )+

        fn conformance_counting<F: conformance::Fixture>(_: &F) -> conformance::Counting {
            F::COUNTING
        }
    };
}

/// 2026-10-13T00:00:00+08:00.
pub const T0: u32 = 1_791_820_800;

/// An alert of rule `case.overdue` fired at [`T0`].
pub fn alert(id: &str, region: &str, status: &str) -> AlertRow {
    AlertRow {
        alert_id: id.into(),
        rule: "case.overdue".into(),
        level: "yellow".into(),
        status: status.into(),
        version: u8::from(status == "retracted"),
        fired_at: T0,
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

/// An action on an alert in 平江 (region 430626).
pub fn action(id: &str, action: &str, at: u32) -> ActionRow {
    ActionRow {
        alert_id: id.into(),
        action: action.into(),
        actor: "pj-inspector".into(),
        at,
        reason: "经核实已整改".into(),
        reply_deadline: 0,
        region: "430626".into(),
    }
}

/// Window W1's status at `at`.
pub fn status(window: &str, at: u32, state: &str) -> WindowStatusRow {
    WindowStatusRow {
        window_id: window.into(),
        center_id: "PJ".into(),
        region: "430626".into(),
        updated_at: at,
        doc: format!(r#"{{"state":"{state}"}}"#),
    }
}

/// A raw event of `case` at `at`.
pub fn event(id: &str, case: &str, at: u32) -> EventRow {
    EventRow {
        event_id: id.into(),
        kind: "case.accepted".into(),
        occurred_at: at,
        received_at: at + 1,
        center_id: "PJ".into(),
        region: "430626".into(),
        case_id: case.into(),
        raw: format!(r#"{{"event_id":"{id}","reason":"材料齐全"}}"#),
    }
}

/// A dead letter received at `at` from `source`.
pub fn dead(at: u32, source: &str, reason: &str) -> DeadLetterRow {
    DeadLetterRow {
        received_at: at,
        source: source.into(),
        reason: reason.into(),
        field: "case_id".into(),
        message: "required when kind is case.accepted".into(),
        raw: r#"{"kind":"case.accepted"}"#.into(),
    }
}

/// A finished case in `region`, on time or not, completed at `completed_at` (its version).
pub fn fact(case: &str, region: &str, on_time: bool, completed_at: u32) -> CaseFactRow {
    CaseFactRow {
        case_id: case.into(),
        center_id: "PJ".into(),
        region: region.into(),
        department: "BDC".into(),
        window_id: "W01".into(),
        staff_id: "S001".into(),
        item_code: "P5".into(),
        case_type: "commitment".into(),
        channel: "window".into(),
        accepted_at: completed_at - 86_400,
        completed_at,
        result: "approved".into(),
        start: 20_739,
        deemed: 0,
        promised_days: 5,
        promised_unit: "working_days".into(),
        legal_days: 20,
        legal_unit: "working_days".into(),
        extension_days: 0,
        pause_days: 0,
        deadline_date: 20_746,
        deadline: completed_at + 3_600,
        legal_deadline: completed_at + 86_400,
        working_days_used: 1,
        on_time: u8::from(on_time),
        early: 0,
        on_site: 1,
        within_legal: 1,
        version: completed_at,
    }
}

fn ids(alerts: &[AlertRow]) -> Vec<&str> {
    alerts.iter().map(|a| a.alert_id.as_str()).collect()
}

/// Every table [`Store::migrate`] creates.
const TABLES: &[&str] = &[
    "events",
    "alerts",
    "alert_actions",
    "dead_letters",
    "case_facts",
    "checkpoints",
    "window_status",
];

pub async fn migrate_is_idempotent_and_the_self_test_reads_back(store: &impl Store, _: Counting) {
    let applied = store.migrate().await.expect("migrate");
    assert!(applied.starts_with(&[1, 2, 3]), "{applied:?}");
    assert!(applied.is_sorted(), "{applied:?}");
    assert!(
        store.migrate().await.expect("again").is_empty(),
        "nothing left to apply"
    );
    assert_eq!(
        store.count("schema_migrations").await.expect("ledger"),
        applied.len() as u64
    );
    for table in TABLES {
        assert_eq!(
            store.count(table).await.expect(table),
            0,
            "{table} exists and is empty"
        );
    }
    store.self_test().await.expect("a write reads back");
    store.self_test().await.expect("and again");
    assert!(
        store.count("system.users; --").await.is_err(),
        "only jiancha's tables"
    );
}

pub async fn alerts_keep_the_highest_version_and_filter(store: &impl Store, counting: Counting) {
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
        counting.pick(6, 2)
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

    // Of two writes with the same version, the later wins.
    let reworded = AlertRow {
        message: "黄牌：已超期（更正）".into(),
        ..first[1].clone()
    };
    store
        .insert_alerts(&[reworded])
        .await
        .expect("same version");
    let a2 = store
        .alerts(&AlertFilter {
            region_prefix: "430621".into(),
            ..AlertFilter::default()
        })
        .await
        .expect("a2");
    assert_eq!(ids(&a2), ["a2"]);
    assert_eq!(a2[0].message, "黄牌：已超期（更正）");

    // Newer alerts of another rule in another county, to filter and order.
    let later = |id: &str, region: &str, rule: &str, fired_at: u32| AlertRow {
        rule: rule.into(),
        fired_at,
        ..alert(id, region, "open")
    };
    store
        .insert_alerts(&[
            later("b2", "430626", "window.absent", T0 + 100),
            later("b1", "430626", "window.absent", T0 + 100),
            later("c1", "430602", "case.overdue", T0 + 200),
            later("d1", "4306260", "case.overdue", T0 + 50),
        ])
        .await
        .expect("more");
    let everything = store.alerts(&AlertFilter::default()).await.expect("all");
    assert_eq!(
        ids(&everything),
        ["c1", "b1", "b2", "d1", "a1", "a2"],
        "newest first, then by id"
    );
    let filtered = async |region: &str, rule: Option<&str>, status: Option<&str>, limit: u32| {
        let filter = AlertFilter {
            region_prefix: region.into(),
            rule: rule.map(Into::into),
            status: status.map(Into::into),
            limit,
        };
        store.alerts(&filter).await
    };
    let county = filtered("430626", None, None, 0).await.expect("county");
    assert_eq!(
        ids(&county),
        ["b1", "b2", "d1", "a1"],
        "prefix 430626 sees its own alerts only"
    );
    let city = filtered("4306", None, None, 0).await.expect("city");
    assert_eq!(city.len(), 6, "the city sees all its counties");
    assert!(filtered("4307", None, None, 0)
        .await
        .expect("other city")
        .is_empty());
    let rule = filtered("", Some("window.absent"), None, 0)
        .await
        .expect("rule");
    assert_eq!(ids(&rule), ["b1", "b2"]);
    let open = filtered("430626", None, Some("open"), 0)
        .await
        .expect("open");
    assert_eq!(ids(&open), ["b1", "b2", "d1"]);
    let retracted = filtered("", Some("case.overdue"), Some("retracted"), 0)
        .await
        .expect("retracted");
    assert_eq!(ids(&retracted), ["a1"]);
    let limited = filtered("", None, None, 2).await.expect("limit");
    assert_eq!(ids(&limited), ["c1", "b1"], "the newest two");
}

pub async fn live_alerts_are_recent_or_still_open(store: &impl Store, _: Counting) {
    store.migrate().await.expect("migrate");
    let old = |id: &str, status: &str| AlertRow {
        fired_at: 1_700_000_000,
        ..alert(id, "430626", status)
    };
    // Old: one still open (must load), one acknowledged only (must load), one resolved, one
    // dismissed, one retracted (must not); recent: loaded whatever its state.
    store
        .insert_alerts(&[
            old("old-open", "open"),
            old("old-acknowledged", "open"),
            old("old-resolved", "open"),
            old("old-dismissed", "open"),
            old("old-retracted", "retracted"),
            alert("recent-retracted", "430626", "retracted"),
            alert("recent", "430626", "open"),
        ])
        .await
        .expect("alerts");
    store
        .insert_actions(&[
            action("old-acknowledged", "acknowledge", 1_700_000_050),
            action("old-resolved", "acknowledge", 1_700_000_100),
            action("old-resolved", "resolve", 1_700_000_200),
            action("old-dismissed", "dismiss", 1_700_000_300),
            action("recent", "resolve", T0 + 10),
        ])
        .await
        .expect("actions");
    let live = store.live_alerts(T0 - 1000).await.expect("live");
    assert_eq!(
        ids(&live),
        ["old-acknowledged", "old-open", "recent", "recent-retracted"],
        "oldest first, then by id"
    );
    let later = store.live_alerts(T0 + 1).await.expect("later");
    assert_eq!(ids(&later), ["old-acknowledged", "old-open"]);
}

pub async fn actions_come_oldest_first(store: &impl Store, _: Counting) {
    store.migrate().await.expect("migrate");
    assert!(store.actions().await.expect("none").is_empty());
    store
        .insert_actions(&[
            action("a2", "resolve", 300),
            action("a1", "acknowledge", 100),
        ])
        .await
        .expect("actions");
    store
        .insert_actions(&[
            action("a1", "supervise", 200),
            ActionRow {
                reply_deadline: 900,
                ..action("a0", "supervise", 300)
            },
        ])
        .await
        .expect("more");
    let trail = store.actions().await.expect("trail");
    let seen: Vec<(&str, &str, u32)> = trail
        .iter()
        .map(|a| (a.alert_id.as_str(), a.action.as_str(), a.at))
        .collect();
    assert_eq!(
        seen,
        [
            ("a1", "acknowledge", 100),
            ("a1", "supervise", 200),
            ("a0", "supervise", 300),
            ("a2", "resolve", 300),
        ]
    );
    assert_eq!(trail[2].reply_deadline, 900);
    assert_eq!(trail[0].reason, "经核实已整改");
    // An audit trail keeps a repeated action: it happened twice.
    store
        .insert_actions(&[action("a1", "acknowledge", 100)])
        .await
        .expect("repeat");
    assert_eq!(store.actions().await.expect("trail").len(), 5);
}

pub async fn window_status_keeps_the_latest(store: &impl Store, _: Counting) {
    store.migrate().await.expect("migrate");
    store
        .insert_window_status(&[
            status("W2", 50, "closed"),
            status("W1", 100, "serving"),
            status("W1", 300, "paused"),
        ])
        .await
        .expect("status");
    store
        .insert_window_status(&[status("W1", 200, "open_idle")])
        .await
        .expect("late status");
    let windows = store.window_status().await.expect("windows");
    let seen: Vec<(&str, u32, &str)> = windows
        .iter()
        .map(|w| (w.window_id.as_str(), w.updated_at, w.doc.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("W1", 300, r#"{"state":"paused"}"#),
            ("W2", 50, r#"{"state":"closed"}"#),
        ],
        "the newest wins, not the last written; by window id"
    );
}

pub async fn case_events_come_in_order_up_to_the_limit(store: &impl Store, _: Counting) {
    store.migrate().await.expect("migrate");
    store
        .insert_events(&[
            event("e3", "K1", 300),
            event("e2", "K1", 200),
            event("e1", "K1", 100),
            event("x1", "K2", 150),
        ])
        .await
        .expect("events");
    store
        .insert_events(&[event("e2", "K1", 200)])
        .await
        .expect("redelivery");
    let raw = |id: &str| format!(r#"{{"event_id":"{id}","reason":"材料齐全"}}"#);
    let timeline = store.case_events("K1", 100).await.expect("timeline");
    assert_eq!(timeline, [raw("e1"), raw("e2"), raw("e3")]);
    let first_two = store.case_events("K1", 2).await.expect("limited");
    assert_eq!(first_two, [raw("e1"), raw("e2")]);
    assert!(store
        .case_events("K9", 10)
        .await
        .expect("unknown case")
        .is_empty());
}

pub async fn on_time_rate_counts_each_case_once(store: &impl Store, counting: Counting) {
    store.migrate().await.expect("migrate");
    let facts = [
        fact("C1", "430626", true, T0),
        fact("C2", "430626", false, T0 + 10),
        fact("C3", "430626", true, T0 + 20),
        fact("C4", "430621", true, T0 + 30),
    ];
    store.insert_case_facts(&facts).await.expect("facts");
    store.insert_case_facts(&facts).await.expect("redelivery");
    assert_eq!(
        store.count("case_facts").await.expect("count"),
        counting.pick(8, 4)
    );
    assert_eq!(store.on_time_rate("430626").await.expect("county"), (2, 3));
    assert_eq!(store.on_time_rate("4306").await.expect("city"), (3, 4));
    assert_eq!(store.on_time_rate("").await.expect("all"), (3, 4));
    assert_eq!(store.on_time_rate("4307").await.expect("other"), (0, 0));
    // A case finished again later (its fact re-derived with a higher version) replaces the
    // earlier record; an older one does not.
    store
        .insert_case_facts(&[fact("C2", "430626", true, T0 + 500)])
        .await
        .expect("newer");
    store
        .insert_case_facts(&[fact("C3", "430626", false, T0 - 500)])
        .await
        .expect("older");
    assert_eq!(store.on_time_rate("430626").await.expect("county"), (3, 3));
}

pub async fn dead_letters_collapse_by_time_and_source(store: &impl Store, counting: Counting) {
    store.migrate().await.expect("migrate");
    let rows = [
        dead(T0, "kafka:jiancha.events/3/1042", "missing_field"),
        dead(T0, "kafka:jiancha.events/3/1043", "missing_field"),
        dead(T0 + 1, "kafka:jiancha.events/3/1042", "unknown_item"),
    ];
    store.insert_dead_letters(&rows).await.expect("insert");
    store
        .insert_dead_letters(&rows[..1])
        .await
        .expect("redelivery");
    assert_eq!(
        store.count("dead_letters").await.expect("count"),
        counting.pick(4, 3)
    );
}

pub async fn checkpoints_alternate_slots_newest_first(store: &impl Store, _: Counting) {
    store.migrate().await.expect("migrate");
    let key = CheckpointKey {
        group_id: "jiancha",
        topic: "jiancha.events",
        partition: 3,
    };
    assert!(store.checkpoints(key).await.expect("none").is_empty());
    let first: Vec<u8> = (0..100_000).map(|i| (i % 251) as u8).collect();
    store
        .save_checkpoint(key, 0, 100, &first)
        .await
        .expect("slot 0");
    store
        .save_checkpoint(key, 1, 250, b"second snapshot")
        .await
        .expect("slot 1");
    // Another partition's and another group's checkpoints are not this one's.
    let other = CheckpointKey {
        partition: 4,
        ..key
    };
    store
        .save_checkpoint(other, 0, 999, b"x")
        .await
        .expect("p4");
    let group = CheckpointKey {
        group_id: "other",
        ..key
    };
    store
        .save_checkpoint(group, 1, 999, b"y")
        .await
        .expect("group");

    let found = store.checkpoints(key).await.expect("found");
    let offsets: Vec<(u8, i64)> = found.iter().map(|m| (m.slot, m.next_offset)).collect();
    assert_eq!(offsets, [(1, 250), (0, 100)], "newest first");
    assert!(found.iter().all(|m| m.written_at > T0 - 1_000_000_000));
    let data = |i: usize| store.checkpoint_data(key, &found[i]);
    assert_eq!(data(0).await.expect("slot 1"), b"second snapshot");
    assert_eq!(data(1).await.expect("slot 0"), first);

    // The next checkpoint replaces slot 0 and keeps slot 1 as the fallback; an empty snapshot
    // (an engine with nothing in it) is a checkpoint too.
    store
        .save_checkpoint(key, 0, 400, b"")
        .await
        .expect("empty");
    // A late write of an older checkpoint does not replace a newer one in its slot.
    store
        .save_checkpoint(key, 1, 200, b"stale")
        .await
        .expect("stale");
    let found = store.checkpoints(key).await.expect("found");
    let offsets: Vec<(u8, i64)> = found.iter().map(|m| (m.slot, m.next_offset)).collect();
    assert_eq!(offsets, [(0, 400), (1, 250)], "at most one per slot");
    assert_eq!(
        store.checkpoint_data(key, &found[0]).await.expect("empty"),
        b""
    );
    assert_eq!(
        store.checkpoint_data(key, &found[1]).await.expect("kept"),
        b"second snapshot"
    );
}

pub async fn a_written_batch_is_visible_to_every_read(store: &impl Store, counting: Counting) {
    store.migrate().await.expect("migrate");
    let empty = RowBatch::default();
    assert_eq!(empty.rows(), 0);
    store.write(&empty).await.expect("an empty batch");
    let batch = RowBatch {
        events: vec![event("e1", "K1", T0), event("e2", "K1", T0 + 60)],
        alerts: vec![alert("a1", "430626", "open")],
        dead: vec![dead(T0, "http:127.0.0.1/1", "bad_json")],
        facts: vec![fact("K1", "430626", true, T0 + 60)],
        windows: vec![status("W1", T0, "serving")],
    };
    assert_eq!(batch.rows(), 6);
    store.write(&batch).await.expect("write");
    store.write(&batch).await.expect("rewrite");
    assert_eq!(store.case_events("K1", 10).await.expect("events").len(), 2);
    assert_eq!(
        store.alerts(&AlertFilter::default()).await.expect("alerts"),
        batch.alerts
    );
    assert_eq!(store.on_time_rate("430626").await.expect("rate"), (1, 1));
    assert_eq!(store.window_status().await.expect("windows"), batch.windows);
    assert_eq!(
        store.count("dead_letters").await.expect("dead"),
        counting.pick(2, 1)
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

pub async fn facts_from_the_engine_round_trip(store: &impl Store, _: Counting) {
    store.migrate().await.expect("migrate");
    let mut facts = demo_facts();
    assert_eq!(
        facts.len(),
        5,
        "five cases of the example are accepted and completed"
    );
    // Make one late, to see the rate move: its completion after its deadline.
    facts[0].on_time = false;
    let rows: Vec<CaseFactRow> = facts.iter().map(Into::into).collect();
    store.insert_case_facts(&rows).await.expect("insert");
    store.insert_case_facts(&rows).await.expect("redelivery");
    let (on_time, finished) = store.on_time_rate("430626").await.expect("rate");
    assert_eq!((on_time, finished), (4, 5), "each case counted once");
}

//! The behaviour every [`Store`] backend must have, as checks both backends' test binaries run
//! (`conformance_tests!` makes one `#[tokio::test]` per check). A check starts from an empty,
//! unmigrated store and asserts only what a caller of the trait can observe.

use std::future::Future;

use store::rows::{
    ActionRow, ActivityRow, AlertRow, CaseFactRow, DeadLetterRow, EventRow, NotificationRow,
    WindowStatusRow,
};
use store::{
    AlertFilter, CheckpointKey, DeadLetterQuery, Dimension, HistoryQuery, PerfCounts, PerfQuery,
    RowBatch, SourceFigures, SourceQuery, Store,
};

/// How a backend's [`Store::count`] counts re-delivered rows.
#[allow(dead_code)] // each test binary constructs some of them
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Every row written (ClickHouse, before its background merges).
    Raw,
    /// Only the winning row of each key (SQLite upserts).
    Collapsed,
    /// Every row written, except inserts identical to a recent one of the same shard, which
    /// are dropped (ClickHouse's Replicated tables, the cluster layout): which those are
    /// depends on how the rows were spread over the shards, so between the two.
    Deduplicated,
}

impl Counting {
    /// Assert that `counted` is what this backend counts when `raw` rows were written, of
    /// which `collapsed` win.
    #[track_caller]
    pub fn check(self, what: &str, counted: u64, raw: u64, collapsed: u64) {
        match self {
            Counting::Raw => assert_eq!(counted, raw, "{what}: every row written"),
            Counting::Collapsed => assert_eq!(counted, collapsed, "{what}: winning rows"),
            Counting::Deduplicated => assert!(
                (collapsed..=raw).contains(&counted),
                "{what}: {counted} rows, not between {collapsed} and {raw}"
            ),
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
            alerts_follow_their_case_revised_and_cleared,
            an_alert_moved_to_another_instant_is_one_alert_in_history_and_perf,
            live_alerts_are_recent_or_still_open,
            actions_come_oldest_first,
            notification_records_answer_by_alert,
            window_status_keeps_the_latest,
            case_events_come_in_order_up_to_the_limit,
            on_time_rate_counts_each_case_once,
            dead_letters_collapse_by_time_and_source,
            checkpoints_alternate_slots_newest_first,
            a_written_batch_is_visible_to_every_read,
            facts_from_the_engine_round_trip,
            perf_counts_match_the_hand_worked_numbers,
            history_filters_and_pages_by_cursor,
            dead_letters_page_newest_first,
            source_health_matches_the_hand_worked_figures,
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
        version: match status {
            "retracted" | "cleared" => 2,
            _ => 0,
        },
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

/// SPEC §7 v1.1: an alert follows its case. A yellow revised with its case's state (version 1,
/// still `open`) and a warning cleared (version 2) replace what fired, whatever order the
/// copies arrive in and however often; history filters on `cleared`.
pub async fn alerts_follow_their_case_revised_and_cleared(store: &impl Store, counting: Counting) {
    store.migrate().await.expect("migrate");
    let yellow = alert("y1", "430626", "open");
    let revised = AlertRow {
        version: 1,
        message: "黄牌：办件已超过承诺时限，已超期 2 个工作日于 10-15 办结".into(),
        evidence: r#"{"subject_state":{"status":"completed","overdue_working_days":2}}"#.into(),
        ..yellow.clone()
    };
    let warning = AlertRow {
        level: "warning".into(),
        ..alert("w1", "430626", "open")
    };
    let cleared = AlertRow {
        status: "cleared".into(),
        version: 2,
        message: "系统自动解除：预警".into(),
        ..warning.clone()
    };
    store
        .insert_alerts(&[yellow.clone(), warning.clone()])
        .await
        .expect("fired");
    store
        .insert_alerts(&[revised.clone(), cleared.clone()])
        .await
        .expect("followed");
    // A restart re-derives everything: the firings again, then the changes again.
    store
        .insert_alerts(&[yellow, warning, revised.clone(), cleared.clone()])
        .await
        .expect("re-derived");
    counting.check("alerts", store.count("alerts").await.expect("count"), 8, 2);
    let all = store.alerts(&AlertFilter::default()).await.expect("all");
    let y1 = all.iter().find(|a| a.alert_id == "y1").expect("y1");
    assert_eq!(
        y1, &revised,
        "the revision replaces the firing, and stays open"
    );
    let w1 = all.iter().find(|a| a.alert_id == "w1").expect("w1");
    assert_eq!(
        w1, &cleared,
        "the clearing wins over both copies of the firing"
    );
    let filter = |status: &str| AlertFilter {
        status: Some(status.into()),
        ..AlertFilter::default()
    };
    let only_cleared = store.alerts(&filter("cleared")).await.expect("cleared");
    assert_eq!(ids(&only_cleared), ["w1"]);
    let open = store.alerts(&filter("open")).await.expect("open");
    assert_eq!(ids(&open), ["y1"]);
    // Not still open: a restart loads it only while recent.
    let live = store.live_alerts(T0 + 86_400 * 30).await.expect("live");
    assert_eq!(
        ids(&live),
        ["y1"],
        "a revised card is still open; a cleared warning is not loaded once old"
    );
    // 绩效 counts the card that stands, not the warning its case answered in time.
    let perf = perf_by_department_around_t0(store).await;
    assert_eq!(
        perf.iter()
            .map(|c| (c.key.as_str(), c.warnings, c.yellows))
            .collect::<Vec<_>>(),
        [("BDC", 0, 1)]
    );
}

/// A later line of an alert at another instant (a correction moved its deadline; a late pause
/// retracted it and it fired again at the moved deadline) replaces the earlier one in every
/// read: history lists the alert once, at its new instant, and 绩效 counts it once, whatever
/// order of batches and re-deliveries.
pub async fn an_alert_moved_to_another_instant_is_one_alert_in_history_and_perf(
    store: &impl Store,
    _: Counting,
) {
    store.migrate().await.expect("migrate");
    let hour = 3_600;
    let m1 = alert("m1", "430626", "open");
    let m2 = alert("m2", "430626", "open");
    store
        .insert_alerts(&[m1.clone(), m2.clone()])
        .await
        .expect("fired");
    // m1: retracted where it stood, then fired again an hour later, in one batch.
    let m1_retracted = AlertRow {
        status: "retracted".into(),
        version: 2,
        ..m1.clone()
    };
    let m1_again = AlertRow {
        version: 3,
        fired_at: T0 + hour,
        ..m1.clone()
    };
    store
        .insert_alerts(&[m1_retracted, m1_again.clone()])
        .await
        .expect("refired");
    // m2: revised two hours later by a correction, then its first line re-delivered.
    let m2_moved = AlertRow {
        version: 3,
        fired_at: T0 + 2 * hour,
        message: "黄牌：办件已超过承诺时限（更正后）".into(),
        ..m2.clone()
    };
    store
        .insert_alerts(std::slice::from_ref(&m2_moved))
        .await
        .expect("moved");
    store.insert_alerts(&[m2]).await.expect("re-delivered");
    let history = async |from: u32, to: u32| {
        store
            .history(&HistoryQuery {
                region_prefix: "430626".into(),
                from,
                to,
                ..HistoryQuery::default()
            })
            .await
            .expect("history")
    };
    let all = history(0, 0).await;
    assert_eq!(
        all,
        [m2_moved, m1_again],
        "each alert once, as it now stands"
    );
    assert!(
        history(0, T0 + hour / 2).await.is_empty(),
        "nothing left at the instants the alerts moved away from"
    );
    let perf = perf_by_department_around_t0(store).await;
    assert_eq!(
        perf.iter()
            .map(|c| (c.key.as_str(), c.yellows))
            .collect::<Vec<_>>(),
        [("BDC", 2)],
        "two cards, each counted once"
    );
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
        health: Default::default(),
        log_seq: None,
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
    "activity",
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
    counting.check("alerts", store.count("alerts").await.expect("count"), 6, 2);

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
    counting.check(
        "case_facts",
        store.count("case_facts").await.expect("count"),
        8,
        4,
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
    counting.check(
        "dead_letters",
        store.count("dead_letters").await.expect("count"),
        4,
        3,
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
        activity: vec![act("accepted", "K1", PJ_BDC_W1, T0, 0)],
    };
    assert_eq!(batch.rows(), 7);
    store.write(&batch).await.expect("write");
    store.write(&batch).await.expect("rewrite");
    assert_eq!(store.case_events("K1", 10).await.expect("events").len(), 2);
    assert_eq!(
        store.alerts(&AlertFilter::default()).await.expect("alerts"),
        batch.alerts
    );
    assert_eq!(store.on_time_rate("430626").await.expect("rate"), (1, 1));
    assert_eq!(store.window_status().await.expect("windows"), batch.windows);
    counting.check(
        "dead_letters",
        store.count("dead_letters").await.expect("dead"),
        2,
        1,
    );
    let perf = store
        .perf_counts(&PerfQuery {
            region_prefix: "430626".into(),
            from: T0,
            to: T0 + 3600,
            by: Dimension::Staff,
        })
        .await
        .expect("perf");
    let accepted: Vec<(&str, u64)> = perf.iter().map(|p| (p.key.as_str(), p.accepted)).collect();
    assert_eq!(
        accepted,
        [("S001", 0), ("S1", 1)],
        "the batch's activity is stored"
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

/// Who a row is about: (region, department, window, staff, item).
type Who = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// 平江 (430626) 不动产 window W1, staff S1, item P5.
const PJ_BDC_W1: Who = ("430626", "BDC", "W1", "S1", "P5");

const HOUR: u32 = 3_600;
const DAY: u32 = 86_400;
/// The end of the 绩效 period [T0, T1) of the hand-worked numbers: ten days.
const T1: u32 = T0 + 10 * DAY;

/// A finished case: (legal_days, promised_days, working_days_used), (on_time, early, on_site).
fn perf_fact(
    id: &str,
    (region, department, window, staff, item): Who,
    case_type: &str,
    (legal, promised, used): (u16, u16, u16),
    (on_time, early, on_site): (u8, u8, u8),
    completed_at: u32,
) -> CaseFactRow {
    CaseFactRow {
        department: department.into(),
        window_id: window.into(),
        staff_id: staff.into(),
        item_code: item.into(),
        case_type: case_type.into(),
        legal_days: legal,
        promised_days: promised,
        working_days_used: used,
        early,
        on_site,
        ..fact(id, region, on_time == 1, completed_at)
    }
}

fn perf_alert(
    id: &str,
    (region, department, window, staff, item): Who,
    rule: &str,
    level: &str,
    fired_at: u32,
) -> AlertRow {
    AlertRow {
        rule: rule.into(),
        level: level.into(),
        fired_at,
        department: department.into(),
        window_id: window.into(),
        staff_id: staff.into(),
        item_code: item.into(),
        ..alert(id, region, "open")
    }
}

fn act(
    kind: &str,
    id: &str,
    (region, department, window, staff, item): Who,
    at: u32,
    value: i32,
) -> ActivityRow {
    ActivityRow {
        kind: kind.into(),
        id: id.into(),
        center_id: "PJ".into(),
        region: region.into(),
        department: department.into(),
        window_id: window.into(),
        staff_id: staff.into(),
        item_code: item.into(),
        at,
        value,
    }
}

/// The fixed dataset of the 绩效 and history checks. Period [T0, T1); "in" means counted for
/// prefix 4306 over that period.
///
/// Facts (legal, promised, used; on_time, early, on_site):
///   F1 430626 BDC W1 S1 P5 promised (20,5,3; 1,1,0) at T0 — in (from is included)
///   F2 430626 BDC W1 S1 P5 promised (20,10,8; 1,0,0) T0+1d — in
///   F3 430626 BDC W2 S2 Q7 promised (0,5,6; 0,0,0) T0+2d — in, no legal limit
///   F4 430626 BDC W2 S2 P5 immediate (0,0,0; 1,1,1) T0+3d — in
///   F5 430626 SCJG W3 S3 Q7 promised (15,3,2; 1,1,0) T0+4d — in
///   F6 430626 SCJG W3 S3 Q7 promised (15,5,7; 0,0,0) T0+5d+1h — in; replaces an on-time
///      version at T0+5d
///   F7 430621 SCJG W3 S3 P5 promised (30,10,4; 1,0,0) T0+6d — in (another county)
///   F8 430626 BDC W1 S1 P5 at T1 — out (to is excluded); F9 at T0−1 — out;
///   F10 430702 BDC W1 S1 P5 promised (20,5,2; 1,0,0) T0+1d — out of 4306 (another city)
/// Alerts: A01 430626 BDC W1 S1 P5 case.overdue yellow T0; A02 … S1 case.near_deadline warning
///   +1h; A03 BDC W2 S2 Q7 complaint.filed warning +2h; A04 BDC W2 S2 Q7 case.overdue red +2h;
///   A13 BDC W1 "" "" window.absent warning +2h; A05 SCJG W3 S3 Q7 window.absent yellow +4h;
///   A06 SCJG W3 S3 Q7 complaint.filed yellow +5h; A07 SCJG W3 S3 Q7 case.overdue red +6h,
///   retracted; A08 SCJG W3 S3 "" discipline.ladder red +7h; A09 430621 SCJG W3 S3 P5
///   case.overdue yellow +8h; A10 430626 BDC W1 S1 P5 case.overdue yellow at T1 (out);
///   A11 … queue.long_wait warning T0−1 (out); A12 430702 BDC W1 S1 P5 case.overdue red +1h.
/// Activity: accepted F1 T0−2d (out), F2 T0, F3 T0+1d, F4 T0+3d, F5 T0+2d, N1 (SCJG W3 S3 Q7)
///   T0+8d, N2 (BDC W1 S1 P5) T1 (out), F7 430621 T0+1d; evaluations E1 BDC W1 S1 P5 5 T0+1d,
///   E2 BDC W2 S2 Q7 3 T0+2d, E3 SCJG W3 S3 Q7 4 T0+4d, E4 SCJG W3 S3 Q7 1 T0+5d, E5 430702
///   BDC W1 S1 P5 5 T0+1d; complaints K1 (BDC W2 S2 Q7) +2h resolved substantiated (1) T0+2d,
///   K2 (SCJG W3 S3 Q7) +5h resolved not substantiated (0) T0+3d.
pub async fn load_perf_dataset(store: &impl Store, counting: Counting) {
    let s1 = PJ_BDC_W1;
    let s2p: Who = ("430626", "BDC", "W2", "S2", "P5");
    let s2q: Who = ("430626", "BDC", "W2", "S2", "Q7");
    let s3: Who = ("430626", "SCJG", "W3", "S3", "Q7");
    let s3_yy: Who = ("430621", "SCJG", "W3", "S3", "P5");
    let city2: Who = ("430702", "BDC", "W1", "S1", "P5");
    let p = "promised";
    let facts = vec![
        perf_fact("F1", s1, p, (20, 5, 3), (1, 1, 0), T0),
        perf_fact("F2", s1, p, (20, 10, 8), (1, 0, 0), T0 + DAY),
        perf_fact("F3", s2q, p, (0, 5, 6), (0, 0, 0), T0 + 2 * DAY),
        perf_fact("F4", s2p, "immediate", (0, 0, 0), (1, 1, 1), T0 + 3 * DAY),
        perf_fact("F5", s3, p, (15, 3, 2), (1, 1, 0), T0 + 4 * DAY),
        perf_fact("F6", s3, p, (15, 5, 3), (1, 0, 0), T0 + 5 * DAY),
        perf_fact("F7", s3_yy, p, (30, 10, 4), (1, 0, 0), T0 + 6 * DAY),
        perf_fact("F8", s1, p, (20, 5, 2), (1, 0, 1), T1),
        perf_fact("F9", s1, p, (20, 5, 2), (1, 0, 0), T0 - 1),
        perf_fact("F10", city2, p, (20, 5, 2), (1, 0, 0), T0 + DAY),
    ];
    store.insert_case_facts(&facts).await.expect("facts");
    // A re-delivery, and F6 re-derived later: late after all (the higher version wins).
    store.insert_case_facts(&facts[..1]).await.expect("again");
    store
        .insert_case_facts(&[perf_fact(
            "F6",
            s3,
            p,
            (15, 5, 7),
            (0, 0, 0),
            T0 + 5 * DAY + HOUR,
        )])
        .await
        .expect("re-derived");

    let no_staff: Who = ("430626", "BDC", "W1", "", "");
    let ladder: Who = ("430626", "SCJG", "W3", "S3", "");
    let alerts = vec![
        perf_alert("A01", s1, "case.overdue", "yellow", T0),
        perf_alert("A02", s1, "case.near_deadline", "warning", T0 + HOUR),
        perf_alert("A03", s2q, "complaint.filed", "warning", T0 + 2 * HOUR),
        perf_alert("A04", s2q, "case.overdue", "red", T0 + 2 * HOUR),
        perf_alert("A13", no_staff, "window.absent", "warning", T0 + 2 * HOUR),
        perf_alert("A05", s3, "window.absent", "yellow", T0 + 4 * HOUR),
        perf_alert("A06", s3, "complaint.filed", "yellow", T0 + 5 * HOUR),
        perf_alert("A07", s3, "case.overdue", "red", T0 + 6 * HOUR),
        perf_alert("A08", ladder, "discipline.ladder", "red", T0 + 7 * HOUR),
        perf_alert("A09", s3_yy, "case.overdue", "yellow", T0 + 8 * HOUR),
        perf_alert("A10", s1, "case.overdue", "yellow", T1),
        perf_alert("A11", s1, "queue.long_wait", "warning", T0 - 1),
        perf_alert("A12", city2, "case.overdue", "red", T0 + HOUR),
    ];
    store.insert_alerts(&alerts).await.expect("alerts");
    let retraction = AlertRow {
        status: "retracted".into(),
        version: 1,
        ..alerts[7].clone()
    };
    store
        .insert_alerts(&[retraction, alerts[1].clone()])
        .await
        .expect("retraction, re-delivery");

    let n1: Who = s3;
    let activity = vec![
        act("accepted", "F1", s1, T0 - 2 * DAY, 0),
        act("accepted", "F2", s1, T0, 0),
        act("accepted", "F3", s2q, T0 + DAY, 0),
        act("accepted", "F4", s2p, T0 + 3 * DAY, 0),
        act("accepted", "F5", s3, T0 + 2 * DAY, 0),
        act("accepted", "N1", n1, T0 + 8 * DAY, 0),
        act("accepted", "N2", s1, T1, 0),
        act("accepted", "F7", s3_yy, T0 + DAY, 0),
        act("evaluation", "E1", s1, T0 + DAY, 5),
        act("evaluation", "E2", s2q, T0 + 2 * DAY, 3),
        act("evaluation", "E3", s3, T0 + 4 * DAY, 4),
        act("evaluation", "E4", s3, T0 + 5 * DAY, 1),
        act("evaluation", "E5", city2, T0 + DAY, 5),
        act("complaint", "K1", s2q, T0 + 2 * HOUR, 0),
        act("complaint_resolved", "K1", s2q, T0 + 2 * DAY, 1),
        act("complaint", "K2", s3, T0 + 5 * HOUR, 0),
        act("complaint_resolved", "K2", s3, T0 + 3 * DAY, 0),
    ];
    store.insert_activity(&activity).await.expect("activity");
    store
        .insert_activity(&activity[2..3])
        .await
        .expect("re-delivered F3 acceptance");
    counting.check(
        "activity",
        store.count("activity").await.expect("count"),
        18,
        17,
    );
}

/// A [`PerfCounts`] from its fields in declaration order.
#[allow(clippy::too_many_arguments)]
fn counts(key: &str, n: [u64; 17]) -> PerfCounts {
    let [accepted, completed, on_time, early, on_site, late, days_used, speedup_cases, legal_days, promised_days, warnings, yellows, reds, complaints, substantiated, evaluations, satisfied] =
        n;
    PerfCounts {
        key: key.into(),
        accepted,
        completed,
        on_time,
        early,
        on_site,
        late,
        days_used,
        speedup_cases,
        legal_days,
        promised_days,
        warnings,
        yellows,
        reds,
        complaints,
        substantiated,
        evaluations,
        satisfied,
    }
}

pub async fn perf_counts_match_the_hand_worked_numbers(store: &impl Store, counting: Counting) {
    store.migrate().await.expect("migrate");
    load_perf_dataset(store, counting).await;
    assert_perf_counts(store).await;
}

/// 绩效 of county 430626 by department, from a day before [`T0`] to a day after.
async fn perf_by_department_around_t0(store: &impl Store) -> Vec<PerfCounts> {
    store
        .perf_counts(&PerfQuery {
            region_prefix: "430626".into(),
            from: T0 - 86_400,
            to: T0 + 86_400,
            by: Dimension::Department,
        })
        .await
        .expect("perf")
}

/// The hand-worked 绩效 counts of the dataset [`load_perf_dataset`] stores.
pub async fn assert_perf_counts(store: &impl Store) {
    let perf = async |prefix: &str, from: u32, to: u32, by: Dimension| {
        let q = PerfQuery {
            region_prefix: prefix.into(),
            from,
            to,
            by,
        };
        store.perf_counts(&q).await.expect("perf")
    };
    // Field order: accepted, completed, on_time, early, on_site, late, days_used,
    // speedup_cases, legal_days, promised_days, warnings, yellows, reds, complaints,
    // substantiated, evaluations, satisfied.
    assert_eq!(
        perf("4306", T0, T1, Dimension::Department).await,
        [
            // BDC: accepted F2 F3 F4 = 3 (F1 before, N2 at T1; F3 re-delivered once);
            // completed F1 F2 F3 F4 = 4, on time F1 F2 F4 = 3, early F1 F4 = 2, on site F4 = 1,
            // late F3 = 1, days 3+8+6+0 = 17; 承诺件 with a legal limit F1 F2 = 2, legal
            // 20+20 = 40, promised 5+10 = 15; alerts A01 y, A02 w (once), A03 w, A04 r, A13 w:
            // warnings 3, yellows 1, reds 1, complaints A03 = 1; K1 substantiated = 1;
            // evaluations E1 (5) E2 (3) = 2, satisfied 1.
            counts(
                "BDC",
                [3, 4, 3, 2, 1, 1, 17, 2, 40, 15, 3, 1, 1, 1, 1, 2, 1]
            ),
            // SCJG: accepted F5 N1 F7 = 3; completed F5 F6 F7 = 3, on time F5 F7 = 2 (F6's
            // latest version is late), early F5 = 1, on site 0, late F6 = 1, days 2+7+4 = 13;
            // 承诺件 F5 F6 F7 = 3, legal 15+15+30 = 60, promised 3+5+10 = 18; alerts A05 y,
            // A06 y, A09 y (A07 retracted, A08 a ladder step): yellows 3, complaints A06 = 1;
            // K2 not substantiated: 0; evaluations E3 (4) E4 (1) = 2, satisfied 1.
            counts(
                "SCJG",
                [3, 3, 2, 1, 0, 1, 13, 3, 60, 18, 0, 3, 0, 1, 0, 2, 1]
            ),
        ]
    );
    assert_eq!(
        perf("430626", T0, T1, Dimension::Staff).await,
        [
            // "": only A13 (a window alert without staff): 1 warning.
            counts("", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
            // S1: accepted F2 = 1; completed F1 F2 = 2, on time 2, early F1 = 1, days 3+8 = 11,
            // 承诺件 2, legal 40, promised 15; A01 y, A02 w; E1 (5): 1 evaluation, 1 satisfied.
            counts("S1", [1, 2, 2, 1, 0, 0, 11, 2, 40, 15, 1, 1, 0, 0, 0, 1, 1]),
            // S2: accepted F3 F4 = 2; completed F3 F4 = 2, on time F4 = 1, early F4 = 1,
            // on site F4 = 1, late F3 = 1, days 6+0 = 6, no 承诺件 with a legal limit; A03 w
            // (complaint), A04 r; K1 substantiated; E2 (3): 1 evaluation, 0 satisfied.
            counts("S2", [2, 2, 1, 1, 1, 1, 6, 0, 0, 0, 1, 0, 1, 1, 1, 1, 0]),
            // S3 in 平江 only (F7, A09 and F7's acceptance are 430621): accepted F5 N1 = 2;
            // completed F5 F6 = 2, on time F5 = 1, early F5 = 1, late F6 = 1, days 2+7 = 9,
            // 承诺件 2, legal 30, promised 8; A05 y, A06 y (complaint); E3 (4) E4 (1).
            counts("S3", [2, 2, 1, 1, 0, 1, 9, 2, 30, 8, 0, 2, 0, 1, 0, 2, 1]),
        ]
    );
    assert_eq!(
        perf("", T0, T1, Dimension::Window).await,
        [
            // W1 everywhere (430702 included): accepted F2 = 1; completed F1 F2 F10 = 3, on time
            // 3, early F1 = 1, days 3+8+2 = 13, 承诺件 3, legal 60, promised 5+10+5 = 20;
            // A01 y, A02 w, A12 r, A13 w; E1 (5), E5 (5).
            counts("W1", [1, 3, 3, 1, 0, 0, 13, 3, 60, 20, 2, 1, 1, 0, 0, 2, 2]),
            // W2: as S2.
            counts("W2", [2, 2, 1, 1, 1, 1, 6, 0, 0, 0, 1, 0, 1, 1, 1, 1, 0]),
            // W3 with 430621: accepted F5 N1 F7 = 3; as SCJG.
            counts("W3", [3, 3, 2, 1, 0, 1, 13, 3, 60, 18, 0, 3, 0, 1, 0, 2, 1]),
        ]
    );
    assert_eq!(
        perf("4306", T0 + DAY, T0 + 3 * DAY, Dimension::Item).await,
        [
            // [T0+1d, T0+3d): P5: accepted F7 (T0+1d, included) = 1; completed F2 (T0+1d) = 1,
            // on time, days 8, 承诺件 1, legal 20, promised 10; no alert (all within the first
            // day); E1 (5).
            counts("P5", [1, 1, 1, 0, 0, 0, 8, 1, 20, 10, 0, 0, 0, 0, 0, 1, 1]),
            // Q7: accepted F3 F5 = 2 (F4's at T0+3d is excluded); completed F3 = 1, late, days
            // 6, no legal limit; K1 resolved at T0+2d, substantiated; E2 (3).
            counts("Q7", [2, 1, 0, 0, 0, 1, 6, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0]),
        ]
    );
    assert_eq!(
        perf("4307", T0, T1, Dimension::Department).await,
        // Only 430702: F10 (on time, days 2, 承诺件 legal 20 promised 5), A12 red, E5 (5).
        [counts(
            "BDC",
            [0, 1, 1, 0, 0, 0, 2, 1, 20, 5, 0, 0, 1, 0, 0, 1, 1]
        )]
    );
    assert!(perf("4308", T0, T1, Dimension::Department).await.is_empty());
    assert!(perf("4306", T1 + DAY, T1 + 2 * DAY, Dimension::Staff)
        .await
        .is_empty());
}

pub async fn history_filters_and_pages_by_cursor(store: &impl Store, counting: Counting) {
    store.migrate().await.expect("migrate");
    load_perf_dataset(store, counting).await;
    let history = async |q: HistoryQuery| store.history(&q).await.expect("history");
    let county = HistoryQuery {
        region_prefix: "430626".into(),
        ..HistoryQuery::default()
    };
    // Newest first, ties (A03, A04, A13 at +2h) by id; A09 (430621) and A12 (430702) are
    // elsewhere; A07 once, retracted.
    let all = history(county.clone()).await;
    let expected = [
        "A10", "A08", "A07", "A06", "A05", "A03", "A04", "A13", "A02", "A01", "A11",
    ];
    assert_eq!(ids(&all), expected);
    assert_eq!(all[2].status, "retracted");
    assert_eq!(all[2].version, 1);
    // Pages of 3 by cursor: the tie at +2h is split between the second and the third page.
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut after = None;
    loop {
        let page = history(HistoryQuery {
            after: after.clone(),
            limit: 3,
            ..county.clone()
        })
        .await;
        if page.is_empty() {
            break;
        }
        let last = page.last().expect("non-empty");
        after = Some((last.fired_at, last.alert_id.clone()));
        pages.push(page.iter().map(|a| a.alert_id.clone()).collect());
    }
    assert_eq!(
        pages,
        [
            vec!["A10", "A08", "A07"],
            vec!["A06", "A05", "A03"],
            vec!["A04", "A13", "A02"],
            vec!["A01", "A11"],
        ]
    );
    let yellow_scjg = history(HistoryQuery {
        department: Some("SCJG".into()),
        level: Some("yellow".into()),
        ..county.clone()
    })
    .await;
    assert_eq!(ids(&yellow_scjg), ["A06", "A05"]);
    let retracted = history(HistoryQuery {
        status: Some("retracted".into()),
        ..HistoryQuery::default()
    })
    .await;
    assert_eq!(ids(&retracted), ["A07"]);
    let open = history(HistoryQuery {
        region_prefix: "4306".into(),
        status: Some("open".into()),
        ..HistoryQuery::default()
    })
    .await;
    assert_eq!(open.len(), 11, "12 alerts in 4306, A07 retracted");
    // A rule in the period [T0, T1): A10 at T1 is out, A01 at T0 in; A12 is in city 4307.
    let overdue = history(HistoryQuery {
        region_prefix: "4306".into(),
        from: T0,
        to: T1,
        rule: Some("case.overdue".into()),
        ..HistoryQuery::default()
    })
    .await;
    assert_eq!(ids(&overdue), ["A09", "A07", "A04", "A01"]);
    let w2 = history(HistoryQuery {
        window: Some("W2".into()),
        staff: Some("S2".into()),
        center: Some("PJ".into()),
        ..HistoryQuery::default()
    })
    .await;
    assert_eq!(ids(&w2), ["A03", "A04"]);
    let elsewhere = history(HistoryQuery {
        center: Some("XX".into()),
        ..HistoryQuery::default()
    })
    .await;
    assert!(elsewhere.is_empty());
    // Values are bound, not pasted: a quote is just a character.
    let injected = history(HistoryQuery {
        rule: Some("x' OR '1'='1".into()),
        ..HistoryQuery::default()
    })
    .await;
    assert!(injected.is_empty());
}

pub async fn dead_letters_page_newest_first(store: &impl Store, _: Counting) {
    store.migrate().await.expect("migrate");
    let rows = [
        dead(T0, "kafka:e/0/1", "missing_field"),
        dead(T0, "kafka:e/0/2", "bad_json"),
        dead(T0, "kafka:e/0/3", "missing_field"),
        dead(T0 + 60, "http:a", "missing_field"),
        dead(T0 + 120, "http:b", "unknown_item"),
        dead(T0 - 60, "file:x:1", "missing_field"),
    ];
    store.insert_dead_letters(&rows).await.expect("insert");
    store.insert_dead_letters(&rows[..1]).await.expect("again");
    let page = async |q: DeadLetterQuery| -> Vec<String> {
        let rows = store.dead_letters(&q).await.expect("dead letters");
        rows.iter().map(|d| d.source.clone()).collect()
    };
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let q = DeadLetterQuery {
            after: after.clone(),
            limit: 2,
            ..DeadLetterQuery::default()
        };
        let rows = store.dead_letters(&q).await.expect("page");
        let Some(last) = rows.last() else { break };
        after = Some((last.received_at, last.source.clone()));
        pages.push(
            rows.iter()
                .map(|d| d.source.as_str().to_owned())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        pages,
        [
            vec!["http:b", "http:a"],
            vec!["kafka:e/0/1", "kafka:e/0/2"],
            vec!["kafka:e/0/3", "file:x:1"],
        ],
        "newest first, then by source; the re-delivery once"
    );
    // [T0, T0+60) with one reason: the one at T0+60 is out.
    let missing = page(DeadLetterQuery {
        from: T0,
        to: T0 + 60,
        reason: Some("missing_field".into()),
        ..DeadLetterQuery::default()
    })
    .await;
    assert_eq!(missing, ["kafka:e/0/1", "kafka:e/0/3"]);
    let full = store
        .dead_letters(&DeadLetterQuery {
            reason: Some("bad_json".into()),
            ..DeadLetterQuery::default()
        })
        .await
        .expect("one");
    assert_eq!(full, [rows[1].clone()], "every column round-trips");
}

/// The notifiers' ledger: a key written (twice, as a re-delivery would) answers once, and only
/// for the alerts asked about.
pub async fn notification_records_answer_by_alert(store: &impl Store, _: Counting) {
    store.migrate().await.expect("migrate");
    let row = |alert: &str, target: &str, fate: &str| NotificationRow {
        alert_id: alert.into(),
        status: "open".into(),
        target: target.into(),
        level: "yellow".into(),
        fate: fate.into(),
        detail: String::new(),
        at: 1_790_000_000,
    };
    let rows = [
        row("a1", "wecom", "sent"),
        row("a1", "sms/13800000000", "suppressed"),
        row("a2", "wecom", "failed"),
    ];
    store.insert_notifications(&rows).await.expect("insert");
    store.insert_notifications(&rows[..1]).await.expect("again");
    let mut got = store
        .notifications(&["a1".to_string(), "a3".to_string()])
        .await
        .expect("read");
    got.sort_by(|a, b| a.target.cmp(&b.target));
    got.dedup();
    assert_eq!(got, [rows[1].clone(), rows[0].clone()]);
    assert!(store.notifications(&[]).await.expect("none").is_empty());
}

/// A §3 event decoded as live ingest would (received at `received`, China time, and stamped
/// `http:pj-pub` when it names no source), as its stored row.
fn received(json: &str, received: &str) -> EventRow {
    let at = rules::time::parse_rfc3339(received).expect("receipt time");
    let opts = ingest::decode::DecodeOptions {
        receipt: ingest::decode::Receipt::At(at),
        default_source: Some("http:pj-pub"),
        max_future_skew_secs: 600,
    };
    let ev = ingest::decode::decode(json.as_bytes(), &opts).expect("a valid event");
    EventRow::new(&ev, json, at)
}

/// A case event of `source` (empty: none named) in Pingjiang (430626) unless `region` says.
fn case_event(
    id: &str,
    kind: &str,
    case: &str,
    occurred: &str,
    reported: &str,
    extra: &str,
) -> String {
    format!(
        r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-10-{occurred}+08:00",{reported}"center_id":"PJ","region":"430626","case_id":"{case}","item_code":"P5","channel":"hall"{extra}}}"#,
        reported = if reported.is_empty() {
            String::new()
        } else {
            format!(r#""reported_at":"2026-10-{reported}+08:00","#)
        }
    )
}

pub async fn source_health_matches_the_hand_worked_figures(store: &impl Store, _: Counting) {
    store.migrate().await.expect("migrate");
    let sdjc = r#","source":"sdjc:pj""#;
    let rows = vec![
        // sdjc:pj: C1 accepted (delay 60 s), completed at 10:00:30 (30 s), and a review
        // stage reported at 11:00, after the completion (5400 s).
        received(
            &case_event(
                "e1",
                "case.accepted",
                "C1",
                "12T09:00:00",
                "12T09:01:00",
                sdjc,
            ),
            "2026-10-12T09:01:05+08:00",
        ),
        received(
            &case_event(
                "e2",
                "case.completed",
                "C1",
                "12T10:00:00",
                "12T10:00:30",
                &format!(r#"{sdjc},"result":"approved""#),
            ),
            "2026-10-12T10:00:31+08:00",
        ),
        received(
            &case_event(
                "e3",
                "case.stage",
                "C1",
                "12T09:30:00",
                "12T11:00:00",
                &format!(r#"{sdjc},"stage":"review","result":"agree""#),
            ),
            "2026-10-12T11:00:01+08:00",
        ),
        // Next day: a correction (600 s) and a withdrawal (0 s).
        received(
            &case_event(
                "e4",
                "case.accepted",
                "C2",
                "13T09:00:00",
                "13T09:10:00",
                &format!(r#"{sdjc},"supersedes":"e0""#),
            ),
            "2026-10-13T09:10:01+08:00",
        ),
        received(
            &format!(
                r#"{{"event_id":"e5","kind":"event.withdrawn","occurred_at":"2026-10-13T10:00:00+08:00","reported_at":"2026-10-13T10:00:00+08:00","center_id":"PJ","region":"430626","withdraws":"e4"{sdjc}}}"#
            ),
            "2026-10-13T10:00:01+08:00",
        ),
        // No source named: the publisher's; no reported_at: the receipt time (120 s).
        received(
            &case_event("h1", "case.accepted", "C3", "12T09:00:00", "", ""),
            "2026-10-12T09:02:00+08:00",
        ),
        // Another county's source.
        received(
            &case_event(
                "y1",
                "case.accepted",
                "Y1",
                "12T09:00:00",
                "12T09:00:00",
                r#","source":"gdbs:yy""#,
            )
            .replace("430626", "430621"),
            "2026-10-12T09:00:01+08:00",
        ),
    ];
    store.insert_events(&rows).await.expect("insert");
    store.insert_events(&rows[..2]).await.expect("re-delivered");
    let day = |d: &str| -> u32 {
        rules::time::parse_rfc3339(&format!("2026-10-{d}T00:00:00+08:00"))
            .expect("day")
            .0 as u32
    };
    let mut dead_sdjc = dead(day("12") + 3600 * 4, "kafka:e/0/7", "missing_field");
    dead_sdjc.raw = r#"{"source":"sdjc:pj","kind":"case.accepted"}"#.into();
    let mut dead_http = dead(day("12") + 3600 * 5, "http:pj-pub:3", "bad_json");
    dead_http.raw = "not json".into();
    let mut dead_yy = dead(day("12") + 3600 * 6, "kafka:e/0/8", "unknown_item");
    dead_yy.raw = r#"{"source":"gdbs:yy"}"#.into();
    let mut dead_old = dead(day("12") - 3600, "kafka:e/0/1", "missing_field");
    dead_old.raw = dead_sdjc.raw.clone();
    store
        .insert_dead_letters(&[dead_sdjc, dead_http, dead_yy, dead_old])
        .await
        .expect("dead letters");

    let q = SourceQuery {
        region_prefix: "430626".into(),
        from: day("12"),
        to: day("14"),
        also: vec!["sdjc:idle".into()],
    };
    let figures = store.source_health(&q).await.expect("source health");
    let names: Vec<&str> = figures.iter().map(|f| f.source.as_str()).collect();
    assert_eq!(
        names,
        ["http:pj-pub", "sdjc:idle", "sdjc:pj"],
        "never another county's source"
    );
    let date = |d: &str| ((i64::from(day(d)) + 8 * 3600) / 86_400) as u16;
    let counts = |pairs: &[(&str, u64)]| {
        pairs
            .iter()
            .map(|(r, n)| (r.to_string(), *n))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        figures[2],
        SourceFigures {
            source: "sdjc:pj".into(),
            daily: vec![
                (date("12"), "case.accepted".into(), 1),
                (date("12"), "case.completed".into(), 1),
                (date("12"), "case.stage".into(), 1),
                (date("13"), "case.accepted".into(), 1),
                (date("13"), "event.withdrawn".into(), 1),
            ],
            events: 5,
            // Delays 0, 30, 60, 600, 5400: index 2 and index 4 of five.
            delay_p50: Some(60),
            delay_p95: Some(5400),
            case_events: 3,
            after_completion: 1,
            corrections: 1,
            withdrawals: 1,
            dead_letters: counts(&[("missing_field", 1)]),
            last_reported_at: Some(day("13") + 10 * 3600),
        }
    );
    assert_eq!(
        figures[0],
        SourceFigures {
            source: "http:pj-pub".into(),
            daily: vec![(date("12"), "case.accepted".into(), 1)],
            events: 1,
            delay_p50: Some(120),
            delay_p95: Some(120),
            case_events: 1,
            after_completion: 0,
            corrections: 0,
            withdrawals: 0,
            dead_letters: counts(&[("bad_json", 1)]),
            last_reported_at: Some(day("12") + 9 * 3600 + 120),
        }
    );
    assert_eq!(
        figures[1],
        SourceFigures {
            source: "sdjc:idle".into(),
            ..SourceFigures::default()
        },
        "a listed source without events: nothing yet, never heard from"
    );

    // The second day only: the first day's events drop out, the last report stays.
    let later = store
        .source_health(&SourceQuery {
            from: day("13"),
            also: Vec::new(),
            ..q.clone()
        })
        .await
        .expect("second day");
    let sdjc = later.iter().find(|f| f.source == "sdjc:pj").expect("sdjc");
    assert_eq!(
        (sdjc.events, sdjc.case_events, sdjc.after_completion),
        (2, 1, 0)
    );
    assert_eq!((sdjc.delay_p50, sdjc.delay_p95), (Some(600), Some(600)));
    assert!(sdjc.dead_letters.is_empty(), "{:?}", sdjc.dead_letters);
    assert_eq!(sdjc.last_reported_at, Some(day("13") + 10 * 3600));

    // The city sees both counties' sources.
    let city = store
        .source_health(&SourceQuery {
            region_prefix: "4306".into(),
            ..SourceQuery::default()
        })
        .await
        .expect("city");
    let yy = city
        .iter()
        .find(|f| f.source == "gdbs:yy")
        .expect("Yueyang's source");
    assert_eq!(yy.dead_letters, counts(&[("unknown_item", 1)]));
    let sdjc = city.iter().find(|f| f.source == "sdjc:pj").expect("sdjc");
    assert_eq!(
        sdjc.dead_letters,
        counts(&[("missing_field", 2)]),
        "unbounded period"
    );
}

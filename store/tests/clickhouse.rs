//! The ClickHouse backend against a real server (Debian's 18.16 here; current releases in
//! production): the conformance suite every backend passes, and what only ClickHouse has
//! (chunked checkpoints, server exception codes). `./scripts/test.sh` starts a server
//! (deploy/local/clickhouse.sh). Run by hand without a server, these tests skip; with `CI` set
//! they fail instead.

use std::sync::atomic::{AtomicU32, Ordering};

use store::clickhouse::ClickHouseStore;
use store::{CheckpointKey, Dimension, PerfCounts, PerfQuery, Store, StoreError};

mod conformance;

conformance_tests!(fresh_store);

impl conformance::Fixture for ClickHouseStore {
    type S = ClickHouseStore;
    const COUNTING: conformance::Counting = conformance::Counting::Raw;

    fn store(&self) -> &ClickHouseStore {
        self
    }

    async fn finish(self) {
        self.drop_database().await.expect("drop");
    }
}

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

#[tokio::test]
async fn migrate_applies_every_clickhouse_version_and_names_the_server() {
    let Some(store) = fresh_store("migrate").await else {
        return;
    };
    let version = store.server_version().await.expect("version");
    assert!(
        version.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "{version}"
    );
    assert_eq!(
        store.migrate().await.expect("migrate"),
        vec![1, 2, 3, 5, 6, 7, 10]
    );
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
}

#[tokio::test]
async fn a_checkpoint_larger_than_a_chunk_reads_back_whole() {
    use store::clickhouse::CHECKPOINT_CHUNK;
    let Some(store) = fresh_store("chunks").await else {
        return;
    };
    store.migrate().await.unwrap();
    let key = CheckpointKey {
        group_id: "jiancha",
        topic: "jiancha.events",
        partition: 3,
    };
    // Larger than one chunk, with a byte pattern that shows misordered chunks.
    let big: Vec<u8> = (0..CHECKPOINT_CHUNK + 1000)
        .map(|i| (i % 251) as u8)
        .collect();
    store.save_checkpoint(key, 0, 100, &big).await.unwrap();
    let found = store.checkpoints(key).await.unwrap();
    let offsets: Vec<(u8, i64, u32)> = found
        .iter()
        .map(|m| (m.slot, m.next_offset, m.chunks))
        .collect();
    assert_eq!(offsets, vec![(0, 100, 2)]);
    assert_eq!(store.checkpoint_data(key, &found[0]).await.unwrap(), big);
    store.drop_database().await.unwrap();
}

/// Run `statement` on the test server (statements the store has no method for); its output.
fn run(statement: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--data-binary", statement, &url()])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Merge every part of the tables `perf_counts` and `history` read, as background merges
/// eventually do.
fn merge_all(store: &ClickHouseStore) {
    for table in ["case_facts", "alerts", "alerts_by_region", "activity"] {
        run(&format!(
            "OPTIMIZE TABLE {}.{table} FINAL",
            store.database()
        ));
    }
}

/// `perf_counts` reads months whose only part came from a merge without `FINAL`: the counts
/// must be the same before and after the server merges everything.
#[tokio::test]
async fn perf_counts_are_the_same_once_every_month_is_merged() {
    let Some(store) = fresh_store("merged").await else {
        return;
    };
    store.migrate().await.expect("migrate");
    conformance::load_perf_dataset(&store, conformance::Counting::Raw).await;
    conformance::assert_perf_counts(&store).await;
    merge_all(&store);
    conformance::assert_perf_counts(&store).await;
    store.drop_database().await.expect("drop");
}

/// Every scope, dimension and a few periods (unbounded ones cover whole months, so merged
/// months come from stored totals), in one list.
async fn perf_everywhere(store: &ClickHouseStore) -> Vec<(PerfQuery, Vec<PerfCounts>)> {
    const DAY: u32 = 86_400;
    let t0 = conformance::T0;
    let mut out = Vec::new();
    for prefix in ["", "43", "4306", "430626", "430702"] {
        for (from, to) in [(0, 0), (t0 - 40 * DAY, t0 + 60 * DAY), (t0, t0 + 10 * DAY)] {
            for by in [
                Dimension::Department,
                Dimension::Window,
                Dimension::Staff,
                Dimension::Item,
            ] {
                let q = PerfQuery {
                    region_prefix: prefix.into(),
                    from,
                    to,
                    by,
                };
                let counts = store.perf_counts(&q).await.expect("perf");
                out.push((q, counts));
            }
        }
    }
    out
}

/// The stored totals of merged months give what reading the rows gives: before any merge
/// (every month read with `FINAL`), after merging (totals computed, then read from them),
/// and after late rows land in a merged month (totals corrected), compared with a copy of
/// the same rows that was never merged.
#[tokio::test]
async fn perf_counts_from_stored_totals_equal_the_rows() {
    let Some(store) = fresh_store("totals").await else {
        return;
    };
    store.migrate().await.expect("migrate");
    conformance::load_perf_dataset(&store, conformance::Counting::Raw).await;
    let raw = perf_everywhere(&store).await;
    assert!(raw.iter().any(|(_, counts)| counts.len() > 1));
    merge_all(&store);
    assert_eq!(
        perf_everywhere(&store).await,
        raw,
        "first read after the merge"
    );
    let db = store.database();
    let count_totals = || run(&format!("SELECT count() FROM {db}.perf_month_parts"));
    let finished: u32 = count_totals().parse().expect("a count");
    assert!(
        finished >= 12,
        "totals of 3 tables × 4 dimensions: {finished}"
    );
    assert_eq!(perf_everywhere(&store).await, raw, "read from totals");
    assert_eq!(count_totals(), finished.to_string(), "computed once");
    conformance::assert_perf_counts(&store).await;

    // Late rows into the merged months: re-deliveries (no change) ...
    for table in ["case_facts", "alerts_by_region", "activity"] {
        run(&format!(
            "INSERT INTO {db}.{table} SELECT * FROM {db}.{table} LIMIT 1"
        ));
    }
    assert_eq!(perf_everywhere(&store).await, raw, "re-delivered rows");
    conformance::assert_perf_counts(&store).await;
    // ... and a retraction and a re-derived fact (changes), compared with an unmerged copy.
    run(&format!(
        "INSERT INTO {db}.alerts_by_region SELECT alert_id, rule, level, 'retracted', \
         version + 1, fired_at, center_id, region, department, window_id, staff_id, case_id, \
         item_code, subject, message, evidence FROM {db}.alerts_by_region \
         WHERE status = 'open' AND rule != 'discipline.ladder' LIMIT 1"
    ));
    run(&format!(
        "INSERT INTO {db}.case_facts SELECT case_id, center_id, region, department, window_id, \
         staff_id, item_code, case_type, channel, accepted_at, completed_at, result, start, \
         deemed, promised_days, promised_unit, legal_days, legal_unit, extension_days, \
         pause_days, deadline_date, deadline, legal_deadline, working_days_used + 1, 1 - on_time, \
         early, on_site, within_legal, version + 1 FROM {db}.case_facts LIMIT 1"
    ));
    let changed = perf_everywhere(&store).await;
    assert_ne!(changed, raw, "the late rows change some counts");
    let Some(copy) = fresh_store("totals_copy").await else {
        return;
    };
    copy.migrate().await.expect("migrate");
    for table in ["case_facts", "alerts_by_region", "activity"] {
        run(&format!(
            "INSERT INTO {}.{table} SELECT * FROM {db}.{table}",
            copy.database()
        ));
    }
    assert_eq!(perf_everywhere(&copy).await, changed, "unmerged copy");
    copy.drop_database().await.expect("drop");
    store.drop_database().await.expect("drop");
}

/// A month whose only part holds a key twice (one insert carrying an alert's open and
/// retracted rows: a re-delivered batch joined with the next) is read with `FINAL`: history
/// shows the alert once, retracted, and 绩效 does not count it; the same once merged. (Current
/// releases collapse such an insert already, `optimize_on_insert`; 18.16 does not.)
#[tokio::test]
async fn a_part_holding_a_key_twice_is_read_with_final() {
    use conformance::{alert, T0};
    let Some(store) = fresh_store("twice").await else {
        return;
    };
    store.migrate().await.expect("migrate");
    store
        .insert_alerts(&[
            alert("a1", "430626", "open"),
            alert("a1", "430626", "retracted"),
            alert("a2", "430626", "open"),
        ])
        .await
        .expect("one insert");
    let history = store::HistoryQuery {
        region_prefix: "4306".into(),
        ..store::HistoryQuery::default()
    };
    let perf = PerfQuery {
        region_prefix: "4306".into(),
        from: T0 - 86_400,
        to: T0 + 86_400,
        by: Dimension::Department,
    };
    let seen = |rows: Vec<store::rows::AlertRow>| -> Vec<(String, String)> {
        rows.into_iter().map(|a| (a.alert_id, a.status)).collect()
    };
    let want = vec![
        ("a1".to_string(), "retracted".to_string()),
        ("a2".to_string(), "open".to_string()),
    ];
    for round in ["as inserted", "merged"] {
        assert_eq!(
            seen(store.history(&history).await.expect("history")),
            want,
            "{round}"
        );
        let counts = store.perf_counts(&perf).await.expect("perf");
        assert_eq!(
            counts
                .iter()
                .map(|c| (c.key.as_str(), c.yellows))
                .collect::<Vec<_>>(),
            [("BDC", 1)],
            "{round}"
        );
        merge_all(&store);
    }
    store.drop_database().await.expect("drop");
}

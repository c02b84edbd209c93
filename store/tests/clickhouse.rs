//! The ClickHouse backend against a real server (Debian's 18.16 here; current releases in
//! production): the conformance suite every backend passes, and what only ClickHouse has
//! (chunked checkpoints, server exception codes). `./scripts/test.sh` starts a server
//! (deploy/local/clickhouse.sh). Run by hand without a server, these tests skip; with `CI` set
//! they fail instead.

use std::sync::atomic::{AtomicU32, Ordering};

use store::clickhouse::ClickHouseStore;
use store::{CheckpointKey, Store, StoreError};

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
    assert_eq!(store.migrate().await.expect("migrate"), vec![1, 2, 3, 5]);
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
    for table in ["case_facts", "alerts", "alerts_by_region", "activity"] {
        let statement = format!("OPTIMIZE TABLE {}.{table} FINAL", store.database());
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail", "--data-binary", &statement, &url()])
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "{statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    conformance::assert_perf_counts(&store).await;
    store.drop_database().await.expect("drop");
}

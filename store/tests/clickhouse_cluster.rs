//! The ClickHouse backend in the cluster layout (`jiancha migrate --cluster`: Replicated
//! `*_local` tables behind Distributed fronts): the conformance suite every backend passes, on
//! a cluster of one shard (`jiancha_test`) and on one of two shards with two replicas each
//! (`jiancha_test_2x2`), so a read path that works on one server only fails here.
//! `./scripts/test.sh` starts the servers and ZooKeeper (deploy/local/clickhouse-cluster.sh).
//! Run by hand without them, these tests skip; with `CI` set they fail instead.

use std::sync::atomic::{AtomicU32, Ordering};

use store::clickhouse::ClickHouseStore;
use store::{Dimension, HistoryQuery, PerfQuery, Store};

mod conformance;

impl conformance::Fixture for ClusterStore {
    type S = ClickHouseStore;
    const COUNTING: conformance::Counting = conformance::Counting::Deduplicated;

    fn store(&self) -> &ClickHouseStore {
        &self.0
    }

    async fn finish(self) {
        self.0.drop_database().await.expect("drop on cluster");
    }
}

/// A store on a fresh database of a cluster, dropped `ON CLUSTER` when the test ends well.
struct ClusterStore(ClickHouseStore);

fn url() -> String {
    std::env::var("JIANCHA_CLICKHOUSE_CLUSTER_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8133".into())
}

/// A store on a fresh database on `cluster`, or `None` (skip) when the servers do not run
/// and this is not CI.
async fn fresh_store(cluster: &str, name: &str) -> Option<ClusterStore> {
    static N: AtomicU32 = AtomicU32::new(0);
    let db = format!(
        "jiancha_cluster_{name}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let store = ClickHouseStore::new(&url(), &db)
        .expect("valid database name")
        .with_cluster(cluster)
        .expect("valid cluster name");
    let reachable = match store.server_version().await {
        Ok(_) => run(&format!(
            "SELECT count() FROM system.clusters WHERE cluster = '{cluster}'"
        ))
        .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match reachable {
        Ok(hosts) if hosts != "0" => Some(ClusterStore(store)),
        found if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipping: no cluster {cluster} at {} ({found:?}); ./scripts/test.sh starts it",
                url()
            );
            None
        }
        found => panic!("CI needs cluster {cluster} at {}: {found:?}", url()),
    }
}

async fn one_shard(name: &str) -> Option<ClusterStore> {
    fresh_store("jiancha_test", name).await
}

async fn two_shards(name: &str) -> Option<ClusterStore> {
    fresh_store("jiancha_test_2x2", name).await
}

mod on_one_shard {
    use super::{conformance, one_shard};
    use crate::conformance_tests;
    conformance_tests!(one_shard);
}

mod on_two_shards_of_two_replicas {
    use super::{conformance, two_shards};
    use crate::conformance_tests;
    conformance_tests!(two_shards);
}

/// Run `statement` on the cluster's first server; its output.
fn run(statement: &str) -> Result<String, String> {
    run_at(&url(), statement)
}

/// Run `statement` on the server at `url`; its output.
fn run_at(url: &str, statement: &str) -> Result<String, String> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--data-binary", statement, url])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A server of `cluster`: its shard, replica and native port.
struct Replica {
    shard: u32,
    replica: u32,
    port: u32,
}

impl Replica {
    /// Its HTTP interface: deploy/local/clickhouse-cluster.sh gives each server the native
    /// port after its HTTP port.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port - 1)
    }
}

fn replicas(cluster: &str) -> Vec<Replica> {
    run(&format!(
        "SELECT shard_num, replica_num, port FROM system.clusters \
         WHERE cluster = '{cluster}' ORDER BY shard_num, replica_num"
    ))
    .expect("hosts")
    .lines()
    .map(|line| {
        let f: Vec<u32> = line
            .split('\t')
            .map(|x| x.parse().expect("number"))
            .collect();
        Replica {
            shard: f[0],
            replica: f[1],
            port: f[2],
        }
    })
    .collect()
}

/// The rows of `db.table_local` on every replica of `cluster`, as (shard, replica, rows),
/// once the replicas of each shard agree (replication is asynchronous; at most 30 s).
fn rows_per_replica(cluster: &str, db: &str, table: &str) -> Vec<(u32, u32, u64)> {
    let mut tries = 0;
    loop {
        let rows: Vec<(u32, u32, u64)> = replicas(cluster)
            .iter()
            .map(|r| {
                let n = run(&format!(
                    "SELECT count() FROM remote('127.0.0.1:{}', {db}.{table}_local)",
                    r.port
                ))
                .expect("count");
                (r.shard, r.replica, n.parse().expect("a count"))
            })
            .collect();
        let agree = rows
            .windows(2)
            .all(|w| w[0].0 != w[1].0 || w[0].2 == w[1].2);
        tries += 1;
        if agree || tries == 60 {
            return rows;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// The layout is really what it says: the 绩效 dataset's rows are spread over both shards
/// (so the conformance checks above read across shards), each shard's replicas hold the same
/// rows, and the answers through the Distributed fronts are the hand-worked ones — also after
/// every part on every replica is merged.
#[tokio::test]
async fn rows_spread_over_shards_and_replicas_agree() {
    let Some(fixture) = two_shards("spread").await else {
        return;
    };
    let store = &fixture.0;
    store.migrate().await.expect("migrate");
    conformance::load_perf_dataset(store, conformance::Counting::Deduplicated).await;
    conformance::assert_perf_counts(store).await;
    let db = store.database();
    for table in ["case_facts", "alerts", "alerts_by_region", "activity"] {
        let rows = rows_per_replica("jiancha_test_2x2", db, table);
        assert_eq!(rows.len(), 4, "{table}: {rows:?}");
        assert!(
            rows.iter().all(|&(_, _, n)| n > 0),
            "{table}: rows on both shards: {rows:?}"
        );
        assert_eq!(
            rows[0].2, rows[1].2,
            "{table}: shard 1's replicas: {rows:?}"
        );
        assert_eq!(
            rows[2].2, rows[3].2,
            "{table}: shard 2's replicas: {rows:?}"
        );
    }
    let history = HistoryQuery {
        region_prefix: "43".into(),
        limit: 100,
        ..HistoryQuery::default()
    };
    let before = store.history(&history).await.expect("history");
    assert_eq!(before.len(), 13, "every alert of 43, once: {before:?}");
    let perf = PerfQuery {
        region_prefix: "4306".into(),
        from: 0,
        to: 0,
        by: Dimension::Staff,
    };
    let counts = store.perf_counts(&perf).await.expect("perf");
    // 18.16 cannot OPTIMIZE a replicated table ON CLUSTER: the first replica of each shard
    // merges, and the other replica follows through the replication log.
    for r in replicas("jiancha_test_2x2")
        .iter()
        .filter(|r| r.replica == 1)
    {
        for table in ["case_facts", "alerts_by_region", "activity"] {
            run_at(
                &r.url(),
                &format!("OPTIMIZE TABLE {db}.{table}_local FINAL"),
            )
            .expect("merge");
        }
    }
    assert_eq!(store.history(&history).await.expect("history"), before);
    assert_eq!(store.perf_counts(&perf).await.expect("perf"), counts);
    conformance::assert_perf_counts(store).await;
    fixture.0.drop_database().await.expect("drop");
}

//! The SQLite backend: the conformance suite every backend passes, and what only SQLite has (the
//! ingest log, file locking, the file itself). Each test works in a directory of its own under
//! the system's temporary directory, removed when the test ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use store::rows::DeadLetterRow;
use store::sqlite::{LogEntry, SqliteStore};
use store::{Store, StoreError};

mod conformance;

conformance_tests!(fresh_store);

/// A store in a temporary directory, removed on drop (also when a test fails).
struct TempStore {
    store: SqliteStore,
    dir: TempDir,
}

impl conformance::Fixture for TempStore {
    type S = SqliteStore;
    const COUNTING: conformance::Counting = conformance::Counting::Collapsed;

    fn store(&self) -> &SqliteStore {
        &self.store
    }

    async fn finish(self) {
        drop(self.store);
        drop(self.dir);
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jiancha-sqlite-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        TempDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("jiancha.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Always a store: SQLite needs no server.
async fn fresh_store(name: &str) -> Option<TempStore> {
    let dir = TempDir::new(name);
    let store = SqliteStore::open(&dir.file()).expect("open");
    Some(TempStore { store, dir })
}

/// A migrated store that gives up on a locked file after 300 ms (the tests that lock it).
async fn impatient_store(name: &str) -> (TempDir, SqliteStore) {
    let dir = TempDir::new(name);
    let store =
        SqliteStore::open_with_busy_timeout(&dir.file(), Duration::from_millis(300)).expect("open");
    store.migrate().await.expect("migrate");
    (dir, store)
}

fn entry(n: u32) -> LogEntry {
    LogEntry {
        received_at: 1_791_820_800 + i64::from(n),
        source: format!("http:10.0.0.{n}"),
        payload: format!(r#"{{"event_id":"e{n}","note":"受理"}}"#).into_bytes(),
    }
}

#[tokio::test]
async fn migrate_applies_the_ingest_log_too() {
    let dir = TempDir::new("migrate");
    let store = SqliteStore::open(&dir.file()).expect("open");
    assert_eq!(
        store.migrate().await.expect("migrate"),
        vec![1, 2, 3, 4, 5, 7, 9, 10, 11, 12]
    );
    assert_eq!(store.path(), dir.file());
    assert_eq!(
        store.log_end().await.expect("end"),
        0,
        "an empty log ends at 0"
    );
    drop(store);
    let again = SqliteStore::open(&dir.file()).expect("reopen");
    assert!(again.migrate().await.expect("migrate").is_empty());
}

#[tokio::test]
async fn the_ingest_log_keeps_order_and_never_reuses_a_number() {
    let dir = TempDir::new("log");
    let store = SqliteStore::open(&dir.file()).expect("open");
    store.migrate().await.expect("migrate");
    assert!(store.read_log(0, 10).await.expect("empty").is_empty());
    assert_eq!(
        store
            .append_log(vec![entry(1), entry(2), entry(3)])
            .await
            .expect("append"),
        [1, 2, 3]
    );
    assert_eq!(store.append_log(vec![entry(4)]).await.expect("append"), [4]);
    assert!(store
        .append_log(Vec::new())
        .await
        .expect("nothing")
        .is_empty());
    assert_eq!(store.log_end().await.expect("end"), 4);
    let all = store.read_log(0, 100).await.expect("all");
    assert_eq!(
        all,
        (1..=4)
            .map(|n| (i64::from(n), entry(n)))
            .collect::<Vec<_>>(),
        "in sequence order, every byte as appended"
    );
    let page = store.read_log(1, 2).await.expect("page");
    let seqs: Vec<i64> = page.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [2, 3], "after 1, at most 2");

    // The newest entries are removed behind the store's back (a compaction, say), and the
    // process restarts: the numbers they had are not handed out again.
    drop(store);
    let raw = rusqlite::Connection::open(dir.file()).expect("raw");
    raw.execute("DELETE FROM ingest_log WHERE seq >= 3", [])
        .expect("delete");
    drop(raw);
    let store = SqliteStore::open(&dir.file()).expect("reopen");
    store.migrate().await.expect("migrate");
    assert_eq!(
        store.log_end().await.expect("end"),
        4,
        "the end never moves back"
    );
    assert_eq!(store.append_log(vec![entry(5)]).await.expect("append"), [5]);
    let seqs: Vec<i64> = store
        .read_log(0, 100)
        .await
        .expect("all")
        .iter()
        .map(|(seq, _)| *seq)
        .collect();
    assert_eq!(
        seqs,
        [1, 2, 5],
        "what was acknowledged survives the restart"
    );
}

#[tokio::test]
async fn an_http_batch_and_its_dead_letters_are_stored_together() {
    let dir = TempDir::new("batch");
    let store = SqliteStore::open(&dir.file()).expect("open");
    store.migrate().await.expect("migrate");
    let dead = DeadLetterRow {
        received_at: 1_791_820_800,
        source: "http:10.0.0.9/2".into(),
        reason: "bad_json".into(),
        field: String::new(),
        message: "expected value at line 1 column 1".into(),
        raw: "not json".into(),
    };
    let seqs = store
        .append_log_with_dead(vec![entry(1), entry(2)], vec![dead.clone()])
        .await
        .expect("append");
    assert_eq!(seqs, [1, 2]);
    assert_eq!(store.count("dead_letters").await.expect("dead"), 1);
    // Dead letters only (a batch with nothing valid) append nothing to the log.
    let seqs = store
        .append_log_with_dead(
            Vec::new(),
            vec![DeadLetterRow {
                source: "http:10.0.0.9/3".into(),
                ..dead
            }],
        )
        .await
        .expect("dead only");
    assert!(seqs.is_empty());
    assert_eq!(store.count("dead_letters").await.expect("dead"), 2);
    assert_eq!(store.log_end().await.expect("end"), 2);
}

#[tokio::test]
async fn an_event_posted_again_is_not_logged_twice_however_late() {
    let dir = TempDir::new("identities");
    let store = SqliteStore::open(&dir.file()).expect("open");
    store.migrate().await.expect("migrate");
    let id = |n: u8| [n; 16];
    let seqs = store
        .append_events(
            vec![(entry(1), id(1)), (entry(2), id(2)), (entry(1), id(1))],
            Vec::new(),
        )
        .await
        .expect("append");
    assert_eq!(seqs, [Some(1), Some(2), None], "the repeat in the batch");
    drop(store);
    let store = SqliteStore::open(&dir.file()).expect("reopen");
    store.migrate().await.expect("migrate");
    let seqs = store
        .append_events(vec![(entry(2), id(2)), (entry(3), id(3))], Vec::new())
        .await
        .expect("append");
    assert_eq!(seqs, [None, Some(3)], "a repeat after a restart");
    assert_eq!(store.log_end().await.expect("end"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_share_commits_and_each_event_is_logged_once() {
    let dir = TempDir::new("group");
    let store = SqliteStore::open(&dir.file()).expect("open");
    store.migrate().await.expect("migrate");
    // Another connection holds the write lock while the requests arrive, so they queue (as
    // they do behind a commit in progress).
    let mut other = rusqlite::Connection::open(dir.file()).expect("other");
    let lock = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .expect("lock");
    // 40 requests of 25 events each: 20 events of their own, and 5 that every request sends
    // (the same window system retrying through several connections at once).
    let requests: Vec<Vec<(LogEntry, [u8; 16])>> = (0..40u16)
        .map(|r| {
            (0..25u16)
                .map(|i| {
                    let n = if i < 5 { i } else { 1000 + r * 100 + i };
                    let mut id = [0u8; 16];
                    id[..2].copy_from_slice(&n.to_be_bytes());
                    let e = LogEntry {
                        received_at: 1_700_000_000,
                        source: format!("http:r{r}"),
                        payload: format!("{{\"n\":{n}}}").into_bytes(),
                    };
                    (e, id)
                })
                .collect()
        })
        .collect();
    let calls: Vec<_> = requests
        .iter()
        .cloned()
        .map(|entries| {
            let store = store.clone();
            tokio::spawn(async move { store.append_events(entries, Vec::new()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for call in &calls {
        assert!(!call.is_finished(), "no answer before the commit");
    }
    assert!(store.read_log(0, 10).await.expect("read").is_empty());
    lock.rollback().expect("release");
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("task").expect("append"));
    }
    assert!(
        store.log_commits() <= 3,
        "40 waiting requests took {} commits",
        store.log_commits()
    );

    // Every acknowledged entry is in the log once, with its own payload; each shared event is
    // new to exactly one request and a duplicate to the 39 others.
    let log = store.read_log(0, 10_000).await.expect("log");
    let mut acknowledged = BTreeMap::new();
    let mut firsts = [0; 5];
    for (request, seqs) in requests.iter().zip(&answers) {
        assert_eq!(seqs.len(), request.len());
        for (i, ((entry, _), seq)) in request.iter().zip(seqs).enumerate() {
            match seq {
                Some(seq) => {
                    assert!(acknowledged.insert(*seq, entry.clone()).is_none());
                    if i < 5 {
                        firsts[i] += 1;
                    }
                }
                None => assert!(i < 5, "only the shared events are duplicates"),
            }
        }
    }
    assert_eq!(
        firsts, [1; 5],
        "each shared event logged for one request only"
    );
    assert_eq!(acknowledged.len(), 40 * 20 + 5);
    assert_eq!(log, acknowledged.into_iter().collect::<Vec<_>>());

    // Sent again, concurrently: all duplicates, nothing logged.
    let again: Vec<_> = requests
        .into_iter()
        .map(|entries| {
            let store = store.clone();
            tokio::spawn(async move { store.append_events(entries, Vec::new()).await })
        })
        .collect();
    for call in again {
        let seqs = call.await.expect("task").expect("append");
        assert!(seqs.iter().all(Option::is_none), "{seqs:?}");
    }
    assert_eq!(store.log_end().await.expect("end"), 40 * 20 + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_answers_every_request_and_logs_none() {
    let (dir, store) = impatient_store("group-fail").await;
    let mut other = rusqlite::Connection::open(dir.file()).expect("other");
    let lock = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .expect("lock");
    let calls: Vec<_> = (0..10u8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_events(vec![(entry(n.into()), [n; 16])], Vec::new())
                    .await
            })
        })
        .collect();
    for call in calls {
        let e = call.await.expect("task").expect_err("locked");
        assert_locked(&e, &dir.file());
    }
    lock.rollback().expect("release");
    assert_eq!(store.log_end().await.expect("end"), 0, "nothing logged");
    // The identities were not kept either: the same events are new when sent again.
    let seqs = store
        .append_events(vec![(entry(1), [1; 16]), (entry(2), [2; 16])], Vec::new())
        .await
        .expect("retry");
    assert_eq!(seqs, [Some(1), Some(2)]);
}

/// Whoever consumes the log is woken by the commit itself, whichever way entries were
/// appended (the HTTP path's group commit, a polled front-database batch, a plain append),
/// and not by a commit that failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_to_the_log_wakes_its_consumer() {
    let (dir, store) = impatient_store("wake").await;
    let appended = store.log_appended();
    let woken = |within: Duration| {
        let appended = appended.clone();
        async move {
            tokio::time::timeout(within, appended.notified())
                .await
                .is_ok()
        }
    };
    store
        .append_events(vec![(entry(1), [1; 16])], Vec::new())
        .await
        .expect("posted");
    assert!(woken(Duration::from_secs(5)).await, "posted");
    store
        .append_polled(vec![(entry(2), [2; 16])], Vec::new(), Vec::new())
        .await
        .expect("polled");
    assert!(woken(Duration::from_secs(5)).await, "polled");
    store.append_log(vec![entry(3)]).await.expect("appended");
    assert!(woken(Duration::from_secs(5)).await, "appended");
    // (Wakes do not add up — a commit that woke it twice would leave one — so this checks
    // only that nothing else wakes it.)
    assert!(
        !woken(Duration::from_millis(200)).await,
        "woken without a commit"
    );

    let mut other = rusqlite::Connection::open(dir.file()).expect("other");
    let lock = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .expect("lock");
    store
        .append_events(vec![(entry(4), [4; 16])], Vec::new())
        .await
        .expect_err("locked");
    store.append_log(vec![entry(5)]).await.expect_err("locked");
    assert!(
        !woken(Duration::from_millis(200)).await,
        "woken by a failed commit"
    );
    lock.rollback().expect("release");
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = TempDir::new("reopen");
    let store = SqliteStore::open(&dir.file()).expect("open");
    store.migrate().await.expect("migrate");
    store
        .insert_alerts(&[conformance::alert("a1", "430626", "open")])
        .await
        .expect("alert");
    store.append_log(vec![entry(1)]).await.expect("log");
    drop(store);
    let store = SqliteStore::open(&dir.file()).expect("reopen");
    assert_eq!(
        store
            .alerts(&store::AlertFilter::default())
            .await
            .expect("alerts"),
        [conformance::alert("a1", "430626", "open")]
    );
    assert_eq!(store.read_log(0, 10).await.expect("log"), [(1, entry(1))]);
}

/// The message names the file and the error is transient: the caller retries.
fn assert_locked(e: &StoreError, file: &Path) {
    assert!(e.is_transient(), "{e}");
    assert!(
        e.to_string().contains(&file.display().to_string()),
        "names the file: {e}"
    );
}

#[tokio::test]
async fn a_file_locked_elsewhere_is_unavailable_after_the_busy_timeout() {
    let dir = TempDir::new("locked");
    let timeout = Duration::from_millis(300);
    let store = SqliteStore::open_with_busy_timeout(&dir.file(), timeout).expect("open");
    store.migrate().await.expect("migrate");

    // Another writer (a second process would do the same) holds the write lock.
    let mut other = rusqlite::Connection::open(dir.file()).expect("other");
    let tx = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .expect("lock");
    let started = Instant::now();
    let e = store.append_log(vec![entry(1)]).await.expect_err("locked");
    assert!(
        started.elapsed() >= timeout,
        "waited {:?}",
        started.elapsed()
    );
    assert_locked(&e, &dir.file());
    // Reads go on under WAL.
    assert_eq!(store.log_end().await.expect("reads go on"), 0);
    tx.rollback().expect("release");
    assert_eq!(store.append_log(vec![entry(1)]).await.expect("retry"), [1]);
    drop((store, other));

    // A process holding the file exclusively: even opening it fails, transiently.
    let other = rusqlite::Connection::open(dir.file()).expect("other");
    other
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .expect("exclusive");
    let e = SqliteStore::open_with_busy_timeout(&dir.file(), timeout).expect_err("locked");
    assert_locked(&e, &dir.file());
}

#[tokio::test]
async fn an_unusable_path_is_refused_with_its_name() {
    let dir = TempDir::new("unusable");
    let missing = dir.0.join("no-such-directory").join("jiancha.db");
    let e = SqliteStore::open(&missing).expect_err("no directory");
    assert!(!e.is_transient(), "{e}");
    let message = e.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("cannot open"), "{message}");

    // A directory where the file should be.
    let e = SqliteStore::open(&dir.0).expect_err("a directory");
    assert!(!e.is_transient(), "{e}");
    assert!(e.to_string().contains(&dir.0.display().to_string()), "{e}");

    // Not a database at all.
    let junk = dir.0.join("junk.db");
    std::fs::write(&junk, vec![b'x'; 4096]).expect("junk");
    let e = SqliteStore::open(&junk).expect_err("not a database");
    assert!(!e.is_transient(), "{e}");
    assert!(e.to_string().contains("not a SQLite database"), "{e}");
}

//! The SQLite backend of [`Store`], for the embedded mode: one file holds everything, including
//! the durable ingest log that stands in for Kafka ([`SqliteStore::append_log`]).
//!
//! - **Durability.** WAL journal with `synchronous=FULL`: when a write returns, it is on disk,
//!   so the embedded mode may acknowledge an HTTP event as soon as its log append returns.
//! - **Checkpoints off the commit path.** The writer's automatic checkpoints are off; a thread
//!   of the store's own (`Checkpointer`) checkpoints the write-ahead log, so a commit waits for
//!   its own fsync only, and the writer finishes a checkpoint only when the log has grown to
//!   8 MiB (SQLite starts the log over only after a checkpoint that copied every frame).
//! - **De-duplication at write time.** Every keyed table has a primary key equal to the
//!   ClickHouse table's `ORDER BY`, and rows are upserted: a conflicting row replaces the stored
//!   one only when its version is at least the stored one's (alerts and case facts: `version`;
//!   window status: `updated_at`; checkpoints: `next_offset`; events and dead letters: always,
//!   the last write wins). Reads therefore return what ClickHouse's `FINAL` returns, but
//!   [`Store::count`] counts collapsed rows, where ClickHouse counts raw ones.
//! - **No blocking on the runtime.** SQLite calls run on `tokio::task::spawn_blocking` with
//!   owned data. One writer connection behind a mutex serialises writes (SQLite allows one
//!   writer anyway, and its write transactions are `IMMEDIATE`, so they queue on the busy
//!   timeout instead of failing on a lock upgrade); one read connection, which under WAL reads
//!   committed data without waiting for the writer.
//! - **Group commit of the ingest log.** Concurrent [`SqliteStore::append_events`] calls queue;
//!   one blocking task at a time commits everything queued in one transaction (one fsync) and
//!   answers each call after that commit. The calls are taken in arrival order within the
//!   transaction, so the answers are those of one call after another (a repeated identity is
//!   new to the first call that carries it, a duplicate to every later one, in any group).
//! - **Errors name the file** and are classified in one small function (`classify`): a lock
//!   held elsewhere is transient; a full disk, a read-only or unopenable path and a corrupt file
//!   are refusals an operator must fix.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, Row, Statement, TransactionBehavior};

use crate::api::{
    check_table, AlertFilter, CheckpointKey, CheckpointMeta, DeadLetterQuery, HistoryQuery,
    PerfCounts, PerfQuery, RowBatch, SourceFigures, SourceQuery, Store,
};
use crate::query::{self, ActivityCounts, AlertCounts, Dialect, FactCounts, Param};
use crate::rows::{
    ActionRow, ActivityRow, AlertRow, CaseFactRow, DeadLetterRow, EventRow, NotificationRow,
    SourceEventRow, WindowStatusRow,
};
use crate::schema::{SQLITE_LEDGER, SQLITE_MIGRATIONS, SQLITE_SELF_TEST};
use crate::{now_seconds, self_test_token, StoreError};

/// How long a statement waits for a lock held by another connection before giving up with
/// [`StoreError::Unavailable`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One SQLite database file holding jiancha's tables and the ingest log. Cloning is cheap and
/// shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The only connection that writes.
    writer: Mutex<Connection>,
    /// Reads (`query_only`), concurrent with the writer under WAL.
    reader: Mutex<Connection>,
    /// The engine's reads of the ingest log (`query_only`): never queued behind a long read of
    /// the dashboards (loading millions of live alerts at start-up, a year's CSV export).
    log_reader: Mutex<Connection>,
    /// `append_events` calls waiting for the next group commit.
    appends: Mutex<Appends>,
    /// Group commits of `append_events` so far.
    log_commits: AtomicU64,
    /// Notified after every commit that appended to the ingest log.
    appended: Arc<tokio::sync::Notify>,
    /// Copies the write-ahead log into the database file; stops when the store is dropped.
    checkpointer: Checkpointer,
}

/// The write-ahead log's checkpoints, off the commit path: the writer's automatic checkpoints
/// are off, and a thread with its own connection runs a `PASSIVE` checkpoint every
/// [`Checkpointer::EVERY`], copying committed frames into the database file without waiting
/// for (or holding up) the writer or a reader. A commit then waits for its own fsync only.
///
/// SQLite starts the log file over only when a write begins after a checkpoint that copied
/// every frame, which a writer that never pauses does not give a passive checkpoint, and a
/// `TRUNCATE` checkpoint from the thread starves waiting for the writer's lock (both seen: the
/// log grew until it filled the disk). So once the log holds [`Checkpointer::RESTART_AT`]
/// frames, or after a checkpoint failed, the thread raises `due`, and the writer runs a passive
/// checkpoint itself after its next transaction ([`Inner::restart_if_due`]): by then the thread
/// has copied almost every frame, so this costs the writer little, and its next transaction
/// writes the log from the start again — after a full disk, that reused space is what lets
/// writes resume. (A `TRUNCATE` by the writer waits for readers while appends queue behind
/// it: measured, it gave back the whole gain.)
struct Checkpointer {
    /// The writer should finish a checkpoint (the log has grown, or a checkpoint failed).
    due: Arc<AtomicBool>,
    /// Dropped with the store: the thread sees the channel closed and ends.
    _stop: Sender<()>,
}

impl Checkpointer {
    const EVERY: Duration = Duration::from_millis(100);
    /// 2,048 frames: 8 MiB of 4 KiB pages (SQLite's own automatic checkpoint: 1,000).
    const RESTART_AT: i64 = 2_048;

    fn start(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let conn = connect(path, busy_timeout)
            .and_then(|conn| {
                conn.pragma_update(None, "synchronous", "FULL")
                    .map(|()| conn)
            })
            .map_err(|e| error(path, e))?;
        let (stop, stopped) = channel::<()>();
        let due = Arc::new(AtomicBool::new(false));
        let raise = Arc::clone(&due);
        let file = path.to_path_buf();
        std::thread::Builder::new()
            .name("jiancha-checkpoint".into())
            .spawn(move || Self::run(&conn, &stopped, &raise, &file))
            .map_err(|e| StoreError::Refused {
                code: None,
                message: format!(
                    "{}: cannot start the checkpoint thread: {e}",
                    path.display()
                ),
            })?;
        Ok(Checkpointer { due, _stop: stop })
    }

    /// The thread: a passive checkpoint every [`Checkpointer::EVERY`] until the store is
    /// dropped; `due` raised when the log is long or a checkpoint failed.
    fn run(conn: &Connection, stopped: &Receiver<()>, due: &AtomicBool, file: &Path) {
        let mut failing = false;
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(Self::EVERY) {
            // (busy, frames in the log, frames copied)
            let frames =
                conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
            if frames.as_ref().map_or(true, |&n| n >= Self::RESTART_AT) {
                due.store(true, Ordering::Relaxed);
            }
            match (frames, failing) {
                (Err(e), false) => {
                    log::warn!(
                        "{}: checkpoint of the write-ahead log failed (it grows until one \
                         succeeds): {e}",
                        file.display()
                    );
                    failing = true;
                }
                (Ok(_), true) => {
                    log::info!("{}: checkpoints succeed again", file.display());
                    failing = false;
                }
                _ => {}
            }
        }
    }
}

impl Inner {
    /// `f` on one of the connections, on the calling thread, its error naming the file.
    fn on<T>(
        &self,
        which: Conn,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        match which {
            Conn::Writer => self.write(f),
            Conn::Reader => f(&mut lock(&self.reader)),
            Conn::LogReader => f(&mut lock(&self.log_reader)),
        }
        .map_err(|e| error(&self.path, e))
    }

    /// `f` on the writer connection — every write goes through here — and then, whether its
    /// transaction committed or not, the checkpoint the log may be due.
    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut writer = lock(&self.writer);
        let done = f(&mut writer);
        self.restart_if_due(&writer);
        done
    }

    /// When the checkpoint thread asks for it, copy the last frames into the database file.
    fn restart_if_due(&self, writer: &Connection) {
        if !self.checkpointer.due.swap(false, Ordering::Relaxed) {
            return;
        }
        // Passive, as SQLite's automatic checkpoint is: it copies what the thread has not
        // (readers are not waited for), and when that is every frame, the writer's next
        // transaction starts the log over.
        if writer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok(r.get::<_, i64>(1)? != r.get::<_, i64>(2)?)
            })
            .unwrap_or(true)
        {
            // Not every frame (a reader still on an older one, or the disk still full): after
            // the next transaction, then.
            self.checkpointer.due.store(true, Ordering::Relaxed);
        }
    }
}

/// The answer of one `append_events` call: a sequence number per entry, `None` for a duplicate.
type Appended = Result<Vec<Option<i64>>, StoreError>;

/// One `append_events` call waiting for its group's commit.
struct Append {
    entries: Vec<(LogEntry, [u8; 16])>,
    dead: Vec<DeadLetterRow>,
    answer: tokio::sync::oneshot::Sender<Appended>,
}

/// The group-commit queue.
#[derive(Default)]
struct Appends {
    waiting: Vec<Append>,
    /// A blocking task is committing groups; it takes `waiting` again before it stops.
    committing: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// One input accepted into the ingest log, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Receipt time, seconds since the epoch.
    pub received_at: i64,
    /// Where it came from (`http:…`, `file:…:line`).
    pub source: String,
    /// The bytes as received.
    pub payload: Vec<u8>,
}

/// Which connection a call uses.
#[derive(Clone, Copy)]
enum Conn {
    Writer,
    Reader,
    LogReader,
}

impl SqliteStore {
    /// Open (creating it if missing) the database at `path`, with [`DEFAULT_BUSY_TIMEOUT`].
    /// Its directory must exist. Blocks for at most the busy timeout (call it before serving,
    /// or in `spawn_blocking`); then run [`Store::migrate`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_busy_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`SqliteStore::open`] with another busy timeout: how long a statement waits for a lock
    /// held by another process or connection before failing with [`StoreError::Unavailable`].
    pub fn open_with_busy_timeout(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let fail = |e| error(path, e);
        let mut writer = connect(path, busy_timeout).map_err(fail)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Refused {
                code: None,
                message: format!(
                    "{}: cannot use a write-ahead log (journal mode stays {mode:?}); \
                     is it on a network file system?",
                    path.display()
                ),
            });
        }
        // FULL: a commit is fsynced before it returns, because the embedded mode acknowledges
        // an event once its append returns (NORMAL could lose the last commits on power loss).
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        // 64 MiB of page cache instead of SQLite's 2 MiB: each event inserts into several
        // keyed tables (its identity, `events` and `source_events` with their indexes) at
        // random places; with 2 MiB the commit path reads those pages back from the file and
        // spills dirty ones mid-transaction. The cache only grows as pages are used.
        writer
            .pragma_update(None, "cache_size", -65_536)
            .map_err(fail)?;
        // Checkpoints run on a thread of their own (`Checkpointer`), not inside the commit
        // that happens to fill the log: a write waits for its own fsync only.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(fail)?;
        writer.set_transaction_behavior(TransactionBehavior::Immediate);
        let checkpointer = Checkpointer::start(path, busy_timeout)?;
        let read_only = || -> rusqlite::Result<Connection> {
            let conn = connect(path, busy_timeout)?;
            conn.pragma_update(None, "query_only", true)?;
            Ok(conn)
        };
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                reader: Mutex::new(read_only().map_err(fail)?),
                log_reader: Mutex::new(read_only().map_err(fail)?),
                appends: Mutex::default(),
                log_commits: AtomicU64::new(0),
                appended: Arc::default(),
                checkpointer,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Run `f` on one of the connections on a blocking thread, mapping its error to a
    /// [`StoreError`] naming the file.
    async fn run<T, F>(&self, which: Conn, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || inner.on(which, f));
        match task.await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Refused {
                code: None,
                message: format!("{}: storage task failed: {e}", self.inner.path.display()),
            }),
        }
    }

    /// Run `f` in one write transaction, committed when it returns `Ok`.
    async fn transaction<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.run(Conn::Writer, |conn| in_transaction(conn, f)).await
    }

    /// [`SqliteStore::transaction`] for a transaction that appends to the ingest log: once it
    /// has committed, the log's consumer is woken ([`SqliteStore::log_appended`]).
    async fn log_transaction<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let done = self.transaction(f).await;
        if done.is_ok() {
            self.inner.appended.notify_one();
        }
        done
    }

    /// Upsert rows of one table in a transaction of their own.
    async fn upsert<R: SqlRow + Clone + Send + 'static>(
        &self,
        rows: &[R],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.to_vec();
        self.transaction(move |tx| insert(tx, &rows)).await
    }

    /// Append entries to the ingest log in one transaction; returns their sequence numbers
    /// (increasing, from 1, never reused). Durable when it returns.
    pub async fn append_log(&self, entries: Vec<LogEntry>) -> Result<Vec<i64>, StoreError> {
        self.append_log_with_dead(entries, Vec::new()).await
    }

    /// Append an HTTP batch's accepted entries to the ingest log and store its dead letters, in
    /// one transaction: either both are durable or neither. Returns the entries' sequence
    /// numbers.
    pub async fn append_log_with_dead(
        &self,
        entries: Vec<LogEntry>,
        dead: Vec<DeadLetterRow>,
    ) -> Result<Vec<i64>, StoreError> {
        if entries.is_empty() && dead.is_empty() {
            return Ok(Vec::new());
        }
        self.log_transaction(move |tx| {
            let mut seqs = Vec::with_capacity(entries.len());
            let mut append = tx.prepare(
                "INSERT INTO ingest_log (received_at, source, payload) VALUES (?1, ?2, ?3)",
            )?;
            for e in &entries {
                append.execute(params![e.received_at, e.source, e.payload])?;
                seqs.push(tx.last_insert_rowid());
            }
            insert(tx, &dead)?;
            Ok(seqs)
        })
        .await
    }

    /// Append events posted to the API with their identities (region, source, `event_id`),
    /// and dead letters, in one transaction. An event whose identity the log has seen before
    /// (now or in this batch) is not appended: its answer is `None`, the others get their
    /// sequence numbers. The identities are kept for good (16 bytes each), so a re-sent event is
    /// recognised however old it is.
    ///
    /// Calls made while another group is being committed wait for that commit and are then
    /// committed together, in one transaction (one fsync for all of them); each is answered
    /// once its group is durable. If the group's transaction fails, every call in it gets the
    /// error and none of their entries is in the log.
    pub async fn append_events(
        &self,
        entries: Vec<(LogEntry, [u8; 16])>,
        dead: Vec<DeadLetterRow>,
    ) -> Appended {
        if entries.is_empty() && dead.is_empty() {
            return Ok(Vec::new());
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let lead = {
            let mut appends = lock(&self.inner.appends);
            appends.waiting.push(Append {
                entries,
                dead,
                answer,
            });
            !std::mem::replace(&mut appends.committing, true)
        };
        if lead {
            let inner = Arc::clone(&self.inner);
            tokio::task::spawn_blocking(move || commit_groups(&inner));
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Refused {
                code: None,
                message: format!(
                    "{}: the ingest log's commit task failed",
                    self.inner.path.display()
                ),
            })
        })
    }

    /// Append a polled batch (a front-database source's events with their identities, and
    /// its dead letters) and store the source's new positions — `(key, rows taken so far,
    /// position)`, in slot 0 of the checkpoints table — all in one transaction: the positions
    /// move exactly when the batch is durable (docs/ADAPTERS.md, "Front databases"). Events
    /// whose identity the log has seen are skipped, as in [`SqliteStore::append_events`].
    /// Returns how many entries were appended.
    pub async fn append_polled(
        &self,
        entries: Vec<(LogEntry, [u8; 16])>,
        dead: Vec<DeadLetterRow>,
        positions: Vec<(CheckpointKey<'_>, i64, Vec<u8>)>,
    ) -> Result<usize, StoreError> {
        let rows: Vec<CheckpointSlot> = positions
            .into_iter()
            .map(|(key, taken, data)| CheckpointSlot {
                group_id: key.group_id.to_string(),
                topic: key.topic.to_string(),
                partition: key.partition,
                slot: 0,
                next_offset: taken,
                data,
                written_at: now_seconds(),
            })
            .collect();
        self.log_transaction(move |tx| {
            let mut appended = 0;
            {
                let mut known = tx.prepare("INSERT OR IGNORE INTO event_keys (key) VALUES (?1)")?;
                let mut append = tx.prepare(
                    "INSERT INTO ingest_log (received_at, source, payload) VALUES (?1, ?2, ?3)",
                )?;
                for (e, identity) in &entries {
                    if known.execute(params![&identity[..]])? == 0 {
                        continue;
                    }
                    append.execute(params![e.received_at, e.source, e.payload])?;
                    appended += 1;
                }
            }
            insert(tx, &dead)?;
            insert(tx, &rows)?;
            Ok(appended)
        })
        .await
    }

    /// [`Store::write`] on the calling thread, for a thread that exists to write (the
    /// embedded mode's writer): the batch is not copied to be moved onto a blocking task, and
    /// no runtime is involved. Blocks for the transaction and its fsync: never call it on an
    /// async runtime's thread.
    pub fn write_blocking(&self, batch: &RowBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.inner.on(Conn::Writer, |conn| {
            in_transaction(conn, |tx| write_batch(tx, batch))
        })
    }

    /// Notified (`notify_one`: a permit is kept when nobody waits) after every commit that
    /// appended to the ingest log — for `append_events`' group commits by the committing thread
    /// itself, before the requests are answered; for the other appends when the call returns:
    /// whoever consumes the log wakes without waiting for the appending request's answer.
    pub fn log_appended(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.appended)
    }

    /// Transactions [`SqliteStore::append_events`] has committed so far (each one fsync, for
    /// one or more calls).
    pub fn log_commits(&self) -> u64 {
        self.inner.log_commits.load(Ordering::Relaxed)
    }

    /// At most `limit` entries with a sequence number above `after`, in sequence order.
    pub async fn read_log(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, LogEntry)>, StoreError> {
        self.run(Conn::LogReader, move |conn| log_after(conn, after, limit))
            .await
    }

    /// [`SqliteStore::read_log`] on the calling thread, for the thread that exists to consume
    /// the log (the embedded mode's engine): no hop to a blocking task and back on an alert's
    /// path. Blocks for the read: never call it on an async runtime's thread.
    pub fn read_log_blocking(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, LogEntry)>, StoreError> {
        self.inner
            .on(Conn::LogReader, |conn| log_after(conn, after, limit))
    }

    /// The highest sequence number ever assigned (0 before the first append). It never moves
    /// back, even if old entries are deleted.
    pub async fn log_end(&self) -> Result<i64, StoreError> {
        self.run(Conn::LogReader, |conn| log_end_of(conn)).await
    }

    /// [`SqliteStore::log_end`] on the calling thread, as [`SqliteStore::read_log_blocking`].
    pub fn log_end_blocking(&self) -> Result<i64, StoreError> {
        self.inner.on(Conn::LogReader, |conn| log_end_of(conn))
    }

    /// Rows of one table, as `SELECT <columns> FROM <table> <tail>` with `params`.
    async fn select<R, P>(&self, tail: &str, params: P) -> Result<Vec<R>, StoreError>
    where
        R: SqlRow + Send + 'static,
        P: rusqlite::Params + Send + 'static,
    {
        let sql = format!(
            "SELECT {} FROM {} {tail}",
            quoted(R::COLUMNS).join(", "),
            R::TABLE
        );
        self.run(Conn::Reader, move |conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params, R::read)?;
            rows.collect()
        })
        .await
    }
}

/// A connection with the busy timeout, creating the file but not its directory, and without
/// URI interpretation of the path.
fn connect(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

/// Lock a connection (or the group-commit queue). A poisoned lock is still usable: a panic
/// inside a call unwinds through rusqlite's `Transaction`, whose drop rolls back, so the
/// connection is consistent; the queue is only ever changed by whole pushes and takes.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Commit the queued `append_events` calls, a group at a time, until none is waiting (run by
/// the call that found no commit task running).
fn commit_groups(inner: &Inner) {
    /// On a panic, the calls still queued are answered with an error (their senders dropped)
    /// and the next call starts a new task.
    struct Unwinding<'a>(&'a Inner);
    impl Drop for Unwinding<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let mut appends = lock(&self.0.appends);
                appends.committing = false;
                appends.waiting.clear();
            }
        }
    }
    let _unwinding = Unwinding(inner);
    loop {
        let group = {
            let mut appends = lock(&inner.appends);
            if appends.waiting.is_empty() {
                appends.committing = false;
                return;
            }
            std::mem::take(&mut appends.waiting)
        };
        let committed = inner.write(|conn| append_group(conn, &group));
        match committed {
            Ok(answers) => {
                inner.log_commits.fetch_add(1, Ordering::Relaxed);
                inner.appended.notify_one();
                for (call, seqs) in group.into_iter().zip(answers) {
                    let _ = call.answer.send(Ok(seqs));
                }
            }
            Err(e) => {
                let e = error(&inner.path, e);
                for call in group {
                    let _ = call.answer.send(Err(copy_error(&e)));
                }
            }
        }
    }
}

/// One group of `append_events` calls in one transaction, in their order.
fn append_group(
    conn: &mut Connection,
    group: &[Append],
) -> rusqlite::Result<Vec<Vec<Option<i64>>>> {
    let tx = conn.transaction()?;
    let mut answers = Vec::with_capacity(group.len());
    {
        let mut known = tx.prepare("INSERT OR IGNORE INTO event_keys (key) VALUES (?1)")?;
        let mut append = tx
            .prepare("INSERT INTO ingest_log (received_at, source, payload) VALUES (?1, ?2, ?3)")?;
        for call in group {
            let mut seqs = Vec::with_capacity(call.entries.len());
            for (e, key) in &call.entries {
                if known.execute(params![&key[..]])? == 0 {
                    seqs.push(None);
                    continue;
                }
                append.execute(params![e.received_at, e.source, e.payload])?;
                seqs.push(Some(tx.last_insert_rowid()));
            }
            insert(&tx, &call.dead)?;
            answers.push(seqs);
        }
    }
    tx.commit()?;
    Ok(answers)
}

/// The same error for another caller of a failed group commit.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Refused { code, message } => StoreError::Refused {
            code: *code,
            message: message.clone(),
        },
        StoreError::SelfTest(m) => StoreError::SelfTest(m.clone()),
    }
}

/// Is a SQLite failure worth retrying, and what should an operator be told? The one place
/// that decides (see [`StoreError::is_transient`]).
fn classify(code: ErrorCode) -> (bool, &'static str) {
    match code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => (
            true,
            "locked by another process or connection; retry later",
        ),
        ErrorCode::DiskFull => (false, "the disk is full"),
        ErrorCode::ReadOnly => (
            false,
            "the database is read-only (permissions or a read-only file system)",
        ),
        ErrorCode::CannotOpen | ErrorCode::PermissionDenied => (
            false,
            "cannot open the database file (does its directory exist, and may this user write there?)",
        ),
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
            (false, "the file is corrupt or not a SQLite database")
        }
        ErrorCode::SystemIoFailure => (false, "disk I/O error"),
        _ => (false, "statement failed"),
    }
}

/// A SQLite error as a [`StoreError`] naming the file.
fn error(path: &Path, e: rusqlite::Error) -> StoreError {
    let file = path.display();
    match &e {
        rusqlite::Error::SqliteFailure(failure, _) => {
            let (transient, what) = classify(failure.code);
            let message = format!("{file}: {what}: {e}");
            if transient {
                StoreError::Unavailable(message)
            } else {
                StoreError::Refused {
                    code: u32::try_from(failure.extended_code).ok(),
                    message,
                }
            }
        }
        _ => StoreError::Refused {
            code: None,
            message: format!("{file}: {e}"),
        },
    }
}

/// A row type stored in a table of its own: how to write and read it.
trait SqlRow: Sized {
    /// Table.
    const TABLE: &'static str;
    /// Columns, in the order `bind` and `read` use.
    const COLUMNS: &'static [&'static str];
    /// Primary key columns; empty for an append-only table.
    const KEY: &'static [&'static str];
    /// On a key conflict the new row replaces the stored one only if this column is at least
    /// as high in it (`None`: always, the last write wins).
    const VERSION: Option<&'static str>;
    /// Execute `stmt` (an insert of [`SqlRow::COLUMNS`]) with this row's values.
    fn bind(&self, stmt: &mut Statement<'_>) -> rusqlite::Result<usize>;
    /// The row from a result of `SELECT` [`SqlRow::COLUMNS`].
    fn read(row: &Row<'_>) -> rusqlite::Result<Self>;
}

/// Implement [`SqlRow`] for a row struct whose fields are the table's columns (listing every
/// field, so a new field is a compile error here until the schema has it too).
macro_rules! sql_row {
    ($ty:ident in $table:literal, key [$($key:literal),*], version $version:expr,
     [$($field:ident),+ $(,)?] $(, not stored [$($skip:ident),*])?) => {
        impl SqlRow for $ty {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),+];
            const KEY: &'static [&'static str] = &[$($key),*];
            const VERSION: Option<&'static str> = $version;
            fn bind(&self, stmt: &mut Statement<'_>) -> rusqlite::Result<usize> {
                stmt.execute(params![$(self.$field),+])
            }
            fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
                Ok($ty {
                    $($field: row.get(stringify!($field))?,)+
                    $($($skip: Default::default(),)*)?
                })
            }
        }
    };
}

sql_row!(EventRow in "events", key ["region", "occurred_at", "event_id"], version None,
    [event_id, kind, occurred_at, received_at, center_id, region, case_id, raw, log_seq],
    not stored [health]);
sql_row!(SourceEventRow in "source_events", key ["region", "source", "occurred_at", "event_id"],
    version None,
    [source, region, center_id, event_id, kind, case_id, occurred_at, reported_at, day,
     delay_seconds, corrects]);
sql_row!(AlertRow in "alerts", key ["alert_id"], version Some("version"),
    [alert_id, rule, level, status, version, fired_at, center_id, region, department,
     window_id, staff_id, case_id, item_code, subject, message, evidence]);
sql_row!(ActionRow in "alert_actions", key [], version None,
    [alert_id, action, actor, at, reason, reply_deadline, region]);
sql_row!(NotificationRow in "notifications", key ["alert_id", "status", "target"],
    version None, [alert_id, status, target, level, fate, detail, at]);
sql_row!(DeadLetterRow in "dead_letters", key ["received_at", "source"], version None,
    [received_at, source, reason, field, message, raw]);
sql_row!(CaseFactRow in "case_facts", key ["region", "case_id"], version Some("version"),
    [case_id, center_id, region, department, window_id, staff_id, item_code, case_type,
     channel, accepted_at, completed_at, result, start, deemed, promised_days, promised_unit,
     legal_days, legal_unit, extension_days, pause_days, deadline_date, deadline,
     legal_deadline, working_days_used, on_time, early, on_site, within_legal, version]);
sql_row!(ActivityRow in "activity", key ["region", "kind", "id"], version None,
    [kind, id, center_id, region, department, window_id, staff_id, item_code, at, value]);
sql_row!(WindowStatusRow in "window_status", key ["window_id"], version Some("updated_at"),
    [window_id, center_id, region, updated_at, doc]);
sql_row!(CheckpointSlot in "checkpoints", key ["group_id", "topic", "partition", "slot"],
    version Some("next_offset"),
    [group_id, topic, partition, slot, next_offset, data, written_at]);

/// A checkpoint as SQLite stores it: one row per slot, the whole snapshot in one BLOB.
#[derive(Debug, Clone)]
struct CheckpointSlot {
    group_id: String,
    topic: String,
    partition: u32,
    slot: u8,
    next_offset: i64,
    data: Vec<u8>,
    written_at: u32,
}

/// Column names quoted as SQL identifiers (`partition` is a keyword).
fn quoted(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| format!("\"{c}\"")).collect()
}

/// The insert of `R`: an upsert on its key that keeps the higher version.
fn upsert_sql<R: SqlRow>() -> String {
    let columns = quoted(R::COLUMNS);
    let marks = vec!["?"; columns.len()].join(", ");
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        R::TABLE,
        columns.join(", ")
    );
    if !R::KEY.is_empty() {
        let set: Vec<String> = R::COLUMNS
            .iter()
            .filter(|c| !R::KEY.contains(c))
            .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
            .collect();
        sql.push_str(&format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            quoted(R::KEY).join(", "),
            set.join(", ")
        ));
        if let Some(v) = R::VERSION {
            // `>=`: of equal versions the later write wins, as in ReplacingMergeTree.
            sql.push_str(&format!(" WHERE excluded.\"{v}\" >= {}.\"{v}\"", R::TABLE));
        }
    }
    sql
}

/// Upsert `rows` within the caller's transaction.
fn insert<R: SqlRow>(tx: &rusqlite::Transaction<'_>, rows: &[R]) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare(&upsert_sql::<R>())?;
    for row in rows {
        row.bind(&mut stmt)?;
    }
    Ok(())
}

/// `f` in one write transaction on `conn`, committed when it returns `Ok`.
fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = conn.transaction()?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Every row of a batch, within the caller's transaction.
fn write_batch(tx: &rusqlite::Transaction<'_>, batch: &RowBatch) -> rusqlite::Result<()> {
    insert_events(tx, &batch.events)?;
    insert(tx, &batch.dead)?;
    insert(tx, &batch.facts)?;
    insert(tx, &batch.alerts)?;
    insert(tx, &batch.windows)?;
    insert(tx, &batch.activity)
}

/// Upsert events and their source-health rows (those built from a decoded event) within the
/// caller's transaction.
fn insert_events(tx: &rusqlite::Transaction<'_>, rows: &[EventRow]) -> rusqlite::Result<()> {
    insert(tx, rows)?;
    insert(tx, &crate::rows::health_rows(rows))
}

/// SQLite's spelling of the shared queries: plain table names, times as integers.
fn dialect() -> Dialect {
    Dialect {
        table: |_, table| table.to_string(),
        database: String::new(),
        time: "?",
        left_join: "LEFT JOIN",
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(s) => s.to_sql(),
            Param::Time(n) | Param::Limit(n) | Param::Month(n) => Ok(i64::from(*n).into()),
        }
    }
}

/// Column `i` of a count (SQLite's integers are signed; a count never is).
fn count(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
}

/// The rows of a shared statement, read with `read`.
fn rows_of<T>(
    conn: &Connection,
    statement: &query::Statement,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(&statement.sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(&statement.params), read)?;
    rows.collect()
}

/// At most `limit` log entries after sequence number `after`, in order.
fn log_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, LogEntry)>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare(
        "SELECT seq, received_at, source, payload FROM ingest_log \
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit], |row| {
        Ok((
            row.get(0)?,
            LogEntry {
                received_at: row.get(1)?,
                source: row.get(2)?,
                payload: row.get(3)?,
            },
        ))
    })?;
    rows.collect()
}

/// The highest log sequence number ever assigned (0 before the first append).
fn log_end_of(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'ingest_log'), 0)")?
        .query_row([], |row| row.get(0))
}

/// `region` starts with `?1`, as a range the `(region, …)` indexes serve: every string with
/// that prefix lies in [p, p + U+10FFFF), and no other string does.
const REGION_PREFIX: &str = "region >= ?1 AND region < ?1 || char(1114111)";

impl Store for SqliteStore {
    /// All pending migrations in one `IMMEDIATE` transaction, so a second process migrating at
    /// the same time waits and then finds nothing to do.
    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        self.transaction(|tx| {
            tx.execute_batch(SQLITE_LEDGER)?;
            let applied: Vec<u32> = tx
                .prepare("SELECT version FROM schema_migrations")?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut now_applied = Vec::new();
            for m in SQLITE_MIGRATIONS
                .iter()
                .filter(|m| !applied.contains(&m.version))
            {
                for statement in m.statements {
                    tx.execute_batch(statement)?;
                }
                tx.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at) \
                     VALUES (?1, ?2, ?3)",
                    params![m.version, m.description, now_seconds()],
                )?;
                now_applied.push(m.version);
            }
            Ok(now_applied)
        })
        .await
    }

    /// Written by the writer, read back by the reader: proves that the file is writable and
    /// that commits are visible to the other connection.
    async fn self_test(&self) -> Result<(), StoreError> {
        let (token, at) = self_test_token();
        let written = token.clone();
        self.transaction(move |tx| {
            tx.execute_batch(SQLITE_SELF_TEST)?;
            tx.execute(
                "INSERT INTO self_test (token, at, n) VALUES (?1, ?2, 42)",
                params![written, at],
            )
        })
        .await?;
        let read = token.clone();
        let back: Vec<(String, u32, u8)> = self
            .run(Conn::Reader, move |conn| {
                let mut stmt =
                    conn.prepare("SELECT token, at, n FROM self_test WHERE token = ?1")?;
                let rows = stmt.query_map([read], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect()
            })
            .await?;
        match back.as_slice() {
            [(t, a, 42)] if *t == token && *a == at => Ok(()),
            [] => Err(StoreError::SelfTest(format!(
                "{}: a row written was not read back",
                self.path().display()
            ))),
            other => Err(StoreError::SelfTest(format!(
                "{}: read back {} rows that differ from the one written",
                self.path().display(),
                other.len()
            ))),
        }
    }

    async fn insert_events(&self, rows: &[EventRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.to_vec();
        self.transaction(move |tx| insert_events(tx, &rows)).await
    }

    async fn insert_alerts(&self, rows: &[AlertRow]) -> Result<(), StoreError> {
        self.upsert(rows).await
    }

    async fn insert_dead_letters(&self, rows: &[DeadLetterRow]) -> Result<(), StoreError> {
        self.upsert(rows).await
    }

    async fn insert_case_facts(&self, rows: &[CaseFactRow]) -> Result<(), StoreError> {
        self.upsert(rows).await
    }

    async fn insert_actions(&self, rows: &[ActionRow]) -> Result<(), StoreError> {
        self.upsert(rows).await
    }

    async fn insert_window_status(&self, rows: &[WindowStatusRow]) -> Result<(), StoreError> {
        self.upsert(rows).await
    }

    async fn insert_activity(&self, rows: &[ActivityRow]) -> Result<(), StoreError> {
        self.upsert(rows).await
    }

    /// One transaction: the batch is durable as a whole or not at all.
    async fn write(&self, batch: &RowBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = batch.clone();
        self.transaction(move |tx| write_batch(tx, &batch)).await
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<AlertRow>, StoreError> {
        let tail = format!(
            "WHERE {REGION_PREFIX} AND (?2 IS NULL OR rule = ?2) AND (?3 IS NULL OR status = ?3) \
             ORDER BY fired_at DESC, alert_id LIMIT ?4"
        );
        let params = (
            filter.region_prefix.clone(),
            filter.rule.clone(),
            filter.status.clone(),
            filter.effective_limit(),
        );
        self.select(&tail, params).await
    }

    async fn history(&self, q: &HistoryQuery) -> Result<Vec<AlertRow>, StoreError> {
        let statement = query::history(&dialect(), "alerts", q, None);
        self.run(Conn::Reader, move |conn| {
            rows_of(conn, &statement, AlertRow::read)
        })
        .await
    }

    async fn dead_letters(&self, q: &DeadLetterQuery) -> Result<Vec<DeadLetterRow>, StoreError> {
        let statement = query::dead_letters(&dialect(), q);
        self.run(Conn::Reader, move |conn| {
            rows_of(conn, &statement, DeadLetterRow::read)
        })
        .await
    }

    /// Five reads of one snapshot (one read transaction).
    async fn source_health(&self, q: &SourceQuery) -> Result<Vec<SourceFigures>, StoreError> {
        let [daily, delays, totals, last, dead] = query::source_health(&dialect(), q);
        let q = q.clone();
        self.run(Conn::Reader, move |conn| {
            let tx = conn.transaction()?;
            let daily = rows_of(&tx, &daily, |r| {
                Ok(query::DailyCount {
                    source: r.get(0)?,
                    day: r.get(1)?,
                    kind: r.get(2)?,
                    n: count(r, 3)?,
                })
            })?;
            let delays = rows_of(&tx, &delays, |r| {
                Ok(query::DelayCount {
                    source: r.get(0)?,
                    delay_seconds: r.get(1)?,
                    n: count(r, 2)?,
                })
            })?;
            let totals = rows_of(&tx, &totals, |r| {
                Ok(query::SourceTotals {
                    source: r.get(0)?,
                    case_events: count(r, 1)?,
                    after_completion: count(r, 2)?,
                    corrections: count(r, 3)?,
                    withdrawals: count(r, 4)?,
                })
            })?;
            let last = rows_of(&tx, &last, |r| {
                Ok(query::LastReport {
                    source: r.get(0)?,
                    last: r.get(1)?,
                })
            })?;
            let dead = rows_of(&tx, &dead, DeadLetterRow::read)?;
            Ok(query::source_figures(&q, daily, delays, totals, last, dead))
        })
        .await
    }

    /// Three grouped reads of one snapshot (one read transaction), merged by key.
    async fn perf_counts(&self, q: &PerfQuery) -> Result<Vec<PerfCounts>, StoreError> {
        let [facts, alerts, activity] = query::perf(
            &dialect(),
            ["case_facts", "alerts", "activity"],
            q,
            Default::default(),
        );
        self.run(Conn::Reader, move |conn| {
            let tx = conn.transaction()?;
            let facts = rows_of(&tx, &facts, |r| {
                Ok(FactCounts {
                    key: r.get(0)?,
                    completed: count(r, 1)?,
                    on_time: count(r, 2)?,
                    early: count(r, 3)?,
                    on_site: count(r, 4)?,
                    late: count(r, 5)?,
                    days_used: count(r, 6)?,
                    speedup_cases: count(r, 7)?,
                    legal_days: count(r, 8)?,
                    promised_days: count(r, 9)?,
                })
            })?;
            let alerts = rows_of(&tx, &alerts, |r| {
                Ok(AlertCounts {
                    key: r.get(0)?,
                    warnings: count(r, 1)?,
                    yellows: count(r, 2)?,
                    reds: count(r, 3)?,
                    complaints: count(r, 4)?,
                })
            })?;
            let activity = rows_of(&tx, &activity, |r| {
                Ok(ActivityCounts {
                    key: r.get(0)?,
                    accepted: count(r, 1)?,
                    substantiated: count(r, 2)?,
                    evaluations: count(r, 3)?,
                    satisfied: count(r, 4)?,
                })
            })?;
            Ok(query::merge(facts, alerts, activity))
        })
        .await
    }

    async fn insert_notifications(&self, rows: &[NotificationRow]) -> Result<(), StoreError> {
        self.upsert(rows).await
    }

    async fn notifications(
        &self,
        alert_ids: &[String],
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let mut out = Vec::new();
        // SQLite binds at most 32,766 parameters; a batch asks for far fewer at once.
        for chunk in alert_ids.chunks(500) {
            let tail = format!("WHERE alert_id IN ({})", vec!["?"; chunk.len()].join(", "));
            let params = rusqlite::params_from_iter(chunk.to_vec());
            out.extend(self.select::<NotificationRow, _>(&tail, params).await?);
        }
        Ok(out)
    }

    async fn actions(&self) -> Result<Vec<ActionRow>, StoreError> {
        // rowid last: actions at the same second stay in the order they were taken.
        self.select("ORDER BY at, alert_id, rowid", []).await
    }

    async fn live_alerts(&self, since: u32) -> Result<Vec<AlertRow>, StoreError> {
        self.select(
            "WHERE fired_at >= ?1 OR (status = 'open' AND alert_id NOT IN \
             (SELECT alert_id FROM alert_actions WHERE action IN ('resolve', 'dismiss'))) \
             ORDER BY fired_at, alert_id",
            [since],
        )
        .await
    }

    async fn window_status(&self) -> Result<Vec<WindowStatusRow>, StoreError> {
        self.select("ORDER BY window_id", []).await
    }

    async fn case_events(&self, case_id: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let case_id = case_id.to_string();
        self.run(Conn::Reader, move |conn| {
            let mut stmt = conn.prepare(
                "SELECT line FROM event_lines WHERE case_id = ?1 \
                 ORDER BY occurred_at, received_at, event_id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![case_id, limit], |row| row.get(0))?;
            rows.collect()
        })
        .await
    }

    async fn on_time_rate(&self, region_prefix: &str) -> Result<(u64, u64), StoreError> {
        let prefix = region_prefix.to_string();
        let (on_time, finished): (i64, i64) = self
            .run(Conn::Reader, move |conn| {
                conn.query_row(
                    &format!(
                        "SELECT COALESCE(SUM(on_time), 0), COUNT(*) FROM case_facts \
                         WHERE {REGION_PREFIX}"
                    ),
                    [prefix],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
            })
            .await?;
        Ok((
            u64::try_from(on_time).unwrap_or(0),
            u64::try_from(finished).unwrap_or(0),
        ))
    }

    /// Stored rows: duplicates were collapsed when written.
    async fn count(&self, table: &str) -> Result<u64, StoreError> {
        check_table(table)?;
        let sql = format!("SELECT COUNT(*) FROM \"{table}\"");
        let n: i64 = self
            .run(Conn::Reader, move |conn| {
                conn.query_row(&sql, [], |row| row.get(0))
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn save_checkpoint(
        &self,
        key: CheckpointKey<'_>,
        slot: u8,
        next_offset: i64,
        snapshot: &[u8],
    ) -> Result<(), StoreError> {
        let row = CheckpointSlot {
            group_id: key.group_id.to_string(),
            topic: key.topic.to_string(),
            partition: key.partition,
            slot,
            next_offset,
            data: snapshot.to_vec(),
            written_at: now_seconds(),
        };
        self.transaction(move |tx| insert(tx, &[row])).await
    }

    async fn checkpoints(&self, key: CheckpointKey<'_>) -> Result<Vec<CheckpointMeta>, StoreError> {
        let params = (
            key.group_id.to_string(),
            key.topic.to_string(),
            key.partition,
        );
        self.run(Conn::Reader, move |conn| {
            let mut stmt = conn.prepare(
                "SELECT slot, next_offset, written_at FROM checkpoints \
                 WHERE group_id = ?1 AND topic = ?2 AND \"partition\" = ?3 \
                 ORDER BY next_offset DESC, slot",
            )?;
            let rows = stmt.query_map(params, |row| {
                Ok(CheckpointMeta {
                    slot: row.get(0)?,
                    next_offset: row.get(1)?,
                    chunks: 1,
                    written_at: row.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn checkpoint_data(
        &self,
        key: CheckpointKey<'_>,
        meta: &CheckpointMeta,
    ) -> Result<Vec<u8>, StoreError> {
        let params = (
            key.group_id.to_string(),
            key.topic.to_string(),
            key.partition,
            meta.slot,
            meta.next_offset,
        );
        let data: Option<Vec<u8>> = self
            .run(Conn::Reader, move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT data FROM checkpoints WHERE group_id = ?1 AND topic = ?2 \
                     AND \"partition\" = ?3 AND slot = ?4 AND next_offset = ?5",
                )?;
                let mut rows = stmt.query_map(params, |row| row.get(0))?;
                rows.next().transpose()
            })
            .await?;
        // A newer checkpoint replaced it in its slot since `checkpoints` listed it.
        data.ok_or_else(|| {
            StoreError::Unavailable(format!(
                "checkpoint of partition {} at offset {} changed while being read",
                key.partition, meta.next_offset
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a directory of its own (`jiancha-sqlite-<name>-<pid>`), with the directory
    /// and the database file's path.
    fn scratch(name: &str) -> (PathBuf, PathBuf, SqliteStore) {
        let dir =
            std::env::temp_dir().join(format!("jiancha-sqlite-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("jiancha.db");
        let store = SqliteStore::open(&file).expect("open");
        (dir, file, store)
    }

    #[test]
    fn only_a_lock_is_worth_retrying() {
        for code in [ErrorCode::DatabaseBusy, ErrorCode::DatabaseLocked] {
            assert!(classify(code).0, "{code:?}");
        }
        for code in [
            ErrorCode::DiskFull,
            ErrorCode::ReadOnly,
            ErrorCode::CannotOpen,
            ErrorCode::DatabaseCorrupt,
            ErrorCode::NotADatabase,
            ErrorCode::ConstraintViolation,
        ] {
            assert!(!classify(code).0, "{code:?}");
        }
    }

    /// Source health's completions (one per case) are read from an index that holds only
    /// them; the index of every event by case that migration 10 made (a random-place insert
    /// per event, read by nothing) is gone, also from a database that had it.
    #[tokio::test]
    async fn health_reads_completions_from_their_own_index_and_events_carry_no_other() {
        let (dir, _, store) = scratch("completions");
        store.migrate().await.expect("migrate");
        {
            // A database migrated before version 11, as one in the field is.
            let writer = lock(&store.inner.writer);
            writer
                .execute_batch(
                    "DROP INDEX source_completions; \
                     CREATE INDEX source_events_by_case ON source_events (case_id, kind); \
                     DELETE FROM schema_migrations WHERE version = 11",
                )
                .expect("back to version 10");
        }
        assert_eq!(store.migrate().await.expect("upgrade"), vec![11]);
        let q = SourceQuery {
            region_prefix: "5106".into(),
            from: 0,
            to: 0,
            also: Vec::new(),
        };
        let [_, _, totals, _, _] = query::source_health(&dialect(), &q);
        let reader = lock(&store.inner.reader);
        let indexes: Vec<String> = rows_of(
            &reader,
            &query::Statement {
                sql: "SELECT name FROM sqlite_master WHERE type = 'index' \
                      AND tbl_name = 'source_events' AND sql IS NOT NULL"
                    .into(),
                params: Vec::new(),
            },
            |r| r.get(0),
        )
        .expect("indexes");
        let plan = rows_of(
            &reader,
            &query::Statement {
                sql: format!("EXPLAIN QUERY PLAN {}", totals.sql),
                params: totals.params,
            },
            |r| r.get::<_, String>(3),
        )
        .expect("plan")
        .join("\n");
        drop(reader);
        drop(store);
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(indexes, ["source_completions"]);
        assert!(
            plan.contains("INDEX source_completions (region>? AND region<?)")
                && !plan.contains("SCAN"),
            "the totals' completions should be a range of their index, not a scan:\n{plan}"
        );
    }

    #[test]
    fn commits_are_durable_and_readers_do_not_wait() {
        let (dir, _, store) = scratch("wal");
        let writer = lock(&store.inner.writer);
        let mode: String = writer
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        let synchronous: i64 = writer
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("synchronous");
        let query_only: i64 = lock(&store.inner.reader)
            .query_row("PRAGMA query_only", [], |r| r.get(0))
            .expect("query_only");
        drop(writer);
        drop(store);
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(mode, "wal");
        assert_eq!(synchronous, 2, "FULL");
        assert_eq!(query_only, 1);
    }

    /// A writer that never pauses (a reader reading all the while) does not make the
    /// write-ahead log grow without end: 192 MiB written, the log file stays well below it.
    /// How far below depends on when the checkpoint thread's rounds come (about 8 MiB with
    /// idle cores, 22–52 MB for this test with four busy loops beside it, 40 MB of 96 MiB once
    /// in CI); without the writer's own checkpoint the log holds everything (214 MB).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_write_ahead_log_stays_bounded_under_continuous_writes() {
        let (dir, _, store) = scratch("bound");
        store.migrate().await.expect("migrate");
        let wal = dir.join("jiancha.db-wal");
        let mut largest = 0;
        let mut read = 0;
        for i in 0..768 {
            let entries = (0..4)
                .map(|j| LogEntry {
                    received_at: i,
                    source: format!("http:test:{j}"),
                    payload: vec![b'x'; 64 * 1024],
                })
                .collect();
            store.append_log(entries).await.expect("append");
            read += store.read_log(read, 2).await.expect("read").len() as i64;
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        drop(store);
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert!(read > 0);
        assert!(
            largest < 128 << 20,
            "the log reached {largest} bytes for 192 MiB written"
        );
    }

    #[tokio::test]
    async fn a_full_disk_is_refused_naming_the_file() {
        let (dir, file, store) = scratch("full");
        store.migrate().await.expect("migrate");
        // What a full disk looks like to SQLite: no page can be added.
        let pages: i64 = lock(&store.inner.writer)
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("pages");
        lock(&store.inner.writer)
            .pragma_update(None, "max_page_count", pages)
            .expect("cap");
        let big = LogEntry {
            received_at: 0,
            source: "http:test".into(),
            payload: vec![7; 1 << 20],
        };
        let e = store.append_log(vec![big]).await.expect_err("full");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert!(!e.is_transient(), "{e}");
        let message = e.to_string();
        assert!(message.contains("the disk is full"), "{message}");
        assert!(message.contains(&file.display().to_string()), "{message}");
    }
}

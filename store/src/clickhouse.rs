//! The ClickHouse backend of [`Store`], for cluster mode.
//!
//! Talks HTTP with the `clickhouse` crate, configured for both Debian's 18.16 and current
//! servers: RowBinary without schema validation (18.16 cannot describe columns the way the
//! validating format needs) and no compression (with LZ4, 18.16 answers every SELECT with no
//! rows). [`Store::self_test`] proves at start-up that a write reads back.
//!
//! De-duplication is ClickHouse's: every table but `alert_actions` is a `ReplacingMergeTree`,
//! and reads use `FINAL`, so a re-delivered row never shows twice although it is stored twice
//! until a background merge (hence [`Store::count`] counts raw rows here).
//!
//! Reads of whole provinces avoid `FINAL` where a month's rows are already collapsed (18.16's
//! `FINAL` merges in one thread, about 1 µs a row): history reads such months plainly, and
//! the 绩效 counts sum per-month totals stored once per collapsed part (`perf_month`, see
//! [`Store::perf_counts`]), corrected for a few late rows when such a month gets some. A part
//! counts as collapsed only once the store has checked that it holds each sorting key once
//! ([`ClickHouseStore::holds_each_key_once`]), never from its merge level.
//!
//! Two layouts, found by looking at the tables ([`ClickHouseStore::distributed`]): one server
//! (`jiancha migrate`), or Replicated `*_local` tables behind Distributed fronts
//! (`jiancha migrate --cluster`, docs/CLUSTER.md). Parts exist only on the shards' replicas,
//! so behind Distributed fronts every read is the plain statement with `FINAL`, which each
//! shard runs on its own rows: rows of one sorting key live on one shard (the fronts shard by
//! it), so a shard's `FINAL` is exact, and the shards do it in parallel.
//!
//! Table names are qualified with the database (`db.alerts`), which is checked to be a plain
//! identifier when the store is created.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use clickhouse::{Client, Compression};
use serde::Deserialize;

use crate::api::{
    check_table, AlertFilter, CheckpointKey, CheckpointMeta, DeadLetterQuery, Dimension,
    HistoryQuery, PerfCounts, PerfQuery, RowBatch, SourceFigures, SourceQuery, Store,
};
use crate::query::{self, Dialect, Param, MOVED};
use crate::rows::{
    ActionRow, ActivityRow, AlertRow, CaseFactRow, CheckpointRow, DeadLetterRow, EventRow,
    NotificationRow, WindowStatusRow,
};
use crate::schema::{LEDGER, MIGRATIONS, SELF_TEST};
use crate::{classify, now_seconds, self_test_token, StoreError};

/// A ClickHouse database holding jiancha's tables.
#[derive(Clone)]
pub struct ClickHouseStore {
    client: Client,
    database: String,
    /// The `remote_servers` cluster [`Store::migrate`] and [`Self::drop_database`] work on
    /// (`ON CLUSTER`), if the store was made [`Self::with_cluster`].
    cluster: Option<String>,
    /// What reads learnt about the tables, shared by the clones.
    known: Arc<Known>,
}

/// What the reads learn about the tables once and remember.
#[derive(Default)]
struct Known {
    /// Whether the tables are Distributed fronts (the cluster layout), once found.
    distributed: Mutex<Option<bool>>,
    /// Parts checked by [`ClickHouseStore::holds_each_key_once`], and the answer.
    parts: Mutex<HashMap<PartId, bool>>,
}

/// A part of a table, as [`Known::parts`] remembers it: its name with its row count and
/// modification time, so a part of a table dropped and created again under the same name by
/// another process is not mistaken for the old one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PartId {
    table: &'static str,
    name: String,
    rows: u64,
    modified: u32,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

fn map_err(e: clickhouse::error::Error) -> StoreError {
    use clickhouse::error::Error as E;
    match e {
        E::Network(err) => StoreError::Unavailable(format!("network: {err}")),
        E::TimedOut => StoreError::Unavailable("timed out".into()),
        E::BadResponse(message) => classify(message),
        other => StoreError::Refused {
            code: None,
            message: other.to_string(),
        },
    }
}

/// Snapshot bytes per checkpoint row: keeps each row far below ClickHouse's and HTTP's limits.
pub const CHECKPOINT_CHUNK: usize = 8 << 20;

#[derive(Debug, Deserialize, clickhouse::Row)]
struct ChunkMeta {
    slot: u8,
    next_offset: i64,
    chunk: u32,
    chunks: u32,
    written_at: u32,
}

/// The rows `(chunk UInt32, data String)` of one checkpoint, in `RowBinary` as ClickHouse sends
/// them, joined into the snapshot as the bytes arrive. The crate's row cursor re-assembles each
/// 8 MiB row by copying it as its pieces arrive and then copies it again; a million open cases
/// made that a second of a restart. A repeated chunk (a re-delivered insert not yet merged away)
/// is skipped; a missing one is caught by the caller's count.
struct ChunkJoiner {
    out: Vec<u8>,
    /// Bytes of the current row's header (chunk number, length varint) received so far.
    header: Vec<u8>,
    /// Data bytes of the current row still to come, and whether they are kept.
    data_left: usize,
    keep: bool,
    /// Chunks kept so far (the next expected chunk number).
    chunks: u32,
}

impl ChunkJoiner {
    fn new(capacity: usize) -> Self {
        ChunkJoiner {
            out: Vec::with_capacity(capacity),
            header: Vec::with_capacity(16),
            data_left: 0,
            keep: false,
            chunks: 0,
        }
    }

    /// Take the next piece of the response, split anywhere.
    fn push(&mut self, mut piece: &[u8]) -> Result<(), String> {
        while !piece.is_empty() {
            if self.data_left > 0 {
                let n = self.data_left.min(piece.len());
                if self.keep {
                    self.out.extend_from_slice(&piece[..n]);
                }
                self.data_left -= n;
                piece = &piece[n..];
                continue;
            }
            self.header.push(piece[0]);
            piece = &piece[1..];
            // 4 bytes of chunk number, then the length as LEB128 (last byte below 0x80).
            let Some(&last) = self.header.get(4..).and_then(<[u8]>::last) else {
                continue;
            };
            if last & 0x80 != 0 {
                if self.header.len() > 4 + 10 {
                    return Err("bad length in a checkpoint row".into());
                }
                continue;
            }
            let chunk = u32::from_le_bytes([
                self.header[0],
                self.header[1],
                self.header[2],
                self.header[3],
            ]);
            let len = self.header[4..]
                .iter()
                .enumerate()
                .fold(0u64, |n, (i, b)| n | (u64::from(b & 0x7f) << (7 * i)));
            self.header.clear();
            self.data_left = usize::try_from(len).map_err(|e| e.to_string())?;
            self.keep = if chunk == self.chunks {
                self.chunks += 1;
                true
            } else if chunk.checked_add(1) == Some(self.chunks) {
                false // the same chunk again
            } else {
                return Err(format!(
                    "checkpoint chunk {chunk} where {} was expected",
                    self.chunks
                ));
            };
        }
        Ok(())
    }

    /// The snapshot and its number of chunks, if the response ended on a row boundary.
    fn finish(self) -> Result<(Vec<u8>, u32), String> {
        if self.data_left > 0 || !self.header.is_empty() {
            return Err("the checkpoint's rows ended early".into());
        }
        Ok((self.out, self.chunks))
    }
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Version {
    version: u32,
}

#[derive(Debug, serde::Serialize, Deserialize, clickhouse::Row)]
struct SelfTestRow {
    token: String,
    at: u32,
    n: u8,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Count {
    n: u64,
}

/// An active part of a table, from `system.parts`.
#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
struct Part {
    partition_id: String,
    name: String,
    rows: u64,
    /// When it was written (seconds).
    modified: u32,
}

/// A finished computation of a part's per-month totals (a `perf_month_parts` row).
#[derive(Debug, Deserialize, clickhouse::Row)]
struct Totals {
    source: String,
    part: String,
    batch: String,
    /// The period the part's rows span, in seconds, both included.
    min_time: u32,
    max_time: u32,
}

/// The tables [`Store::perf_counts`] reads: case facts, alerts, activity (see [`query::perf`]).
const PERF_TABLES: [&str; 3] = ["case_facts", "alerts_by_region", "activity"];

/// Their sorting keys: two rows collapse only if these are equal.
const PERF_KEYS: [&str; 3] = [
    "region, case_id",
    "region, fired_at, alert_id",
    "region, kind, id",
];

/// Late rows a merged part's totals are corrected for, at most, per row of the part: beyond
/// that, reading the month with `FINAL` is as cheap.
const CORRECTABLE_SHARE: u64 = 4;

/// The part of a month whose rows may be read without `FINAL`, if
/// [`ClickHouseStore::holds_each_key_once`]: its largest.
fn largest_part(parts: &[Part]) -> Option<&Part> {
    parts.iter().max_by_key(|p| (p.rows, p.name.as_str()))
}

/// The partitions (`YYYYMM` in the server's time zone) that may hold rows of [from, to)
/// (`to` 0: unbounded): the UTC months of its ends widened by one, as no time zone is a
/// month away from UTC.
fn months_of(from: u32, to: u32) -> RangeInclusive<u32> {
    fn month(seconds: u32) -> u32 {
        // Days to civil date (Howard Hinnant's algorithm), for days since 1970 ≥ 0.
        let z = seconds / 86_400 + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + u32::from(m <= 2);
        y * 100 + m
    }
    let before = |ym: u32| if ym % 100 == 1 { ym - 89 } else { ym - 1 };
    let after = |ym: u32| if ym % 100 == 12 { ym + 89 } else { ym + 1 };
    let lo = if from == 0 { 0 } else { before(month(from)) };
    let hi = if to == 0 {
        u32::MAX
    } else {
        after(month(to.saturating_sub(1)))
    };
    lo..=hi
}

/// A condition's SQL and its values.
type Condition = (String, Vec<Param>);

/// `time`'s partition is one of `months`.
fn in_months(time: &str, months: &[u32]) -> Condition {
    (
        format!("toYYYYMM({time}) IN ({})", placeholders(months.len())),
        months.iter().map(|m| Param::Month(*m)).collect(),
    )
}

/// The row is in one of `parts`.
fn in_parts(parts: &[String]) -> Condition {
    (
        format!("_part IN ({})", placeholders(parts.len())),
        parts.iter().map(|p| Param::Text(p.clone())).collect(),
    )
}

/// How [`Store::perf_counts`] reads one table, by month (see there).
#[derive(Debug, Default)]
struct Plan {
    /// Read with `FINAL`.
    final_months: Vec<u32>,
    /// Merged parts read without `FINAL`.
    plain_parts: Vec<String>,
    /// Stored totals (`perf_month` batches) summed.
    batches: Vec<String>,
    /// Months whose merged part's totals are corrected for the late rows of `late_parts`.
    corrected_months: Vec<u32>,
    corrected_parts: Vec<String>,
    late_parts: Vec<String>,
    /// The parts read by name, which must still be active once read.
    used: Vec<String>,
}

impl Plan {
    /// `collapsed`: the parts of the table known to hold each key once.
    fn new(
        i: usize,
        months: &BTreeMap<u32, Vec<Part>>,
        totals: &HashMap<(String, String), Totals>,
        collapsed: &HashSet<String>,
        q: &PerfQuery,
    ) -> Plan {
        let mut plan = Plan::default();
        for (&month, parts) in months {
            let base = largest_part(parts).filter(|p| collapsed.contains(&p.name));
            let Some(base) = base else {
                plan.final_months.push(month);
                continue;
            };
            let covering = totals
                .get(&(PERF_TABLES[i].to_string(), base.name.clone()))
                .filter(|t| t.min_time >= q.from && (q.to == 0 || t.max_time < q.to));
            let late: Vec<&Part> = parts.iter().filter(|p| p.name != base.name).collect();
            let late_rows: u64 = late.iter().map(|p| p.rows).sum();
            match covering {
                Some(t) if late.is_empty() => plan.batches.push(t.batch.clone()),
                None if late.is_empty() => {
                    plan.plain_parts.push(base.name.clone());
                    plan.used.push(base.name.clone());
                }
                Some(t) if late_rows * CORRECTABLE_SHARE <= base.rows => {
                    plan.batches.push(t.batch.clone());
                    plan.corrected_months.push(month);
                    plan.corrected_parts.push(base.name.clone());
                    plan.used.push(base.name.clone());
                    for p in late {
                        plan.late_parts.push(p.name.clone());
                        plan.used.push(p.name.clone());
                    }
                }
                _ => plan.final_months.push(month),
            }
        }
        plan
    }
}

impl ClickHouseStore {
    /// A store on `url` (e.g. `http://127.0.0.1:8123`) using `database`.
    pub fn new(url: &str, database: &str) -> Result<Self, StoreError> {
        let plain = !database.is_empty()
            && database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !database.starts_with(|c: char| c.is_ascii_digit());
        if !plain {
            return Err(StoreError::Refused {
                code: None,
                message: format!(
                    "database name {database:?} must be letters, digits and _, not starting with a digit"
                ),
            });
        }
        // insert_distributed_sync: with the cluster layout (`jiancha migrate --cluster`) the
        // tables are Distributed, whose inserts are otherwise queued on the receiving server
        // and forwarded later; a batch must be on its shards before it counts as durable. No
        // effect on plain tables.
        let client = Client::default()
            .with_url(url)
            .with_validation(false)
            .with_compression(Compression::None)
            .with_setting("insert_distributed_sync", "1")
            // With replicas (the cluster layout), a Distributed table sends each shard's part
            // of an insert, and each read, to one replica of the shard: by default a random
            // one, so a read right after a write could ask the replica that has not fetched
            // the new part yet. In order, both go to the first healthy replica, and a read
            // sees what this store wrote before it. No effect on plain tables.
            .with_setting("load_balancing", "in_order");
        Ok(ClickHouseStore {
            client,
            database: database.to_string(),
            cluster: None,
            known: Arc::default(),
        })
    }

    /// The same store, creating and dropping its tables as the cluster layout on `cluster`
    /// (a name from the servers' `remote_servers`: letters, digits and `_`): [`Store::migrate`]
    /// is then [`Self::migrate_cluster`], and [`Self::drop_database`] drops it `ON CLUSTER`.
    pub fn with_cluster(self, cluster: &str) -> Result<Self, StoreError> {
        if cluster.is_empty()
            || !cluster
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::Refused {
                code: None,
                message: format!("cluster name {cluster:?}: letters, digits and _ only"),
            });
        }
        Ok(ClickHouseStore {
            cluster: Some(cluster.to_string()),
            ..self
        })
    }

    /// Whether the tables are Distributed fronts of Replicated local tables (the layout of
    /// `jiancha migrate --cluster`), found in `system.tables` once they exist. Such tables have
    /// no parts of their own: their reads take no shortcut through `system.parts`.
    async fn distributed(&self) -> Result<bool, StoreError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Engine {
            engine: String,
        }
        if let Some(known) = *lock(&self.known.distributed) {
            return Ok(known);
        }
        let found: Vec<Engine> = self
            .client
            .query("SELECT engine FROM system.tables WHERE database = ? AND name = 'alerts'")
            .bind(self.database.as_str())
            .fetch_all()
            .await
            .map_err(map_err)?;
        let Some(table) = found.first() else {
            return Ok(false); // not migrated yet: nothing to remember
        };
        let distributed = table.engine == "Distributed";
        *lock(&self.known.distributed) = Some(distributed);
        Ok(distributed)
    }

    /// Whether `part` of table `table` (sorting key `key`) holds each key once, so that its
    /// rows read without `FINAL` are what `FINAL` would give: checked by counting its rows and
    /// its distinct keys (about 0.3–0.8 s per million rows on 18.16 here), once per part, as
    /// parts never change. A part found so is recorded in `perf_month_parts` (dimension `''`,
    /// no batch: read by no 绩效 query) for every process, and each process remembers every
    /// answer.
    ///
    /// Why not the part's merge level, as this store once did: 18.16 writes every insert at
    /// level 0 and only a merge raises it, but current releases also write an insert at level
    /// 1 when `optimize_on_insert` (on by default) collapsed it, and a server may be set up
    /// either way. The property needed is "each key once", so that is what is checked.
    async fn holds_each_key_once(
        &self,
        table: &'static str,
        key: &str,
        part: &Part,
    ) -> Result<bool, StoreError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Keys {
            n: u64,
            distinct_keys: u64,
        }
        let id = PartId {
            table,
            name: part.name.clone(),
            rows: part.rows,
            modified: part.modified,
        };
        if let Some(&known) = self.known_parts().get(&id) {
            return Ok(known);
        }
        let recorded: Count = self
            .client
            .query(&self.sql(
                "SELECT count() AS n FROM {db}.perf_month_parts WHERE source = ? AND part = ?",
            ))
            .bind(table)
            .bind(part.name.as_str())
            .fetch_one()
            .await
            .map_err(map_err)?;
        if recorded.n > 0 {
            self.known_parts().insert(id, true);
            return Ok(true);
        }
        let keys: Keys = self
            .client
            .query(&format!(
                "SELECT count() AS n, uniqExact({key}) AS distinct_keys FROM {}.{table} \
                 WHERE _part = ?",
                self.database
            ))
            .bind(part.name.as_str())
            .fetch_one()
            .await
            .map_err(map_err)?;
        if keys.n != part.rows {
            // Merged away meanwhile (no rows left by that name): nothing learnt.
            return Ok(false);
        }
        let once = keys.distinct_keys == keys.n;
        if once {
            self.record_part(table, "", &part.name, "", (0, 0)).await?;
        }
        self.known_parts().insert(id, once);
        Ok(once)
    }

    /// A `perf_month_parts` row: `part` of `source` has totals of `dimension` in `batch`,
    /// spanning `span` (seconds); or, with dimension and batch `''`, holds each key once.
    async fn record_part(
        &self,
        source: &str,
        dimension: &str,
        part: &str,
        batch: &str,
        span: (u32, u32),
    ) -> Result<(), StoreError> {
        self.client
            .query(&self.sql(
                "INSERT INTO {db}.perf_month_parts (source, dimension, part, batch, min_time, \
                 max_time) VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(source)
            .bind(dimension)
            .bind(part)
            .bind(batch)
            .bind(span.0)
            .bind(span.1)
            .execute()
            .await
            .map_err(map_err)
    }

    /// [`Known::parts`], locked.
    fn known_parts(&self) -> MutexGuard<'_, HashMap<PartId, bool>> {
        lock(&self.known.parts)
    }

    fn sql(&self, template: &str) -> String {
        template.replace("{db}", &self.database)
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.database)
    }

    async fn execute(&self, statement: &str) -> Result<(), StoreError> {
        self.client
            .query(&self.sql(statement))
            .execute()
            .await
            .map_err(map_err)
    }

    /// The server's version string, e.g. `18.16.1`.
    pub async fn server_version(&self) -> Result<String, StoreError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct V {
            v: String,
        }
        let row: V = self
            .client
            .query("SELECT version() AS v")
            .fetch_one()
            .await
            .map_err(map_err)?;
        Ok(row.v)
    }

    async fn insert_all<T: clickhouse::RowOwned + clickhouse::RowWrite + Sync>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), StoreError> {
        self.insert_with(table, rows, &[]).await
    }

    /// [`Self::insert_all`] with ClickHouse settings for this insert.
    async fn insert_with<T: clickhouse::RowOwned + clickhouse::RowWrite + Sync>(
        &self,
        table: &str,
        rows: &[T],
        settings: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert_unescaped::<T>(&self.table(table))
            .await
            .map_err(map_err)?;
        for (name, value) in settings {
            insert = insert.with_setting(*name, *value);
        }
        for row in rows {
            insert.write(row).await.map_err(map_err)?;
        }
        insert.end().await.map_err(map_err)
    }

    /// ClickHouse's spelling of the shared queries: qualified tables read with `FINAL` (one
    /// winning row per key), times as `toDateTime(?)`.
    fn dialect(&self) -> Dialect {
        Dialect {
            table: |d, table| format!("{}.{table} FINAL", d.database),
            database: self.database.clone(),
            time: "toDateTime(?)",
            left_join: "ANY LEFT JOIN",
        }
    }

    /// Run a shared statement, binding its parameters in order.
    async fn fetch<T: clickhouse::RowOwned + clickhouse::RowRead>(
        &self,
        statement: &query::Statement,
    ) -> Result<Vec<T>, StoreError> {
        let mut q = self.client.query(&statement.sql);
        for p in &statement.params {
            q = match p {
                Param::Text(s) => q.bind(s.as_str()),
                Param::Time(n) | Param::Limit(n) | Param::Month(n) => q.bind(*n),
            };
        }
        q.fetch_all().await.map_err(map_err)
    }

    /// The active parts of `table`, by month (partition id `YYYYMM`; other partitions are
    /// left out).
    async fn months(&self, table: &str) -> Result<BTreeMap<u32, Vec<Part>>, StoreError> {
        let rows: Vec<Part> = self
            .client
            .query(
                "SELECT partition_id, name, toUInt64(rows) AS rows, \
                 toUInt32(modification_time) AS modified \
                 FROM system.parts WHERE database = ? AND table = ? AND active",
            )
            .bind(self.database.as_str())
            .bind(table)
            .fetch_all()
            .await
            .map_err(map_err)?;
        let mut months: BTreeMap<u32, Vec<Part>> = BTreeMap::new();
        for p in rows {
            if let Ok(month) = p.partition_id.parse() {
                months.entry(month).or_default().push(p);
            }
        }
        Ok(months)
    }

    /// The names of `table`'s active parts.
    async fn active_parts(&self, table: &str) -> Result<HashSet<String>, StoreError> {
        Ok(self
            .months(table)
            .await?
            .into_values()
            .flatten()
            .map(|p| p.name)
            .collect())
    }

    /// The finished per-month totals of `dimension`: per (table, part), the batch to read
    /// (should two computations have run at once, either is complete: the least name is
    /// taken) and the period its rows span. Totals of parts no longer active stay behind,
    /// unread (a few rows per part and key, when a merged month is merged again).
    async fn totals(
        &self,
        dimension: &str,
    ) -> Result<HashMap<(String, String), Totals>, StoreError> {
        let rows: Vec<Totals> = self
            .client
            .query(&self.sql(
                "SELECT source, part, batch, min_time, max_time FROM {db}.perf_month_parts \
                 WHERE dimension = ? ORDER BY batch",
            ))
            .bind(dimension)
            .fetch_all()
            .await
            .map_err(map_err)?;
        let mut found = HashMap::new();
        for t in rows {
            found.entry((t.source.clone(), t.part.clone())).or_insert(t);
        }
        Ok(found)
    }

    /// Compute and store the totals of collapsed part `part` of table `PERF_TABLES[i]` grouped by
    /// `by`. The totals are recorded as finished only if the part was still active after they
    /// were read (so the read saw all of it: a part never becomes active again).
    async fn compute_totals(&self, i: usize, part: &str, by: Dimension) -> Result<(), StoreError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Span {
            lo: u32,
            hi: u32,
        }
        let table = PERF_TABLES[i];
        let (token, _) = self_test_token();
        let batch = format!("{table}/{}/{part}/{token}", by.column());
        let filter = query::PERF_FILTERS[i]
            .map(|f| format!(" AND {f}"))
            .unwrap_or_default();
        self.client
            .query(&format!(
                "INSERT INTO {db}.perf_month SELECT ?, region, {by}, {columns} FROM {db}.{table} \
                 WHERE _part = ?{filter} GROUP BY region, {by}",
                db = self.database,
                by = by.column(),
                columns = query::tally_columns(i),
            ))
            .bind(batch.as_str())
            .bind(part)
            .execute()
            .await
            .map_err(map_err)?;
        let span: Span = self
            .client
            .query(&format!(
                "SELECT toUInt32(min({t})) AS lo, toUInt32(max({t})) AS hi FROM {}.{table} \
                 WHERE _part = ?",
                self.database,
                t = query::PERF_TIMES[i],
            ))
            .bind(part)
            .fetch_one()
            .await
            .map_err(map_err)?;
        if !self.active_parts(table).await?.contains(part) {
            return Ok(());
        }
        self.record_part(table, by.column(), part, &batch, (span.lo, span.hi))
            .await
    }

    /// The statements of `plans` (one per table), each with its table and whether its rows
    /// add (1) or subtract (-1).
    fn perf_statements(
        &self,
        plans: &[Plan],
        q: &PerfQuery,
    ) -> Vec<(usize, i64, query::Statement)> {
        let (full, plain) = (self.dialect(), self.plain_dialect());
        let mut out = Vec::new();
        let mut add =
            |dialect: &Dialect, sign: i64, extra: &dyn Fn(usize, &Plan) -> Option<Condition>| {
                let extras: [Option<Condition>; 3] = [0, 1, 2].map(|i| extra(i, &plans[i]));
                let wanted = extras.each_ref().map(Option::is_some);
                let statements =
                    query::perf_shaped(dialect, PERF_TABLES, q, extras, query::tally_columns);
                for (i, statement) in statements.into_iter().enumerate() {
                    if wanted[i] {
                        out.push((i, sign, statement));
                    }
                }
            };
        add(&full, 1, &|i, p| {
            (!p.final_months.is_empty()).then(|| in_months(query::PERF_TIMES[i], &p.final_months))
        });
        add(&plain, 1, &|_, p| {
            (!p.plain_parts.is_empty()).then(|| in_parts(&p.plain_parts))
        });
        // The late keys: the merged part's rows of them leave its totals, and what `FINAL`
        // makes of them (the part's rows and the late ones) comes in.
        let late_keys = |i: usize, p: &Plan| {
            let (sql, params) = in_parts(&p.late_parts);
            (
                format!(
                    "({key}) IN (SELECT {key} FROM {}.{} WHERE {sql})",
                    self.database,
                    PERF_TABLES[i],
                    key = PERF_KEYS[i]
                ),
                params,
            )
        };
        add(&full, 1, &|i, p| {
            (!p.corrected_months.is_empty()).then(|| {
                let (keys, mut params) = late_keys(i, p);
                let (months, month_params) = in_months(query::PERF_TIMES[i], &p.corrected_months);
                params.splice(0..0, month_params);
                (format!("{months} AND {keys}"), params)
            })
        });
        add(&plain, -1, &|i, p| {
            (!p.corrected_parts.is_empty()).then(|| {
                let (keys, mut params) = late_keys(i, p);
                let (parts, part_params) = in_parts(&p.corrected_parts);
                params.splice(0..0, part_params);
                (format!("{parts} AND {keys}"), params)
            })
        });
        for (i, plan) in plans.iter().enumerate() {
            if !plan.batches.is_empty() {
                out.push((i, 1, query::perf_totals(&plain, q, &plan.batches)));
            }
        }
        out
    }

    /// [`Self::dialect`] without `FINAL`.
    fn plain_dialect(&self) -> Dialect {
        Dialect {
            table: |d, table| format!("{}.{table}", d.database),
            ..self.dialect()
        }
    }

    /// [`Self::fetch`], or nothing without a statement.
    async fn fetch_some<T: clickhouse::RowOwned + clickhouse::RowRead>(
        &self,
        statement: Option<query::Statement>,
    ) -> Result<Vec<T>, StoreError> {
        match statement {
            Some(statement) => self.fetch(&statement).await,
            None => Ok(Vec::new()),
        }
    }

    /// Run `reads` (table, sign, statement of [`query::Tally`] rows) concurrently and add
    /// up each table's rows with their sign.
    async fn tallies(
        &self,
        reads: Vec<(usize, i64, query::Statement)>,
    ) -> Result<[query::Tallies; 3], StoreError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, sign, statement) in reads {
            let store = self.clone();
            tasks.spawn(async move {
                let rows: Result<Vec<query::Tally>, StoreError> = store.fetch(&statement).await;
                (i, sign, rows)
            });
        }
        let mut tallies: [query::Tallies; 3] = Default::default();
        let mut failed = None;
        while let Some(done) = tasks.join_next().await {
            let (i, sign, rows) =
                done.map_err(|e| StoreError::Unavailable(format!("perf task: {e}")))?;
            match rows {
                Ok(rows) => query::add_tallies(&mut tallies[i], rows, sign),
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(tallies),
        }
    }

    /// The database holding jiancha's tables.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// `jiancha migrate --cluster`: the replicated and distributed layout of
    /// [`crate::schema::cluster_statements`], created `ON CLUSTER` (the servers need ZooKeeper,
    /// the cluster in `remote_servers` and the `{shard}`/`{replica}` macros). Every statement is
    /// idempotent; versions not yet in the ledger are recorded in `schema_migrations_local`
    /// (replicated, read through the Distributed `schema_migrations`). Returns them.
    pub async fn migrate_cluster(&self, cluster: &str) -> Result<Vec<u32>, StoreError> {
        let statements = crate::schema::cluster_statements(&self.database, Some(cluster)).map_err(
            |message| StoreError::Refused {
                code: None,
                message,
            },
        )?;
        for statement in &statements {
            self.execute(statement).await?;
        }
        self.record_migrations("schema_migrations_local", |_| async { Ok(()) })
            .await
    }

    /// Run `apply` for every migration the ledger (`schema_migrations`) does not list, then
    /// record it in `ledger`; the versions applied now.
    async fn record_migrations<F, Fut>(
        &self,
        ledger: &str,
        mut apply: F,
    ) -> Result<Vec<u32>, StoreError>
    where
        F: FnMut(&'static crate::schema::Migration) -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let applied: Vec<u32> = self
            .client
            .query(&self.sql("SELECT version FROM {db}.schema_migrations"))
            .fetch_all::<Version>()
            .await
            .map_err(map_err)?
            .into_iter()
            .map(|v| v.version)
            .collect();
        let mut now_applied = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
            apply(m).await?;
            self.execute(&format!(
                "INSERT INTO {{db}}.{ledger} VALUES ({}, '{}', now())",
                m.version,
                m.description.replace('\'', "")
            ))
            .await?;
            now_applied.push(m.version);
        }
        Ok(now_applied)
    }

    /// Drop the whole database (tests and `--reset`), on every server of the cluster if the
    /// store was made [`Self::with_cluster`] (which also removes the replicated tables'
    /// metadata from ZooKeeper).
    pub async fn drop_database(&self) -> Result<(), StoreError> {
        match &self.cluster {
            Some(cluster) => {
                self.execute(&format!(
                    "DROP DATABASE IF EXISTS {{db}} ON CLUSTER {cluster}"
                ))
                .await?
            }
            None => self.execute("DROP DATABASE IF EXISTS {db}").await?,
        }
        self.known_parts().clear();
        *lock(&self.known.distributed) = None;
        Ok(())
    }
}

/// `mutex` locked. The store's locks are never held across an await, and a panic while one is
/// held cannot leave what it guards half-changed (one insert or assignment), so a poisoned lock
/// is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The tombstones `rows` need in `alerts_by_region` (see [`ClickHouseStore::moved`]), given
/// the alerts' rows on record: wherever a row carries a higher version than the alert's
/// previous row (on record, or earlier in `rows`) under another (region, fired_at), the
/// previous row again with status `moved` and the new version. A re-delivered older line
/// moves nothing.
fn tombstones(stored: Vec<AlertRow>, rows: &[AlertRow]) -> Vec<AlertRow> {
    let mut last: HashMap<String, AlertRow> = stored
        .into_iter()
        .map(|r| (r.alert_id.clone(), r))
        .collect();
    let mut out = Vec::new();
    for row in rows {
        match last.get_mut(&row.alert_id) {
            Some(prev) if row.version <= prev.version => {}
            Some(prev) => {
                if (prev.fired_at, &prev.region) != (row.fired_at, &row.region) {
                    out.push(AlertRow {
                        status: MOVED.to_string(),
                        version: row.version,
                        ..prev.clone()
                    });
                }
                *prev = row.clone();
            }
            None => {
                last.insert(row.alert_id.clone(), row.clone());
            }
        }
    }
    out
}

/// `n` comma-separated placeholders.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl ClickHouseStore {
    /// A later line of an alert can carry another instant than the row on record: a correction
    /// moved the condition, a late pause retracted it and it fired again at the moved
    /// deadline, a ladder step was reached at another card. `alerts` (ordered by id) collapses
    /// the two, but `alerts_by_region` is ordered by (region, fired_at, alert_id), so the
    /// earlier row would stay beside the new one: history would show the alert twice and 绩效
    /// would count it twice. For each such row this returns a **tombstone**: the earlier row
    /// under its own key, with status `moved` and the new line's version, which `FINAL`
    /// collapses the earlier row into; every reader of `alerts_by_region` leaves `moved`
    /// rows out (`query::history`, `query::PERF_FILTERS`). The earlier row is read from
    /// `alerts` for each row after an alert's first line (version ≥ 1), one query a batch.
    async fn moved(&self, rows: &[AlertRow]) -> Result<Vec<AlertRow>, StoreError> {
        let mut ids: Vec<&str> = rows
            .iter()
            .filter(|r| r.version > 0)
            .map(|r| r.alert_id.as_str())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        ids.sort_unstable();
        ids.dedup();
        // `IN ?` with an array is refused by 18.16; a subquery set also uses the key.
        let stored: Vec<AlertRow> = self
            .client
            .query(&self.sql(&format!(
                "SELECT {} FROM {{db}}.alerts FINAL WHERE alert_id IN (SELECT arrayJoin(?))",
                query::ALERT_COLUMNS
            )))
            .bind(ids)
            .fetch_all()
            .await
            .map_err(map_err)?;
        Ok(tombstones(stored, rows))
    }
}

impl Store for ClickHouseStore {
    /// The single-server layout, or the cluster layout if the store was made
    /// [`Self::with_cluster`].
    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        if let Some(cluster) = &self.cluster {
            return self.migrate_cluster(cluster).await;
        }
        self.execute("CREATE DATABASE IF NOT EXISTS {db}").await?;
        self.execute(LEDGER).await?;
        self.record_migrations("schema_migrations", |m| async move {
            for statement in m.statements {
                self.execute(statement).await?;
            }
            Ok(())
        })
        .await
    }

    /// Write a row and read it back. Fails if the server accepts writes but reads return
    /// nothing or something else (wrong compression, wrong format), before any data is trusted
    /// to the store.
    async fn self_test(&self) -> Result<(), StoreError> {
        self.execute(SELF_TEST).await?;
        let (token, at) = self_test_token();
        let row = SelfTestRow {
            token: token.clone(),
            at,
            n: 42,
        };
        let mut insert = self
            .client
            .insert_unescaped::<SelfTestRow>(&self.table("self_test"))
            .await
            .map_err(map_err)?;
        insert.write(&row).await.map_err(map_err)?;
        insert.end().await.map_err(map_err)?;
        let back: Vec<SelfTestRow> = self
            .client
            .query(&self.sql("SELECT token, at, n FROM {db}.self_test WHERE token = ?"))
            .bind(token.as_str())
            .fetch_all()
            .await
            .map_err(map_err)?;
        match back.as_slice() {
            [r] if r.token == token && r.at == at && r.n == 42 => Ok(()),
            [] => Err(StoreError::SelfTest(
                "a row written was not read back (check compression and format settings)".into(),
            )),
            other => Err(StoreError::SelfTest(format!(
                "read back {} rows that differ from the one written",
                other.len()
            ))),
        }
    }

    /// Into `alerts` and its region-ordered copy `alerts_by_region`, concurrently (a retry
    /// after a partial failure rewrites both, which collapses), with the tombstones of the
    /// alerts the rows move ([`ClickHouseStore::moved`]).
    async fn insert_alerts(&self, rows: &[AlertRow]) -> Result<(), StoreError> {
        let tombstones = self.moved(rows).await?;
        let by_region: std::borrow::Cow<'_, [AlertRow]> = if tombstones.is_empty() {
            rows.into()
        } else {
            rows.iter()
                .cloned()
                .chain(tombstones)
                .collect::<Vec<_>>()
                .into()
        };
        // Behind a Distributed front an insert returns once queued for the shards; the next
        // batch's lookup of earlier rows (`moved`) must see them, so `alerts` is written through.
        let sync: &[(&str, &str)] = if self.distributed().await? {
            &[("insert_distributed_sync", "1")]
        } else {
            &[]
        };
        let (a, b) = tokio::join!(
            self.insert_with("alerts", rows, sync),
            self.insert_all("alerts_by_region", &by_region)
        );
        a.and(b)
    }

    async fn insert_activity(&self, rows: &[ActivityRow]) -> Result<(), StoreError> {
        self.insert_all("activity", rows).await
    }

    async fn insert_dead_letters(&self, rows: &[DeadLetterRow]) -> Result<(), StoreError> {
        self.insert_all("dead_letters", rows).await
    }

    async fn insert_case_facts(&self, rows: &[CaseFactRow]) -> Result<(), StoreError> {
        self.insert_all("case_facts", rows).await
    }

    async fn on_time_rate(&self, region_prefix: &str) -> Result<(u64, u64), StoreError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Rate {
            on_time: u64,
            finished: u64,
        }
        let rate: Rate = self
            .client
            .query(&self.sql(
                "SELECT toUInt64(sum(on_time)) AS on_time, count() AS finished \
                 FROM {db}.case_facts FINAL WHERE startsWith(region, ?)",
            ))
            .bind(region_prefix)
            .fetch_one()
            .await
            .map_err(map_err)?;
        Ok((rate.on_time, rate.finished))
    }

    /// Into `events`, and those of a case also into `case_events` (the timeline's copy).
    async fn insert_events(&self, rows: &[EventRow]) -> Result<(), StoreError> {
        let of_cases: Vec<EventRow> = rows
            .iter()
            .filter(|e| !e.case_id.is_empty())
            .cloned()
            .collect();
        let health = crate::rows::health_rows(rows);
        let (a, b, c) = tokio::join!(
            self.insert_all("events", rows),
            self.insert_all("case_events", &of_cases),
            self.insert_all("source_events", &health)
        );
        a.and(b).and(c)
    }

    /// The tables concurrently: one round trip's latency, not six.
    async fn write(&self, batch: &RowBatch) -> Result<(), StoreError> {
        let (e, d, f, a, w, v) = tokio::join!(
            self.insert_events(&batch.events),
            self.insert_dead_letters(&batch.dead),
            self.insert_case_facts(&batch.facts),
            self.insert_alerts(&batch.alerts),
            self.insert_window_status(&batch.windows),
            self.insert_activity(&batch.activity),
        );
        e.and(d).and(f).and(a).and(w).and(v)
    }

    /// From `alerts_by_region`, whose key (region, fired_at, alert_id) serves the jurisdiction
    /// and period. On one server, months whose only part holds each key once are read
    /// without `FINAL` (18.16's `FINAL` merges in one thread, about 1 µs a row), the others
    /// with it; each read returns its first page and the two are merged. If a merge replaced
    /// one of the parts read plainly meanwhile, the read is repeated. Behind Distributed
    /// fronts, one read with `FINAL` (see the module's documentation).
    async fn history(&self, q: &HistoryQuery) -> Result<Vec<AlertRow>, StoreError> {
        const TABLE: &str = PERF_TABLES[1];
        if self.distributed().await? {
            return self
                .fetch(&query::history(&self.dialect(), TABLE, q, None))
                .await;
        }
        let range = months_of(q.from, q.to);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut clean = Vec::new();
            let mut dirty = Vec::new();
            for (month, parts) in self.months(TABLE).await? {
                if !range.contains(&month) {
                    continue;
                }
                match parts.as_slice() {
                    [p] if self.holds_each_key_once(TABLE, PERF_KEYS[1], p).await? => {
                        clean.push(p.name.clone());
                    }
                    _ => dirty.push(month),
                }
            }
            let plain = self.plain_dialect();
            let final_read = (!dirty.is_empty()).then(|| {
                query::history(
                    &self.dialect(),
                    TABLE,
                    q,
                    Some(in_months("fired_at", &dirty)),
                )
            });
            let plain_read = (!clean.is_empty())
                .then(|| query::history(&plain, TABLE, q, Some(in_parts(&clean))));
            let (a, b) = tokio::join!(self.fetch_some(final_read), self.fetch_some(plain_read));
            let now = self.active_parts(TABLE).await?;
            if attempt >= 5 || clean.iter().all(|p| now.contains(p)) {
                let mut rows: Vec<AlertRow> = a?;
                rows.extend(b?);
                rows.sort_by(|x, y| {
                    y.fired_at
                        .cmp(&x.fired_at)
                        .then_with(|| x.alert_id.cmp(&y.alert_id))
                });
                rows.truncate(q.effective_limit() as usize);
                return Ok(rows);
            }
        }
    }

    async fn dead_letters(&self, q: &DeadLetterQuery) -> Result<Vec<DeadLetterRow>, StoreError> {
        self.fetch(&query::dead_letters(&self.dialect(), q)).await
    }

    /// Five reads with `FINAL` (a re-delivered event counts once), concurrently. Behind
    /// Distributed fronts the completions are joined `GLOBAL`: read once and sent to every
    /// shard, since a case's events are spread over the shards (and ClickHouse refuses a
    /// Distributed subquery inside a Distributed read otherwise).
    async fn source_health(&self, q: &SourceQuery) -> Result<Vec<SourceFigures>, StoreError> {
        let dialect = if self.distributed().await? {
            Dialect {
                left_join: "GLOBAL ANY LEFT JOIN",
                ..self.dialect()
            }
        } else {
            self.dialect()
        };
        let [daily, delays, totals, last, dead] = query::source_health(&dialect, q);
        let (daily, delays, totals, last, dead) = tokio::join!(
            self.fetch(&daily),
            self.fetch(&delays),
            self.fetch(&totals),
            self.fetch(&last),
            self.fetch(&dead)
        );
        Ok(query::source_figures(
            q, daily?, delays?, totals?, last?, dead?,
        ))
    }

    /// On one server, per table and month, the cheapest exact read, from the month's largest
    /// part when it holds each key once ("collapsed", see [`Self::holds_each_key_once`]): its
    /// stored totals when the period covers all its rows (computed on first use, see
    /// [`Self::compute_totals`]); the part read without `FINAL` when it does not (18.16's
    /// `FINAL` merges in one thread, about 1 µs a row); its totals corrected for a few late
    /// rows (minus the part's rows of the late keys, plus those keys read with `FINAL`); else
    /// the month with `FINAL`. If a merge replaced a part read meanwhile, the reads are
    /// repeated. Behind Distributed fronts, the three statements with `FINAL` (see the
    /// module's documentation).
    async fn perf_counts(&self, q: &PerfQuery) -> Result<Vec<PerfCounts>, StoreError> {
        if self.distributed().await? {
            let statements = query::perf_shaped(
                &self.dialect(),
                PERF_TABLES,
                q,
                [None, None, None],
                query::tally_columns,
            );
            let reads = statements.into_iter().enumerate();
            let tallies = self
                .tallies(reads.map(|(i, s)| (i, 1, s)).collect())
                .await?;
            return Ok(query::merge_tallies(tallies));
        }
        let range = months_of(q.from, q.to);
        let by = q.by;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut layout = Vec::with_capacity(3);
            for table in PERF_TABLES {
                let mut months = self.months(table).await?;
                months.retain(|m, _| range.contains(m));
                layout.push(months);
            }
            let mut totals = self.totals(by.column()).await?;
            // Each month's largest part: collapsed if it has totals (computed only for parts
            // found collapsed), else checked, and its totals computed if it is.
            let mut collapsed: [HashSet<String>; 3] = Default::default();
            let mut checks = tokio::task::JoinSet::new();
            for (i, months) in layout.iter().enumerate() {
                for part in months.values().filter_map(|parts| largest_part(parts)) {
                    let name = part.name.clone();
                    if totals.contains_key(&(PERF_TABLES[i].to_string(), name.clone())) {
                        collapsed[i].insert(name);
                        continue;
                    }
                    let (store, part) = (self.clone(), part.clone());
                    checks.spawn(async move {
                        if !store
                            .holds_each_key_once(PERF_TABLES[i], PERF_KEYS[i], &part)
                            .await?
                        {
                            return Ok(None);
                        }
                        store.compute_totals(i, &part.name, by).await?;
                        Ok::<_, StoreError>(Some((i, part.name)))
                    });
                }
            }
            if !checks.is_empty() {
                while let Some(done) = checks.join_next().await {
                    let found =
                        done.map_err(|e| StoreError::Unavailable(format!("totals task: {e}")))??;
                    if let Some((i, name)) = found {
                        collapsed[i].insert(name);
                    }
                }
                totals = self.totals(by.column()).await?;
            }
            let plans: Vec<Plan> = layout
                .iter()
                .zip(&collapsed)
                .enumerate()
                .map(|(i, (months, collapsed))| Plan::new(i, months, &totals, collapsed, q))
                .collect();
            let tallies = self.tallies(self.perf_statements(&plans, q)).await?;
            let mut still = true;
            for (i, table) in PERF_TABLES.into_iter().enumerate() {
                let now = self.active_parts(table).await?;
                still &= plans[i].used.iter().all(|p| now.contains(p));
            }
            if still || attempt >= 5 {
                return Ok(query::merge_tallies(tallies));
            }
        }
    }

    /// The latest version of each alert matching `filter`, newest first. `FINAL` collapses
    /// re-deliveries and lets a retraction replace its open version.
    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<AlertRow>, StoreError> {
        let mut sql = self.sql(
            "SELECT alert_id, rule, level, status, version, fired_at, center_id, region, \
             department, window_id, staff_id, case_id, item_code, subject, message, evidence \
             FROM {db}.alerts FINAL WHERE startsWith(region, ?)",
        );
        if filter.rule.is_some() {
            sql.push_str(" AND rule = ?");
        }
        if filter.status.is_some() {
            sql.push_str(" AND status = ?");
        }
        sql.push_str(" ORDER BY fired_at DESC, alert_id LIMIT ?");
        let mut query = self.client.query(&sql).bind(filter.region_prefix.as_str());
        if let Some(rule) = &filter.rule {
            query = query.bind(rule.as_str());
        }
        if let Some(status) = &filter.status {
            query = query.bind(status.as_str());
        }
        query
            .bind(filter.effective_limit())
            .fetch_all()
            .await
            .map_err(map_err)
    }

    async fn insert_actions(&self, rows: &[ActionRow]) -> Result<(), StoreError> {
        self.insert_all("alert_actions", rows).await
    }

    async fn insert_notifications(&self, rows: &[NotificationRow]) -> Result<(), StoreError> {
        self.insert_all("notifications", rows).await
    }

    async fn notifications(
        &self,
        alert_ids: &[String],
    ) -> Result<Vec<NotificationRow>, StoreError> {
        if alert_ids.is_empty() {
            return Ok(Vec::new());
        }
        // `IN ?` with an array is refused by 18.16; a subquery set also uses the key.
        self.client
            .query(&self.sql(
                "SELECT alert_id, status, target, level, fate, detail, at \
                 FROM {db}.notifications WHERE alert_id IN (SELECT arrayJoin(?))",
            ))
            .bind(alert_ids)
            .fetch_all()
            .await
            .map_err(map_err)
    }

    async fn actions(&self) -> Result<Vec<ActionRow>, StoreError> {
        self.client
            .query(&self.sql(
                "SELECT alert_id, action, actor, at, reason, reply_deadline, region \
                 FROM {db}.alert_actions ORDER BY at, alert_id",
            ))
            .fetch_all()
            .await
            .map_err(map_err)
    }

    /// `GLOBAL NOT IN`: behind Distributed fronts, the actions (sharded by alert and time) are
    /// not on the shard of their alert, so the set is read once, whole, and sent to every
    /// shard (a plain `IN` of one Distributed table inside another is refused with more than
    /// one shard). On one server the same as `NOT IN`.
    async fn live_alerts(&self, since: u32) -> Result<Vec<AlertRow>, StoreError> {
        self.client
            .query(&self.sql(
                "SELECT alert_id, rule, level, status, version, fired_at, center_id, region, \
                 department, window_id, staff_id, case_id, item_code, subject, message, evidence \
                 FROM {db}.alerts FINAL WHERE fired_at >= toDateTime(?) OR (status = 'open' AND \
                 alert_id GLOBAL NOT IN (SELECT alert_id FROM {db}.alert_actions \
                 WHERE action IN ('resolve', 'dismiss'))) ORDER BY fired_at, alert_id",
            ))
            .bind(since)
            .fetch_all()
            .await
            .map_err(map_err)
    }

    async fn insert_window_status(&self, rows: &[WindowStatusRow]) -> Result<(), StoreError> {
        self.insert_all("window_status", rows).await
    }

    async fn window_status(&self) -> Result<Vec<WindowStatusRow>, StoreError> {
        self.client
            .query(&self.sql(
                "SELECT window_id, center_id, region, updated_at, doc \
                 FROM {db}.window_status FINAL ORDER BY window_id",
            ))
            .fetch_all()
            .await
            .map_err(map_err)
    }

    async fn case_events(&self, case_id: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Raw {
            raw: String,
        }
        let rows: Vec<Raw> = self
            .client
            .query(&self.sql(
                "SELECT raw FROM {db}.case_events FINAL WHERE case_id = ? \
                 ORDER BY occurred_at, received_at, event_id LIMIT ?",
            ))
            .bind(case_id)
            .bind(limit)
            .fetch_all()
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(|r| r.raw).collect())
    }

    /// Raw rows, before ReplacingMergeTree's background merges collapse duplicates (in the
    /// replicated layout without the inserts a Replicated table dropped as identical to a
    /// recent one).
    async fn count(&self, table: &str) -> Result<u64, StoreError> {
        check_table(table)?;
        let row: Count = self
            .client
            .query(&format!("SELECT count() AS n FROM {}", self.table(table)))
            .fetch_one()
            .await
            .map_err(map_err)?;
        Ok(row.n)
    }

    /// Split into rows of [`CHECKPOINT_CHUNK`] bytes.
    async fn save_checkpoint(
        &self,
        key: CheckpointKey<'_>,
        slot: u8,
        next_offset: i64,
        snapshot: &[u8],
    ) -> Result<(), StoreError> {
        let written_at = now_seconds();
        let pieces: Vec<&[u8]> = if snapshot.is_empty() {
            vec![&[]]
        } else {
            snapshot.chunks(CHECKPOINT_CHUNK).collect()
        };
        let chunks = pieces.len() as u32;
        let rows: Vec<CheckpointRow> = pieces
            .into_iter()
            .enumerate()
            .map(|(i, data)| CheckpointRow {
                group_id: key.group_id.to_string(),
                topic: key.topic.to_string(),
                partition: key.partition,
                slot,
                next_offset,
                chunk: i as u32,
                chunks,
                data: data.to_vec(),
                written_at,
            })
            .collect();
        self.insert_all("checkpoints", &rows).await
    }

    /// A checkpoint is complete when every one of its chunks is present.
    async fn checkpoints(&self, key: CheckpointKey<'_>) -> Result<Vec<CheckpointMeta>, StoreError> {
        let rows: Vec<ChunkMeta> = self
            .client
            .query(&self.sql(
                "SELECT slot, next_offset, chunk, chunks, written_at FROM {db}.checkpoints \
                 WHERE group_id = ? AND topic = ? AND partition = ? \
                 ORDER BY slot, next_offset DESC, chunk",
            ))
            .bind(key.group_id)
            .bind(key.topic)
            .bind(key.partition)
            .fetch_all()
            .await
            .map_err(map_err)?;
        let mut found: Vec<CheckpointMeta> = Vec::new();
        for slot in [0u8, 1] {
            let newest = rows
                .iter()
                .filter(|r| r.slot == slot)
                .map(|r| r.next_offset)
                .max();
            let Some(next_offset) = newest else { continue };
            let mut have: Vec<&ChunkMeta> = rows
                .iter()
                .filter(|r| r.slot == slot && r.next_offset == next_offset)
                .collect();
            have.dedup_by_key(|r| r.chunk);
            let Some(first) = have.first() else { continue };
            let complete = have.len() as u32 == first.chunks
                && have.iter().enumerate().all(|(i, r)| r.chunk == i as u32);
            if complete {
                found.push(CheckpointMeta {
                    slot,
                    next_offset,
                    chunks: first.chunks,
                    written_at: first.written_at,
                });
            }
        }
        found.sort_by_key(|m| std::cmp::Reverse(m.next_offset));
        Ok(found)
    }

    async fn checkpoint_data(
        &self,
        key: CheckpointKey<'_>,
        meta: &CheckpointMeta,
    ) -> Result<Vec<u8>, StoreError> {
        // PREWHERE: parts holding older checkpoints of the slot, not yet merged away, are
        // skipped without reading their data.
        let mut cursor = self
            .client
            .query(&self.sql(
                "SELECT chunk, data FROM {db}.checkpoints PREWHERE next_offset = ? \
                 WHERE group_id = ? AND topic = ? AND partition = ? AND slot = ? \
                 ORDER BY chunk",
            ))
            .bind(meta.next_offset)
            .bind(key.group_id)
            .bind(key.topic)
            .bind(key.partition)
            .bind(meta.slot)
            .fetch_bytes("RowBinary")
            .map_err(map_err)?;
        let mut joiner = ChunkJoiner::new(meta.chunks as usize * CHECKPOINT_CHUNK);
        while let Some(piece) = cursor.next().await.map_err(map_err)? {
            joiner.push(&piece).map_err(StoreError::Unavailable)?;
        }
        let (snapshot, chunks) = joiner.finish().map_err(StoreError::Unavailable)?;
        if chunks != meta.chunks {
            return Err(StoreError::Unavailable(format!(
                "checkpoint of partition {} at offset {} changed while being read",
                key.partition, meta.next_offset
            )));
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::{tombstones, AlertRow, ChunkJoiner, MOVED};

    fn line(id: &str, status: &str, version: u8, fired_at: u32) -> AlertRow {
        AlertRow {
            alert_id: id.into(),
            rule: "case.overdue".into(),
            level: "yellow".into(),
            status: status.into(),
            version,
            fired_at,
            region: "430626".into(),
            ..AlertRow::default()
        }
    }

    #[test]
    fn a_line_at_another_instant_leaves_a_tombstone_under_the_old_key() {
        let stored = vec![line("a", "open", 0, 100), line("b", "open", 0, 100)];
        let rows = [
            // a: retracted where it stood, then fired again at the moved deadline.
            line("a", "retracted", 2, 100),
            line("a", "open", 3, 160),
            // b: a state revision at its instant moves nothing.
            line("b", "open", 1, 100),
            // c: new, then revised at another instant within the batch.
            line("c", "open", 0, 50),
            line("c", "open", 3, 70),
            // A re-delivered older line of a moves nothing.
            line("a", "open", 0, 100),
        ];
        let got: Vec<(String, String, u8, u32)> = tombstones(stored, &rows)
            .into_iter()
            .map(|r| (r.alert_id, r.status, r.version, r.fired_at))
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), MOVED.into(), 3, 100),
                ("c".into(), MOVED.into(), 3, 50)
            ]
        );
    }

    /// `(chunk UInt32, data String)` rows in RowBinary.
    fn rows(rows: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (chunk, data) in rows {
            out.extend_from_slice(&chunk.to_le_bytes());
            let mut n = data.len();
            loop {
                let b = (n & 0x7f) as u8;
                n >>= 7;
                out.push(if n > 0 { b | 0x80 } else { b });
                if n == 0 {
                    break;
                }
            }
            out.extend_from_slice(data);
        }
        out
    }

    fn join(bytes: &[u8], piece: usize) -> Result<(Vec<u8>, u32), String> {
        let mut j = ChunkJoiner::new(0);
        for p in bytes.chunks(piece) {
            j.push(p)?;
        }
        j.finish()
    }

    #[test]
    fn chunks_are_joined_however_the_response_is_split() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let bytes = rows(&[
            (0, b"abc".to_vec()),
            (1, big.clone()),
            (1, big.clone()), // an unmerged duplicate of the same row
            (2, Vec::new()),
            (3, b"z".to_vec()),
        ]);
        let mut want = b"abc".to_vec();
        want.extend_from_slice(&big);
        want.push(b'z');
        for piece in [1, 2, 3, 5, 7, 64, 4096, bytes.len()] {
            assert_eq!(
                join(&bytes, piece),
                Ok((want.clone(), 4)),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_gap_or_a_cut_row_is_an_error() {
        let gap = rows(&[(0, b"a".to_vec()), (2, b"c".to_vec())]);
        assert!(join(&gap, 3).is_err());
        let whole = rows(&[(0, b"abc".to_vec())]);
        assert!(join(&whole[..whole.len() - 1], 2).is_err());
        assert!(join(&whole[..3], 2).is_err());
    }
}

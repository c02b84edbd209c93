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
//! Table names are qualified with the database (`db.alerts`), which is checked to be a plain
//! identifier when the store is created.

use clickhouse::{Client, Compression};
use serde::Deserialize;

use crate::api::{
    check_table, AlertFilter, CheckpointKey, CheckpointMeta, DeadLetterQuery, HistoryQuery,
    PerfCounts, PerfQuery, RowBatch, Store,
};
use crate::query::{self, Dialect, Param};
use crate::rows::{
    ActionRow, ActivityRow, AlertRow, CaseFactRow, CheckpointRow, DeadLetterRow, EventRow,
    WindowStatusRow,
};
use crate::schema::{LEDGER, MIGRATIONS, SELF_TEST};
use crate::{classify, now_seconds, self_test_token, StoreError};

/// A ClickHouse database holding jiancha's tables.
#[derive(Clone)]
pub struct ClickHouseStore {
    client: Client,
    database: String,
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

#[derive(Debug, Deserialize, clickhouse::Row)]
struct ChunkData {
    chunk: u32,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
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
        let client = Client::default()
            .with_url(url)
            .with_validation(false)
            .with_compression(Compression::None);
        Ok(ClickHouseStore {
            client,
            database: database.to_string(),
        })
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
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert_unescaped::<T>(&self.table(table))
            .await
            .map_err(map_err)?;
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

    /// The active parts of `table` that hold no duplicate key (the only part of their
    /// partition, written by a merge: level > 0, since one insert may carry a key twice), and
    /// the months (partition ids) of every other partition.
    async fn partitions(&self, table: &str) -> Result<(Vec<String>, Vec<u32>), StoreError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Partition {
            partition_id: String,
            parts: u64,
            level: u32,
            name: String,
        }
        let rows: Vec<Partition> = self
            .client
            .query(
                "SELECT partition_id, count() AS parts, toUInt32(min(level)) AS level, \
                 any(name) AS name FROM system.parts \
                 WHERE database = ? AND table = ? AND active GROUP BY partition_id",
            )
            .bind(self.database.as_str())
            .bind(table)
            .fetch_all()
            .await
            .map_err(map_err)?;
        let mut clean = Vec::new();
        let mut dirty = Vec::new();
        for p in rows {
            if p.parts == 1 && p.level > 0 {
                clean.push(p.name);
            } else if let Ok(month) = p.partition_id.parse() {
                dirty.push(month);
            }
        }
        Ok((clean, dirty))
    }

    /// The database holding jiancha's tables.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Drop the whole database (tests and `--reset`).
    pub async fn drop_database(&self) -> Result<(), StoreError> {
        self.execute("DROP DATABASE IF EXISTS {db}").await
    }
}

/// `n` comma-separated placeholders.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Store for ClickHouseStore {
    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        self.execute("CREATE DATABASE IF NOT EXISTS {db}").await?;
        self.execute(LEDGER).await?;
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
            for statement in m.statements {
                self.execute(statement).await?;
            }
            self.execute(&format!(
                "INSERT INTO {{db}}.schema_migrations VALUES ({}, '{}', now())",
                m.version,
                m.description.replace('\'', "")
            ))
            .await?;
            now_applied.push(m.version);
        }
        Ok(now_applied)
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
    /// after a partial failure rewrites both, which collapses).
    async fn insert_alerts(&self, rows: &[AlertRow]) -> Result<(), StoreError> {
        let (a, b) = tokio::join!(
            self.insert_all("alerts", rows),
            self.insert_all("alerts_by_region", rows)
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
        let (a, b) = tokio::join!(
            self.insert_all("events", rows),
            self.insert_all("case_events", &of_cases)
        );
        a.and(b)
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
    /// and period.
    async fn history(&self, q: &HistoryQuery) -> Result<Vec<AlertRow>, StoreError> {
        self.fetch(&query::history(&self.dialect(), "alerts_by_region", q))
            .await
    }

    async fn dead_letters(&self, q: &DeadLetterQuery) -> Result<Vec<DeadLetterRow>, StoreError> {
        self.fetch(&query::dead_letters(&self.dialect(), q)).await
    }

    /// The three grouped reads, each split in two: `FINAL` (18.16 merges all of a query's
    /// parts in one thread, about 1 µs a row) only over the months that may hold duplicates,
    /// and a plain read of the months already collapsed by a merge. If a merge replaced one of
    /// those parts meanwhile, the read is repeated.
    async fn perf_counts(&self, q: &PerfQuery) -> Result<Vec<PerfCounts>, StoreError> {
        const TABLES: [&str; 3] = ["case_facts", "alerts_by_region", "activity"];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut layout = Vec::with_capacity(3);
            for table in TABLES {
                layout.push(self.partitions(table).await?);
            }
            let dirty = |i: usize| {
                let (_, months) = &layout[i];
                let months: &Vec<u32> = months;
                Some((
                    format!(
                        "toYYYYMM({}) IN ({})",
                        query::PERF_TIMES[i],
                        placeholders(months.len().max(1))
                    ),
                    if months.is_empty() {
                        vec![Param::Month(0)]
                    } else {
                        months.iter().map(|m| Param::Month(*m)).collect()
                    },
                ))
            };
            let clean = |i: usize| {
                let (parts, _) = &layout[i];
                let parts: &Vec<String> = parts;
                Some((
                    format!("_part IN ({})", placeholders(parts.len().max(1))),
                    if parts.is_empty() {
                        vec![Param::Text(String::new())]
                    } else {
                        parts.iter().map(|p| Param::Text(p.clone())).collect()
                    },
                ))
            };
            let plain = Dialect {
                table: |d, table| format!("{}.{table}", d.database),
                ..self.dialect()
            };
            let [f1, a1, v1] =
                query::perf(&self.dialect(), TABLES, q, [dirty(0), dirty(1), dirty(2)]);
            let [f2, a2, v2] = query::perf(&plain, TABLES, q, [clean(0), clean(1), clean(2)]);
            let (f1, a1, v1, f2, a2, v2) = tokio::join!(
                self.fetch(&f1),
                self.fetch(&a1),
                self.fetch(&v1),
                self.fetch(&f2),
                self.fetch(&a2),
                self.fetch(&v2)
            );
            let mut still = true;
            for (i, table) in TABLES.into_iter().enumerate() {
                let now = self.partitions(table).await?;
                still &= layout[i].0.iter().all(|p| now.0.contains(p));
            }
            if still || attempt >= 5 {
                let mut facts = f1?;
                facts.extend(f2?);
                let mut alerts = a1?;
                alerts.extend(a2?);
                let mut activity = v1?;
                activity.extend(v2?);
                return Ok(query::merge(facts, alerts, activity));
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

    async fn live_alerts(&self, since: u32) -> Result<Vec<AlertRow>, StoreError> {
        self.client
            .query(&self.sql(
                "SELECT alert_id, rule, level, status, version, fired_at, center_id, region, \
                 department, window_id, staff_id, case_id, item_code, subject, message, evidence \
                 FROM {db}.alerts FINAL WHERE fired_at >= toDateTime(?) OR (status = 'open' AND \
                 alert_id NOT IN (SELECT alert_id FROM {db}.alert_actions \
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

    /// Raw rows, before ReplacingMergeTree's background merges collapse duplicates.
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
        let mut rows: Vec<ChunkData> = self
            .client
            .query(&self.sql(
                "SELECT chunk, data FROM {db}.checkpoints \
                 WHERE group_id = ? AND topic = ? AND partition = ? AND slot = ? \
                 AND next_offset = ? ORDER BY chunk",
            ))
            .bind(key.group_id)
            .bind(key.topic)
            .bind(key.partition)
            .bind(meta.slot)
            .bind(meta.next_offset)
            .fetch_all()
            .await
            .map_err(map_err)?;
        rows.dedup_by_key(|r| r.chunk);
        if rows.len() as u32 != meta.chunks {
            return Err(StoreError::Unavailable(format!(
                "checkpoint of partition {} at offset {} changed while being read",
                key.partition, meta.next_offset
            )));
        }
        Ok(rows.into_iter().flat_map(|r| r.data).collect())
    }
}

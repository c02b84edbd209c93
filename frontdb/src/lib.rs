//! The front-database (前置库) poller (SPEC §9 Transports (a)): a source's tables in PostgreSQL
//! or MariaDB read a batch at a time, each row mapped by the `adapters` crate, and the events
//! and dead letters handed over to whatever makes them durable — the embedded mode's SQLite
//! ingest log, or cluster mode's events topic — before the position moves.
//!
//! ```text
//! front database ─ dialect SQL (text in, text out) ─▶ rows ─▶ adapters::Adapter ─▶ events
//!   ▲  watermark: (write time, keys taken at it)                 │ bad row ─▶ dead letter
//!   │  flag: SIGNSTATE/REC_FLAG                                   ▼
//!   └── flag set ◀── only after ── Handover::commit(events, dead letters, new position)
//!                                   embedded: one SQLite transaction with the ingest log
//!                                   cluster: topic acknowledged, then the position stored
//! ```
//!
//! Why it is built so:
//! - **Durable first, then the position.** [`Handover::commit`] stores the events, the dead
//!   letters and the new watermark together (embedded) or the watermark after the broker
//!   acknowledged (cluster); a flag is set only after the commit returned. A crash anywhere
//!   repeats at most the batch in flight, and a repeat has the same event ids (the adapters'
//!   identity), so the ingest log's identity check or the engine's duplicate filter drops it.
//! - **Watermark with the key as tie-break.** The position is the write time of the last row
//!   taken plus the keys taken *at that time*; the next poll reads `time >= T` and skips those
//!   keys. Comparing keys by value would need each key column's type in every database; a set
//!   of keys needs nothing, and is as small as the rows sharing one write time.
//! - **Settle delay.** A row becomes visible when its transaction commits, which can be after
//!   a row with a later write time: a watermark takes only rows written `settle_seconds` ago.
//! - **Bad rows never stall.** A row the adapter refuses is a dead letter (raw row, reason,
//!   column) committed with the batch, and the position moves past it (its flag is set too).
//! - **Everything is text.** Columns are selected as text and parameters bound as text cast to
//!   the column's type (the dialect), so one code path serves every column type and database.

pub mod client;
pub mod dialect;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adapters::{Adapter, Event, Row};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::{Deserialize, Serialize};

use crate::client::{Client, DbError};
use crate::dialect::{statements, Statements, TableInfo};

/// How a source marks what has been taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// By the rows' write time (`MAKETIME`, `INSERTTIME`, `cd_time`), the primary key as
    /// tie-break; the watermark is kept by jiancha.
    Watermark {
        /// The write-time column.
        time_column: String,
        /// Rows are taken once written this many seconds ago.
        settle_seconds: u64,
    },
    /// By a flag column set once the rows are durable (`SIGNSTATE`, `REC_FLAG`).
    Flag {
        /// The flag column.
        column: String,
        /// The value that means "taken" (rows with any other value, or NULL, are new).
        done: String,
        /// Read in this column's order when given (else the key's).
        time_column: Option<String>,
    },
}

/// One front-database source.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Source name: events carry it as `source`, positions are stored under it.
    pub name: String,
    /// The format of its tables.
    pub format: adapters::Format,
    /// `postgresql://…` or `mysql://…`.
    pub url: String,
    /// The tables polled, in this order each round (acceptances before what follows them).
    pub tables: Vec<String>,
    /// Watermark or flag.
    pub mode: Mode,
    /// Rows read per statement.
    pub batch_rows: usize,
    /// Pause between rounds that found nothing new.
    pub interval: Duration,
}

/// A row refused by the adapter (or by the decoder, for a handover that decodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRow {
    /// `frontdb:<source>:<table>:<key>`: the same row always gives the same dead letter key.
    pub origin: String,
    /// Stable reason code (docs/ADAPTERS.md "Dead letters").
    pub reason: String,
    /// The column concerned, if any.
    pub field: String,
    /// For people.
    pub message: String,
    /// The row as JSON, `source` and `_table` first.
    pub raw: String,
}

/// Where a table's progress stands. Stored as JSON by the handover, with the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Rows taken so far (only grows: stores keep the highest).
    pub taken: u64,
    /// Write time of the last row taken (text as the database gave it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Keys of the rows taken at exactly `time`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Vec<String>>,
}

/// Why a handover failed: the batch is retried, the position has not moved.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandoverError(pub String);

/// What makes a batch durable: the embedded ingest log or the cluster's events topic.
pub trait Handover: Send {
    /// The stored position of `key` (`<source>/<table>`), if any.
    fn load(&mut self, key: &str) -> Result<Option<Position>, HandoverError>;
    /// Make `events` and `dead` durable, and with them (embedded: in the same transaction;
    /// cluster: after the broker acknowledged) `position` under `key`. Returns once durable.
    fn commit(
        &mut self,
        key: &str,
        events: &[Event],
        dead: &[DeadRow],
        position: &Position,
    ) -> Result<(), HandoverError>;
}

/// The poller's metrics, one set for every source (label `source`).
#[derive(Clone)]
pub struct Metrics {
    rows: IntCounterVec,
    events: IntCounterVec,
    dead: IntCounterVec,
    errors: IntCounterVec,
    watermark: IntGaugeVec,
    lag: IntGaugeVec,
    up: IntGaugeVec,
    last_success: IntGaugeVec,
}

impl Metrics {
    /// The metrics, registered in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Metrics> {
        fn counter(
            r: &Registry,
            name: &str,
            help: &str,
            labels: &[&str],
        ) -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        fn gauge(
            r: &Registry,
            name: &str,
            help: &str,
            labels: &[&str],
        ) -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            r.register(Box::new(g.clone()))?;
            Ok(g)
        }
        let st = &["source", "table"];
        Ok(Metrics {
            rows: counter(registry, "jiancha_frontdb_rows_total", "Front-database rows taken (durable)", st)?,
            events: counter(registry, "jiancha_frontdb_events_total", "Events made durable from front-database rows", &["source"])?,
            dead: counter(registry, "jiancha_frontdb_dead_letters_total", "Front-database rows refused, by reason", &["source", "reason"])?,
            errors: counter(
                registry,
                "jiancha_frontdb_errors_total",
                "Front-database poller failures (connect, query, handover, flag), each retried",
                &["source", "kind"],
            )?,
            watermark: gauge(registry, "jiancha_frontdb_watermark_seconds", "Write time of the last row taken (China time as epoch seconds)", st)?,
            lag: gauge(
                registry,
                "jiancha_frontdb_lag_seconds",
                "Now less the write time of the last row taken while more rows wait; 0 when caught up",
                st,
            )?,
            up: gauge(registry, "jiancha_frontdb_up", "1 while the front database answers", &["source"])?,
            last_success: gauge(
                registry,
                "jiancha_frontdb_last_success_timestamp_seconds",
                "When a round last completed without error",
                &["source"],
            )?,
        })
    }
}

/// What a round reported, for logs and tests.
#[derive(Debug, Default, Clone, Copy)]
struct Round {
    rows: usize,
    full: bool,
}

/// A source's poller: runs on its own thread until `stop` is set.
pub struct Poller<'r> {
    settings: Settings,
    adapter: Adapter<'r>,
    handover: Box<dyn Handover + 'r>,
    metrics: Metrics,
    stop: Arc<AtomicBool>,
    client: Option<Box<dyn Client>>,
    tables: Vec<(TableInfo, Statements)>,
    /// Each table's position as last committed (loaded from the handover once).
    positions: std::collections::HashMap<String, Position>,
}

/// The database's local time as epoch seconds (China time), for the gauges.
fn epoch_of(time: &str) -> Option<i64> {
    let local = adapters::local_time(time)?;
    rules::time::parse_rfc3339(&local).ok().map(|i| i.0)
}

impl<'r> Poller<'r> {
    /// A poller of `settings` mapping rows with `adapter` and handing them to `handover`.
    pub fn new(
        settings: Settings,
        adapter: Adapter<'r>,
        handover: Box<dyn Handover + 'r>,
        metrics: Metrics,
        stop: Arc<AtomicBool>,
    ) -> Poller<'r> {
        metrics.up.with_label_values(&[&settings.name]).set(0);
        Poller {
            settings,
            adapter,
            handover,
            metrics,
            stop,
            client: None,
            tables: Vec::new(),
            positions: std::collections::HashMap::new(),
        }
    }

    fn error(&self, kind: &str) {
        self.metrics
            .errors
            .with_label_values(&[&self.settings.name, kind])
            .inc();
    }

    /// Poll until stopped. Every failure is logged, counted and retried with backoff; none
    /// ends the loop (a source that is down is a source to wait for).
    pub fn run(mut self) {
        let name = self.settings.name.clone();
        let mut delay = Duration::from_millis(200);
        while !self.stop.load(Ordering::SeqCst) {
            match self.round() {
                Ok(round) => {
                    delay = Duration::from_millis(200);
                    self.metrics
                        .last_success
                        .with_label_values(&[&name])
                        .set(rules_now());
                    if !round.full {
                        self.pause(self.settings.interval);
                    } else {
                        log::debug!("{name}: {} rows, more waiting", round.rows);
                    }
                }
                Err((kind, e)) => {
                    self.error(kind);
                    log::warn!("front database {name}: {kind}: {e}; retrying in {delay:?}");
                    if kind != "handover" {
                        self.client = None;
                        self.metrics.up.with_label_values(&[&name]).set(0);
                    }
                    self.pause(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Sleep up to `d`, waking early when stopped.
    fn pause(&self, d: Duration) {
        let step = Duration::from_millis(50);
        let mut left = d;
        while !left.is_zero() && !self.stop.load(Ordering::SeqCst) {
            let s = left.min(step);
            std::thread::sleep(s);
            left -= s;
        }
    }

    /// Connect and read the catalogue (once per connection).
    fn connect(&mut self) -> Result<(), (&'static str, String)> {
        if self.client.is_some() {
            return Ok(());
        }
        let mut client = client::connect(&self.settings.url, Duration::from_secs(5))
            .map_err(|e| ("connect", e.0))?;
        let mut tables = Vec::new();
        for name in &self.settings.tables {
            let info = describe(client.as_mut(), name).map_err(|e| ("connect", e.0))?;
            let (time, flag) = match &self.settings.mode {
                Mode::Watermark { time_column, .. } => (Some(time_column.as_str()), None),
                Mode::Flag {
                    column,
                    time_column,
                    ..
                } => (time_column.as_deref(), Some(column.as_str())),
            };
            for c in time.iter().chain(flag.iter()) {
                if info.data_type(c).is_none() {
                    return Err(("connect", format!("table {name} has no column {c}")));
                }
            }
            let flag = flag.map(|c| (c, info.data_type(c).unwrap_or("")));
            let settle = match &self.settings.mode {
                Mode::Watermark { settle_seconds, .. } => *settle_seconds,
                Mode::Flag { .. } => 0,
            };
            let stmts = statements(
                client.dialect(),
                &info,
                time,
                flag,
                self.settings.batch_rows,
                settle,
            );
            tables.push((info, stmts));
        }
        self.client = Some(client);
        self.tables = tables;
        self.metrics
            .up
            .with_label_values(&[&self.settings.name])
            .set(1);
        log::info!(
            "front database {}: connected, polling {}",
            self.settings.name,
            self.settings.tables.join(", ")
        );
        Ok(())
    }

    /// One round over every table; `full` when some table had more rows than one batch.
    fn round(&mut self) -> Result<Round, (&'static str, String)> {
        self.connect()?;
        let mut round = Round::default();
        for i in 0..self.tables.len() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let n = self.table(i)?;
            round.rows += n.0;
            round.full |= n.1;
        }
        Ok(round)
    }

    /// One batch of table `i`: (rows taken, whether more wait).
    fn table(&mut self, i: usize) -> Result<(usize, bool), (&'static str, String)> {
        let (info, stmts) = &self.tables[i];
        let key_name = format!("{}/{}", self.settings.name, info.name);
        let mut position = match self.positions.get(&key_name) {
            Some(p) => p.clone(),
            None => self
                .handover
                .load(&key_name)
                .map_err(|e| ("handover", e.0))?
                .unwrap_or_default(),
        };
        let client = self.client.as_mut().ok_or(("connect", String::new()))?;
        let key_at: Vec<usize> = info.key.iter().filter_map(|k| info.index(k)).collect();
        let key_of = |row: &[Option<String>]| -> Vec<String> {
            key_at
                .iter()
                .map(|&i| row.get(i).cloned().flatten().unwrap_or_default())
                .collect()
        };
        let (rows, time_at) = match &self.settings.mode {
            Mode::Watermark { time_column, .. } => {
                let time_at = info.index(time_column);
                let rows = match &position.time {
                    Some(t) => {
                        let seen: BTreeSet<&Vec<String>> = position.keys.iter().collect();
                        let rows = client
                            .query(&stmts.after, &[t.as_str()])
                            .map_err(|e| ("query", e.0))?;
                        let more = rows.len() >= self.settings.batch_rows;
                        let rows: Vec<_> = rows
                            .into_iter()
                            .filter(|r| {
                                let same = time_at.and_then(|i| r[i].as_deref()) == Some(t);
                                !(same && seen.contains(&key_of(r)))
                            })
                            .collect();
                        if rows.is_empty() && more {
                            // Every row read was taken at T already: more rows share T than a
                            // batch holds. Read them all at once rather than stall.
                            let sql = stmts
                                .after
                                .rsplit_once(" LIMIT ")
                                .map_or(stmts.after.as_str(), |(s, _)| s);
                            let all = client
                                .query(sql, &[t.as_str()])
                                .map_err(|e| ("query", e.0))?;
                            all.into_iter()
                                .filter(|r| {
                                    let same = time_at.and_then(|i| r[i].as_deref()) == Some(t);
                                    !(same && seen.contains(&key_of(r)))
                                })
                                .take(self.settings.batch_rows)
                                .collect()
                        } else {
                            rows
                        }
                    }
                    None => client
                        .query(&stmts.first, &[])
                        .map_err(|e| ("query", e.0))?,
                };
                (rows, time_at)
            }
            Mode::Flag { done, .. } => {
                let rows = client
                    .query(&stmts.flagged, &[done.as_str()])
                    .map_err(|e| ("query", e.0))?;
                (rows, None)
            }
        };
        if rows.is_empty() {
            self.metrics
                .lag
                .with_label_values(&[&self.settings.name, &info.name])
                .set(0);
            return Ok((0, false));
        }
        let full = rows.len() >= self.settings.batch_rows;
        let mut events = Vec::new();
        let mut dead = Vec::new();
        let table = info.name.clone();
        for row in &rows {
            let pairs: Vec<(&str, &str)> = std::iter::once(("_table", table.as_str()))
                .chain(
                    info.columns
                        .iter()
                        .zip(row)
                        .filter_map(|((c, _), v)| v.as_deref().map(|v| (c.as_str(), v))),
                )
                .collect();
            let before = events.len();
            if let Err(d) = self.adapter.adapt(&Row::from_pairs(&pairs), &mut events) {
                events.truncate(before);
                let mut raw = serde_json::Map::new();
                raw.insert("source".into(), self.settings.name.clone().into());
                for (c, v) in &pairs {
                    raw.insert((*c).to_string(), (*v).into());
                }
                dead.push(DeadRow {
                    origin: format!(
                        "frontdb:{}:{}:{}",
                        self.settings.name,
                        table,
                        key_of(row).join(":")
                    ),
                    reason: d.reason.to_string(),
                    field: d.column.unwrap_or_default(),
                    message: d.message,
                    raw: serde_json::Value::Object(raw).to_string(),
                });
            }
        }
        // The new position: the last row's time, and every key taken at that time.
        position.taken += rows.len() as u64;
        if let Some(at) = time_at {
            let last = rows.last().and_then(|r| r[at].clone());
            if last != position.time {
                position.keys.clear();
                position.time = last.clone();
            }
            for r in rows.iter().filter(|r| r[at] == last) {
                position.keys.push(key_of(r));
            }
        }
        self.handover
            .commit(&key_name, &events, &dead, &position)
            .map_err(|e| ("handover", e.0))?;
        self.positions.insert(key_name, position.clone());
        let name = self.settings.name.clone();
        if let Mode::Flag { done, .. } = &self.settings.mode {
            let marks: Vec<Vec<String>> = rows
                .iter()
                .map(|r| std::iter::once(done.clone()).chain(key_of(r)).collect())
                .collect();
            let (_, stmts) = &self.tables[i];
            if let Some(client) = self.client.as_mut() {
                client
                    .execute_all(&stmts.mark, &marks)
                    .map_err(|e: DbError| ("flag", e.0))?;
            }
        }
        let m = &self.metrics;
        m.rows
            .with_label_values(&[&name, &table])
            .inc_by(rows.len() as u64);
        m.events
            .with_label_values(&[&name])
            .inc_by(events.len() as u64);
        for d in &dead {
            m.dead.with_label_values(&[&name, &d.reason]).inc();
        }
        if let Some(t) = position.time.as_deref().and_then(epoch_of) {
            m.watermark.with_label_values(&[&name, &table]).set(t);
            let lag = if full { (rules_now() - t).max(0) } else { 0 };
            m.lag.with_label_values(&[&name, &table]).set(lag);
        }
        Ok((rows.len(), full))
    }
}

/// Wall-clock seconds since the epoch (gauges only; nothing decides on it).
fn rules_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A table's columns and primary key from the catalogue.
pub fn describe(client: &mut dyn Client, name: &str) -> Result<TableInfo, DbError> {
    let (schema, table) = name.split_once('.').unwrap_or(("", name));
    let columns_sql = dialect::columns_query(client.dialect());
    let key_sql = dialect::key_query(client.dialect());
    let columns: Vec<(String, String)> = client
        .query(&columns_sql, &[table, schema])?
        .into_iter()
        .filter_map(|r| {
            let mut r = r.into_iter();
            Some((r.next()??, r.next()??))
        })
        .collect();
    if columns.is_empty() {
        return Err(DbError(format!("table {name} not found")));
    }
    let key: Vec<String> = client
        .query(&key_sql, &[table, schema])?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    if key.is_empty() {
        return Err(DbError(format!(
            "table {name} has no primary key (the poller needs one to tell rows apart)"
        )));
    }
    Ok(TableInfo {
        name: name.to_string(),
        columns,
        key,
    })
}

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
//! - **One snapshot per round.** Every table of a round is read in one read-only transaction
//!   with one snapshot, so a completion is never read without the acceptance committed with
//!   it, and rows are taken in write-time order across tables up to the frontier (the earliest
//!   last write time among the tables that filled a batch).
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
    /// After a start, the adapter's memory of cases is refilled from the rows taken in this
    /// many days before the watermark (0: not at all).
    pub warm_days: u32,
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
    /// cluster: after the broker acknowledged) each table's new position under its key.
    /// Returns once durable.
    fn commit(
        &mut self,
        events: &[Event],
        dead: &[DeadRow],
        positions: &[(String, Position)],
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
    /// The adapter's memory has been refilled.
    warmed: bool,
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
        // Every series whose labels are known now exists at 0, so the first failure is an
        // increase (docs/RELIABILITY.md, "Operations").
        for reason in adapters::REASONS {
            metrics
                .dead
                .with_label_values(&[settings.name.as_str(), reason]);
        }
        for kind in ["connect", "query", "handover", "flag"] {
            metrics.errors.with_label_values(&[&settings.name, kind]);
        }
        Poller {
            settings,
            adapter,
            handover,
            metrics,
            stop,
            client: None,
            tables: Vec::new(),
            positions: std::collections::HashMap::new(),
            warmed: false,
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

    /// One round: a batch of every table, taken in write-time order across tables up to the
    /// frontier (the earliest last write time among the tables that filled a batch), so no
    /// table runs ahead of another: a case's acceptance is adapted before its completion,
    /// and the adapter's memory of the case places the completion.
    fn round(&mut self) -> Result<Round, (&'static str, String)> {
        self.connect()?;
        if !self.warmed {
            self.warm()?;
            self.warmed = true;
        }
        // Every table is read in one snapshot: a transaction of the source's committing between
        // two tables' reads (an acceptance and its completion) is seen by both or by neither.
        for i in 0..self.tables.len() {
            self.position(i)?; // loaded before the transaction, which only reads the source
        }
        let fetched = {
            let client = self.client.as_mut().ok_or(("connect", String::new()))?;
            let begin = client.dialect().snapshot();
            client.execute(begin).map_err(|e| ("query", e.0))?;
            let mut fetched = Vec::with_capacity(self.tables.len());
            for i in 0..self.tables.len() {
                fetched.push(self.fetch(i)?);
            }
            let client = self.client.as_mut().ok_or(("connect", String::new()))?;
            client.execute("COMMIT").map_err(|e| ("query", e.0))?;
            fetched
        };
        let frontier: Option<String> = fetched
            .iter()
            .filter(|f| f.full)
            .filter_map(|f| f.last_time())
            .min();
        // (time, table, row) of every row taken this round, in time order, tables in their
        // configured order at one instant.
        let mut order: Vec<(Option<&str>, usize, usize)> = Vec::new();
        for (t, f) in fetched.iter().enumerate() {
            for (r, row) in f.rows.iter().enumerate() {
                let time = f.time_at.and_then(|i| row[i].as_deref());
                if let (Some(front), Some(time)) = (frontier.as_deref(), time) {
                    if time > front {
                        break;
                    }
                }
                order.push((time, t, r));
            }
        }
        order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let full = fetched.iter().any(|f| f.full);
        if order.is_empty() {
            for (info, _) in &self.tables {
                self.metrics
                    .lag
                    .with_label_values(&[&self.settings.name, &info.name])
                    .set(0);
            }
            return Ok(Round { rows: 0, full });
        }
        let mut events = Vec::new();
        let mut dead = Vec::new();
        let mut taken: Vec<Vec<usize>> = vec![Vec::new(); fetched.len()];
        for &(_, t, r) in &order {
            let (info, _) = &self.tables[t];
            let row = &fetched[t].rows[r];
            taken[t].push(r);
            let pairs = row_pairs(info, row);
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
                        info.name,
                        fetched[t].key_of(row).join(":")
                    ),
                    reason: d.reason.to_string(),
                    field: d.column.unwrap_or_default(),
                    message: d.message,
                    raw: serde_json::Value::Object(raw).to_string(),
                });
            }
        }
        // Each table's new position: its last row taken, and every key taken at that time.
        let mut positions = Vec::new();
        for (t, f) in fetched.iter().enumerate() {
            if taken[t].is_empty() {
                continue;
            }
            let mut p = f.position.clone();
            p.taken += taken[t].len() as u64;
            if let Some(at) = f.time_at {
                let last = taken[t].last().and_then(|&r| f.rows[r][at].clone());
                if last != p.time {
                    p.keys.clear();
                    p.time = last.clone();
                }
                for &r in &taken[t] {
                    if f.rows[r][at] == last {
                        p.keys.push(f.key_of(&f.rows[r]));
                    }
                }
            }
            positions.push((
                t,
                format!("{}/{}", self.settings.name, self.tables[t].0.name),
                p,
            ));
        }
        let commit: Vec<(String, Position)> = positions
            .iter()
            .map(|(_, k, p)| (k.clone(), p.clone()))
            .collect();
        self.handover
            .commit(&events, &dead, &commit)
            .map_err(|e| ("handover", e.0))?;
        for (_, k, p) in &positions {
            self.positions.insert(k.clone(), p.clone());
        }
        let name = self.settings.name.clone();
        if let Mode::Flag { done, .. } = &self.settings.mode {
            for (t, f) in fetched.iter().enumerate() {
                let marks: Vec<Vec<String>> = taken[t]
                    .iter()
                    .map(|&r| {
                        std::iter::once(done.clone())
                            .chain(f.key_of(&f.rows[r]))
                            .collect()
                    })
                    .collect();
                let (_, stmts) = &self.tables[t];
                if let Some(client) = self.client.as_mut() {
                    client
                        .execute_all(&stmts.mark, &marks)
                        .map_err(|e: DbError| ("flag", e.0))?;
                }
            }
        }
        let m = &self.metrics;
        for (t, _, p) in &positions {
            let table = &self.tables[*t].0.name;
            m.rows
                .with_label_values(&[&name, table])
                .inc_by(taken[*t].len() as u64);
            if let Some(at) = p.time.as_deref().and_then(epoch_of) {
                m.watermark.with_label_values(&[&name, table]).set(at);
                let lag = if fetched[*t].full {
                    (rules_now() - at).max(0)
                } else {
                    0
                };
                m.lag.with_label_values(&[&name, table]).set(lag);
            }
        }
        m.events
            .with_label_values(&[&name])
            .inc_by(events.len() as u64);
        for d in &dead {
            m.dead.with_label_values(&[&name, &d.reason]).inc();
        }
        Ok(Round {
            rows: order.len(),
            full,
        })
    }

    /// The stored position of table `i` (loaded once, then kept as committed).
    fn position(&mut self, i: usize) -> Result<Position, (&'static str, String)> {
        let key = format!("{}/{}", self.settings.name, self.tables[i].0.name);
        if let Some(p) = self.positions.get(&key) {
            return Ok(p.clone());
        }
        let p = self
            .handover
            .load(&key)
            .map_err(|e| ("handover", e.0))?
            .unwrap_or_default();
        self.positions.insert(key, p.clone());
        Ok(p)
    }

    /// Read the next batch of table `i` after its position.
    fn fetch(&mut self, i: usize) -> Result<Fetched, (&'static str, String)> {
        let position = self.position(i)?;
        let batch = self.settings.batch_rows;
        let (info, stmts) = &self.tables[i];
        let key_at: Vec<usize> = info.key.iter().filter_map(|k| info.index(k)).collect();
        let time_at = match &self.settings.mode {
            Mode::Watermark { time_column, .. } => info.index(time_column),
            Mode::Flag { time_column, .. } => time_column.as_deref().and_then(|c| info.index(c)),
        };
        let client = self.client.as_mut().ok_or(("connect", String::new()))?;
        let mut f = Fetched {
            rows: Vec::new(),
            full: false,
            time_at,
            key_at,
            position,
        };
        match &self.settings.mode {
            Mode::Watermark { .. } => match f.position.time.clone() {
                Some(t) => {
                    let rows = client
                        .query(&stmts.after, &[t.as_str()])
                        .map_err(|e| ("query", e.0))?;
                    f.full = rows.len() >= batch;
                    let seen: BTreeSet<Vec<String>> = f.position.keys.iter().cloned().collect();
                    let fresh = |f: &Fetched, r: &Vec<Option<String>>| {
                        let same = f.time_at.and_then(|i| r[i].as_deref()) == Some(t.as_str());
                        !(same && seen.contains(&f.key_of(r)))
                    };
                    let mut kept: Vec<_> = rows.into_iter().filter(|r| fresh(&f, r)).collect();
                    if kept.is_empty() && f.full {
                        // Every row read was taken at T already: more rows share T than a
                        // batch holds. Read past them rather than stall.
                        let all = client
                            .query(&stmts.after_all, &[t.as_str()])
                            .map_err(|e| ("query", e.0))?;
                        kept = all
                            .into_iter()
                            .filter(|r| fresh(&f, r))
                            .take(batch)
                            .collect();
                        f.full = kept.len() >= batch;
                    }
                    f.rows = kept;
                }
                None => {
                    f.rows = client
                        .query(&stmts.first, &[])
                        .map_err(|e| ("query", e.0))?;
                    f.full = f.rows.len() >= batch;
                }
            },
            Mode::Flag { done, .. } => {
                f.rows = client
                    .query(&stmts.flagged, &[done.as_str()])
                    .map_err(|e| ("query", e.0))?;
                f.full = f.rows.len() >= batch;
            }
        }
        Ok(f)
    }

    /// Refill the adapter's memory of recent cases after a start: the rows taken in the
    /// `warm_days` before each table's watermark (flag mode: before the latest flagged row's
    /// write time; not without a time column) are adapted again and their events dropped, so
    /// a completion whose acceptance was taken before a restart is still placed in its case's
    /// centre.
    fn warm(&mut self) -> Result<(), (&'static str, String)> {
        if self.settings.warm_days == 0 {
            return Ok(());
        }
        let mut rows: Vec<(String, usize, Vec<Option<String>>)> = Vec::new();
        for i in 0..self.tables.len() {
            let position = self.position(i)?;
            let (info, stmts) = &self.tables[i];
            let client = self.client.as_mut().ok_or(("connect", String::new()))?;
            let query = |client: &mut Box<dyn Client>, sql: &str, params: &[&str]| {
                client.query(sql, params).map_err(|e| ("query", e.0))
            };
            // (time column, statement, its parameters' first value, the latest time taken)
            let (time_column, sql, first, until) = match &self.settings.mode {
                Mode::Watermark { time_column, .. } => {
                    let Some(until) = position.time.clone() else {
                        continue;
                    };
                    (time_column, &stmts.window, None, until)
                }
                Mode::Flag {
                    done,
                    time_column: Some(time_column),
                    ..
                } => {
                    let latest = query(client, &stmts.flagged_until, &[done.as_str()])?;
                    let Some(until) = latest
                        .into_iter()
                        .next()
                        .and_then(|r| r.into_iter().next().flatten())
                    else {
                        continue;
                    };
                    (
                        time_column,
                        &stmts.flagged_window,
                        Some(done.clone()),
                        until,
                    )
                }
                Mode::Flag { .. } => continue,
            };
            let Some(from) = days_before(&until, self.settings.warm_days) else {
                continue;
            };
            let Some(at) = info.index(time_column) else {
                continue;
            };
            let params: Vec<&str> = match &first {
                Some(done) => vec![done.as_str(), from.as_str()],
                None => vec![from.as_str(), until.as_str()],
            };
            for row in query(client, sql, &params)? {
                rows.push((row[at].clone().unwrap_or_default(), i, row));
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut scratch = Vec::new();
        for (_, i, row) in &rows {
            let info = &self.tables[*i].0;
            let pairs = row_pairs(info, row);
            let _ = self.adapter.adapt(&Row::from_pairs(&pairs), &mut scratch);
            scratch.clear();
        }
        if !rows.is_empty() {
            log::info!(
                "front database {}: the adapter's case memory refilled from {} rows already taken",
                self.settings.name,
                rows.len()
            );
        }
        Ok(())
    }
}

/// A row as the adapter reads it: `_table`, then each non-NULL column.
fn row_pairs<'a>(info: &'a TableInfo, row: &'a [Option<String>]) -> Vec<(&'a str, &'a str)> {
    std::iter::once(("_table", info.name.as_str()))
        .chain(
            info.columns
                .iter()
                .zip(row)
                .filter_map(|((c, _), v)| v.as_deref().map(|v| (c.as_str(), v))),
        )
        .collect()
}

/// One table's batch as read.
struct Fetched {
    rows: Vec<Vec<Option<String>>>,
    /// As many rows as a batch holds: more may wait.
    full: bool,
    time_at: Option<usize>,
    key_at: Vec<usize>,
    position: Position,
}

impl Fetched {
    fn key_of(&self, row: &[Option<String>]) -> Vec<String> {
        self.key_at
            .iter()
            .map(|&i| row.get(i).cloned().flatten().unwrap_or_default())
            .collect()
    }

    fn last_time(&self) -> Option<String> {
        let at = self.time_at?;
        self.rows.last()?.get(at)?.clone()
    }
}

/// `time` (a database's local time) less `days`, written as the databases read it.
fn days_before(time: &str, days: u32) -> Option<String> {
    let local = adapters::local_time(time)?;
    let at = rules::time::parse_rfc3339(&local).ok()?;
    let s = rules::Instant(at.0 - i64::from(days) * 86_400).to_string();
    Some(s.get(..19)?.replace('T', " "))
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

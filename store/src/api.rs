//! The storage interface both backends implement: [`Store`], and the backend-neutral types its
//! operations take ([`RowBatch`], [`AlertFilter`], [`HistoryQuery`], [`DeadLetterQuery`],
//! [`PerfQuery`], [`CheckpointKey`], [`CheckpointMeta`]) and return ([`PerfCounts`]).
//!
//! The contract is the ClickHouse tables' de-duplication, whatever the backend: reads never show
//! a re-delivered row twice and always show the winning version of a key (alerts: highest
//! `version`; case facts: highest `version`; window status: latest `updated_at`; checkpoints:
//! highest `next_offset`; events, dead letters and activity: the last write of a key). Alert
//! actions are an
//! append-only audit trail. `store/tests/conformance/` checks every backend against this.

use std::future::Future;

use crate::rows::{
    ActionRow, ActivityRow, AlertRow, CaseFactRow, DeadLetterRow, EventRow, NotificationRow,
    WindowStatusRow,
};
use crate::StoreError;

/// Which rows [`Store::alerts`] returns.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Jurisdiction: GB/T 2260 prefix the alert's region must start with (empty: all).
    pub region_prefix: String,
    /// Only this rule.
    pub rule: Option<String>,
    /// Only this engine status (`open`, `retracted`).
    pub status: Option<String>,
    /// At most this many rows (newest first); 0 means the default of 1000.
    pub limit: u32,
}

impl AlertFilter {
    /// The row limit to apply: [`AlertFilter::limit`], or 1000 when it is 0.
    pub fn effective_limit(&self) -> u32 {
        if self.limit == 0 {
            1000
        } else {
            self.limit
        }
    }
}

/// Which engine a checkpoint belongs to: one per consumer group, topic and partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointKey<'a> {
    /// Kafka consumer group (embedded mode: a fixed name of its own).
    pub group_id: &'a str,
    /// Events topic (embedded mode: the ingest log's name).
    pub topic: &'a str,
    /// Partition.
    pub partition: u32,
}

/// A complete checkpoint found in the store (its data is read by [`Store::checkpoint_data`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointMeta {
    /// Slot it occupies (the next checkpoint goes to the other).
    pub slot: u8,
    /// First offset the snapshot does not cover.
    pub next_offset: i64,
    /// Chunks it is stored in (ClickHouse splits large snapshots; SQLite always 1).
    pub chunks: u32,
    /// When it was written (seconds since the epoch).
    pub written_at: u32,
}

/// The rows derived from a run of events, written together by [`Store::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowBatch {
    /// Raw valid events.
    pub events: Vec<EventRow>,
    /// Alert versions (firings and retractions).
    pub alerts: Vec<AlertRow>,
    /// Invalid input and refused events.
    pub dead: Vec<DeadLetterRow>,
    /// Finished cases.
    pub facts: Vec<CaseFactRow>,
    /// Windows whose live status changed.
    pub windows: Vec<WindowStatusRow>,
    /// Activity facts (acceptances, ratings, complaints and their resolutions).
    pub activity: Vec<ActivityRow>,
}

impl RowBatch {
    /// Rows in all tables.
    pub fn rows(&self) -> usize {
        self.events.len()
            + self.alerts.len()
            + self.dead.len()
            + self.facts.len()
            + self.windows.len()
            + self.activity.len()
    }

    /// No rows at all?
    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }
}

/// The default page size of [`HistoryQuery`] and [`DeadLetterQuery`] when their `limit` is 0.
pub const DEFAULT_PAGE: u32 = 1000;

fn page(limit: u32) -> u32 {
    if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit
    }
}

/// Which violations [`Store::history`] returns: the winning version of each alert, newest first
/// (`fired_at` descending, then `alert_id` ascending), a page at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Jurisdiction: GB/T 2260 prefix the alert's region must start with (empty: all).
    pub region_prefix: String,
    /// `fired_at` at or after this (seconds; 0: unbounded).
    pub from: u32,
    /// `fired_at` before this (seconds; 0: unbounded).
    pub to: u32,
    /// Only this service centre.
    pub center: Option<String>,
    /// Only this department.
    pub department: Option<String>,
    /// Only this window.
    pub window: Option<String>,
    /// Only this staff member.
    pub staff: Option<String>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Only this level (`warning`, `yellow`, `red`).
    pub level: Option<String>,
    /// Only this engine status (`open`, `retracted`) of the winning version.
    pub status: Option<String>,
    /// Keyset cursor: only rows after `(fired_at, alert_id)` in the result order (the last row
    /// of the previous page).
    pub after: Option<(u32, String)>,
    /// At most this many rows; 0 means [`DEFAULT_PAGE`].
    pub limit: u32,
}

impl HistoryQuery {
    /// The row limit to apply.
    pub fn effective_limit(&self) -> u32 {
        page(self.limit)
    }
}

/// Which dead letters [`Store::dead_letters`] returns, newest first (`received_at`
/// descending, then `source` ascending), a page at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterQuery {
    /// `received_at` at or after this (seconds; 0: unbounded).
    pub from: u32,
    /// `received_at` before this (seconds; 0: unbounded).
    pub to: u32,
    /// Only this reason code.
    pub reason: Option<String>,
    /// Keyset cursor: only rows after `(received_at, source)` in the result order.
    pub after: Option<(u32, String)>,
    /// At most this many rows; 0 means [`DEFAULT_PAGE`].
    pub limit: u32,
}

impl DeadLetterQuery {
    /// The row limit to apply.
    pub fn effective_limit(&self) -> u32 {
        page(self.limit)
    }
}

/// What [`Store::perf_counts`] groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// 部门 (`department`).
    Department,
    /// 窗口 (`window_id`).
    Window,
    /// 工作人员 (`staff_id`).
    Staff,
    /// 事项 (`item_code`).
    Item,
    /// 中心 (`center_id`): the rollup of a jurisdiction with several centres.
    Center,
    /// 区划 (`region`): counties side by side.
    Region,
}

impl Dimension {
    /// The column grouped by, the same in every table that feeds [`PerfCounts`].
    pub fn column(self) -> &'static str {
        match self {
            Dimension::Department => "department",
            Dimension::Window => "window_id",
            Dimension::Staff => "staff_id",
            Dimension::Item => "item_code",
            Dimension::Center => "center_id",
            Dimension::Region => "region",
        }
    }
}

/// The period and scope of [`Store::perf_counts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfQuery {
    /// Jurisdiction: GB/T 2260 prefix the row's region must start with (empty: all).
    pub region_prefix: String,
    /// Period start, included (seconds).
    pub from: u32,
    /// Period end, excluded (seconds; 0: unbounded).
    pub to: u32,
    /// Group by.
    pub by: Dimension,
}

/// The counts behind the 绩效评估 metrics of one department, window, staff member or item in a
/// period: the engine's own type ([`rules::perf::Counts`], which derives the rates, the score
/// and the 590 check from them), so the store needs no translation. Every field is a count or
/// a sum, so periods add up. How [`Store::perf_counts`] counts each field, for a period
/// [from, to) and a region prefix:
///
/// - `accepted` (受理数): activity rows of kind `accepted` with `at` in the period;
/// - from the case facts (winning version per region and case) with `completed_at` in the
///   period: `completed` (办结数) = their count; `on_time`, `early`, `on_site` = the sums of
///   those flags; `late` (超时件数) = those not on time; `days_used` = the sum of
///   `working_days_used`; of the 承诺件 with a known legal limit (`case_type = 'promised'`,
///   `legal_days > 0`): `speedup_cases` = their count, `legal_days` and `promised_days` = the
///   sums of theirs (承诺提速率 = (legal_days − promised_days) / legal_days);
/// - from the alerts (winning version; not retracted; rule not `discipline.ladder` nor a finding
///   about a feed: `source.*`, `data.corrected`, `data.placeholder_staff`) with
///   `fired_at` in the period: `warnings`, `yellows`, `reds` by level (预警/黄牌/红牌) and
///   `complaints` (投诉数) = those of rule `complaint.filed`;
/// - `substantiated` (有效投诉数): activity `complaint_resolved` with value 1, `at` in the period;
/// - `evaluations`: activity `evaluation` rows with `at` in the period; `satisfied`: those with
///   value 4 or 5 (满意, 非常满意).
///
/// `key` is "" for rows where the dimension is unknown.
pub type PerfCounts = rules::perf::Counts;

/// The scope and period of [`Store::source_health`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceQuery {
    /// Jurisdiction: GB/T 2260 prefix the events' region must start with (empty: all).
    pub region_prefix: String,
    /// Period start (`occurred_at`, dead letters: `received_at`), included (seconds).
    pub from: u32,
    /// Period end, excluded (seconds; 0: unbounded).
    pub to: u32,
    /// Sources to report even without events in the jurisdiction (those `sources.csv` places
    /// in it): their dead letters and last event still count.
    pub also: Vec<String>,
}

/// One source's health figures (SPEC §10) in a [`SourceQuery`]'s jurisdiction and period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFigures {
    /// The source (`""`: events that named none).
    pub source: String,
    /// Events per China-time day of `occurred_at` and kind: (days since 1970, kind, count),
    /// sorted.
    pub daily: Vec<(u16, String, u64)>,
    /// Events in the period.
    pub events: u64,
    /// Report delay (`reported_at − occurred_at`, seconds) median and 95th percentile, the
    /// nearest-rank values (the value at index ⌊q·n⌋, capped at n − 1, of the sorted delays);
    /// `None` without events.
    pub delay_p50: Option<i64>,
    /// See `delay_p50`.
    pub delay_p95: Option<i64>,
    /// `case.*` events other than `case.completed` (the share's denominator, as SPEC §6
    /// `source.not_live` counts).
    pub case_events: u64,
    /// Of those, the ones reported after their case's first completion report (from any
    /// source in the jurisdiction).
    pub after_completion: u64,
    /// Events that correct an earlier one (`supersedes`).
    pub corrections: u64,
    /// `event.withdrawn` events.
    pub withdrawals: u64,
    /// Dead letters received in the period attributed to the source, by reason.
    pub dead_letters: std::collections::BTreeMap<String, u64>,
    /// The latest `reported_at` of its events in the jurisdiction, at any time (seconds).
    pub last_reported_at: Option<u32>,
}

/// jiancha's tables, the only names [`Store::count`] accepts (the name goes into SQL text).
pub const TABLES: &[&str] = &[
    "events",
    "alerts",
    "alert_actions",
    "dead_letters",
    "case_facts",
    "schema_migrations",
    "self_test",
    "checkpoints",
    "window_status",
    "activity",
    "source_events",
];

/// Refuse a table name that is not one of [`TABLES`].
pub(crate) fn check_table(table: &str) -> Result<(), StoreError> {
    if TABLES.contains(&table) {
        Ok(())
    } else {
        Err(StoreError::Refused {
            code: None,
            message: format!("{table:?} is not one of jiancha's tables {TABLES:?}"),
        })
    }
}

/// jiancha's storage: ClickHouse in cluster mode ([`crate::clickhouse::ClickHouseStore`]),
/// SQLite in the embedded mode ([`crate::sqlite::SqliteStore`]).
///
/// Every write is idempotent in the sense of the module docs, so at-least-once delivery is
/// harmless. Every error is classified for the caller's retry decision
/// ([`StoreError::is_transient`]).
pub trait Store: Send + Sync + 'static {
    /// Create the schema or bring it up to date; returns the migration versions applied now
    /// (empty when it was up to date). Safe to run from two processes at once.
    fn migrate(&self) -> impl Future<Output = Result<Vec<u32>, StoreError>> + Send;

    /// Write a row and read it back, before any data is trusted to the store.
    fn self_test(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Store raw events (keyed by region, `occurred_at` and `event_id`).
    fn insert_events(
        &self,
        rows: &[EventRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Store alert versions (keyed by `alert_id`; the highest `version` wins, and of equal
    /// versions the later write).
    fn insert_alerts(
        &self,
        rows: &[AlertRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Store dead letters (keyed by `received_at` and `source`).
    fn insert_dead_letters(
        &self,
        rows: &[DeadLetterRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Store finished-case records (keyed by region and case id; the highest `version` wins).
    fn insert_case_facts(
        &self,
        rows: &[CaseFactRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Append actions on alerts to the audit trail.
    fn insert_actions(
        &self,
        rows: &[ActionRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Store activity facts (keyed by region, kind and id; the last write wins).
    fn insert_activity(
        &self,
        rows: &[ActivityRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Store window status versions (keyed by `window_id`; the latest `updated_at` wins).
    fn insert_window_status(
        &self,
        rows: &[WindowStatusRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Store a batch's rows in every table. ClickHouse writes the tables concurrently (a
    /// failure may leave some written, which a retry makes whole, since writes are
    /// idempotent); SQLite writes them in one transaction.
    fn write(&self, batch: &RowBatch) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The winning version of each alert matching `filter`, newest first (`fired_at`
    /// descending, then `alert_id`).
    fn alerts(
        &self,
        filter: &AlertFilter,
    ) -> impl Future<Output = Result<Vec<AlertRow>, StoreError>> + Send;

    /// Violation history: the winning version of each alert matching `query`, `fired_at`
    /// descending then `alert_id` ascending, one page after the query's cursor.
    fn history(
        &self,
        query: &HistoryQuery,
    ) -> impl Future<Output = Result<Vec<AlertRow>, StoreError>> + Send;

    /// Dead letters matching `query`, `received_at` descending then `source` ascending, one
    /// page after the query's cursor.
    fn dead_letters(
        &self,
        query: &DeadLetterQuery,
    ) -> impl Future<Output = Result<Vec<DeadLetterRow>, StoreError>> + Send;

    /// The 绩效 counts of every key of `query.by` with anything in the period and
    /// jurisdiction (see [`PerfCounts`] for each field's definition), sorted by key.
    fn perf_counts(
        &self,
        query: &PerfQuery,
    ) -> impl Future<Output = Result<Vec<PerfCounts>, StoreError>> + Send;

    /// Source health (SPEC §10): the figures of every source with events in the query's
    /// jurisdiction (at any time) or named in `also`, sorted by source.
    fn source_health(
        &self,
        query: &SourceQuery,
    ) -> impl Future<Output = Result<Vec<SourceFigures>, StoreError>> + Send;

    /// Record notification deliveries (idempotent per alert, status and target).
    fn insert_notifications(
        &self,
        rows: &[NotificationRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The delivery records of these alerts.
    fn notifications(
        &self,
        alert_ids: &[String],
    ) -> impl Future<Output = Result<Vec<NotificationRow>, StoreError>> + Send;

    /// Every action on alerts, oldest first (the API replays them at start-up).
    fn actions(&self) -> impl Future<Output = Result<Vec<ActionRow>, StoreError>> + Send;

    /// The alerts a live API holds, oldest first: every one fired at or after `since`
    /// (seconds), and every older one still open (not retracted, and neither resolved nor
    /// dismissed by an action), whatever its age.
    fn live_alerts(
        &self,
        since: u32,
    ) -> impl Future<Output = Result<Vec<AlertRow>, StoreError>> + Send;

    /// The latest status of every window, by `window_id`.
    fn window_status(
        &self,
    ) -> impl Future<Output = Result<Vec<WindowStatusRow>, StoreError>> + Send;

    /// A case's events as received (the `raw` column), oldest first, at most `limit`.
    fn case_events(
        &self,
        case_id: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// 按时办结率 within a jurisdiction: (on time, finished), counting each case once.
    fn on_time_rate(
        &self,
        region_prefix: &str,
    ) -> impl Future<Output = Result<(u64, u64), StoreError>> + Send;

    /// Rows stored in one of jiancha's [`TABLES`]. ClickHouse counts raw rows, before its
    /// background merges collapse duplicates; SQLite upserts, so duplicates were never stored.
    /// Compare counts across backends only for tables written without duplicates.
    fn count(&self, table: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Store an engine snapshot covering every offset below `next_offset`, in `slot` (0 or 1).
    /// Callers alternate slots, so a write that fails half-way never spoils the last complete
    /// checkpoint in the other slot.
    fn save_checkpoint(
        &self,
        key: CheckpointKey<'_>,
        slot: u8,
        next_offset: i64,
        snapshot: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Complete checkpoints for `key`, newest first, at most one per slot.
    fn checkpoints(
        &self,
        key: CheckpointKey<'_>,
    ) -> impl Future<Output = Result<Vec<CheckpointMeta>, StoreError>> + Send;

    /// The snapshot bytes of a checkpoint returned by [`Store::checkpoints`].
    fn checkpoint_data(
        &self,
        key: CheckpointKey<'_>,
        meta: &CheckpointMeta,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
}

//! What the API needs from a store, whichever mode it runs in.
//!
//! Cluster mode implements it over ClickHouse (and publishes actions on Kafka so other API
//! processes see them); embedded mode over SQLite; tests over memory. The hub itself never
//! waits on a store: the store is asked only to make an action durable before it is applied, and
//! for case timelines.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::Value;

use crate::model::{Action, AlertDoc};
use rules::perf::Counts;
use rules::{Day, Instant};

/// A boxed future (the trait is used as `dyn Backend`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a store could not answer: the message is shown to the user with a 503.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// The API's store.
pub trait Backend: Send + Sync + 'static {
    /// Make an action durable (and, in cluster mode, visible to the other API processes).
    /// The API applies and broadcasts it only after this returns `Ok`.
    fn record_action<'a>(&'a self, action: &'a Action) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The events of a case, as received (the raw JSON objects), oldest first.
    fn case_timeline<'a>(
        &'a self,
        case_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>>;

    /// Stored alerts matching `filter` (latest version of each), `fired_at` newest first, then
    /// `alert_id`.
    fn history<'a>(
        &'a self,
        filter: &'a HistoryFilter,
    ) -> BoxFuture<'a, Result<Vec<AlertDoc>, BackendError>> {
        let _ = filter;
        Box::pin(async { Err(no_history()) })
    }

    /// Stored dead letters (as JSON objects), `received_at` newest first, then `source`.
    fn dead_letters<'a>(
        &'a self,
        filter: &'a DeadLetterFilter,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>> {
        let _ = filter;
        Box::pin(async { Err(no_history()) })
    }

    /// Every stored action on alerts, oldest first (the upward export's 督办).
    fn actions(&self) -> BoxFuture<'_, Result<Vec<Action>, BackendError>> {
        Box::pin(async { Err(no_history()) })
    }

    /// Source health (SPEC §10): the figures of every source with events in the filter's
    /// jurisdiction, and of those it names in `also`, sorted by source.
    fn source_health<'a>(
        &'a self,
        filter: &'a SourceFilter,
    ) -> BoxFuture<'a, Result<Vec<SourceFigures>, BackendError>> {
        let _ = filter;
        Box::pin(async { Err(no_history()) })
    }

    /// 绩效 counts per key over a period.
    fn performance<'a>(
        &'a self,
        filter: &'a PerfFilter,
    ) -> BoxFuture<'a, Result<Vec<Counts>, BackendError>> {
        let _ = filter;
        Box::pin(async { Err(no_history()) })
    }
}

fn no_history() -> BackendError {
    BackendError("this store keeps no history".into())
}

/// What `GET /api/v1/history/alerts` asks the store for. Instants are seconds since the epoch.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Jurisdiction prefix (always the caller's, or narrower).
    pub region_prefix: String,
    /// `fired_at` at or after (0 = unbounded).
    pub from: i64,
    /// `fired_at` before (0 = unbounded).
    pub to: i64,
    /// Centre.
    pub center: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Window.
    pub window: Option<String>,
    /// Staff member.
    pub staff: Option<String>,
    /// Rule.
    pub rule: Option<String>,
    /// Level.
    pub level: Option<String>,
    /// Engine status: `open` or `retracted`.
    pub status: Option<String>,
    /// Rows strictly after this (fired_at, alert_id) in the listing order.
    pub after: Option<(i64, String)>,
    /// Page size.
    pub limit: u32,
}

/// What `GET /api/v1/dead-letters` asks for.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// `received_at` at or after (0 = unbounded).
    pub from: i64,
    /// `received_at` before (0 = unbounded).
    pub to: i64,
    /// Reason code.
    pub reason: Option<String>,
    /// Rows strictly after this (received_at, source).
    pub after: Option<(i64, String)>,
    /// Page size.
    pub limit: u32,
}

/// Grouping of `GET /api/v1/performance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// By department.
    Department,
    /// By window.
    Window,
    /// By staff member.
    Staff,
    /// By item.
    Item,
    /// By centre (the rollup of several centres).
    Center,
    /// By region (counties side by side).
    Region,
}

/// What `GET /api/v1/performance` asks for.
#[derive(Debug, Clone)]
pub struct PerfFilter {
    /// Jurisdiction prefix.
    pub region_prefix: String,
    /// Period start (inclusive).
    pub from: i64,
    /// Period end (exclusive).
    pub to: i64,
    /// Grouping.
    pub by: Dimension,
}

/// What `GET /api/v1/sources` asks for.
#[derive(Debug, Clone, Default)]
pub struct SourceFilter {
    /// Jurisdiction prefix (always the caller's, or narrower).
    pub region_prefix: String,
    /// Period start (`occurred_at`; dead letters `received_at`), inclusive.
    pub from: i64,
    /// Period end, exclusive.
    pub to: i64,
    /// Sources `sources.csv` places in the jurisdiction: reported even without events.
    pub also: Vec<String>,
}

/// One source's health figures (SPEC §10) over a [`SourceFilter`]'s period and jurisdiction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFigures {
    /// The source (`""`: events that named none).
    pub source: String,
    /// Events per day (China time, of `occurred_at`) and kind, sorted.
    pub daily: Vec<(Day, String, u64)>,
    /// Events in the period.
    pub events: u64,
    /// Report delay (`reported_at − occurred_at`) median, seconds (nearest rank).
    pub delay_p50: Option<i64>,
    /// Report delay 95th percentile, seconds (nearest rank).
    pub delay_p95: Option<i64>,
    /// `case.*` events other than completions.
    pub case_events: u64,
    /// Of those, reported after their case's completion was reported.
    pub after_completion: u64,
    /// Events with `supersedes`.
    pub corrections: u64,
    /// `event.withdrawn` events.
    pub withdrawals: u64,
    /// Dead letters by reason.
    pub dead_letters: std::collections::BTreeMap<String, u64>,
    /// Its latest report in the jurisdiction, at any time.
    pub last_reported_at: Option<Instant>,
}

/// An in-memory store, for tests and for trying the API out.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    actions: Mutex<Vec<Action>>,
    events: Mutex<Vec<Value>>,
    failing: Mutex<Option<String>>,
}

impl MemoryBackend {
    /// Remember an event for timelines.
    pub fn add_event(&self, event: Value) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    /// The actions recorded so far.
    pub fn actions(&self) -> Vec<Action> {
        self.actions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Make every call fail with `message` (or succeed again with `None`).
    pub fn fail_with(&self, message: Option<&str>) {
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = message.map(str::to_string);
    }

    fn check(&self) -> Result<(), BackendError> {
        match &*self.failing.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(m) => Err(BackendError(m.clone())),
            None => Ok(()),
        }
    }
}

impl Backend for MemoryBackend {
    fn actions(&self) -> BoxFuture<'_, Result<Vec<Action>, BackendError>> {
        Box::pin(async move {
            self.check()?;
            Ok(MemoryBackend::actions(self))
        })
    }

    fn record_action<'a>(&'a self, action: &'a Action) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.check()?;
            self.actions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(action.clone());
            Ok(())
        })
    }

    fn case_timeline<'a>(
        &'a self,
        case_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>> {
        Box::pin(async move {
            self.check()?;
            let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
            let mut out: Vec<Value> = events
                .iter()
                .filter(|e| e.get("case_id").and_then(Value::as_str) == Some(case_id))
                .cloned()
                .collect();
            out.sort_by(|a, b| {
                let t = |v: &Value| {
                    v.get("occurred_at")
                        .and_then(Value::as_str)
                        .and_then(|s| rules::time::parse_rfc3339(s).ok())
                };
                t(a).cmp(&t(b))
            });
            Ok(out)
        })
    }
}

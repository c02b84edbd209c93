//! `GET /api/v1/sources`: source health (SPEC §10) for admins and leaders.
//!
//! ```text
//! caller's jurisdiction ─┬─ sources.csv rows it covers (Directory) ──┐ also
//!                        └─ Backend::source_health(prefix, period) ◀─┘
//!                             │ figures per source (store: source_events, dead_letters)
//!                             ▼
//!             + name (sources.csv, else unnamed) + status live / late / silent
//! ```
//!
//! The figures come from the store; this module adds what needs the reference and the clock:
//! the names, and the status. A source is **silent** when `source_silence_minutes` (60) of
//! office time (the policy's `office_hours` on the calendar's working days) have elapsed since
//! its last report, or it has never reported — the instant SPEC §6 `source.silent` fires; else
//! **late** when its reports are after the fact: report delay p95 beyond `late_report_hours`
//! (24, the 迟报 threshold), or more than `not_live_share` (0.5) of its case events reported
//! after their case's completion (what `source.not_live` judges per day); else **live**.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use rules::time::Instant;
use rules::Day;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Principal, Role};
use crate::backend::{SourceFigures, SourceFilter};
use crate::error::{from_query_rejection, ApiError};
use crate::history::{period, scope, store_error};
use crate::Api;

/// Days shown when no period is given: two weeks up to today.
const DEFAULT_DAYS: i64 = 14;
/// The longest period one request may cover (a sparkline has a point per day).
const MAX_DAYS: i64 = 92;

/// Query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceQuery {
    /// First day, `YYYY-MM-DD` (default: 13 days before `to`).
    from: Option<String>,
    /// Last day, inclusive (default: today).
    to: Option<String>,
    /// A region within the caller's jurisdiction.
    region: Option<String>,
}

/// What the page colours a source by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Live,
    Late,
    Silent,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Live => "live",
            Status::Late => "late",
            Status::Silent => "silent",
        }
    }
}

/// The thresholds of [`status`], from the policy.
pub(crate) struct Thresholds<'a> {
    pub calendar: &'a rules::Calendar,
    pub office_hours: Vec<(u32, u32)>,
    pub silence_minutes: u32,
    pub late_report_seconds: i64,
    pub not_live_share: f64,
}

/// A source's status at `now`, and since when it is silent (see the module docs).
pub(crate) fn status(
    f: &SourceFigures,
    t: &Thresholds<'_>,
    now: Instant,
) -> (Status, Option<Instant>) {
    let Some(last) = f.last_reported_at else {
        return (Status::Silent, None);
    };
    let silent_at =
        rules::engine::office_deadline(t.calendar, &t.office_hours, last, t.silence_minutes);
    if let Some(at) = silent_at.filter(|at| *at <= now) {
        return (Status::Silent, Some(at));
    }
    let after_fact =
        f.case_events > 0 && f.after_completion as f64 > t.not_live_share * f.case_events as f64;
    if after_fact || f.delay_p95.is_some_and(|d| d > t.late_report_seconds) {
        (Status::Late, None)
    } else {
        (Status::Live, None)
    }
}

pub(crate) async fn health(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<SourceQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    who.require(&[Role::Admin, Role::Leader], "source health")?;
    let Query(q) = q.map_err(from_query_rejection)?;
    let region_prefix = scope(&who, q.region.as_deref())?;
    let now = crate::wall_now();
    let (from, to) = period(None, q.from.as_deref(), q.to.as_deref())?;
    let to = if to == 0 { now.day().end().0 } else { to };
    let from = if from == 0 {
        to - DEFAULT_DAYS * 86_400
    } else {
        from
    };
    if to - from > MAX_DAYS * 86_400 {
        return Err(ApiError::bad_request(format!(
            "the period spans more than {MAX_DAYS} days; ask for a shorter one"
        ))
        .zh(format!("时间段超过 {MAX_DAYS} 天，请缩短")));
    }
    let directory = api.directory();
    let filter = SourceFilter {
        region_prefix: region_prefix.clone(),
        from,
        to,
        also: directory
            .sources_in(&region_prefix)
            .map(|s| s.source.clone())
            .collect(),
    };
    let figures = api
        .0
        .backend
        .source_health(&filter)
        .await
        .map_err(store_error)?;
    let policy = &api.0.config.policy;
    let official = rules::Calendar::official();
    let thresholds = Thresholds {
        calendar: directory.reference().map_or(&official, |r| &r.calendar),
        office_hours: policy.office_hours().unwrap_or_default(),
        silence_minutes: policy.source_silence_minutes,
        late_report_seconds: i64::from(policy.late_report_hours) * 3600,
        not_live_share: policy.not_live_share,
    };
    let days: Vec<Day> = {
        let first = Instant(from).day();
        let last = Instant(to - 1).day();
        (0..)
            .map(|i| first.plus(i))
            .take_while(|d| *d <= last)
            .collect()
    };
    let sources: Vec<Value> = figures
        .iter()
        .map(|f| {
            let listed = directory.source(&f.source);
            let (status, silent_since) = status(f, &thresholds, now);
            let per_day: Vec<u64> = days
                .iter()
                .map(|d| {
                    f.daily
                        .iter()
                        .filter(|(day, _, _)| day == d)
                        .map(|(_, _, n)| n)
                        .sum()
                })
                .collect();
            let mut by_kind = serde_json::Map::new();
            for (_, kind, n) in &f.daily {
                let total = by_kind.entry(kind.clone()).or_insert(json!(0));
                *total = json!(total.as_u64().unwrap_or(0) + n);
            }
            json!({
                "source": f.source,
                "listed": listed.is_some(),
                "name": listed.map(|s| s.name.as_str()).filter(|n| !n.is_empty()),
                "center_id": listed.map(|s| s.center_id.as_str()),
                "region": listed.map(|s| s.region.as_str()),
                "vendor": listed.map(|s| s.vendor.as_str()),
                "transport": listed.map(|s| s.transport.as_str()),
                "status": status.as_str(),
                "silent_since": silent_since.map(|t| t.to_string()),
                "events": f.events,
                "per_day": per_day,
                "by_kind": by_kind,
                "daily": f.daily.iter().map(|(d, kind, n)| json!({
                    "date": d.to_string(), "kind": kind, "count": n
                })).collect::<Vec<_>>(),
                "delay_p50_seconds": f.delay_p50,
                "delay_p95_seconds": f.delay_p95,
                "case_events": f.case_events,
                "after_completion": f.after_completion,
                "after_completion_share": (f.case_events > 0)
                    .then(|| f.after_completion as f64 / f.case_events as f64),
                "corrections": f.corrections,
                "withdrawals": f.withdrawals,
                "dead_letters": f.dead_letters,
                "last_reported_at": f.last_reported_at.map(|t| t.to_string()),
            })
        })
        .collect();
    Ok(Json(json!({
        "region": region_prefix,
        "from": days.first().map(ToString::to_string),
        "to": days.last().map(ToString::to_string),
        "days": days.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "now": now.to_string(),
        "thresholds": {
            "source_silence_minutes": thresholds.silence_minutes,
            "late_report_hours": policy.late_report_hours,
            "not_live_share": thresholds.not_live_share,
        },
        "sources": sources,
    })))
}

//! The auditor's desk: stored violations with filters and pages, their CSV export, a case's
//! full timeline, dead letters for admins, and 绩效 metrics with the monthly score and the 590
//! check. Everything is read from the store and scoped to the caller's region prefix.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rules::perf::{check_590, score, Counts};
use rules::time::Instant;
use rules::Day;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{Principal, Role};
use crate::backend::{BackendError, DeadLetterFilter, Dimension, HistoryFilter, PerfFilter};
use crate::error::{from_query_rejection, ApiError};
use crate::model::AlertDoc;
use crate::Api;

/// Roles that read history and metrics.
const READERS: &[Role] = &[Role::Leader, Role::Inspector, Role::Auditor, Role::Admin];

/// Largest page.
const MAX_PAGE: u32 = 1000;

pub(crate) fn store_error(e: BackendError) -> ApiError {
    ApiError::unavailable(format!("history store: {e}; try again"))
        .zh("历史数据库暂时无法读取，请稍后重试")
}

/// A period from `month=YYYY-MM`, or `from`/`to` dates (both inclusive, local time); either end
/// may be open (0).
pub(crate) fn period(
    month: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(i64, i64), ApiError> {
    let day = |name: &str, s: &str| {
        Day::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("{name}={s:?}: expected a date YYYY-MM-DD"))
                .zh(format!("日期“{s}”格式不对，应为 年-月-日，如 2026-10-13"))
        })
    };
    if let Some(m) = month {
        let first = day("month", &format!("{m}-01"))?;
        let (y, mo, _) = first.ymd();
        let next = if mo == 12 {
            Day::from_ymd(y + 1, 1, 1)
        } else {
            Day::from_ymd(y, mo + 1, 1)
        }
        .ok_or_else(|| {
            ApiError::bad_request(format!("month={m:?}: out of range"))
                .zh(format!("月份“{m}”超出范围"))
        })?;
        return Ok((first.start().0, next.start().0));
    }
    let from = from.map(|s| day("from", s)).transpose()?;
    let to = to.map(|s| day("to", s)).transpose()?;
    if let (Some(a), Some(b)) = (from, to) {
        if b < a {
            return Err(
                ApiError::bad_request(format!("to ({b}) is before from ({a})")).zh(format!(
                    "结束日期 {b} 早于开始日期 {a}，请把开始日期改到结束日期之前"
                )),
            );
        }
    }
    Ok((from.map_or(0, |d| d.start().0), to.map_or(0, |d| d.end().0)))
}

/// The caller's prefix, or a narrower one they asked for.
pub(crate) fn scope(who: &Principal, region: Option<&str>) -> Result<String, ApiError> {
    match region {
        None => Ok(who.region.as_str().to_string()),
        Some(r) if r.starts_with(who.region.as_str()) => Ok(r.to_string()),
        Some(r) if who.region.as_str().starts_with(r) => Ok(who.region.as_str().to_string()),
        Some(r) => Err(ApiError::forbidden(format!(
            "region {r:?} is outside your jurisdiction ({})",
            who.region.as_str()
        ))
        .zh(format!(
            "区划 {r} 不在本账号的管辖范围（{}）内",
            who.region.as_str()
        ))),
    }
}

fn parse_cursor(c: &str) -> Result<(i64, String), ApiError> {
    c.split_once('.')
        .and_then(|(t, id)| Some((t.parse().ok()?, id.to_string())))
        .ok_or_else(|| ApiError::bad_request("cursor: pass a previous page's next_cursor"))
}

/// `GET /api/v1/history/alerts` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    month: Option<String>,
    from: Option<String>,
    to: Option<String>,
    region: Option<String>,
    center: Option<String>,
    department: Option<String>,
    window: Option<String>,
    staff: Option<String>,
    rule: Option<String>,
    level: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl HistoryQuery {
    fn filter(&self, who: &Principal) -> Result<HistoryFilter, ApiError> {
        let (from, to) = period(
            self.month.as_deref(),
            self.from.as_deref(),
            self.to.as_deref(),
        )?;
        if let Some(s) = self.status.as_deref() {
            if !matches!(s, "open" | "retracted" | "cleared") {
                return Err(ApiError::bad_request(format!(
                    "status={s:?}: history filters on the engine's status, open, retracted \
                     or cleared"
                )));
            }
        }
        Ok(HistoryFilter {
            region_prefix: scope(who, self.region.as_deref())?,
            from,
            to,
            center: self.center.clone(),
            department: self.department.clone(),
            window: self.window.clone(),
            staff: self.staff.clone(),
            rule: self.rule.clone(),
            level: self.level.clone(),
            status: self.status.clone(),
            after: self.cursor.as_deref().map(parse_cursor).transpose()?,
            limit: self.limit.unwrap_or(100).clamp(1, MAX_PAGE),
        })
    }
}

/// A page of history.
#[derive(Debug, Serialize)]
pub(crate) struct HistoryPage {
    items: Vec<AlertDoc>,
    next_cursor: Option<String>,
}

fn next_cursor(items: &[AlertDoc], limit: u32) -> Option<String> {
    (items.len() as u32 >= limit)
        .then(|| items.last())
        .flatten()
        .map(|a| format!("{}.{}", a.fired_at.0, a.alert_id))
}

pub(crate) async fn alerts(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    who.require(READERS, "the history")?;
    let Query(q) = q.map_err(from_query_rejection)?;
    let filter = q.filter(&who)?;
    let items = api.0.backend.history(&filter).await.map_err(store_error)?;
    Ok(Json(HistoryPage {
        next_cursor: next_cursor(&items, filter.limit),
        items,
    }))
}

/// One CSV field, quoted when needed (RFC 4180). A cell that a spreadsheet would take for a
/// formula (it begins with `=`, `+`, `-`, `@`, a tab or a carriage return: OWASP "CSV
/// injection") gets a leading `'`, which Excel and WPS show as text and do not print; ids and
/// messages come from window systems, so they are never trusted to be inert.
fn field(out: &mut String, s: &str) {
    let neutralised;
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        neutralised = format!("'{s}");
        neutralised.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// The export's columns: codes where a program or another system needs them (编号, 编码, 工号),
/// each followed by the name a person reads; rule, level and status in Chinese only; times
/// local `YYYY-MM-DD HH:MM`.
const CSV_HEADER: &str = "告警编号,规则,级别,状态,触发时间,中心编码,中心,区划,部门编码,部门,\
                          窗口编码,窗口,工号,工作人员,办件编号,事项编码,事项,说明\r\n";

/// A local time as people write it: `2026-10-13 09:05` (China Standard Time).
fn local_minute(t: Instant) -> String {
    let s = t.to_string();
    format!(
        "{} {}",
        s.get(..10).unwrap_or_default(),
        s.get(11..16).unwrap_or_default()
    )
}

/// The engine's sentence with its RFC 3339 times (`2026-10-13T09:05:00+08:00`) written as
/// [`local_minute`] does.
fn local_times(message: &str) -> String {
    let b = message.as_bytes();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    while i < b.len() {
        let stamp = digits(i..i + 4)
            && b.get(i + 4) == Some(&b'-')
            && digits(i + 5..i + 7)
            && b.get(i + 7) == Some(&b'-')
            && digits(i + 8..i + 10)
            && b.get(i + 10) == Some(&b'T')
            && digits(i + 11..i + 13)
            && b.get(i + 13) == Some(&b':')
            && digits(i + 14..i + 16);
        if stamp {
            out.push_str(&message[i..i + 10]);
            out.push(' ');
            out.push_str(&message[i + 11..i + 16]);
            i += 16;
            if b.get(i) == Some(&b':') && digits(i + 1..i + 3) {
                i += 3;
            }
            if message[i..].starts_with("+08:00") {
                i += 6;
            }
            continue;
        }
        let ch = message[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The history store's status in Chinese (the engine's `open` or `retracted`; a status added
/// later shows as its wire name until it is named here).
fn status_zh(status: &str) -> &str {
    match status {
        "open" => "有效",
        "retracted" => "已撤销",
        "cleared" => "已自动解除",
        other => other,
    }
}

fn csv_rows(items: &[AlertDoc], names: &crate::web::Directory) -> String {
    let mut out = String::new();
    for a in items {
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        let named = |o: &Option<String>, f: &dyn Fn(&str) -> Option<String>| {
            o.as_deref().and_then(f).unwrap_or_default()
        };
        let rule = rules::Rule::parse(&a.rule).map_or(a.rule.as_str(), |r| r.zh());
        let cells = [
            a.alert_id.clone(),
            rule.to_string(),
            a.level.zh().to_string(),
            status_zh(a.status.as_str()).to_string(),
            local_minute(a.fired_at),
            a.center_id.clone(),
            names.center_name(&a.center_id).unwrap_or_default(),
            a.region.clone(),
            opt(&a.department),
            named(&a.department, &|d| names.department_name(d)),
            opt(&a.window_id),
            named(&a.window_id, &|w| Some(crate::web::window_label(w))),
            opt(&a.staff_id),
            named(&a.staff_id, &|s| names.staff_name(s)),
            opt(&a.case_id),
            opt(&a.item_code),
            named(&a.item_code, &|i| names.item_name(i)),
            local_times(&a.message),
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, c);
        }
        out.push_str("\r\n");
    }
    out
}

/// `GET /api/v1/history/alerts.csv`: every matching alert, streamed page by page, UTF-8 with a
/// byte-order mark so Excel shows the Chinese text.
pub(crate) async fn alerts_csv(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    who.require(READERS, "the history")?;
    let Query(q) = q.map_err(from_query_rejection)?;
    let mut filter = q.filter(&who)?;
    filter.limit = MAX_PAGE;
    filter.after = None;
    // The first page is read before answering, so an unavailable store is a 503, not an
    // empty file.
    let first = api.0.backend.history(&filter).await.map_err(store_error)?;
    let head = format!("\u{feff}{CSV_HEADER}{}", csv_rows(&first, &api.directory()));
    let state = (api, filter, next_cursor(&first, MAX_PAGE));
    let rest = futures_util::stream::unfold(Some(state), |state| async move {
        let (api, mut filter, cursor) = state?;
        let cursor = cursor?;
        filter.after = parse_cursor(&cursor).ok();
        match api.0.backend.history(&filter).await {
            Ok(items) => {
                let next = next_cursor(&items, MAX_PAGE);
                let chunk = Bytes::from(csv_rows(&items, &api.directory()));
                Some((Ok::<_, std::io::Error>(chunk), Some((api, filter, next))))
            }
            Err(e) => {
                log::error!("CSV export cut short: {e}");
                Some((Err(std::io::Error::other(e.to_string())), None))
            }
        }
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(Bytes::from(head)) }),
        rest,
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"jiancha-alerts.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// `GET /api/v1/export/gb39046`: the upward export (SPEC §9 Outbound) of the alerts the
/// history's filters select, in the caller's jurisdiction, with their 督办: the GB/T 39046
/// 电子监察 dataset as NDJSON ([`crate::export`]).
pub(crate) async fn export_gb39046(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    who.require(READERS, "the upward export")?;
    let Query(q) = q.map_err(from_query_rejection)?;
    let mut filter = q.filter(&who)?;
    filter.limit = MAX_PAGE;
    let records = crate::export::from_backend(api.0.backend.as_ref(), &filter, &api.directory())
        .await
        .map_err(store_error)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"jiancha-gb39046.ndjson\"",
            ),
        ],
        crate::export::ndjson(&records),
    )
        .into_response())
}

/// `GET /api/v1/cases/{case_id}/timeline`: the case's events as received, oldest first; only
/// events inside the caller's jurisdiction.
pub(crate) async fn case_timeline(
    State(api): State<Api>,
    who: Principal,
    Path(case_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require(READERS, "case timelines")?;
    let events = api
        .0
        .backend
        .case_timeline(&case_id)
        .await
        .map_err(store_error)?;
    let visible: Vec<Value> = events
        .into_iter()
        .filter(|e| {
            e.get("region")
                .and_then(Value::as_str)
                .is_some_and(|r| who.region.covers(r))
        })
        .collect();
    if visible.is_empty() {
        return Err(ApiError::not_found(format!(
            "no case {case_id:?} in your jurisdiction"
        )));
    }
    Ok(Json(json!({"case_id": case_id, "events": visible})))
}

/// `GET /api/v1/dead-letters` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLetterQuery {
    from: Option<String>,
    to: Option<String>,
    reason: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub(crate) async fn dead_letters(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<DeadLetterQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    who.require(&[Role::Admin], "dead letters")?;
    let Query(q) = q.map_err(from_query_rejection)?;
    let (from, to) = period(None, q.from.as_deref(), q.to.as_deref())?;
    let filter = DeadLetterFilter {
        from,
        to,
        reason: q.reason,
        after: q.cursor.as_deref().map(parse_cursor).transpose()?,
        limit: q.limit.unwrap_or(100).clamp(1, MAX_PAGE),
    };
    let items = api
        .0
        .backend
        .dead_letters(&filter)
        .await
        .map_err(store_error)?;
    let next = (items.len() as u32 >= filter.limit)
        .then(|| items.last())
        .flatten()
        .and_then(|d| {
            Some(format!(
                "{}.{}",
                d.get("received_at")?.as_i64()?,
                d.get("source")?.as_str()?
            ))
        });
    // The cursor follows the store's page; the page shows only what is the admin's (a page may
    // come back short, or empty with a cursor).
    let users = api.users();
    let items: Vec<Value> = items
        .into_iter()
        .filter(|d| dead_letter_visible(d, &who, &users))
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": next})))
}

/// Whose a dead letter is: the region of the publisher that sent it over HTTP (`source` =
/// `http:<user>:<line>`; their admin should see their failures), else the region it names if
/// its bytes are JSON with a valid `region` (Kafka).
/// One with neither (garbage on the Kafka topic) is shown only to province admins (a
/// two-digit region), the only ones whose jurisdiction surely covers it.
fn dead_letter_visible(d: &Value, who: &Principal, users: &crate::auth::Users) -> bool {
    let raw = d.get("raw").and_then(Value::as_str).unwrap_or_default();
    let named = serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| v.get("region")?.as_str().map(str::to_string))
        .filter(|r| rules::event::is_valid_region(r));
    let sender = || {
        let source = d.get("source")?.as_str()?;
        let user = source.strip_prefix("http:")?.rsplit_once(':')?.0;
        Some(users.get(user)?.region.as_str().to_string())
    };
    match sender().or(named) {
        Some(region) => who.region.covers(&region),
        None => who.region.as_str().len() <= 2,
    }
}

/// `GET /api/v1/performance` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PerfQuery {
    by: Dimension,
    month: Option<String>,
    from: Option<String>,
    to: Option<String>,
    region: Option<String>,
}

/// One ranked row of the 绩效 table.
#[derive(Debug, Serialize)]
struct PerfRow {
    rank: usize,
    #[serde(flatten)]
    counts: Counts,
    rates: rules::perf::Rates,
    score: rules::perf::Score,
    check_590: rules::perf::Check590,
}

pub(crate) async fn performance(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<PerfQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    who.require(READERS, "performance metrics")?;
    let Query(q) = q.map_err(from_query_rejection)?;
    let (from, to) = period(q.month.as_deref(), q.from.as_deref(), q.to.as_deref())?;
    if from == 0 || to == 0 {
        return Err(ApiError::bad_request(
            "give a period: month=YYYY-MM, or from=YYYY-MM-DD and to=YYYY-MM-DD",
        ));
    }
    let filter = PerfFilter {
        region_prefix: scope(&who, q.region.as_deref())?,
        from,
        to,
        by: q.by,
    };
    let counts = api
        .0
        .backend
        .performance(&filter)
        .await
        .map_err(store_error)?;
    let policy = &api.0.config.policy;
    let mut total = Counts::default();
    let mut rows: Vec<PerfRow> = counts
        .into_iter()
        .map(|c| {
            total.add(&c);
            PerfRow {
                rank: 0,
                rates: c.rates(),
                score: score(&c, policy),
                check_590: check_590(&c, policy),
                counts: c,
            }
        })
        .collect();
    // Ranking: score, then bonus, then 按时办结率, then more cases finished; ties keep key
    // order.
    rows.sort_by(|a, b| {
        b.score
            .score
            .total_cmp(&a.score.score)
            .then(b.score.bonus.total_cmp(&a.score.bonus))
            .then(
                b.rates
                    .on_time
                    .unwrap_or(0.0)
                    .total_cmp(&a.rates.on_time.unwrap_or(0.0)),
            )
            .then(b.counts.completed.cmp(&a.counts.completed))
            .then(a.counts.key.cmp(&b.counts.key))
    });
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    Ok(Json(json!({
        "by": q.by,
        "region": filter.region_prefix,
        "from": Instant(from).to_string(),
        "to": Instant(to).to_string(),
        "rows": rows,
        "total": {"counts": total, "rates": total.rates()},
    })))
}

/// `GET /api/v1/performance/hourly` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HourlyQuery {
    day: String,
    region: Option<String>,
}

/// `GET /api/v1/performance/hourly`: one day's 受理, 办结 and 按时办结 per local hour, counted
/// exactly as `GET /api/v1/performance` counts them (the same store query, one per hour), so
/// the hours add up to the day's figures.
pub(crate) async fn hourly(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<HourlyQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    who.require(READERS, "performance metrics")?;
    let Query(q) = q.map_err(from_query_rejection)?;
    let (from, _) = period(None, Some(&q.day), Some(&q.day))?;
    let region_prefix = scope(&who, q.region.as_deref())?;
    let backend = &api.0.backend;
    let hours = (0..24i64).map(|h| {
        let filter = PerfFilter {
            region_prefix: region_prefix.clone(),
            from: from + h * 3600,
            to: from + (h + 1) * 3600,
            by: Dimension::Center,
        };
        async move {
            let rows = backend.performance(&filter).await?;
            let mut total = Counts::default();
            rows.iter().for_each(|c| total.add(c));
            Ok::<_, BackendError>(json!({
                "hour": h,
                "accepted": total.accepted,
                "completed": total.completed,
                "on_time": total.on_time,
            }))
        }
    });
    let hours = futures_util::future::try_join_all(hours)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({
        "day": q.day,
        "region": region_prefix,
        "hours": hours,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_times_are_local_minutes_and_windows_are_numbered() {
        let t = rules::time::parse_rfc3339("2026-10-13T01:05:09Z").expect("time");
        assert_eq!(local_minute(t), "2026-10-13 09:05");
        assert_eq!(
            local_times(
                "办件 A 于 2026-10-13T09:05:00+08:00 超期，期限 2026-10-12T23:59:59+08:00。"
            ),
            "办件 A 于 2026-10-13 09:05 超期，期限 2026-10-12 23:59。"
        );
        // Text that only looks like a date is left alone.
        assert_eq!(local_times("编号 2026-10-13X"), "编号 2026-10-13X");
        assert_eq!(crate::web::window_label("PJ-ZWFW-W003"), "3号窗");
        assert_eq!(crate::web::window_label("大厅窗口"), "大厅窗口");
        assert_eq!(status_zh("retracted"), "已撤销");
    }

    #[test]
    fn every_error_has_a_chinese_sentence() {
        let e = period(None, Some("2026-10-31"), Some("2026-10-01")).expect_err("refused");
        assert_eq!(e.code, "bad_request");
        assert!(e.message.contains("is before"), "{}", e.message);
        assert!(e.chinese().contains("早于开始日期"), "{}", e.chinese());
        // A site without a sentence of its own gets its code's, never the English.
        let plain = ApiError::not_found("no alert \"x\" in your jurisdiction");
        assert_eq!(plain.chinese(), "未找到，或不在本账号的管辖范围内");
    }
}

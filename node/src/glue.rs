//! Between the store and the dashboard API, whichever the store: rows to API documents and
//! back, the API's [`Backend`] over any [`Store`], the start-up load of live state, and the
//! users file watcher.

use std::path::PathBuf;
use std::time::Duration;

use dashboard_api::auth::Users;
use dashboard_api::backend::{
    Backend, BackendError, BoxFuture, DeadLetterFilter, Dimension, HistoryFilter, PerfFilter,
    SourceFigures, SourceFilter,
};
use dashboard_api::hub::Input;
use dashboard_api::model::{Action, ActionKind, AlertDoc, WindowDoc};
use dashboard_api::Api;
use rules::alert::{AlertStatus, Level};
use rules::time::Instant;
use rules::window::WindowStatus;
use serde_json::Value;
use store::rows::{seconds, ActionRow, AlertRow, DeadLetterRow, WindowStatusRow};
use store::Store;

/// An ingested line that was refused, as stored in `dead_letters`.
///
/// Dead letters are keyed by (`received_at`, `source`) in both stores (a Kafka message's
/// source is its topic, partition and offset, so a re-delivered one collapses). An HTTP line's
/// source, `http:<publisher>:<line>`, names the line only within its request, so two requests
/// in one second would overwrite each other's dead letters: it gets a suffix unique to this
/// process and this line, `#<process>-<n>` (docs/SECURITY.md).
pub fn dead_letter_row(r: &dashboard_api::events::Refused) -> DeadLetterRow {
    DeadLetterRow {
        received_at: seconds(Instant(r.received_at)),
        source: unique_source(&r.source),
        reason: r.reason.clone(),
        field: r.field.clone(),
        message: r.message.clone(),
        raw: String::from_utf8_lossy(&r.raw).into_owned(),
    }
}

/// `source` with a suffix no other refused line of any process gets: the process (its id and
/// start time) and a counter.
fn unique_source(source: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PROCESS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process = PROCESS.get_or_init(|| {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        format!("{:x}{:x}", std::process::id(), started)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{source}#{process}-{n}")
}

/// An inspector's action as stored.
pub fn action_row(a: &Action) -> ActionRow {
    ActionRow {
        alert_id: a.alert_id.clone(),
        action: a.action.as_str().to_string(),
        actor: a.actor.clone(),
        at: seconds(a.at),
        reason: a.note.clone(),
        reply_deadline: a.reply_deadline.map_or(0, seconds),
        region: a.region.clone(),
    }
}

/// A stored action (`None` for an action kind this version does not know).
pub fn action_of(row: ActionRow) -> Option<Action> {
    Some(Action {
        action: ActionKind::parse(&row.action)?,
        alert_id: row.alert_id,
        actor: row.actor,
        at: Instant(i64::from(row.at)),
        note: row.reason,
        reply_deadline: (row.reply_deadline > 0).then(|| Instant(i64::from(row.reply_deadline))),
        region: row.region,
    })
}

/// A stored alert as the API shows it (`None` for an unknown level or status).
pub fn alert_of(row: AlertRow) -> Option<AlertDoc> {
    let text = |s: String| (!s.is_empty()).then_some(s);
    let mut doc = AlertDoc {
        level: Level::parse(&row.level)?,
        status: AlertStatus::parse(&row.status)?,
        revision: row.version,
        fired_at: Instant(i64::from(row.fired_at)),
        cleared_at: None,
        subject: serde_json::from_str(&row.subject).unwrap_or(Value::Null),
        evidence: serde_json::from_str(&row.evidence).unwrap_or(Value::Null),
        alert_id: row.alert_id,
        rule: row.rule,
        center_id: row.center_id,
        region: row.region,
        department: text(row.department),
        window_id: text(row.window_id),
        staff_id: text(row.staff_id),
        case_id: text(row.case_id),
        item_code: text(row.item_code),
        message: row.message,
    };
    // Stored inside the evidence: when the event that cleared it happened.
    doc.cleared_at = (doc.status == AlertStatus::Cleared)
        .then(|| doc.evidence["cleared_by"]["occurred_at"].as_str())
        .flatten()
        .and_then(|t| rules::time::parse_rfc3339(t).ok());
    Some(doc)
}

/// A window's live status as stored (the document is the status JSON the API reads back).
pub fn window_row(w: &WindowStatus) -> WindowStatusRow {
    WindowStatusRow {
        window_id: w.window_id.clone(),
        center_id: w.center_id.clone(),
        region: w.region.clone(),
        updated_at: seconds(w.updated_at),
        doc: serde_json::to_string(w).unwrap_or_default(),
    }
}

/// A stored window status for the hub.
pub fn window_of(row: &WindowStatusRow) -> Option<WindowDoc> {
    match serde_json::from_str::<WindowDoc>(&row.doc) {
        Ok(doc) => Some(doc),
        Err(e) => {
            log::warn!("window {}: unreadable status: {e}", row.window_id);
            None
        }
    }
}

/// The API's store when the store is all there is (embedded mode): actions are durable once
/// stored, timelines come from the stored events.
pub struct StoreBackend<S> {
    store: S,
    name: &'static str,
}

impl<S: Store> StoreBackend<S> {
    /// A backend over `store`; `name` prefixes error messages ("SQLite", "ClickHouse").
    pub fn new(store: S, name: &'static str) -> Self {
        StoreBackend { store, name }
    }
}

/// A store error as the API reports it.
pub fn backend_error(name: &str, e: store::StoreError) -> BackendError {
    BackendError(format!("{name}: {e}"))
}

/// A case's stored events, parsed (a row that is not JSON is shown as a string).
pub async fn timeline<S: Store>(store: &S, case_id: &str) -> Result<Vec<Value>, store::StoreError> {
    let raw = store.case_events(case_id, 10_000).await?;
    Ok(raw
        .into_iter()
        .map(|r| serde_json::from_str(&r).unwrap_or(Value::String(r)))
        .collect())
}

/// Every stored action that this version knows, oldest first (the upward export's 督办).
pub async fn actions<S: Store>(store: &S, name: &str) -> Result<Vec<Action>, BackendError> {
    let rows = store.actions().await.map_err(|e| backend_error(name, e))?;
    Ok(rows.into_iter().filter_map(action_of).collect())
}

impl<S: Store> Backend for StoreBackend<S> {
    fn actions(&self) -> BoxFuture<'_, Result<Vec<Action>, BackendError>> {
        Box::pin(actions(&self.store, self.name))
    }

    fn history<'a>(
        &'a self,
        filter: &'a HistoryFilter,
    ) -> BoxFuture<'a, Result<Vec<AlertDoc>, BackendError>> {
        Box::pin(history(&self.store, filter, self.name))
    }

    fn dead_letters<'a>(
        &'a self,
        filter: &'a DeadLetterFilter,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>> {
        Box::pin(dead_letters(&self.store, filter, self.name))
    }

    fn performance<'a>(
        &'a self,
        filter: &'a PerfFilter,
    ) -> BoxFuture<'a, Result<Vec<rules::perf::Counts>, BackendError>> {
        Box::pin(performance(&self.store, filter, self.name))
    }

    fn source_health<'a>(
        &'a self,
        filter: &'a SourceFilter,
    ) -> BoxFuture<'a, Result<Vec<SourceFigures>, BackendError>> {
        Box::pin(source_health(&self.store, filter, self.name))
    }

    fn record_action<'a>(&'a self, action: &'a Action) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.store
                .insert_actions(&[action_row(action)])
                .await
                .map_err(|e| backend_error(self.name, e))
        })
    }

    fn case_timeline<'a>(
        &'a self,
        case_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>> {
        Box::pin(async move {
            timeline(&self.store, case_id)
                .await
                .map_err(|e| backend_error(self.name, e))
        })
    }
}

/// Load the live alerts (active ones, and finished ones fired within `keep_secs`), their
/// trails and the window status into the API, retrying until the store answers (the API stays
/// unready meanwhile).
pub async fn load<S: Store>(api: &Api, store: &S, keep_secs: i64, name: &str) {
    let mut delay = Duration::from_millis(500);
    loop {
        let since = seconds(dashboard_api::wall_now().plus_secs(-keep_secs));
        let result = async {
            let alerts = store.live_alerts(since).await?;
            let actions = store.actions().await?;
            let windows = store.window_status().await?;
            Ok::<_, store::StoreError>((alerts, actions, windows))
        }
        .await;
        match result {
            Ok((alerts, actions, windows)) => {
                let n = (alerts.len(), actions.len(), windows.len());
                for a in alerts.into_iter().filter_map(alert_of) {
                    api.apply(Input::Alert(a));
                }
                for a in actions.into_iter().filter_map(action_of) {
                    api.apply(Input::Action(a));
                }
                for w in windows.iter().filter_map(window_of) {
                    api.apply(Input::Window(w));
                }
                log::info!(
                    "API loaded {} alerts, {} actions, {} windows from {name}",
                    n.0,
                    n.1,
                    n.2
                );
                return;
            }
            Err(e) => {
                log::warn!("API: loading from {name} failed ({e}); retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Re-read the users file when it changes; a file that no longer parses is reported and the
/// previous users stay in force.
pub async fn watch_users(api: Api, path: PathBuf) {
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&path);
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match Users::load(&path) {
            Ok(users) => {
                log::info!("{}: {} users reloaded", path.display(), users.len());
                api.set_users(users);
            }
            Err(e) => log::error!("users file not reloaded, keeping the previous users: {e}"),
        }
    }
}

/// An activity record (acceptance, rating, complaint) as stored.
pub fn activity_row(a: &rules::fact::Activity) -> store::rows::ActivityRow {
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    store::rows::ActivityRow {
        kind: a.kind.as_str().to_string(),
        id: a.id.clone(),
        center_id: a.center_id.clone(),
        region: a.region.clone(),
        department: text(&a.department),
        window_id: text(&a.window_id),
        staff_id: text(&a.staff_id),
        item_code: text(&a.item_code),
        at: seconds(a.at),
        value: a.value,
    }
}

/// Stored alerts for `GET /api/v1/history/alerts`.
pub async fn history<S: Store>(
    store: &S,
    f: &HistoryFilter,
    name: &str,
) -> Result<Vec<AlertDoc>, BackendError> {
    let q = store::HistoryQuery {
        region_prefix: f.region_prefix.clone(),
        from: seconds(Instant(f.from)),
        to: seconds(Instant(f.to)),
        center: f.center.clone(),
        department: f.department.clone(),
        window: f.window.clone(),
        staff: f.staff.clone(),
        rule: f.rule.clone(),
        level: f.level.clone(),
        status: f.status.clone(),
        after: f.after.clone().map(|(t, id)| (seconds(Instant(t)), id)),
        limit: f.limit,
    };
    let rows = store
        .history(&q)
        .await
        .map_err(|e| backend_error(name, e))?;
    Ok(rows.into_iter().filter_map(alert_of).collect())
}

/// Stored dead letters for `GET /api/v1/dead-letters`.
pub async fn dead_letters<S: Store>(
    store: &S,
    f: &DeadLetterFilter,
    name: &str,
) -> Result<Vec<Value>, BackendError> {
    let q = store::DeadLetterQuery {
        from: seconds(Instant(f.from)),
        to: seconds(Instant(f.to)),
        reason: f.reason.clone(),
        after: f.after.clone().map(|(t, id)| (seconds(Instant(t)), id)),
        limit: f.limit,
    };
    let rows = store
        .dead_letters(&q)
        .await
        .map_err(|e| backend_error(name, e))?;
    Ok(rows
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "received_at": d.received_at,
                "received": Instant(i64::from(d.received_at)).to_string(),
                "source": d.source,
                "reason": d.reason,
                "field": d.field,
                "message": d.message,
                "raw": d.raw,
            })
        })
        .collect())
}

/// 绩效 counts for `GET /api/v1/performance`.
pub async fn performance<S: Store>(
    store: &S,
    f: &PerfFilter,
    name: &str,
) -> Result<Vec<rules::perf::Counts>, BackendError> {
    let q = store::PerfQuery {
        region_prefix: f.region_prefix.clone(),
        from: seconds(Instant(f.from)),
        to: seconds(Instant(f.to)),
        by: match f.by {
            Dimension::Department => store::Dimension::Department,
            Dimension::Window => store::Dimension::Window,
            Dimension::Staff => store::Dimension::Staff,
            Dimension::Item => store::Dimension::Item,
            Dimension::Center => store::Dimension::Center,
            Dimension::Region => store::Dimension::Region,
        },
    };
    store
        .perf_counts(&q)
        .await
        .map_err(|e| backend_error(name, e))
}

/// Source health (SPEC §10) from the store, as the API's [`SourceFigures`].
pub async fn source_health<S: Store>(
    store: &S,
    f: &SourceFilter,
    name: &str,
) -> Result<Vec<SourceFigures>, BackendError> {
    let q = store::SourceQuery {
        region_prefix: f.region_prefix.clone(),
        from: seconds(Instant(f.from)),
        to: seconds(Instant(f.to)),
        also: f.also.clone(),
    };
    let figures = store
        .source_health(&q)
        .await
        .map_err(|e| backend_error(name, e))?;
    // The store's days are China-time dates as days since 1970; a day's noon names it.
    let day = |d: u16| Instant(i64::from(d) * 86_400 + 4 * 3600).day();
    Ok(figures
        .into_iter()
        .map(|s| SourceFigures {
            source: s.source,
            daily: s
                .daily
                .into_iter()
                .map(|(d, kind, n)| (day(d), kind, n))
                .collect(),
            events: s.events,
            delay_p50: s.delay_p50,
            delay_p95: s.delay_p95,
            case_events: s.case_events,
            after_completion: s.after_completion,
            corrections: s.corrections,
            withdrawals: s.withdrawals,
            dead_letters: s.dead_letters,
            last_reported_at: s.last_reported_at.map(|t| Instant(i64::from(t))),
        })
        .collect())
}

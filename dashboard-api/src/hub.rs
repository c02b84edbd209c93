//! The hub: this API process's view of every live alert and window, and the fan-out of changes.
//!
//! ```text
//! Input::{Alert, Window, Action} ─ apply ─▶ Book (under a write lock) ─ seq += 1 ─▶ broadcast
//!                                                                                 ├▶ socket task
//! snapshot_and_subscribe (under the read lock) ─ snapshot at seq S + receiver ────┘  (skips ≤ S)
//! ```
//! Every change gets the next sequence number and is sent on the broadcast channel *while the
//! write lock is held*, so channel order is sequence order. A client subscribes while holding the
//! read lock, so the snapshot it gets is exactly the state at sequence S and every later change
//! arrives on its receiver: nothing is missed and nothing is applied twice. Each change is
//! serialised once, here, and the same bytes are sent to every socket that may see it.
//!
//! The book keeps every alert that is still open, acknowledged or under 督办, whatever its age,
//! plus finished ones until [`Hub::forget_finished`] drops them (history is the store's job).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rules::alert::{AlertStatus, Level};
use rules::time::Instant;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::auth::{Principal, Region};
use crate::error::ApiError;
use crate::model::{rfc3339, Action, ActionKind, AlertDoc, WindowDoc, SYSTEM};

/// One change, ready to send: its routing keys and its serialised message.
#[derive(Debug)]
pub struct Delta {
    /// Sequence number (increasing, one per change across all jurisdictions).
    pub seq: u64,
    /// Region of what changed.
    pub region: String,
    /// Centre of what changed.
    pub center_id: String,
    /// Department of what changed.
    pub department: Option<String>,
    /// The alert's level; `None` for a window.
    pub level: Option<Level>,
    /// `{"type":"alert"|"window","seq":…,…}`.
    pub text: Utf8Bytes,
    /// When the change entered the hub (for the push-latency histogram).
    pub born: std::time::Instant,
}

/// What a client sees: its jurisdiction, narrowed by optional filters.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The user's jurisdiction.
    pub region: Region,
    /// Only this centre.
    pub center: Option<String>,
    /// Only this department.
    pub department: Option<String>,
    /// Only alerts of these levels (windows are not filtered by level).
    pub levels: Option<Vec<Level>>,
}

impl Filter {
    /// Everything in the principal's jurisdiction.
    pub fn scope(p: &Principal) -> Filter {
        Filter {
            region: p.region.clone(),
            center: None,
            department: None,
            levels: None,
        }
    }

    /// Whether a record with these keys passes.
    pub fn admits(
        &self,
        region: &str,
        center: &str,
        department: Option<&str>,
        level: Option<Level>,
    ) -> bool {
        self.region.covers(region)
            && self.center.as_deref().is_none_or(|c| c == center)
            && self
                .department
                .as_deref()
                .is_none_or(|d| department == Some(d))
            && match (level, &self.levels) {
                (Some(l), Some(levels)) => levels.contains(&l),
                _ => true,
            }
    }

    /// Whether a change passes.
    pub fn admits_delta(&self, d: &Delta) -> bool {
        self.admits(&d.region, &d.center_id, d.department.as_deref(), d.level)
    }

    fn admits_alert(&self, e: &AlertEntry) -> bool {
        let a = &e.doc;
        self.admits(
            &a.region,
            &a.center_id,
            a.department.as_deref(),
            Some(e.level),
        )
    }
}

/// A change to the hub's state.
#[derive(Debug, Clone)]
pub enum Input {
    /// The engine fired an alert, or changed one (its case finished, retracted, cleared).
    Alert(AlertDoc),
    /// A window's status changed.
    Window(WindowDoc),
    /// An action on an alert (from this process or another one).
    Action(Action),
}

/// One alert and its lifecycle.
#[derive(Debug, Clone)]
struct AlertEntry {
    doc: AlertDoc,
    /// Lifecycle status.
    status: AlertStatus,
    /// Current level: the fired level, or red once a 督办 went unanswered.
    level: Level,
    reply_deadline: Option<Instant>,
    replied_at: Option<Instant>,
    updated_at: Instant,
    actions: Vec<Action>,
    /// The view, serialised.
    json: String,
}

/// An alert as the dashboards are sent it, written straight from the entry (no intermediate
/// `Value`: this runs for every alert change on the path to the sockets). The fields are in
/// the order of their names, as the documents have always been written.
#[derive(Serialize)]
struct View<'a> {
    alert_id: &'a str,
    case_id: &'a Option<String>,
    center_id: &'a str,
    #[serde(with = "rfc3339::option", skip_serializing_if = "Option::is_none")]
    cleared_at: Option<Instant>,
    department: &'a Option<String>,
    escalated: bool,
    evidence: &'a Value,
    #[serde(with = "rfc3339")]
    fired_at: Instant,
    fired_level: &'a str,
    item_code: &'a Option<String>,
    level: &'a str,
    message: &'a str,
    region: &'a str,
    #[serde(with = "rfc3339::option")]
    replied_at: Option<Instant>,
    #[serde(with = "rfc3339::option")]
    reply_deadline: Option<Instant>,
    #[serde(skip_serializing_if = "crate::model::is_zero")]
    revision: u8,
    rule: &'a str,
    staff_id: &'a Option<String>,
    status: &'a str,
    subject: &'a Value,
    #[serde(with = "rfc3339")]
    updated_at: Instant,
    window_id: &'a Option<String>,
}

/// The status as the dashboards say it, for error messages (by wire name, so a status added
/// later reads as its general word until it is named here).
fn status_zh(status: AlertStatus) -> &'static str {
    match status.as_str() {
        "open" => "待签收",
        "acknowledged" => "已签收",
        "supervising" => "督办中",
        "resolved" => "已办结",
        "dismissed" => "不予处理",
        "retracted" => "已撤销",
        "cleared" => "已自动解除",
        _ => "已变更",
    }
}

fn active(status: AlertStatus) -> bool {
    matches!(
        status,
        AlertStatus::Open | AlertStatus::Acknowledged | AlertStatus::Supervising
    )
}

impl AlertEntry {
    fn new(doc: AlertDoc) -> AlertEntry {
        let mut e = AlertEntry {
            status: doc.status,
            level: doc.level,
            updated_at: doc.fired_at,
            reply_deadline: None,
            replied_at: None,
            actions: Vec::new(),
            json: String::new(),
            doc,
        };
        e.note_clearing();
        e.render();
        e
    }

    /// A later change from the engine: the alert with its case's new state (the lifecycle an
    /// inspector gave it stays), retracted (closed whatever an inspector had done) or cleared
    /// (closed if still active, with the trail entry 系统自动解除). False for a copy that is
    /// not newer than what the hub holds (a re-delivery, a replay). Of two copies of equal rank
    /// the later wins, as in the stores (an upsert keeps the later of equal versions): an alert
    /// changed more than 250 times (its revision saturated at 255) ends as its last line says.
    fn engine_change(&mut self, doc: AlertDoc) -> bool {
        if doc.rank() < self.doc.rank() || doc == self.doc {
            return false;
        }
        self.doc = doc;
        match self.doc.status {
            AlertStatus::Retracted => self.status = AlertStatus::Retracted,
            AlertStatus::Cleared if active(self.status) => self.status = AlertStatus::Cleared,
            // Open again after it ended (a ladder step reached again): what inspectors did
            // decides its status once more, as if it had never ended.
            AlertStatus::Open
                if matches!(self.status, AlertStatus::Retracted | AlertStatus::Cleared) =>
            {
                let trail = std::mem::take(&mut self.actions);
                self.status = AlertStatus::Open;
                self.level = self.doc.level;
                self.reply_deadline = None;
                self.replied_at = None;
                for a in trail.into_iter().filter(|a| a.action != ActionKind::Clear) {
                    self.apply(a);
                }
            }
            _ => {}
        }
        self.note_clearing();
        self.render();
        true
    }

    /// The trail entry of a cleared alert (derived from the alert, so every process and every
    /// restart shows the same one): 系统自动解除, when and why.
    fn note_clearing(&mut self) {
        if self.doc.status != AlertStatus::Cleared
            || self.actions.iter().any(|a| a.action == ActionKind::Clear)
        {
            return;
        }
        let at = self.doc.cleared_at.unwrap_or(self.doc.fired_at);
        let by = &self.doc.evidence["cleared_by"];
        let what = match by["kind"].as_str() {
            Some("case.rejected") => "不予受理",
            _ => "办结",
        };
        let note = format!(
            "系统自动解除：办件已于 {} {what}，未超过承诺时限",
            short(at)
        );
        self.updated_at = self.updated_at.max(at);
        self.actions.push(Action {
            alert_id: self.doc.alert_id.clone(),
            action: ActionKind::Clear,
            actor: SYSTEM.to_string(),
            at,
            note,
            reply_deadline: None,
            region: self.doc.region.clone(),
        });
    }

    /// What the dashboards are sent: the engine's document with the lifecycle over it.
    fn view(&self) -> View<'_> {
        let d = &self.doc;
        View {
            alert_id: &d.alert_id,
            case_id: &d.case_id,
            center_id: &d.center_id,
            cleared_at: d.cleared_at,
            department: &d.department,
            escalated: self.level != d.level,
            evidence: &d.evidence,
            fired_at: d.fired_at,
            fired_level: d.level.as_str(),
            item_code: &d.item_code,
            level: self.level.as_str(),
            message: &d.message,
            region: &d.region,
            replied_at: self.replied_at,
            reply_deadline: self.reply_deadline,
            revision: d.revision,
            rule: &d.rule,
            staff_id: &d.staff_id,
            status: self.status.as_str(),
            subject: &d.subject,
            updated_at: self.updated_at,
            window_id: &d.window_id,
        }
    }

    fn render(&mut self) {
        self.json = serde_json::to_string(&self.view()).unwrap_or_default();
    }

    /// Whether `action` may follow the current state; the message says why not.
    fn allows(&self, kind: ActionKind) -> Result<(), String> {
        use AlertStatus::*;
        let ok = match kind {
            ActionKind::Acknowledge => self.status == Open,
            ActionKind::Supervise => matches!(self.status, Open | Acknowledged),
            ActionKind::Reply => self.status == Supervising,
            ActionKind::Resolve | ActionKind::Dismiss => active(self.status),
            ActionKind::Escalate => {
                self.status == Supervising && self.replied_at.is_none() && self.level != Level::Red
            }
            ActionKind::Clear => false,
        };
        if ok {
            return Ok(());
        }
        Err(match self.status {
            Retracted => "the alert was retracted by later events; nothing is left to do".into(),
            Cleared => "the alert was cleared: its case finished in time (系统自动解除); nothing \
                        is left to do"
                .into(),
            Resolved | Dismissed => format!(
                "the alert is already {}; the trail is closed",
                self.status.as_str()
            ),
            _ => format!(
                "cannot {} an alert that is {}{}",
                kind.as_str(),
                self.status.as_str(),
                match kind {
                    ActionKind::Reply => "; a reply (回告) answers a 督办: supervise first",
                    ActionKind::Acknowledge => "; acknowledging is only for new alerts",
                    _ => "",
                }
            ),
        })
    }

    /// Apply an action already known to be allowed (or, for another process's action, apply it
    /// only if allowed; the trail keeps it either way).
    fn apply(&mut self, action: Action) {
        if self.actions.iter().any(|a| a.same_as(&action)) {
            return;
        }
        if self.allows(action.action).is_ok() {
            match action.action {
                ActionKind::Acknowledge => self.status = AlertStatus::Acknowledged,
                ActionKind::Supervise => {
                    self.status = AlertStatus::Supervising;
                    self.reply_deadline = action.reply_deadline;
                    self.replied_at = None;
                }
                ActionKind::Reply => self.replied_at = Some(action.at),
                ActionKind::Resolve => self.status = AlertStatus::Resolved,
                ActionKind::Dismiss => self.status = AlertStatus::Dismissed,
                ActionKind::Escalate => self.level = Level::Red,
                ActionKind::Clear => {}
            }
            self.updated_at = self.updated_at.max(action.at);
        }
        self.actions.push(action);
        self.render();
    }

    /// The supervision deadline this alert waits on, if any.
    fn escalation_due(&self) -> Option<Instant> {
        self.allows(ActionKind::Escalate)
            .ok()
            .and(self.reply_deadline)
    }
}

#[derive(Debug, Clone)]
struct WindowEntry {
    doc: WindowDoc,
    json: String,
}

/// What the derived indexes knew of an alert before it changed (default: a new alert).
#[derive(Debug, Default, Clone, Copy)]
struct Before {
    /// It counted as active on its window.
    active: bool,
    /// Its entry in the escalation deadlines.
    due: Option<Instant>,
}

impl Before {
    fn of(e: &AlertEntry) -> Before {
        Before {
            active: active(e.status),
            due: e.escalation_due(),
        }
    }
}

/// The state behind the lock.
#[derive(Debug, Default)]
struct Book {
    seq: u64,
    alerts: HashMap<String, AlertEntry>,
    /// Newest first.
    order: BTreeSet<(Reverse<i64>, String)>,
    windows: BTreeMap<String, WindowEntry>,
    /// Active alerts per window id.
    active_by_window: HashMap<String, u32>,
    /// Actions seen before their alert (another process acted on an alert this one has not
    /// read yet).
    early_actions: HashMap<String, Vec<Action>>,
    /// (reply deadline, alert id) of 督办 awaiting a reply.
    deadlines: BTreeSet<(i64, String)>,
}

fn window_json(doc: &WindowDoc, active_alerts: u32) -> String {
    let mut v = serde_json::to_value(doc).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("open_alerts".into(), active_alerts.into());
    }
    v.to_string()
}

/// A page of alerts.
#[derive(Debug, serde::Serialize)]
pub struct Page {
    /// The alerts, newest `fired_at` first (their stored JSON, not parsed again).
    pub items: Vec<Box<serde_json::value::RawValue>>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// What `GET /alerts` may filter on. Every filter narrows; none widens the caller's scope.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Comma-separated statuses (`open,acknowledged,supervising,resolved,dismissed,retracted`),
    /// or `active` for the first three.
    pub status: Option<String>,
    /// Comma-separated levels.
    pub level: Option<String>,
    /// Rule name.
    pub rule: Option<String>,
    /// Region prefix, inside the caller's own.
    pub region: Option<String>,
    /// Centre.
    pub center: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Window.
    pub window: Option<String>,
    /// Staff member.
    pub staff: Option<String>,
    /// Case.
    pub case: Option<String>,
    /// Fired at or after (RFC 3339).
    pub since: Option<String>,
    /// Fired before (RFC 3339).
    pub until: Option<String>,
    /// Page size (1–500, default 50).
    pub limit: Option<usize>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Parse a comma-separated list of wire values.
pub fn parse_list<T>(
    name: &str,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Vec<T>, ApiError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("{name}={s:?} is not valid: expected {expected}"))
            })
        })
        .collect()
}

fn parse_time(name: &str, text: &str) -> Result<Instant, ApiError> {
    rules::time::parse_rfc3339(text).map_err(|_| {
        ApiError::bad_request(format!(
            "{name}={text:?} is not an RFC 3339 time like 2026-10-13T00:00:00+08:00"
        ))
    })
}

struct Matcher {
    statuses: Option<Vec<AlertStatus>>,
    levels: Option<Vec<Level>>,
    since: Option<Instant>,
    until: Option<Instant>,
    q: AlertQuery,
}

impl Matcher {
    fn new(q: AlertQuery) -> Result<Matcher, ApiError> {
        let statuses = match q.status.as_deref() {
            None => None,
            Some("active") => Some(vec![
                AlertStatus::Open,
                AlertStatus::Acknowledged,
                AlertStatus::Supervising,
            ]),
            Some(s) => Some(parse_list(
                "status",
                s,
                AlertStatus::parse,
                &format!("active or {}", AlertStatus::expected()),
            )?),
        };
        let levels = q
            .level
            .as_deref()
            .map(|s| parse_list("level", s, Level::parse, Level::expected()))
            .transpose()?;
        let since = q
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?;
        let until = q
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?;
        Ok(Matcher {
            statuses,
            levels,
            since,
            until,
            q,
        })
    }

    fn matches(&self, e: &AlertEntry) -> bool {
        let a = &e.doc;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        self.statuses.as_ref().is_none_or(|s| s.contains(&e.status))
            && self.levels.as_ref().is_none_or(|l| l.contains(&e.level))
            && self.since.is_none_or(|t| a.fired_at >= t)
            && self.until.is_none_or(|t| a.fired_at < t)
            && self
                .q
                .region
                .as_deref()
                .is_none_or(|r| a.region.starts_with(r))
            && eq(&self.q.rule, Some(&a.rule))
            && eq(&self.q.center, Some(&a.center_id))
            && eq(&self.q.department, a.department.as_deref())
            && eq(&self.q.window, a.window_id.as_deref())
            && eq(&self.q.staff, a.staff_id.as_deref())
            && eq(&self.q.case, a.case_id.as_deref())
    }
}

/// The longest note or reason of an action, in characters (a 督办 notice of a page or two).
pub const MAX_NOTE_CHARS: usize = 2000;

/// What an inspector asks for (`POST /alerts/{id}/actions`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// `acknowledge`, `supervise`, `reply`, `resolve` or `dismiss`.
    pub action: String,
    /// A note; for `supervise` the notice's text, for `reply` the unit's reply, for `resolve`
    /// and `dismiss` the reason (required for all four).
    #[serde(default)]
    pub note: String,
    /// For `supervise`: the reply deadline (RFC 3339, in the future).
    #[serde(default)]
    pub reply_deadline: Option<String>,
}

/// Live alerts and windows, with their change feed. See the module documentation.
#[derive(Debug)]
pub struct Hub {
    book: RwLock<Book>,
    tx: broadcast::Sender<Arc<Delta>>,
    ready: AtomicBool,
}

impl Hub {
    /// An empty hub whose change feed keeps `buffer` changes for slow clients.
    pub fn new(buffer: usize) -> Hub {
        Hub {
            book: RwLock::new(Book::default()),
            tx: broadcast::channel(buffer.max(1)).0,
            ready: AtomicBool::new(false),
        }
    }

    // A panic while holding the lock cannot leave the book half-updated in a way later readers
    // could misread (every update is a few field assignments), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, Book> {
        self.book.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Book> {
        self.book.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the initial state has been loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Mark the initial state as loaded.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Connected receivers (for metrics).
    pub fn receivers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Apply a change and announce what it changed (nothing, for an alert seen twice).
    pub fn apply(&self, input: Input) {
        let mut book = self.write();
        let mut deltas = Vec::new();
        match input {
            Input::Alert(doc) => book.on_alert(doc, &mut deltas),
            Input::Window(doc) => book.on_window(doc, &mut deltas),
            Input::Action(action) => book.on_action(action, &mut deltas),
        }
        for c in deltas {
            book.seq += 1;
            let seq = book.seq;
            let kind = c.kind;
            let d = Delta {
                seq,
                born: std::time::Instant::now(),
                text: Utf8Bytes::from(format!(
                    "{{\"type\":\"{kind}\",\"seq\":{seq},\"{kind}\":{}}}",
                    c.body
                )),
                region: c.region,
                center_id: c.center_id,
                department: c.department,
                level: c.level,
            };
            // No receivers is fine: nobody is watching.
            let _ = self.tx.send(Arc::new(d));
        }
    }

    /// A snapshot message of everything `filter` admits, and a receiver for every change after
    /// it. `reason` is `connect` or `lagged`.
    pub fn snapshot_and_subscribe(
        &self,
        filter: &Filter,
        reason: &str,
    ) -> (String, u64, broadcast::Receiver<Arc<Delta>>) {
        let book = self.read();
        let rx = self.tx.subscribe();
        let mut text = format!(
            "{{\"type\":\"snapshot\",\"seq\":{},\"reason\":\"{reason}\",\"alerts\":[",
            book.seq
        );
        let mut first = true;
        for (_, id) in &book.order {
            if let Some(e) = book.alerts.get(id) {
                if active(e.status) && filter.admits_alert(e) {
                    if !first {
                        text.push(',');
                    }
                    first = false;
                    text.push_str(&e.json);
                }
            }
        }
        text.push_str("],\"windows\":[");
        let mut first = true;
        for w in book.windows.values() {
            if filter.admits(
                &w.doc.region,
                &w.doc.center_id,
                w.doc.department.as_deref(),
                None,
            ) {
                if !first {
                    text.push(',');
                }
                first = false;
                text.push_str(&w.json);
            }
        }
        text.push_str("]}");
        (text, book.seq, rx)
    }

    /// Every active alert (its view, lifecycle included) and a receiver for every change after
    /// them, taken under one lock: where a process-wide follower (the notifier) starts from.
    pub fn active_and_subscribe(&self) -> (Vec<Value>, broadcast::Receiver<Arc<Delta>>) {
        let book = self.read();
        let rx = self.tx.subscribe();
        let active = book
            .alerts
            .values()
            .filter(|e| active(e.status))
            .map(|e| serde_json::to_value(e.view()).unwrap_or(Value::Null))
            .collect();
        (active, rx)
    }

    /// Alerts matching `q` inside the caller's jurisdiction, newest first, a page at a time.
    pub fn list(&self, who: &Principal, q: AlertQuery) -> Result<Page, ApiError> {
        let limit = q.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit={limit}: use 1 to 500"
            )));
        }
        let after = match q.cursor.as_deref() {
            None => None,
            Some(c) => Some(parse_cursor(c)?),
        };
        let m = Matcher::new(q)?;
        let book = self.read();
        let mut items = Vec::new();
        let mut last = None;
        let mut next_cursor = None;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        for key in book.order.range((start, Bound::Unbounded)) {
            let Some(e) = book.alerts.get(&key.1) else {
                continue;
            };
            if !who.sees(&e.doc.region) || !m.matches(e) {
                continue;
            }
            if items.len() == limit {
                next_cursor = last.map(|(t, id): (i64, &str)| format!("{t}.{id}"));
                break;
            }
            last = Some((key.0 .0, key.1.as_str()));
            // `json` is serde_json's own output, so it is valid JSON.
            if let Ok(raw) = serde_json::value::RawValue::from_string(e.json.clone()) {
                items.push(raw);
            }
        }
        Ok(Page { items, next_cursor })
    }

    /// One alert with its audit trail, if it exists inside the caller's jurisdiction.
    pub fn detail(&self, who: &Principal, alert_id: &str) -> Option<(Value, Vec<Action>)> {
        let book = self.read();
        let e = book.alerts.get(alert_id)?;
        who.sees(&e.doc.region).then(|| {
            (
                serde_json::to_value(e.view()).unwrap_or(Value::Null),
                e.actions.clone(),
            )
        })
    }

    /// Check an inspector's request against the alert's current state and build the action to
    /// record. Nothing changes until the action is stored and [`Hub::apply`]d.
    pub fn prepare(
        &self,
        who: &Principal,
        alert_id: &str,
        req: &ActionRequest,
        now: Instant,
    ) -> Result<Action, ApiError> {
        let kind = ActionKind::parse(&req.action)
            .filter(|k| !matches!(k, ActionKind::Escalate | ActionKind::Clear))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "action {:?} is not one of acknowledge, supervise, reply, resolve, dismiss",
                    req.action
                ))
            })?;
        let note = req.note.trim().to_string();
        let needs_note = match kind {
            ActionKind::Supervise => Some("the 督办 notice's text"),
            ActionKind::Reply => Some("the unit's reply (回告)"),
            ActionKind::Resolve | ActionKind::Dismiss => Some("the reason"),
            _ => None,
        };
        if let Some(what) = needs_note.filter(|_| note.is_empty()) {
            return Err(
                ApiError::bad_request(format!("{} needs a note: {what}", kind.as_str()))
                    .zh(format!("{}需要填写说明", kind.zh())),
            );
        }
        let chars = note.chars().count();
        if chars > MAX_NOTE_CHARS {
            return Err(ApiError::bad_request(format!(
                "the note has {chars} characters; at most {MAX_NOTE_CHARS} are kept in the \
                 audit trail: shorten it, or attach the full text through the case file"
            )));
        }
        if let Some(c) = note
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        {
            return Err(ApiError::bad_request(format!(
                "the note contains the control character {c:?}; send plain text (line breaks \
                 and tabs are fine)"
            )));
        }
        let reply_deadline = match (kind, req.reply_deadline.as_deref()) {
            (ActionKind::Supervise, None) => {
                return Err(ApiError::bad_request(
                    "supervise needs reply_deadline: when the unit must reply (RFC 3339)",
                )
                .zh("督办需要填写回告期限"))
            }
            (ActionKind::Supervise, Some(t)) => {
                let t =
                    parse_time("reply_deadline", t).map_err(|e| e.zh("回告期限的时间格式不对"))?;
                if t <= now {
                    return Err(ApiError::bad_request(format!(
                        "reply_deadline {t} is not in the future"
                    ))
                    .zh(format!(
                        "回告期限 {} 已经过去，请选择此刻之后的时间",
                        t.to_string()
                            .get(..16)
                            .unwrap_or_default()
                            .replace('T', " ")
                    )));
                }
                Some(t)
            }
            (_, Some(_)) => {
                return Err(ApiError::bad_request(
                    "reply_deadline only goes with supervise",
                ))
            }
            (_, None) => None,
        };
        let book = self.read();
        let e = book
            .alerts
            .get(alert_id)
            .filter(|e| who.sees(&e.doc.region))
            .ok_or_else(|| not_found(alert_id))?;
        e.allows(kind).map_err(|m| {
            ApiError::conflict(m).zh(format!(
                "该告警当前为“{}”，不能{}，请刷新后查看",
                status_zh(e.status),
                kind.zh()
            ))
        })?;
        Ok(Action {
            alert_id: alert_id.to_string(),
            action: kind,
            actor: who.username.clone(),
            at: now,
            note,
            reply_deadline,
            region: e.doc.region.clone(),
        })
    }

    /// Escalations due at `now`: 督办 whose reply deadline passed without a reply. Each is
    /// stamped with its deadline, so every API process derives the very same action.
    pub fn due_escalations(&self, now: Instant) -> Vec<Action> {
        let book = self.read();
        book.deadlines
            .range(..=(now.0, String::from("\u{10FFFF}")))
            .filter_map(|(at, id)| {
                let e = book.alerts.get(id)?;
                Some(Action {
                    alert_id: id.clone(),
                    action: ActionKind::Escalate,
                    actor: SYSTEM.to_string(),
                    at: Instant(*at),
                    note: format!("督办回告期限 {} 已过，未收到回告：升为红牌", Instant(*at)),
                    reply_deadline: None,
                    region: e.doc.region.clone(),
                })
            })
            .collect()
    }

    /// Window statuses inside the caller's jurisdiction.
    pub fn windows(&self, filter: &Filter) -> Vec<Value> {
        let book = self.read();
        book.windows
            .values()
            .filter(|w| {
                filter.admits(
                    &w.doc.region,
                    &w.doc.center_id,
                    w.doc.department.as_deref(),
                    None,
                )
            })
            .map(|w| serde_json::from_str(&w.json).unwrap_or(Value::Null))
            .collect()
    }

    /// Drop finished alerts last changed before `before`; returns how many.
    pub fn forget_finished(&self, before: Instant) -> usize {
        let mut book = self.write();
        let old: Vec<(i64, String)> = book
            .alerts
            .values()
            .filter(|e| !active(e.status) && e.updated_at < before)
            .map(|e| (e.doc.fired_at.0, e.doc.alert_id.clone()))
            .collect();
        for (t, id) in &old {
            book.alerts.remove(id);
            book.order.remove(&(Reverse(*t), id.clone()));
        }
        old.len()
    }

    /// Number of alerts held, and of those still active.
    pub fn counts(&self) -> (usize, usize) {
        let book = self.read();
        let active = book.alerts.values().filter(|e| active(e.status)).count();
        (book.alerts.len(), active)
    }
}

/// `2026-03-16 11:30`: a local time as the trail writes it.
fn short(t: Instant) -> String {
    let s = t.to_string();
    s.get(..16).unwrap_or(&s).replacen('T', " ", 1)
}

fn not_found(alert_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no alert {alert_id:?} in your jurisdiction (finished alerts older than the live window are in the history API)"
    ))
}

fn parse_cursor(c: &str) -> Result<(Reverse<i64>, String), ApiError> {
    let bad = || ApiError::bad_request(format!("cursor {c:?} is not one this server gave out"));
    let (t, id) = c.split_once('.').ok_or_else(bad)?;
    let t: i64 = t.parse().map_err(|_| bad())?;
    Ok((Reverse(t), id.to_string()))
}

/// A change before it has a sequence number.
struct Change {
    /// `alert` or `window`: the message type and the key of its body.
    kind: &'static str,
    region: String,
    center_id: String,
    department: Option<String>,
    level: Option<Level>,
    body: String,
}

fn alert_change(e: &AlertEntry) -> Change {
    Change {
        kind: "alert",
        region: e.doc.region.clone(),
        center_id: e.doc.center_id.clone(),
        department: e.doc.department.clone(),
        level: Some(e.level),
        body: e.json.clone(),
    }
}

fn window_change(w: &WindowEntry) -> Change {
    Change {
        kind: "window",
        region: w.doc.region.clone(),
        center_id: w.doc.center_id.clone(),
        department: w.doc.department.clone(),
        level: None,
        body: w.json.clone(),
    }
}

impl Book {
    fn on_alert(&mut self, doc: AlertDoc, deltas: &mut Vec<Change>) {
        let id = doc.alert_id.clone();
        let before = self.alerts.get(&id).map(Before::of).unwrap_or_default();
        match self.alerts.get_mut(&id) {
            Some(e) => {
                // The same alert again (re-delivery, replay) changes nothing; a later change
                // may move its instant (a ladder step reached again at another card).
                let was = e.doc.fired_at;
                if !e.engine_change(doc) {
                    return;
                }
                if e.doc.fired_at != was {
                    self.order.remove(&(Reverse(was.0), id.clone()));
                    self.order.insert((Reverse(e.doc.fired_at.0), id.clone()));
                }
            }
            None => {
                let mut e = AlertEntry::new(doc);
                for a in self.early_actions.remove(&id).unwrap_or_default() {
                    e.apply(a);
                }
                self.order.insert((Reverse(e.doc.fired_at.0), id.clone()));
                self.alerts.insert(id.clone(), e);
            }
        }
        self.after_change(&id, before, deltas);
    }

    fn on_action(&mut self, action: Action, deltas: &mut Vec<Change>) {
        let id = action.alert_id.clone();
        let Some(e) = self.alerts.get_mut(&id) else {
            self.early_actions.entry(id).or_default().push(action);
            return;
        };
        let before = Before::of(e);
        let trail = e.actions.len();
        e.apply(action);
        if e.actions.len() == trail {
            return;
        }
        self.after_change(&id, before, deltas);
    }

    /// Keep the derived indexes right after alert `id` changed, and announce it (and its
    /// window, whose count of active alerts may have moved).
    fn after_change(&mut self, id: &str, before: Before, deltas: &mut Vec<Change>) {
        let Some(e) = self.alerts.get(id) else {
            return;
        };
        let now_active = active(e.status);
        let due = e.escalation_due();
        if due != before.due {
            if let Some(t) = before.due {
                self.deadlines.remove(&(t.0, id.to_string()));
            }
            if let Some(t) = due {
                self.deadlines.insert((t.0, id.to_string()));
            }
        }
        deltas.push(alert_change(e));
        let Some(window) = e.doc.window_id.clone() else {
            return;
        };
        let delta: i64 = match (before.active, now_active) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        };
        if delta == 0 {
            return;
        }
        let n = self.active_by_window.entry(window.clone()).or_default();
        *n = n.saturating_add_signed(delta as i32);
        let n = *n;
        if let Some(w) = self.windows.get_mut(&window) {
            w.json = window_json(&w.doc, n);
            deltas.push(window_change(w));
        }
    }

    fn on_window(&mut self, doc: WindowDoc, deltas: &mut Vec<Change>) {
        if let Some(w) = self.windows.get(&doc.window_id) {
            // Older news (a re-delivered status) does not overwrite newer.
            if w.doc == doc || w.doc.updated_at > doc.updated_at {
                return;
            }
        }
        let n = self
            .active_by_window
            .get(&doc.window_id)
            .copied()
            .unwrap_or(0);
        let entry = WindowEntry {
            json: window_json(&doc, n),
            doc,
        };
        deltas.push(window_change(&entry));
        self.windows.insert(entry.doc.window_id.clone(), entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(status: AlertStatus, revision: u8) -> AlertDoc {
        AlertDoc {
            alert_id: "a1".into(),
            rule: "discipline.ladder".into(),
            level: Level::Warning,
            status,
            fired_at: Instant(1_772_413_200),
            cleared_at: None,
            revision,
            center_id: "C0".into(),
            region: "430626".into(),
            department: None,
            window_id: None,
            staff_id: Some("S1".into()),
            case_id: None,
            item_code: None,
            subject: Value::Null,
            message: String::new(),
            evidence: Value::Null,
        }
    }

    /// The view as it was built before it was written straight to text: the document as a
    /// `Value` with the lifecycle's fields put over it.
    fn value_view(e: &AlertEntry) -> Value {
        let mut v = serde_json::to_value(&e.doc).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("status".into(), e.status.as_str().into());
            m.insert("level".into(), e.level.as_str().into());
            m.insert("fired_level".into(), e.doc.level.as_str().into());
            m.insert("escalated".into(), (e.level != e.doc.level).into());
            let time = |t: Option<Instant>| t.map_or(Value::Null, |t| t.to_string().into());
            m.insert("reply_deadline".into(), time(e.reply_deadline));
            m.insert("replied_at".into(), time(e.replied_at));
            m.insert("updated_at".into(), e.updated_at.to_string().into());
        }
        v
    }

    /// The dashboards' text of an alert is, byte for byte, the `Value` it used to be built
    /// through (keys in name order), with every optional field present and absent, escalated
    /// or not, replied or not, cleared or not.
    #[test]
    fn an_alert_is_sent_as_the_document_it_was_built_through() {
        let mut full = copy(AlertStatus::Cleared, 3);
        full.cleared_at = Some(Instant(1_772_500_000));
        full.department = Some("D1".into());
        full.window_id = Some("W1".into());
        full.case_id = Some("K1".into());
        full.item_code = Some("I1".into());
        full.subject = serde_json::json!({"case_id": "K1", "名称": "营业执照"});
        full.message = "超期\"未办结\"".into();
        full.evidence =
            serde_json::json!({"cleared_by": {"kind": "case.rejected"}, "z": [1, 2.5, null]});
        for doc in [copy(AlertStatus::Open, 0), full] {
            let mut e = AlertEntry::new(doc);
            let mut states = vec![e.json.clone()];
            e.level = Level::Red;
            e.status = AlertStatus::Supervising;
            e.reply_deadline = Some(Instant(1_772_600_000));
            e.replied_at = Some(Instant(1_772_550_000));
            e.updated_at = Instant(1_772_560_000);
            e.render();
            states.push(e.json.clone());
            let first = AlertEntry::new(e.doc.clone());
            assert_eq!(states[0], value_view(&first).to_string());
            assert_eq!(states[1], value_view(&e).to_string());
            assert_ne!(states[0], states[1]);
        }
    }

    /// A ladder step flipped by more than 250 cards taken back and given again has its
    /// revision saturated at 255: of two copies of equal revision the later is what stands,
    /// as in the stores (the hub held the first, and the API showed an alert the store had
    /// retracted); an older copy, or the same copy again, changes nothing.
    #[test]
    fn of_copies_of_equal_revision_the_later_stands_as_in_the_stores() {
        let hub = Hub::new(16);
        let state = |hub: &Hub| {
            let book = hub.read();
            (book.alerts["a1"].doc.status, book.seq)
        };
        hub.apply(Input::Alert(copy(AlertStatus::Open, 255)));
        hub.apply(Input::Alert(copy(AlertStatus::Retracted, 255)));
        let (status, seq) = state(&hub);
        assert_eq!(status, AlertStatus::Retracted);
        hub.apply(Input::Alert(copy(AlertStatus::Retracted, 255)));
        hub.apply(Input::Alert(copy(AlertStatus::Open, 3)));
        assert_eq!(state(&hub), (AlertStatus::Retracted, seq), "nothing newer");
        hub.apply(Input::Alert(copy(AlertStatus::Open, 255)));
        assert_eq!(state(&hub).0, AlertStatus::Open);
    }
}

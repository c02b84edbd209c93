//! The window board: live status of every service window (窗口) and the two `window.*` rules,
//! `window.unstaffed` (空岗) and `window.long_wait` (等候超时).
//!
//! ```text
//! staff.signed_in/out, window.opened/paused/closed ─▶ Win (mode, staff, unstaffed episode)
//! queue.ticket_issued/called ─▶ Ticket (by centre + number) ─▶ the queue it waits in
//! case.* at a window ─▶ serving / today's counters;  case.overdue yellow ─▶ overdue_cases
//! ```
//!
//! **Why a board of facts, not of statuses.** Each window stores what happened (its mode and
//! since when, who is signed in, when it last called a ticket and last recorded an outcome, the
//! day's counters) and a [`WindowStatus`] is derived from that on demand. Nothing derived is
//! stored, so there is nothing to keep consistent, and a snapshot holds only facts.
//!
//! **Unstaffed episodes.** An *opened* window with nobody signed in is in an episode that started
//! at max(the opening, the moment its last staff member left). Its deadline is the instant at
//! which `unstaffed_minutes` of office time (the `office_hours` spans of working days of the
//! engine's calendar) have elapsed since the start — [`office_deadline`] walks the spans day by
//! day, so a lunch break, a weekend or a holiday simply contribute nothing. The deadline is
//! computed once, when the episode starts; one timer entry per window (the engine's lazy-deletion
//! pattern: a stale entry is recognised by `timer_due` and ignored). A fired episode is kept (a
//! few bytes) until the day after it fired, so that a sign-in reported late can retract it.
//!
//! **Tickets** are keyed by (centre, issue day, ticket number): numbers restart every day, and a
//! new issue of a number the same day replaces the old ticket; a call is for the ticket of its
//! own day. A day's tickets are kept `closed_case_retention_days`, so a call or an issue
//! reported days late still finds its partner. A ticket waits in exactly one queue — its window's, else its
//! department's, else its centre's — and a window's waiting count adds up the three queues it
//! serves; a queue is a multiset of issue times, so the oldest waiting ticket is its first key.
//! A call whose ticket is not known yet is remembered for the day, so an issue that arrives
//! after its call (out-of-order delivery) is matched rather than reported as waiting. The
//! long-wait deadline is wall time (issue + `max_wait_minutes`); each ticket has one timer entry,
//! identified by a serial number so a replaced ticket's entry is ignored.
//!
//! **The day.** Counters are for the calendar day (UTC+8) of the engine clock. When the clock
//! crosses midnight — after every timer due at or before that midnight has fired — the counters
//! restart, tickets of the previous day stop waiting and are forgotten (those whose alert is
//! still to come are forgotten right after it), and every window counts as changed. Memory is
//! therefore bounded by the windows, the staff and one day of tickets.
//!
//! **Out-of-order events.** Event time decides: a window's mode changes only by an event at
//! least as recent as the last mode change, and a staff member's sign-in/out only by one at least
//! as recent as their last; an older one changes no state (it can still retract an alert).
//!
//! Status changes are recorded only while the driver asks for them
//! ([`Engine::collect_window_status`]): a flag per window and a list of the windows touched, so
//! an event costs at most a push, and draining builds each changed status once.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::alert::{Alert, Level, Rule};
use crate::calendar::Calendar;
use crate::event::{Body, Event, Kind};
use crate::reference::Reference;
use crate::time::{Day, Instant};
use crate::window::{WindowState, WindowStatus};

use super::attendance::{Att, Log};
use super::case::{inst, t32, Ctx, NEVER, T32};
use super::explain::{build, retracted, revision, subject, Attribution};
use super::table::{CompactKey, Sym, Symbols, NONE};
use super::{Engine, Outcome};

/// The instant at which `minutes` of office time have elapsed since `since`: office time is the
/// `spans` (minutes after local midnight, `[start, end)`) of the calendar's working days.
/// `None` when `minutes` is 0 (the rule is off) or no office time follows within a year.
pub fn office_deadline(
    cal: &Calendar,
    spans: &[(u32, u32)],
    since: Instant,
    minutes: u32,
) -> Option<Instant> {
    if minutes == 0 {
        return None;
    }
    cal.office_elapse(spans, since, i64::from(minutes) * 60, std::iter::empty())
}

/// Whether a window is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Mode {
    Closed,
    Open,
    Paused,
}

/// The event that left an opened window with nobody signed in (evidence for 空岗).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Cause {
    /// `window.opened`, `staff.signed_out`, or `staff.signed_in` elsewhere (moved away).
    pub(super) kind: Kind,
    pub(super) event_id: Box<str>,
    pub(super) at: T32,
    /// Who left, for the staff events.
    pub(super) staff: Sym,
}

/// An unstaffed episode in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Episode {
    since: T32,
    /// When `unstaffed_minutes` of office time will have elapsed ([`NEVER`]: rule off).
    deadline: T32,
    fired: bool,
    cause: Cause,
}

/// A `window.unstaffed` alert that fired, kept so a late sign-in can retract it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FiredEpisode {
    since: T32,
    at: T32,
    cause: Cause,
    retracted: bool,
    /// The revision of its last emission (an end, or a new firing after one).
    #[serde(default)]
    revision: u8,
}

/// One window's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Win {
    center: Sym,
    region: Sym,
    department: Sym,
    mode: Mode,
    /// Event time of the last mode change (older mode events are out of order).
    mode_at: T32,
    /// When it was last opened.
    opened_at: T32,
    /// Signed in, in sign-in order.
    staff: Vec<Sym>,
    /// Latest `queue.ticket_called` here.
    called_at: T32,
    /// Latest outcome (case.submitted/accepted/rejected/completed/delivered) here, or closing.
    outcome_at: T32,
    accepted: u32,
    completed: u32,
    on_site: u32,
    overdue: u32,
    updated_at: T32,
    /// Due time of the live timer entry ([`NEVER`]: none).
    timer_due: T32,
    episode: Option<Box<Episode>>,
    fired: Vec<FiredEpisode>,
    /// In the changed list (only while collecting; not state).
    #[serde(skip)]
    dirty: bool,
}

impl Win {
    fn new(center: Sym, region: Sym, department: Sym) -> Win {
        Win {
            center,
            region,
            department,
            mode: Mode::Closed,
            mode_at: NEVER,
            opened_at: NEVER,
            staff: Vec::new(),
            called_at: NEVER,
            outcome_at: NEVER,
            accepted: 0,
            completed: 0,
            on_site: 0,
            overdue: 0,
            updated_at: NEVER,
            timer_due: NEVER,
            episode: None,
            fired: Vec::new(),
            dirty: false,
        }
    }

    fn unstaffed(&self) -> bool {
        self.mode == Mode::Open && self.staff.is_empty()
    }

    fn state(&self) -> WindowState {
        match self.mode {
            Mode::Closed => WindowState::Closed,
            Mode::Paused => WindowState::Paused,
            Mode::Open if self.staff.is_empty() => WindowState::Unstaffed,
            Mode::Open if self.called_at > self.outcome_at => WindowState::Serving,
            Mode::Open => WindowState::OpenIdle,
        }
    }

    /// The queues whose tickets wait for this window.
    fn queues(&self, w: Sym) -> [Option<Queue>; 3] {
        [
            Some(Queue::Window(w)),
            (self.department != NONE).then_some(Queue::Department(self.center, self.department)),
            Some(Queue::Center(self.center)),
        ]
    }
}

/// Where a staff member is signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StaffAt {
    /// [`NONE`]: signed out.
    window: Sym,
    /// Event time of their latest applied sign-in or sign-out.
    last: T32,
}

/// A queue tickets wait in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Queue {
    /// Issued for a window.
    Window(Sym),
    /// Issued for a department (centre, department), no window.
    Department(Sym, Sym),
    /// Issued for the centre, no window or department.
    Center(Sym),
}

/// A queue ticket (取号), or a call seen before its issue (`issued` = [`NEVER`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Ticket {
    issued: T32,
    called: T32,
    /// issue + `max_wait_minutes` ([`NEVER`]: rule off).
    due: T32,
    window: Sym,
    department: Sym,
    region: Sym,
    /// Identifies this ticket's timer entry (a re-issued number gets a new one).
    serial: u32,
    fired: bool,
}

impl Ticket {
    fn queue(&self, center: Sym) -> Queue {
        if self.window != NONE {
            Queue::Window(self.window)
        } else if self.department != NONE {
            Queue::Department(center, self.department)
        } else {
            Queue::Center(center)
        }
    }
}

/// Tickets by (centre, issue day, ticket number): numbers restart every day.
type TicketKey = (Sym, Day, CompactKey);

/// A ticket's timer entry: (due, centre, issue day, number, serial).
type TicketTimer = (T32, Sym, Day, CompactKey, u32);

/// The board: every window's facts, the staff's whereabouts, waiting tickets and their timers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Board {
    /// The engine clock's calendar day (the counters' day).
    day: Day,
    /// Whether `day` has been set by a first clock.
    started: bool,
    windows: HashMap<Sym, Win>,
    staff: HashMap<Sym, StaffAt>,
    /// Waiting tickets' issue times per queue (a multiset: time → count).
    queues: HashMap<Queue, BTreeMap<T32, u32>>,
    tickets: HashMap<TicketKey, Ticket>,
    /// Each centre's attendance log (`attendance.rs`): what a late sign-in or sign-out is
    /// replayed with.
    #[serde(default)]
    attendance: HashMap<Sym, Log>,
    /// (due, window), earliest first; lazily deleted.
    window_timers: BinaryHeap<Reverse<(T32, Sym)>>,
    /// (due, centre, ticket number, serial), earliest first; lazily deleted.
    ticket_timers: BinaryHeap<Reverse<TicketTimer>>,
    serial: u32,
    /// Windows by centre (rebuilt on restore).
    #[serde(skip)]
    by_center: HashMap<Sym, Vec<Sym>>,
    /// Windows by (centre, department) (rebuilt on restore).
    #[serde(skip)]
    by_department: HashMap<(Sym, Sym), Vec<Sym>>,
    #[serde(skip)]
    collect: bool,
    #[serde(skip)]
    changed: Vec<Sym>,
}

/// Record a change of window `w` at `t`.
fn mark_in(windows: &mut HashMap<Sym, Win>, changed: &mut Vec<Sym>, collect: bool, w: Sym, t: T32) {
    if let Some(win) = windows.get_mut(&w) {
        win.updated_at = win.updated_at.max(t);
        if collect && !win.dirty {
            win.dirty = true;
            changed.push(w);
        }
    }
}

impl Board {
    /// Every window of `windows.csv`, closed; reference values win over what events said.
    /// Called on a new engine and on restore (the reference may have gained windows).
    pub fn sync_reference(&mut self, reference: &Reference, symbols: &mut Symbols) {
        // Sorted, so symbols are interned in the same order on every run.
        let mut rows: Vec<_> = reference.windows.values().collect();
        rows.sort_by(|a, b| a.window_id.cmp(&b.window_id));
        for row in rows {
            let w = symbols.intern(&row.window_id);
            let center = symbols.intern(&row.center_id);
            let region = symbols.intern(&row.region);
            let department = symbols.intern(&row.department);
            let win = self
                .windows
                .entry(w)
                .or_insert_with(|| Win::new(center, region, department));
            win.center = center;
            win.region = region;
            win.department = department;
        }
        self.reindex();
    }

    /// Rebuild the centre and department indexes from the windows.
    fn reindex(&mut self) {
        self.by_center.clear();
        self.by_department.clear();
        for (&w, win) in &self.windows {
            self.by_center.entry(win.center).or_default().push(w);
            if win.department != NONE {
                self.by_department
                    .entry((win.center, win.department))
                    .or_default()
                    .push(w);
            }
        }
    }

    /// Set the first day (the first clock the engine sees).
    pub fn start(&mut self, now: Instant) {
        if !self.started {
            self.started = true;
            self.day = now.day();
        }
    }

    /// 00:00 after the counters' day: when the day changes.
    pub fn day_end(&self) -> Instant {
        if self.started {
            self.day.end()
        } else {
            Instant(i64::MAX)
        }
    }

    /// The earliest timer entry (possibly stale).
    pub fn next_due(&self) -> Option<T32> {
        let w = self.window_timers.peek().map(|Reverse((d, _))| *d);
        let t = self.ticket_timers.peek().map(|Reverse((d, ..))| *d);
        match (w, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn mark(&mut self, w: Sym, t: T32) {
        mark_in(&mut self.windows, &mut self.changed, self.collect, w, t);
    }

    /// Every window whose waiting count a change of queue `q` changes.
    fn mark_queue(&mut self, q: Queue, t: T32) {
        let Board {
            windows,
            changed,
            collect,
            by_center,
            by_department,
            ..
        } = self;
        let list: &[Sym] = match q {
            Queue::Window(w) => {
                mark_in(windows, changed, *collect, w, t);
                return;
            }
            Queue::Department(c, d) => by_department.get(&(c, d)).map_or(&[], Vec::as_slice),
            Queue::Center(c) => by_center.get(&c).map_or(&[], Vec::as_slice),
        };
        for &w in list {
            mark_in(windows, changed, *collect, w, t);
        }
    }

    /// The window `w`, created (closed, department unknown) on first sight.
    fn ensure(&mut self, w: Sym, center: Sym, region: Sym) -> &mut Win {
        if !self.windows.contains_key(&w) {
            self.by_center.entry(center).or_default().push(w);
        }
        self.windows
            .entry(w)
            .or_insert_with(|| Win::new(center, region, NONE))
    }

    /// Fill in a window's unknown department.
    fn set_department(&mut self, w: Sym, department: Sym) {
        let Some(win) = self.windows.get_mut(&w) else {
            return;
        };
        if win.department != NONE || department == NONE {
            return;
        }
        win.department = department;
        self.by_department
            .entry((win.center, department))
            .or_default()
            .push(w);
    }

    /// Is a ticket issued at `issued` waiting in its queue? Only tickets of the counters' day do.
    fn queued(&self, tk: &Ticket) -> bool {
        tk.issued != NEVER && tk.called == NEVER && inst(tk.issued).day() == self.day
    }

    fn enqueue(&mut self, center: Sym, tk: &Ticket, t: T32) {
        if !self.queued(tk) {
            return;
        }
        let q = tk.queue(center);
        *self
            .queues
            .entry(q)
            .or_default()
            .entry(tk.issued)
            .or_insert(0) += 1;
        self.mark_queue(q, t);
    }

    fn unqueue(&mut self, center: Sym, tk: &Ticket, t: T32) {
        if !self.queued(tk) {
            return;
        }
        let q = tk.queue(center);
        if let Some(times) = self.queues.get_mut(&q) {
            if let Some(n) = times.get_mut(&tk.issued) {
                *n -= 1;
                if *n == 0 {
                    times.remove(&tk.issued);
                }
            }
            if times.is_empty() {
                self.queues.remove(&q);
            }
        }
        self.mark_queue(q, t);
    }

    /// A case's `case.overdue` yellow fired while it was attributed to window `w`.
    pub fn overdue_add(&mut self, w: Sym, center: Sym, region: Sym, at: T32) {
        self.ensure(w, center, region).overdue += 1;
        self.mark(w, at);
    }

    /// A case counted by [`Board::overdue_add`] ended.
    pub fn overdue_remove(&mut self, w: Sym, at: T32) {
        if let Some(win) = self.windows.get_mut(&w) {
            win.overdue = win.overdue.saturating_sub(1);
            self.mark(w, at);
        }
    }

    /// A case event applied at window `w`: outcomes end serving; acceptances and completions of
    /// the counters' day count (`accepted_at` is the case's acceptance, for 当场办结).
    pub fn case_event(
        &mut self,
        w: Sym,
        center: Sym,
        region: Sym,
        kind: Kind,
        t: T32,
        accepted_at: T32,
    ) {
        let outcome = matches!(
            kind,
            Kind::CaseSubmitted
                | Kind::CaseAccepted
                | Kind::CaseRejected
                | Kind::CaseCompleted
                | Kind::CaseDelivered
        );
        if !outcome {
            return;
        }
        let today = inst(t).day() == self.day;
        let win = self.ensure(w, center, region);
        match kind {
            Kind::CaseAccepted if today => win.accepted += 1,
            Kind::CaseCompleted if today => {
                win.completed += 1;
                if accepted_at != NEVER && inst(accepted_at).day() == inst(t).day() {
                    win.on_site += 1;
                }
            }
            _ => {}
        }
        win.outcome_at = win.outcome_at.max(t);
        self.mark(w, t);
    }

    /// The day changes to `to`: see the module documentation. Fired, uncalled tickets move to
    /// `past` for `keep_days`.
    fn roll_over(&mut self, to: Day, keep_days: u32) {
        let at = t32(to.start());
        self.day = to;
        self.queues.clear();
        // Tickets are keyed by their day: those of the last `keep_days` days stay (a late call
        // still retracts, a late issue still meets its call); pending ones until they fire.
        let horizon = i64::from(keep_days);
        self.tickets.retain(|(_, day, _), tk| {
            let pending = tk.issued != NEVER && tk.called == NEVER && !tk.fired && tk.due != NEVER;
            pending || i64::from(to.0) - i64::from(day.0) <= horizon
        });
        let keep_from = t32(Day(to.0.saturating_sub(keep_days.max(1))).start());
        let Board {
            windows,
            changed,
            collect,
            ..
        } = self;
        for (&w, win) in windows.iter_mut() {
            win.accepted = 0;
            win.completed = 0;
            win.on_site = 0;
            win.fired.retain(|f| f.at >= keep_from);
            win.updated_at = win.updated_at.max(at);
            if *collect && !win.dirty {
                win.dirty = true;
                changed.push(w);
            }
        }
    }

    fn status(&self, w: Sym, win: &Win, symbols: &Symbols) -> WindowStatus {
        let name = |s: Sym| symbols.get(s).unwrap_or_default().to_string();
        let mut staff: Vec<String> = win.staff.iter().map(|&s| name(s)).collect();
        staff.sort();
        let (mut waiting, mut oldest) = (0u32, None::<T32>);
        for q in win.queues(w).into_iter().flatten() {
            if let Some(times) = self.queues.get(&q) {
                waiting += times.values().sum::<u32>();
                if let Some((&first, _)) = times.first_key_value() {
                    oldest = Some(oldest.map_or(first, |o| o.min(first)));
                }
            }
        }
        WindowStatus {
            window_id: name(w),
            center_id: name(win.center),
            region: name(win.region),
            department: symbols.owned(win.department),
            state: win.state(),
            staff,
            waiting,
            oldest_ticket_at: oldest.map(inst),
            day: self.day,
            accepted_today: win.accepted,
            completed_today: win.completed,
            on_site_today: win.on_site,
            overdue_cases: win.overdue,
            updated_at: if win.updated_at == NEVER {
                self.day.start()
            } else {
                inst(win.updated_at)
            },
        }
    }
}

/// "（2027年节假日安排未发布，按周末推算…）" and the years, as for case alerts.
fn provisional(cal: &Calendar, from: Day, to: Day) -> (String, Vec<i32>) {
    let years = cal.provisional_years(from, to);
    if years.is_empty() {
        return (String::new(), years);
    }
    let list: Vec<String> = years.iter().map(|y| format!("{y}年")).collect();
    (
        format!("（{}节假日安排未发布，按周末推算）", list.join("、")),
        years,
    )
}

/// `window.unstaffed` (空岗) for a fired episode.
fn unstaffed_alert(ctx: Ctx<'_>, symbols: &Symbols, w: Sym, win: &Win, f: &FiredEpisode) -> Alert {
    let window = symbols.get(w).unwrap_or_default();
    let (since, at) = (inst(f.since), inst(f.at));
    let minutes = ctx.policy.unstaffed_minutes;
    let staff = symbols.get(f.cause.staff);
    let left_at = inst(f.cause.at);
    let how = match (f.cause.kind, staff) {
        (Kind::StaffSignedOut, Some(s)) => format!("工作人员 {s} 于 {left_at} 签退后"),
        (Kind::StaffSignedIn, Some(s)) => format!("工作人员 {s} 于 {left_at} 到其他窗口签到后"),
        _ => format!("于 {left_at} 开窗后"),
    };
    let (note, years) = provisional(ctx.cal, since.day(), at.day());
    let message = format!(
        "预警：窗口 {window} {how}无人签到在岗，自 {since} 起办公时间内空岗已达 {minutes} 分钟（空岗）{note}"
    );
    let evidence = json!({
        "since": since,
        "cause": {
            "kind": f.cause.kind.as_str(),
            "event_id": &*f.cause.event_id,
            "occurred_at": left_at,
            "staff_id": staff,
        },
        "office_hours": ctx.policy.office_hours,
        "unstaffed_minutes": minutes,
        "deadline": at,
        "provisional_years": years,
    });
    let who = Attribution {
        center_id: symbols.owned(win.center).unwrap_or_default(),
        region: symbols.owned(win.region).unwrap_or_default(),
        department: symbols.owned(win.department),
        window_id: Some(window.to_string()),
        ..Attribution::default()
    };
    build(
        Rule::WindowUnstaffed,
        Level::Warning,
        subject(&[("window_id", json!(window)), ("since", json!(since))]),
        at,
        who,
        message,
        evidence,
    )
}

/// `window.long_wait` (等候超时) for a ticket; `department` is the ticket's, else its window's.
fn long_wait_alert(
    ctx: Ctx<'_>,
    symbols: &Symbols,
    center: Sym,
    ticket_no: &str,
    tk: &Ticket,
    department: Sym,
) -> Alert {
    let (issued, due) = (inst(tk.issued), inst(tk.due));
    let minutes = ctx.policy.max_wait_minutes;
    let window = symbols.owned(tk.window);
    let department = symbols.owned(department);
    let center_id = symbols.owned(center).unwrap_or_default();
    let place = match (&window, &department) {
        (Some(w), _) => format!("（窗口 {w}）"),
        (None, Some(d)) => format!("（部门 {d}）"),
        (None, None) => String::new(),
    };
    let message = format!(
        "预警：号票 {ticket_no}{place}于 {issued} 取号，{minutes} 分钟内（{due} 前）未叫号（等候超时）"
    );
    let evidence = json!({
        "ticket_no": ticket_no,
        "issued_at": issued,
        "max_wait_minutes": minutes,
        "deadline": due,
        "called_at": (tk.called != NEVER).then(|| inst(tk.called)),
        "window_id": window,
        "department": department,
    });
    let who = Attribution {
        center_id: center_id.clone(),
        region: symbols.owned(tk.region).unwrap_or_default(),
        department,
        window_id: window,
        ..Attribution::default()
    };
    build(
        Rule::LongWait,
        Level::Warning,
        subject(&[
            ("center_id", json!(center_id)),
            ("ticket_no", json!(ticket_no)),
            ("issued_at", json!(issued)),
        ]),
        due,
        who,
        message,
        evidence,
    )
}

impl Engine {
    /// Start (or stop) recording which windows change; the driver takes their new status with
    /// [`Engine::drain_window_status`]. Off by default (replay has no use for it). Like
    /// [`Engine::collect_facts`], the record is not part of a snapshot: drain before taking one,
    /// and after a restore switch it on again and start from [`Engine::window_status`].
    pub fn collect_window_status(&mut self, on: bool) {
        self.board.collect = on;
        if !on {
            for w in std::mem::take(&mut self.board.changed) {
                if let Some(win) = self.board.windows.get_mut(&w) {
                    win.dirty = false;
                }
            }
        }
    }

    /// The status of every window that changed since the last call, in its latest state, once
    /// each, sorted by window id.
    pub fn drain_window_status(&mut self) -> Vec<WindowStatus> {
        let changed = std::mem::take(&mut self.board.changed);
        for w in &changed {
            if let Some(win) = self.board.windows.get_mut(w) {
                win.dirty = false;
            }
        }
        let board = &self.board;
        let mut out: Vec<WindowStatus> = changed
            .iter()
            .filter_map(|w| Some(board.status(*w, board.windows.get(w)?, &self.symbols)))
            .collect();
        out.sort_by(|a, b| a.window_id.cmp(&b.window_id));
        out
    }

    /// The status of every window the engine knows: those of `windows.csv` and those events
    /// named. Sorted by window id.
    pub fn window_status(&self) -> Vec<WindowStatus> {
        let board = &self.board;
        let mut out: Vec<WindowStatus> = board
            .windows
            .iter()
            .map(|(&w, win)| board.status(w, win, &self.symbols))
            .collect();
        out.sort_by(|a, b| a.window_id.cmp(&b.window_id));
        out
    }

    pub(super) fn ctx(&self) -> Ctx<'_> {
        Ctx::of(&self.reference, &self.policy, &self.office_hours)
    }

    /// Staff, window and queue events.
    pub(super) fn on_window_event(&mut self, ev: &Event<'_>, out: &mut Vec<Alert>) -> Outcome {
        match &ev.body {
            Body::TicketIssued { ticket_no } => self.ticket_issued(ev, ticket_no, out),
            Body::TicketCalled { ticket_no } => self.ticket_called(ev, ticket_no, out),
            _ => self.attendance(ev, out),
        }
    }

    /// `staff.*` and `window.*`: in order, through the board and onto the centre's log; older
    /// than the log's latest, into the log and the centre's attendance replayed
    /// (`attendance.rs`).
    fn attendance(&mut self, ev: &Event<'_>, out: &mut Vec<Alert>) -> Outcome {
        let own = matches!(ev.body, Body::StaffSignedIn | Body::StaffSignedOut);
        let Some(w) = self.event_window(ev, true) else {
            return Outcome::Inconsistent("no_window");
        };
        let center = self.symbols.intern(&ev.center_id);
        let staff = match ev.staff_id.as_deref() {
            Some(s) if own => self.symbols.intern(s),
            None if own => return Outcome::Inconsistent("no_window"),
            _ => NONE,
        };
        let att = Att {
            t: t32(ev.occurred_at),
            event_id: ev.event_id.as_ref().into(),
            kind: ev.body.kind(),
            window: w,
            staff,
        };
        let log = self.board.attendance.entry(center).or_default();
        if log.latest().is_some_and(|l| att.t < l) {
            if log.insert(att) {
                self.replay_attendance(center, ev, out);
            }
            return Outcome::Applied;
        }
        log.insert(att);
        match &ev.body {
            Body::StaffSignedIn => self.signed_in(ev, out),
            Body::StaffSignedOut => self.signed_out(ev, out),
            _ => self.window_mode(ev, out),
        }
    }

    /// A late attendance event was logged: replay the centre's attendance, take its state, fire
    /// the 空岗 episodes it gives that had not fired and retract those that no longer hold.
    fn replay_attendance(&mut self, center: Sym, ev: &Event<'_>, out: &mut Vec<Alert>) {
        let now = t32(self.clock);
        let t = t32(ev.occurred_at);
        let Engine {
            reference,
            policy,
            symbols,
            board,
            office_hours,
            stats,
            ..
        } = self;
        let ctx = Ctx::of(reference, policy, office_hours);
        let minutes = policy.unstaffed_minutes;
        let deadline = |since: T32| {
            office_deadline(&reference.calendar, office_hours, inst(since), minutes)
                .map_or(NEVER, t32)
        };
        let Some(log) = board.attendance.get(&center) else {
            return;
        };
        let (state, fired) = log.replay(now, &deadline);
        let mut windows: Vec<Sym> = board.by_center.get(&center).cloned().unwrap_or_default();
        windows.extend(state.windows.keys().copied());
        windows.sort_unstable();
        windows.dedup();
        for w in windows {
            let Some(win) = board.windows.get_mut(&w) else {
                continue;
            };
            let want: Vec<_> = fired.iter().filter(|f| f.window == w).collect();
            let mut changes = Vec::new();
            for f in win.fired.iter_mut().filter(|f| !f.retracted) {
                if !want.iter().any(|x| x.since == f.since && x.at == f.at) {
                    let before = f.revision;
                    f.retracted = true;
                    f.revision = revision::ended_after(before);
                    changes.push((f.clone(), Some(before)));
                }
            }
            for x in want {
                match win
                    .fired
                    .iter_mut()
                    .find(|f| f.since == x.since && f.at == x.at)
                {
                    Some(f) if !f.retracted => {}
                    Some(f) => {
                        // Ended by an earlier replay and true again: fired again, later revision.
                        f.retracted = false;
                        f.revision = revision::fired_after(f.revision);
                        changes.push((f.clone(), None));
                    }
                    None => {
                        let f = FiredEpisode {
                            since: x.since,
                            at: x.at,
                            cause: x.cause.clone(),
                            retracted: false,
                            revision: 0,
                        };
                        win.fired.push(f.clone());
                        changes.push((f, None));
                    }
                }
            }
            let sim = state.windows.get(&w).cloned().unwrap_or_default();
            win.mode = sim.mode;
            win.mode_at = sim.mode_at;
            win.opened_at = sim.opened_at;
            win.staff = sim.staff;
            win.episode = sim.episode.map(|(since, cause)| {
                let at = deadline(since);
                Box::new(Episode {
                    since,
                    deadline: at,
                    fired: at != NEVER && at <= now,
                    cause,
                })
            });
            if let Some(ep) = win
                .episode
                .as_ref()
                .filter(|e| !e.fired && e.deadline != NEVER)
            {
                win.timer_due = ep.deadline;
                board.window_timers.push(Reverse((ep.deadline, w)));
            }
            for (f, retraction) in changes {
                let mut alert = unstaffed_alert(ctx, symbols, w, win, &f);
                if let Some(before) = retraction {
                    alert.revision = before;
                    stats.retractions += 1;
                    out.push(retracted(alert, ev));
                } else {
                    alert.revision = f.revision;
                    stats.alerts += 1;
                    out.push(alert);
                }
            }
            mark_in(&mut board.windows, &mut board.changed, board.collect, w, t);
        }
        for (s, (w, last)) in state.staff {
            board.staff.insert(s, StaffAt { window: w, last });
        }
    }

    /// The board's window named by the event, created on first sight with the event's centre
    /// and region. Window and staff events (`own`) also fill in an unknown department; other
    /// events' departments are the case's or the ticket's, not necessarily the window's.
    fn event_window(&mut self, ev: &Event<'_>, own: bool) -> Option<Sym> {
        let w = self.symbols.intern(ev.window_id.as_deref()?);
        if !self.board.windows.contains_key(&w) {
            let center = self.symbols.intern(&ev.center_id);
            let region = self.symbols.intern(&ev.region);
            self.board.ensure(w, center, region);
        }
        if let (true, Some(d)) = (own, ev.department.as_deref()) {
            if self
                .board
                .windows
                .get(&w)
                .is_some_and(|x| x.department == NONE)
            {
                let d = self.symbols.intern(d);
                self.board.set_department(w, d);
            }
        }
        Some(w)
    }

    /// A `staff.*` event's window, staff member and time (`None` without both ids).
    fn staff_event(&mut self, ev: &Event<'_>) -> Option<(Sym, Sym, T32)> {
        let w = self.event_window(ev, true)?;
        let s = self.symbols.intern(ev.staff_id.as_deref()?);
        Some((w, s, t32(ev.occurred_at)))
    }

    /// `window.opened` / `window.paused` / `window.closed`.
    fn window_mode(&mut self, ev: &Event<'_>, out: &mut Vec<Alert>) -> Outcome {
        let Some(w) = self.event_window(ev, true) else {
            return Outcome::Inconsistent("no_window");
        };
        let t = t32(ev.occurred_at);
        let Board { windows, staff, .. } = &mut self.board;
        let Some(win) = windows.get_mut(&w) else {
            return Outcome::Inconsistent("no_window");
        };
        if t < win.mode_at {
            return Outcome::Inconsistent("out_of_order");
        }
        match ev.body {
            Body::WindowOpened => {
                if win.mode != Mode::Open {
                    win.mode = Mode::Open;
                    win.opened_at = t;
                }
            }
            Body::WindowPaused => {
                if win.mode == Mode::Closed {
                    return Outcome::Inconsistent("window_closed");
                }
                win.mode = Mode::Paused;
            }
            _ => {
                // 关窗 ends the window's session: service ends and whoever is signed in here is
                // signed out (a missing sign-out must not staff tomorrow's opening).
                win.mode = Mode::Closed;
                win.outcome_at = win.outcome_at.max(t);
                for s in win.staff.drain(..) {
                    if let Some(at) = staff.get_mut(&s) {
                        at.window = NONE;
                        at.last = at.last.max(t);
                    }
                }
            }
        }
        win.mode_at = t;
        self.window_changed(w, t, ev, NONE, out);
        Outcome::Applied
    }

    /// `staff.signed_in`: the staff member is at this window (and no longer at any other).
    fn signed_in(&mut self, ev: &Event<'_>, out: &mut Vec<Alert>) -> Outcome {
        let Some((w, s, t)) = self.staff_event(ev) else {
            return Outcome::Inconsistent("no_window");
        };
        let retracted = self.retract_unstaffed(w, t, ev, out);
        let at = self.board.staff.entry(s).or_insert(StaffAt {
            window: NONE,
            last: NEVER,
        });
        if t < at.last {
            return if retracted {
                Outcome::Applied
            } else {
                Outcome::Inconsistent("out_of_order")
            };
        }
        at.last = t;
        let prev = std::mem::replace(&mut at.window, w);
        if prev == w {
            return Outcome::Applied;
        }
        if prev != NONE {
            if let Some(p) = self.board.windows.get_mut(&prev) {
                p.staff.retain(|&x| x != s);
            }
            self.window_changed(prev, t, ev, s, out);
        }
        if let Some(win) = self.board.windows.get_mut(&w) {
            win.staff.push(s);
        }
        self.window_changed(w, t, ev, s, out);
        Outcome::Applied
    }

    /// `staff.signed_out` at the window the staff member is signed in at.
    fn signed_out(&mut self, ev: &Event<'_>, out: &mut Vec<Alert>) -> Outcome {
        let Some((w, s, t)) = self.staff_event(ev) else {
            return Outcome::Inconsistent("no_window");
        };
        match self.board.staff.get_mut(&s) {
            Some(at) if t < at.last => return Outcome::Inconsistent("out_of_order"),
            Some(at) if at.window == w => {
                at.window = NONE;
                at.last = t;
            }
            _ => return Outcome::Inconsistent("not_signed_in"),
        }
        if let Some(win) = self.board.windows.get_mut(&w) {
            win.staff.retain(|&x| x != s);
        }
        self.window_changed(w, t, ev, s, out);
        Outcome::Applied
    }

    /// After a change at window `w` by `ev` at `t` (`staff`: who left or arrived): start or end
    /// its unstaffed episode, record the change, and fire the episode's alert if already due.
    fn window_changed(&mut self, w: Sym, t: T32, ev: &Event<'_>, staff: Sym, out: &mut Vec<Alert>) {
        let Some(win) = self.board.windows.get_mut(&w) else {
            return;
        };
        match (win.episode.is_some(), win.unstaffed()) {
            (false, true) => {
                let since = t.max(win.opened_at);
                let deadline = office_deadline(
                    &self.reference.calendar,
                    &self.office_hours,
                    inst(since),
                    self.policy.unstaffed_minutes,
                )
                .map_or(NEVER, t32);
                win.episode = Some(Box::new(Episode {
                    since,
                    deadline,
                    fired: false,
                    cause: Cause {
                        kind: ev.body.kind(),
                        event_id: ev.event_id.as_ref().into(),
                        at: t,
                        staff,
                    },
                }));
            }
            (true, false) => win.episode = None,
            _ => {}
        }
        self.board.mark(w, t);
        let now = self.clock;
        self.settle_window(w, now, out);
    }

    /// Fire window `w`'s unstaffed alert if due at or before `now`, else put its deadline on
    /// the timer heap.
    fn settle_window(&mut self, w: Sym, now: Instant, out: &mut Vec<Alert>) {
        let ctx = Ctx::of(&self.reference, &self.policy, &self.office_hours);
        let Board {
            windows,
            window_timers,
            ..
        } = &mut self.board;
        let Some(win) = windows.get_mut(&w) else {
            return;
        };
        let Some(ep) = win.episode.as_mut() else {
            return;
        };
        if ep.fired || ep.deadline == NEVER {
            return;
        }
        if inst(ep.deadline) <= now {
            ep.fired = true;
            let (since, at) = (ep.since, ep.deadline);
            let mut f = FiredEpisode {
                since,
                at,
                cause: ep.cause.clone(),
                retracted: false,
                revision: 0,
            };
            // The same episode retracted before and true again: a new firing of its id.
            if let Some(i) = win
                .fired
                .iter()
                .position(|x| x.since == since && x.at == at)
            {
                f.revision = revision::fired_after(win.fired[i].revision);
                win.fired.remove(i);
            }
            let mut alert = unstaffed_alert(ctx, &self.symbols, w, win, &f);
            alert.revision = f.revision;
            out.push(alert);
            self.stats.alerts += 1;
            win.fired.push(f);
        } else if win.timer_due == NEVER || ep.deadline < win.timer_due {
            win.timer_due = ep.deadline;
            window_timers.push(Reverse((ep.deadline, w)));
        }
    }

    /// A sign-in at `t` retracts the window's unstaffed alerts whose episode it falls in
    /// (`since ≤ t < fired_at`). True if it retracted any.
    fn retract_unstaffed(&mut self, w: Sym, t: T32, ev: &Event<'_>, out: &mut Vec<Alert>) -> bool {
        let ctx = Ctx::of(&self.reference, &self.policy, &self.office_hours);
        let Some(win) = self.board.windows.get_mut(&w) else {
            return false;
        };
        let mut any = false;
        for i in 0..win.fired.len() {
            let f = &mut win.fired[i];
            if f.retracted || t < f.since || t >= f.at {
                continue;
            }
            let before = f.revision;
            f.retracted = true;
            f.revision = revision::ended_after(before);
            let f = f.clone();
            let mut alert = unstaffed_alert(ctx, &self.symbols, w, win, &f);
            alert.revision = before;
            out.push(retracted(alert, ev));
            self.stats.retractions += 1;
            any = true;
        }
        any
    }

    /// A window timer entry popped at `due`.
    pub(super) fn window_timer(&mut self, w: Sym, due: T32, batch: &mut Vec<(String, Alert)>) {
        let Some(win) = self.board.windows.get_mut(&w) else {
            return;
        };
        if win.timer_due != due {
            return;
        }
        win.timer_due = NEVER;
        let mut fired = Vec::new();
        self.settle_window(w, inst(due), &mut fired);
        if !fired.is_empty() {
            // Sort key among the alerts due at the same instant (see `fire_timers`).
            let key = format!("w{}", self.symbols.get(w).unwrap_or_default());
            batch.extend(fired.into_iter().map(|a| (key.clone(), a)));
        }
    }

    /// `queue.ticket_issued`.
    fn ticket_issued(&mut self, ev: &Event<'_>, ticket_no: &str, out: &mut Vec<Alert>) -> Outcome {
        let t = t32(ev.occurred_at);
        let window = self.event_window(ev, false).unwrap_or(NONE);
        let center = self.symbols.intern(&ev.center_id);
        let key = (center, ev.occurred_at.day(), CompactKey::new(ticket_no));
        let mut called = NEVER;
        if let Some(old) = self.board.tickets.get(&key) {
            if old.issued == NEVER {
                // A call seen first: it was for this ticket if it came after the issue.
                if old.called >= t {
                    called = old.called;
                }
            } else if t < old.issued {
                return Outcome::Inconsistent("out_of_order");
            }
            if let Some(old) = self.board.tickets.remove(&key) {
                self.board.unqueue(center, &old, t);
            }
        }
        let department = match ev.department.as_deref() {
            Some(d) => self.symbols.intern(d),
            None => NONE,
        };
        let region = self.region;
        let max = self.policy.max_wait_minutes;
        let serial = self.board.serial;
        self.board.serial = serial.wrapping_add(1);
        let tk = Ticket {
            issued: t,
            called,
            due: if max == 0 {
                NEVER
            } else {
                t.saturating_add(max.saturating_mul(60))
            },
            window,
            department,
            region,
            serial,
            fired: false,
        };
        self.board.enqueue(center, &tk, t);
        self.board.tickets.insert(key.clone(), tk);
        self.settle_ticket(&key, ticket_no, out);
        Outcome::Applied
    }

    /// Fire a ticket's alert if it is due by the engine clock (a late issue, or a call that came
    /// too late), else put it on the timer heap; a called ticket is then done.
    fn settle_ticket(&mut self, key: &TicketKey, ticket_no: &str, out: &mut Vec<Alert>) {
        let now = self.clock;
        let Some(tk) = self.board.tickets.get_mut(key) else {
            return;
        };
        let late = tk.called == NEVER || tk.called >= tk.due;
        if tk.due != NEVER && !tk.fired && late {
            if inst(tk.due) <= now {
                tk.fired = true;
                let tk = tk.clone();
                out.push(self.long_wait(key.0, ticket_no, &tk));
                self.stats.alerts += 1;
            } else if tk.called == NEVER {
                self.board.ticket_timers.push(Reverse((
                    tk.due,
                    key.0,
                    key.1,
                    key.2.clone(),
                    tk.serial,
                )));
            }
        }
        // A called ticket is done; a fired one waits for a late call until its day is
        // forgotten (`roll_over`).
        if self
            .board
            .tickets
            .get(key)
            .is_some_and(|tk| tk.called != NEVER)
        {
            self.board.tickets.remove(key);
        }
    }

    fn long_wait(&self, center: Sym, ticket_no: &str, tk: &Ticket) -> Alert {
        let department = if tk.department != NONE {
            tk.department
        } else {
            self.board
                .windows
                .get(&tk.window)
                .map_or(NONE, |w| w.department)
        };
        long_wait_alert(self.ctx(), &self.symbols, center, ticket_no, tk, department)
    }

    /// `queue.ticket_called`: the calling window is serving; the ticket stops waiting, and a
    /// long-wait alert it disproves is retracted.
    fn ticket_called(&mut self, ev: &Event<'_>, ticket_no: &str, out: &mut Vec<Alert>) -> Outcome {
        let t = t32(ev.occurred_at);
        if let Some(w) = self.event_window(ev, false) {
            if let Some(win) = self.board.windows.get_mut(&w) {
                win.called_at = win.called_at.max(t);
            }
            self.board.mark(w, t);
        }
        let center = self.symbols.intern(&ev.center_id);
        let no = CompactKey::new(ticket_no);
        // Numbers restart every day: a call is for the ticket of its own day.
        let key = (center, ev.occurred_at.day(), no);
        let Some(tk) = self.board.tickets.get_mut(&key) else {
            // Not issued yet (delivered out of order): remember the call, for an issue that
            // arrives later (`closed_case_retention_days`).
            let tk = Ticket {
                issued: NEVER,
                called: t,
                due: NEVER,
                window: NONE,
                department: NONE,
                region: NONE,
                serial: 0,
                fired: false,
            };
            self.board.tickets.insert(key, tk);
            return Outcome::Applied;
        };
        if tk.issued == NEVER {
            tk.called = tk.called.min(t);
            return Outcome::Applied;
        }
        if t < tk.issued {
            // A call for an earlier ticket of the same number; nothing to do with this one.
            return Outcome::Applied;
        }
        let Some(tk) = self.board.tickets.remove(&key) else {
            return Outcome::Applied;
        };
        self.board.unqueue(center, &tk, t);
        if tk.fired && t < tk.due {
            let alert = self.long_wait(center, ticket_no, &tk);
            out.push(retracted(alert, ev));
            self.stats.retractions += 1;
        }
        Outcome::Applied
    }

    /// A ticket timer entry popped at `due`.
    pub(super) fn ticket_timer(
        &mut self,
        key: TicketKey,
        serial: u32,
        due: T32,
        batch: &mut Vec<(String, Alert)>,
    ) {
        let center = key.0;
        let Some(tk) = self.board.tickets.get_mut(&key) else {
            return;
        };
        if tk.serial != serial || tk.fired || tk.called != NEVER || tk.due != due {
            return;
        }
        tk.fired = true;
        let tk = tk.clone();
        let ticket_no = key.2.as_str();
        let alert = self.long_wait(center, ticket_no, &tk);
        self.stats.alerts += 1;
        let sort = format!(
            "q{}\t{ticket_no}",
            self.symbols.get(center).unwrap_or_default()
        );
        batch.push((sort, alert));
    }

    /// Pop and fire the board's timer entries due exactly at `due`.
    pub(super) fn fire_board(&mut self, due: T32, batch: &mut Vec<(String, Alert)>) {
        while let Some(&Reverse((d, w))) = self.board.window_timers.peek() {
            if d != due {
                break;
            }
            self.board.window_timers.pop();
            self.window_timer(w, due, batch);
        }
        while self
            .board
            .ticket_timers
            .peek()
            .is_some_and(|Reverse((d, ..))| *d == due)
        {
            if let Some(Reverse((_, center, day, no, serial))) = self.board.ticket_timers.pop() {
                self.ticket_timer((center, day, no), serial, due, batch);
            }
        }
    }

    /// The counters' day becomes `to`.
    pub(super) fn roll_over(&mut self, to: Day) {
        let keep = self.policy.closed_case_retention_days;
        self.board.roll_over(to, keep);
        // Attendance older than the fired episodes kept is folded into each log's base.
        let floor = t32(Day(to.0.saturating_sub(keep.max(1))).start());
        let minutes = self.policy.unstaffed_minutes;
        let (cal, spans) = (&self.reference.calendar, &self.office_hours);
        let deadline =
            |since: T32| office_deadline(cal, spans, inst(since), minutes).map_or(NEVER, t32);
        for log in self.board.attendance.values_mut() {
            log.forget_before(floor, &deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use super::*;
    use crate::event::{Channel, CompletionResult, LimitOverrides};
    use crate::policy::Policy;
    use crate::time::parse_rfc3339;
    use crate::window::reference_windows;

    fn at(s: &str) -> Instant {
        parse_rfc3339(s).unwrap()
    }

    fn spans() -> Vec<(u32, u32)> {
        Policy::default().office_hours().unwrap()
    }

    fn deadline(since: &str, minutes: u32) -> String {
        let cal = crate::calendar::CalendarBuilder::with_built_in().build();
        office_deadline(&cal, &spans(), at(since), minutes)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn office_time_skips_lunch_nights_weekends_and_holidays() {
        // Mon 2026-03-02.
        assert_eq!(
            deadline("2026-03-02T08:50:00+08:00", 15),
            "2026-03-02T09:15:00+08:00"
        );
        assert_eq!(
            deadline("2026-03-02T10:00:00+08:00", 15),
            "2026-03-02T10:15:00+08:00"
        );
        // 5 minutes until noon, 10 more from 13:30.
        assert_eq!(
            deadline("2026-03-02T11:55:00+08:00", 15),
            "2026-03-02T13:40:00+08:00"
        );
        // Exactly the rest of the span: fires at its end, not after lunch.
        assert_eq!(
            deadline("2026-03-02T11:45:00+08:00", 15),
            "2026-03-02T12:00:00+08:00"
        );
        assert_eq!(
            deadline("2026-03-02T12:10:00+08:00", 15),
            "2026-03-02T13:45:00+08:00"
        );
        assert_eq!(
            deadline("2026-03-02T17:20:30+08:00", 15),
            "2026-03-03T09:05:30+08:00"
        );
        // Fri 2026-03-06 17:25 → 5 minutes, then Mon 03-09 09:10.
        assert_eq!(
            deadline("2026-03-06T17:25:00+08:00", 15),
            "2026-03-09T09:10:00+08:00"
        );
        // Sat 2026-03-07: nothing until Monday.
        assert_eq!(
            deadline("2026-03-07T10:00:00+08:00", 15),
            "2026-03-09T09:15:00+08:00"
        );
        // 国庆 2026: 10-01..10-07 off; Sun 09-20 and Sat 10-10 are 调休 working days.
        assert_eq!(
            deadline("2026-09-30T17:20:00+08:00", 15),
            "2026-10-08T09:05:00+08:00"
        );
        assert_eq!(
            deadline("2026-09-20T10:00:00+08:00", 15),
            "2026-09-20T10:15:00+08:00"
        );
        assert_eq!(
            deadline("2026-10-10T08:00:00+08:00", 15),
            "2026-10-10T09:15:00+08:00"
        );
        // Longer than one day of office time (7 h): 420 + 30 minutes.
        assert_eq!(
            deadline("2026-03-02T09:00:00+08:00", 450),
            "2026-03-03T09:30:00+08:00"
        );
        assert_eq!(deadline("2026-03-02T09:00:00+08:00", 0), "", "0 = off");
    }

    fn engine() -> Engine {
        let reference = Reference::parse(&crate::synth::reference_files()).expect("reference");
        Engine::new(Arc::new(reference), Policy::default())
    }

    /// An event at centre C0; `window`/`staff` may be empty.
    fn ev<'a>(id: &'a str, t: &str, window: &'a str, staff: &'a str, body: Body<'a>) -> Event<'a> {
        let opt = |s: &'a str| (!s.is_empty()).then_some(Cow::Borrowed(s));
        Event {
            event_id: Cow::Borrowed(id),
            occurred_at: at(t),
            reported_at: None,
            received_at: None,
            center_id: Cow::Borrowed("C0"),
            region: Cow::Borrowed("430620"),
            department: None,
            window_id: opt(window),
            staff_id: opt(staff),
            case_id: None,
            item_code: None,
            source: None,
            supersedes: None,
            body,
        }
    }

    struct Run {
        e: Engine,
        out: Vec<Alert>,
        n: usize,
    }

    impl Run {
        fn new() -> Run {
            Run {
                e: engine(),
                out: Vec::new(),
                n: 0,
            }
        }

        fn send(&mut self, t: &str, window: &str, staff: &str, body: Body<'_>) -> Outcome {
            self.n += 1;
            let id = format!("e{}", self.n);
            self.e
                .on_event(&ev(&id, t, window, staff, body), &mut self.out)
                .expect("accepted")
        }

        fn send_event(&mut self, e: &Event<'_>) -> Outcome {
            self.e.on_event(e, &mut self.out).expect("accepted")
        }

        fn advance(&mut self, t: &str) {
            self.e.advance_to(at(t), &mut self.out);
        }

        fn alerts(&self) -> Vec<String> {
            self.out
                .iter()
                .map(|a| {
                    format!(
                        "{}{} {}",
                        if a.status == crate::alert::AlertStatus::Retracted {
                            "retracted "
                        } else {
                            ""
                        },
                        a.fired_at,
                        a.rule.as_str()
                    )
                })
                .collect()
        }

        fn status(&self, w: &str) -> WindowStatus {
            self.e
                .window_status()
                .into_iter()
                .find(|s| s.window_id == w)
                .expect("window known")
        }
    }

    fn ticket(no: &str) -> Body<'_> {
        Body::TicketIssued {
            ticket_no: Cow::Borrowed(no),
        }
    }

    fn call(no: &str) -> Body<'_> {
        Body::TicketCalled {
            ticket_no: Cow::Borrowed(no),
        }
    }

    #[test]
    fn window_states_follow_the_events() {
        let mut r = Run::new();
        assert_eq!(
            r.status("W003").state,
            WindowState::Closed,
            "from windows.csv"
        );
        r.send(
            "2026-03-02T08:40:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedIn,
        );
        assert_eq!(
            r.status("W003").state,
            WindowState::Closed,
            "sign-in does not open"
        );
        r.send("2026-03-02T08:50:00+08:00", "W003", "", Body::WindowOpened);
        assert_eq!(r.status("W003").state, WindowState::OpenIdle);
        assert_eq!(r.status("W003").staff, ["S0003"]);
        r.send("2026-03-02T09:00:00+08:00", "W003", "S0003", call("A1"));
        assert_eq!(r.status("W003").state, WindowState::Serving);
        let mut accepted = ev(
            "acc",
            "2026-03-02T09:05:00+08:00",
            "W003",
            "S0003",
            Body::CaseAccepted {
                channel: Channel::Hall,
                overrides: LimitOverrides::default(),
            },
        );
        accepted.case_id = Some(Cow::Borrowed("K1"));
        accepted.item_code = Some(Cow::Borrowed("I001"));
        r.send_event(&accepted);
        let s = r.status("W003");
        assert_eq!((s.state, s.accepted_today), (WindowState::OpenIdle, 1));
        r.send("2026-03-02T09:10:00+08:00", "W003", "", Body::WindowPaused);
        assert_eq!(r.status("W003").state, WindowState::Paused);
        r.send("2026-03-02T09:20:00+08:00", "W003", "", Body::WindowOpened);
        assert_eq!(r.status("W003").state, WindowState::OpenIdle);
        // Moving to another window signs out of this one.
        r.send(
            "2026-03-02T09:30:00+08:00",
            "W006",
            "S0003",
            Body::StaffSignedIn,
        );
        assert_eq!(r.status("W003").state, WindowState::Unstaffed);
        assert!(r.status("W003").staff.is_empty());
        assert_eq!(r.status("W006").staff, ["S0003"]);
        // A sign-out somewhere they are not signed in changes nothing.
        assert_eq!(
            r.send(
                "2026-03-02T09:31:00+08:00",
                "W003",
                "S0003",
                Body::StaffSignedOut
            ),
            Outcome::Inconsistent("not_signed_in")
        );
        // An older sign-in than their latest takes its place in time (attendance.rs): they
        // were at W009 from 09:29 until they signed in at W006 at 09:30, and are still there.
        assert_eq!(
            r.send(
                "2026-03-02T09:29:00+08:00",
                "W009",
                "S0003",
                Body::StaffSignedIn
            ),
            Outcome::Applied
        );
        assert_eq!(r.status("W006").staff, ["S0003"]);
        assert!(r.status("W009").staff.is_empty());
        r.send("2026-03-02T09:40:00+08:00", "W006", "", Body::WindowOpened);
        r.send("2026-03-02T17:30:00+08:00", "W006", "", Body::WindowClosed);
        let s = r.status("W006");
        assert_eq!(s.state, WindowState::Closed);
        assert!(s.staff.is_empty(), "closing signs out");
        assert_eq!(s.updated_at.to_string(), "2026-03-02T17:30:00+08:00");
        // An opening older than the closing takes its place in time: still closed.
        assert_eq!(
            r.send("2026-03-02T17:00:00+08:00", "W006", "", Body::WindowOpened),
            Outcome::Applied
        );
        assert_eq!(r.status("W006").state, WindowState::Closed);
    }

    #[test]
    fn a_sign_out_reported_after_the_next_sign_in_gives_the_episode_between_them() {
        let mut r = Run::new();
        r.send("2026-03-02T08:50:00+08:00", "W003", "", Body::WindowOpened);
        r.send(
            "2026-03-02T08:55:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedIn,
        );
        r.send(
            "2026-03-02T10:00:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedIn,
        );
        r.advance("2026-03-02T12:00:00+08:00");
        assert!(r.out.is_empty(), "staffed all along, as far as was known");
        // The 09:00 sign-out arrives now: W003 was unstaffed 09:00–10:00, 15 minutes of office
        // time by 09:15, as the in-order stream says.
        let late = r.send(
            "2026-03-02T09:00:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedOut,
        );
        assert_eq!(late, Outcome::Applied);
        assert_eq!(r.alerts(), ["2026-03-02T09:15:00+08:00 window.unstaffed"]);
        assert_eq!(r.out[0].subject["since"], "2026-03-02T09:00:00+08:00");
        assert_eq!(r.out[0].evidence["cause"]["kind"], "staff.signed_out");
        assert_eq!(
            r.status("W003").staff,
            ["S0003"],
            "signed in again since 10:00"
        );
        // Delivered again, it changes nothing.
        r.send(
            "2026-03-02T09:00:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedOut,
        );
        assert_eq!(r.out.len(), 1);
    }

    #[test]
    fn unstaffed_fires_once_per_episode_and_ends_with_a_sign_in() {
        let mut r = Run::new();
        r.send("2026-03-02T08:50:00+08:00", "W003", "", Body::WindowOpened);
        r.advance("2026-03-02T09:14:59+08:00");
        assert!(r.out.is_empty());
        r.advance("2026-03-02T09:15:00+08:00");
        assert_eq!(r.alerts(), ["2026-03-02T09:15:00+08:00 window.unstaffed"]);
        let a = &r.out[0];
        assert_eq!(a.subject["since"], "2026-03-02T08:50:00+08:00");
        assert_eq!(a.window_id.as_deref(), Some("W003"));
        assert_eq!(a.evidence["cause"]["kind"], "window.opened");
        r.advance("2026-03-03T12:00:00+08:00");
        assert_eq!(r.out.len(), 1, "once per episode");
        r.send(
            "2026-03-03T12:00:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedIn,
        );
        assert_eq!(r.out.len(), 1, "a sign-in after the alert retracts nothing");
        // Unstaffed from 12:00: nothing until 13:30 (lunch), 15 minutes → 13:45.
        r.send(
            "2026-03-03T12:00:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedOut,
        );
        r.advance("2026-03-03T13:45:00+08:00");
        assert_eq!(r.out.len(), 2);
        assert_eq!(r.out[1].fired_at.to_string(), "2026-03-03T13:45:00+08:00");
        assert_eq!(r.out[1].subject["since"], "2026-03-03T12:00:00+08:00");
        assert_eq!(r.out[1].evidence["cause"]["staff_id"], "S0003");
        // A pause ends the episode; nothing more.
        r.send(
            "2026-03-03T14:00:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedIn,
        );
        r.send(
            "2026-03-03T14:01:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedOut,
        );
        r.send("2026-03-03T14:05:00+08:00", "W003", "", Body::WindowPaused);
        r.advance("2026-03-04T00:00:00+08:00");
        assert_eq!(r.out.len(), 2, "{:?}", r.alerts());
    }

    #[test]
    fn a_late_sign_in_retracts_and_a_late_sign_out_fires_at_once() {
        let mut r = Run::new();
        r.send("2026-03-02T08:50:00+08:00", "W003", "", Body::WindowOpened);
        r.advance("2026-03-02T10:00:00+08:00");
        r.send(
            "2026-03-02T09:05:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedIn,
        );
        assert_eq!(
            r.alerts(),
            [
                "2026-03-02T09:15:00+08:00 window.unstaffed",
                "retracted 2026-03-02T09:15:00+08:00 window.unstaffed"
            ]
        );
        assert_eq!(r.out[0].alert_id, r.out[1].alert_id);
        // Signed out at 09:30, reported at 10:30: 15 office minutes after 09:30 are past.
        r.advance("2026-03-02T10:30:00+08:00");
        r.send(
            "2026-03-02T09:30:00+08:00",
            "W003",
            "S0003",
            Body::StaffSignedOut,
        );
        assert_eq!(r.out.len(), 3);
        assert_eq!(r.out[2].fired_at.to_string(), "2026-03-02T09:45:00+08:00");
    }

    #[test]
    fn long_wait_fires_and_a_late_call_retracts_it() {
        let mut r = Run::new();
        r.send("2026-03-02T09:00:00+08:00", "W003", "", ticket("A1"));
        r.send("2026-03-02T09:01:00+08:00", "W003", "", ticket("A2"));
        assert_eq!(r.status("W003").waiting, 2);
        assert_eq!(
            r.status("W003")
                .oldest_ticket_at
                .map(|t| t.to_string())
                .as_deref(),
            Some("2026-03-02T09:00:00+08:00")
        );
        r.send("2026-03-02T09:29:59+08:00", "W003", "S0003", call("A1"));
        assert_eq!(r.status("W003").waiting, 1);
        r.advance("2026-03-02T09:40:00+08:00");
        assert_eq!(r.alerts(), ["2026-03-02T09:31:00+08:00 window.long_wait"]);
        assert_eq!(r.out[0].subject["ticket_no"], "A2");
        assert_eq!(r.out[0].subject["issued_at"], "2026-03-02T09:01:00+08:00");
        assert_eq!(r.status("W003").waiting, 1, "still waiting after the alert");
        r.send("2026-03-02T09:30:59+08:00", "W003", "S0003", call("A2"));
        assert_eq!(
            r.alerts()[1],
            "retracted 2026-03-02T09:31:00+08:00 window.long_wait"
        );
        assert_eq!(r.status("W003").waiting, 0);
    }

    #[test]
    fn a_call_delivered_before_its_issue_is_matched() {
        let mut r = Run::new();
        r.send("2026-03-02T09:10:00+08:00", "W003", "S0003", call("A1"));
        r.send("2026-03-02T09:00:00+08:00", "W003", "", ticket("A1"));
        assert_eq!(r.status("W003").waiting, 0);
        // Called 40 minutes after issue, both known late: fires at once at 09:30.
        r.send("2026-03-02T10:00:00+08:00", "W003", "S0003", call("B1"));
        r.send("2026-03-02T09:20:00+08:00", "W003", "", ticket("B1"));
        r.advance("2026-03-02T12:00:00+08:00");
        assert_eq!(r.alerts(), ["2026-03-02T09:50:00+08:00 window.long_wait"]);
        assert_eq!(r.out[0].evidence["called_at"], "2026-03-02T10:00:00+08:00");
    }

    #[test]
    fn an_issue_and_its_call_reported_days_later_leave_nothing() {
        let mut r = Run::new();
        r.advance("2026-03-04T10:00:00+08:00");
        r.send("2026-03-02T16:04:52+08:00", "W003", "", ticket("A7"));
        r.send("2026-03-02T16:24:52+08:00", "W003", "S0003", call("A7"));
        let on_record: Vec<String> = r.alerts();
        assert!(
            on_record.is_empty()
                || on_record
                    == [
                        "2026-03-02T16:34:52+08:00 window.long_wait",
                        "retracted 2026-03-02T16:34:52+08:00 window.long_wait"
                    ],
            "{on_record:?}"
        );
    }

    #[test]
    fn waiting_tickets_are_shared_by_department_and_centre() {
        let mut r = Run::new();
        let d0 = r.status("W000").department.unwrap();
        let same: Vec<String> = reference_windows(&r.e.reference, Day(0))
            .into_iter()
            .filter(|w| w.center_id == "C0" && w.department.as_deref() == Some(&d0))
            .map(|w| w.window_id)
            .collect();
        assert!(same.len() >= 2, "{same:?}");
        r.e.collect_window_status(true);
        r.send("2026-03-02T09:00:00+08:00", "W000", "", ticket("A1"));
        let mut dept = ev("d", "2026-03-02T09:01:00+08:00", "", "", ticket("D1"));
        dept.department = Some(Cow::Owned(d0.clone()));
        r.send_event(&dept);
        r.send("2026-03-02T09:02:00+08:00", "", "", ticket("C1"));
        let a = r.status(&same[0]);
        let b = r.status(&same[1]);
        assert_eq!((a.window_id.as_str(), a.waiting), ("W000", 3));
        assert_eq!(b.waiting, 2, "the department's and the centre's tickets");
        let changed = r.e.drain_window_status();
        assert!(changed.windows(2).all(|p| p[0].window_id < p[1].window_id));
        assert!(changed.iter().any(|s| s.window_id == same[1]));
        assert!(
            changed.iter().all(|s| s.center_id == "C0"),
            "other centres untouched"
        );
        // A call anywhere stops the ticket waiting everywhere.
        r.send("2026-03-02T09:03:00+08:00", &same[1], "S0003", call("D1"));
        assert_eq!(r.status(&same[0]).waiting, 2);
        assert_eq!(r.status(&same[1]).waiting, 1);
        assert!(r
            .e
            .drain_window_status()
            .iter()
            .any(|s| s.window_id == same[0]));
        assert!(r.e.drain_window_status().is_empty(), "drained");
    }

    #[test]
    fn the_day_change_resets_counters_and_forgets_tickets() {
        let mut r = Run::new();
        let mut k = ev(
            "a",
            "2026-03-02T10:00:00+08:00",
            "W003",
            "S0003",
            Body::CaseAccepted {
                channel: Channel::Hall,
                overrides: LimitOverrides::default(),
            },
        );
        k.case_id = Some(Cow::Borrowed("K1"));
        k.item_code = Some(Cow::Borrowed("I001"));
        r.send_event(&k);
        let done = |id: &'static str, t: &str, case: &'static str| {
            let mut e = ev(
                id,
                t,
                "W003",
                "S0003",
                Body::CaseCompleted {
                    result: CompletionResult::Denied,
                },
            );
            e.case_id = Some(Cow::Borrowed(case));
            e
        };
        r.send_event(&done("b", "2026-03-02T11:00:00+08:00", "K1"));
        r.send("2026-03-02T17:40:00+08:00", "W003", "", ticket("A9"));
        let s = r.status("W003");
        assert_eq!(
            (
                s.accepted_today,
                s.completed_today,
                s.on_site_today,
                s.waiting
            ),
            (1, 1, 1, 1)
        );
        r.e.collect_window_status(true);
        r.advance("2026-03-03T00:00:00+08:00");
        // A9's alert (18:10) fired before the day changed.
        assert_eq!(r.alerts(), ["2026-03-02T18:10:00+08:00 window.long_wait"]);
        let s = r.status("W003");
        assert_eq!(s.day.to_string(), "2026-03-03");
        assert_eq!(
            (
                s.accepted_today,
                s.completed_today,
                s.on_site_today,
                s.waiting
            ),
            (0, 0, 0, 0)
        );
        assert_eq!(s.updated_at.to_string(), "2026-03-03T00:00:00+08:00");
        assert_eq!(
            r.e.drain_window_status().len(),
            r.e.window_status().len(),
            "all changed"
        );
        assert_eq!(
            r.e.board.tickets.len(),
            1,
            "its fired alert is kept (by its day) for a late call"
        );
        // A call for yesterday's ticket reported late (a backfill) retracts what it disproves.
        r.send("2026-03-02T17:50:00+08:00", "W003", "S0003", call("A9"));
        assert_eq!(
            r.alerts()[1],
            "retracted 2026-03-02T18:10:00+08:00 window.long_wait"
        );
        assert!(r.e.board.tickets.is_empty(), "called: done");
        // A ticket issued at 23:50 fires after midnight and stops waiting.
        r.send("2026-03-03T23:50:00+08:00", "W003", "", ticket("Z1"));
        r.advance("2026-03-04T00:30:00+08:00");
        assert_eq!(r.alerts()[2], "2026-03-04T00:20:00+08:00 window.long_wait");
        assert_eq!(r.status("W003").waiting, 0);
        assert_eq!(r.e.board.tickets.len(), 1, "Z1, never called");
        // Kept `closed_case_retention_days` (7) after its day, then forgotten.
        r.advance("2026-03-10T00:00:00+08:00");
        assert_eq!(r.e.board.tickets.len(), 1);
        r.advance("2026-03-11T00:00:00+08:00");
        assert!(r.e.board.tickets.is_empty(), "memory stays bounded");
    }

    #[test]
    fn overdue_cases_count_until_the_case_ends() {
        let mut r = Run::new();
        // Promised 1 working day from Mon 03-02: D = 03-03, yellow at 03-04T00:00.
        let one_day = LimitOverrides {
            promised: Some(crate::reference::Limit {
                days: 1,
                unit: crate::event::Unit::Working,
            }),
            ..LimitOverrides::default()
        };
        let mut k = ev(
            "a",
            "2026-03-02T10:00:00+08:00",
            "W003",
            "S0003",
            Body::CaseAccepted {
                channel: Channel::Hall,
                overrides: one_day,
            },
        );
        k.case_id = Some(Cow::Borrowed("K1"));
        k.item_code = Some(Cow::Borrowed("I001"));
        r.send_event(&k);
        let mut k2 = k.clone();
        k2.event_id = Cow::Borrowed("a2");
        k2.case_id = Some(Cow::Borrowed("K2"));
        r.send_event(&k2);
        r.advance("2026-03-04T00:00:00+08:00");
        assert!(r
            .out
            .iter()
            .any(|a| a.rule == Rule::CaseOverdue && a.level == Level::Yellow));
        assert_eq!(r.status("W003").overdue_cases, 2);
        let mut done = ev(
            "c",
            "2026-03-04T09:00:00+08:00",
            "W006",
            "S0006",
            Body::CaseCompleted {
                result: CompletionResult::Voided,
            },
        );
        done.case_id = Some(Cow::Borrowed("K1"));
        r.send_event(&done);
        assert_eq!(
            r.status("W003").overdue_cases,
            1,
            "counted where the card fired"
        );
        assert_eq!(r.status("W006").overdue_cases, 0);
        // A completion before the yellow, arriving late, retracts it and ends the count.
        let mut early = done.clone();
        early.event_id = Cow::Borrowed("c2");
        early.occurred_at = at("2026-03-03T15:00:00+08:00");
        early.case_id = Some(Cow::Borrowed("K2"));
        r.send_event(&early);
        assert!(r
            .out
            .iter()
            .any(|a| a.status == crate::alert::AlertStatus::Retracted));
        assert_eq!(r.status("W003").overdue_cases, 0);
    }

    #[test]
    fn snapshot_in_the_middle_of_a_window_scenario_changes_nothing() {
        let script: Vec<(&str, &str, &str, Body<'static>)> = vec![
            ("2026-03-06T08:50:00+08:00", "W003", "", Body::WindowOpened),
            ("2026-03-06T09:00:00+08:00", "W006", "", Body::WindowOpened),
            (
                "2026-03-06T09:01:00+08:00",
                "W006",
                "S0006",
                Body::StaffSignedIn,
            ),
            ("2026-03-06T09:02:00+08:00", "W006", "", ticket("A1")),
            ("2026-03-06T09:03:00+08:00", "", "", ticket("A2")),
            ("2026-03-06T09:04:00+08:00", "W006", "S0006", call("A1")),
            (
                "2026-03-06T17:25:00+08:00",
                "W006",
                "S0006",
                Body::StaffSignedOut,
            ),
            ("2026-03-06T17:26:00+08:00", "W009", "", ticket("A3")),
            // Reaches past W006's deadline (09:10); then W006's sign-in arrives, late.
            (
                "2026-03-09T09:20:00+08:00",
                "W003",
                "S0003",
                Body::StaffSignedIn,
            ),
            (
                "2026-03-09T09:05:00+08:00",
                "W006",
                "S0006",
                Body::StaffSignedIn,
            ),
            ("2026-03-09T10:00:00+08:00", "W009", "", ticket("A1")),
        ];
        let mut reference_run = Run::new();
        reference_run.e.collect_window_status(true);
        let mut expected_status = Vec::new();
        for (t, w, s, body) in &script {
            reference_run.send(t, w, s, body.clone());
            expected_status.push(reference_run.e.drain_window_status());
        }
        reference_run.advance("2026-03-10T00:00:00+08:00");
        let final_status = reference_run.e.window_status();
        for cut in [2, 5, 7, 9] {
            let mut r = Run::new();
            r.e.collect_window_status(true);
            for (t, w, s, body) in &script[..cut] {
                r.send(t, w, s, body.clone());
                r.e.drain_window_status();
            }
            let image = r.e.snapshot().unwrap();
            let reference = Arc::clone(&r.e.reference);
            let mut restored = Engine::restore(reference, Policy::default(), &image).unwrap();
            assert_eq!(restored.window_status(), r.e.window_status(), "cut {cut}");
            restored.collect_window_status(true);
            r.e = restored;
            for (i, (t, w, s, body)) in script.iter().enumerate().skip(cut) {
                r.send(t, w, s, body.clone());
                assert_eq!(
                    r.e.drain_window_status(),
                    expected_status[i],
                    "cut {cut}, step {i}"
                );
            }
            r.advance("2026-03-10T00:00:00+08:00");
            assert_eq!(r.out, reference_run.out, "cut {cut}");
            assert_eq!(r.e.window_status(), final_status, "cut {cut}");
        }
        assert_eq!(
            reference_run.alerts(),
            [
                "2026-03-06T09:15:00+08:00 window.unstaffed",
                "2026-03-06T09:33:00+08:00 window.long_wait",
                "2026-03-06T17:56:00+08:00 window.long_wait",
                "2026-03-09T09:10:00+08:00 window.unstaffed",
                "retracted 2026-03-09T09:10:00+08:00 window.unstaffed",
                "2026-03-09T10:30:00+08:00 window.long_wait",
            ]
        );
    }
}

//! The engine: events in, alerts out, time passed in.
//!
//! ```text
//! on_event(ev) ─ duplicate? ─ advance_to(ev.occurred_at) ─ apply to the case ─ fire what is due
//! advance_to(t) ─ pop timers due ≤ t in time order ─ fire ─ reschedule
//! ```
//! Two tables hold what has deadlines: cases, and "matters" (complaints, bad evaluations, fees
//! naming no case). Each entry has at most one live entry in a binary heap of timers: the
//! earliest instant at which one of its alerts could fire. A timer carries the slot's generation
//! and is ignored if the entry has since been rescheduled or evicted (lazy deletion), so an event
//! never searches the heap. Alerts due at the same instant are emitted ordered by case id (then
//! complaint/evaluation/receipt id), so the output does not depend on arrival order.
//!
//! Windows and queue tickets live on a separate board (`windows::Board`) with its own timers
//! (one per window, one per ticket); `fire_timers` merges the two sources by due time, and the
//! calendar day of the board's counters changes at midnight after every timer due by then has
//! fired.
//!
//! Every alert emitted passes through the discipline ladder, which counts the cards each staff
//! member receives in a year and adds the ladder's steps right after the card that reached them.

mod apply;
mod attendance;
mod batch;
mod case;
mod correct;
mod count;
mod events;
pub(crate) mod explain;
mod hall;
mod history;
mod integrity;
mod jurisdiction;
mod ladder;
mod matter;
mod people;
mod snapshot;
mod sources;
mod table;
mod timers;
mod windows;

use std::sync::Arc;

use crate::alert::{Alert, AlertStatus, Level};
use crate::event::{Body, CaseType, Event};
use crate::fact::CaseFact;
use crate::policy::{OfficeHours, Policy};
use crate::reference::Reference;
use crate::time::Instant;

use case::{inst, t32, Case, Ctx, Fired, NEVER, T32};
use matter::Matter;
use people::People;
use table::{Dedup, Departed, HotSymbols, KeyHash, Slab, Sym, Symbols, NONE};
use windows::Board;

pub use jurisdiction::{check_listed, Unlisted};
pub use snapshot::SnapshotError;
pub use table::event_identity;
pub use windows::office_deadline;

/// Marks a timer's slot as one of the matters table.
const MATTER: u32 = 1 << 31;

/// How many events ahead [`Engine::lookahead`] starts an event's first loads (its case follows
/// at half the distance): far enough for a miss to memory to complete meanwhile.
const LOOKAHEAD: usize = 8;

/// What becomes of a case or matter once its due alerts have fired.
enum Plan {
    /// Nothing is left to come and its retention is over: forget it.
    Forget,
    /// Wake it at this time (its next deadline, or when it may be forgotten).
    Wake(T32),
    /// Nothing to wait for (an open case whose clocks are all paused or spent).
    Sleep,
}

/// Decide from its next deadline and the time it may be forgotten. An entry is never forgotten
/// while a deadline is still to come, and never woken in the past.
fn plan(next: Option<Instant>, forget: Option<Instant>, now: Instant) -> Plan {
    if next.is_none() && forget.is_some_and(|f| f <= now) {
        return Plan::Forget;
    }
    match (next, forget.filter(|f| *f > now)) {
        (Some(a), Some(b)) => Plan::Wake(t32(a.min(b))),
        (Some(a), None) | (None, Some(a)) => Plan::Wake(t32(a)),
        (None, None) => Plan::Sleep,
    }
}

/// Put an entry on the timer heap at `at`, unless it already has an earlier live entry: when
/// that one pops, the entry is simply settled again.
fn arm(timer_due: &mut T32, at: T32, timers: &mut timers::Timers, slot: u32, generation: u32) {
    if *timer_due == NEVER || at < *timer_due {
        *timer_due = at;
        timers.push((at, slot, generation));
    }
}

/// The alerts of one instant's timers in the order of their keys (`c<case id>`, `m<matter
/// key>`), stably: alerts of one case or matter keep their own order (warning → yellow →
/// red). The keys are sorted with their positions, then the alerts swapped into place (each
/// moved once or twice): at the end of a working day thousands of deadlines fall at one
/// instant, and sorting the alerts themselves moved each several hundred bytes a dozen times.
fn emit_in_key_order<T>(batch: &mut Vec<(String, T)>, out: &mut Vec<T>) {
    if batch.windows(2).all(|w| w[0].0 <= w[1].0) {
        out.extend(batch.drain(..).map(|(_, alert)| alert));
        return;
    }
    let mut order: Vec<(&str, u32)> = batch
        .iter()
        .enumerate()
        .map(|(i, (key, _))| (key.as_str(), i as u32))
        .collect();
    // Positions break ties, so the unstable sort gives the stable order.
    order.sort_unstable();
    let mut order: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
    // Put them in that order in place, a cycle of the permutation at a time (`order[k]`: where
    // the entry for place `k` is; set to `k` once placed), rather than through a second
    // vector as large as the batch: a batch can hold thousands of alerts.
    for start in 0..order.len() {
        let mut k = start;
        loop {
            let from = order[k] as usize;
            order[k] = k as u32;
            if from == start || from == k {
                break;
            }
            batch.swap(k, from);
            k = from;
        }
    }
    out.extend(batch.drain(..).map(|(_, alert)| alert));
}

/// Fire every pending alert of `case` due at or before `now`, in order, and give its next
/// deadline. An open case's yellow card counts on its window's live status (on `board`, when
/// given: a case rebuilt aside by a correction leaves the board alone).
fn fire_pending(
    ctx: Ctx<'_>,
    symbols: &Symbols,
    case: &mut Case,
    now: Instant,
    out: &mut Vec<Alert>,
    stats: &mut Stats,
    mut board: Option<&mut Board>,
) -> Option<Instant> {
    // Firing one deadline never moves another, except that a case lists only its earliest
    // unmatched fee: settle again until nothing more is due.
    loop {
        let pending = case.pending(ctx);
        let mut fired_any = false;
        let mut next = None;
        for &(at, due) in pending.as_slice() {
            if at > now {
                next = Some(at);
                break;
            }
            let n = case.ordinal(due);
            let mut alert = explain::alert(ctx, symbols, case, due, at, n);
            stats.alerts += 1;
            case.mark_fired(due);
            case.extras_mut().fired.push(Fired {
                due,
                at: t32(at),
                n,
                retracted: false,
            });
            // Fired again after a late pause or extension retracted it: a new firing.
            let k = case.extras.as_ref().map_or(0, |x| x.fired.len() - 1);
            alert.revision = apply::firing_revision(case, k);
            out.push(alert);
            if due == case::Due::Yellow && case.closed_at == NEVER && case.who.window != NONE {
                let w = case.who.window;
                if let Some(board) = board.as_deref_mut() {
                    board.overdue_add(w, case.who.center, case.who.region, t32(at));
                }
                case.extras_mut().overdue_window = Some(w);
            }
            fired_any = true;
        }
        if !fired_any {
            return next;
        }
    }
}

/// The duplicate filter's hash of an event: its `event_id` within its region and source.
fn event_hash(ev: &Event<'_>) -> table::IdHash {
    Dedup::hash(&ev.region, ev.source.as_deref().unwrap_or(""), &ev.event_id)
}

/// What became of an event the engine accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied to the state.
    Applied,
    /// Its `event_id` was seen before; ignored.
    Duplicate,
    /// Valid, but inconsistent with what is known (e.g. `case.resumed` without a suspension);
    /// it changed nothing. The reason is a stable code for metrics.
    Inconsistent(&'static str),
}

/// An event the engine cannot use as it stands; it belongs in the dead-letter store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// `case.accepted` for an item missing from the catalogue, without limits of its own.
    #[error(
        "item_code {0:?} is not in the item catalogue (items.csv) and case.accepted carries no \
         promised_days; add the item to items.csv or send the limits with the event"
    )]
    UnknownItem(String),
    /// An id of the event belongs to another jurisdiction than the event's `region` and
    /// `center_id` (docs/RULES.md, "Jurisdiction"): a centre of another region, a window or
    /// staff member of another centre, a case or complaint opened by another centre.
    #[error("{field}: {message}")]
    RegionMismatch {
        /// The field whose id crosses jurisdictions.
        field: &'static str,
        /// What it belongs to instead.
        message: String,
    },
    /// An id the reference data does not list, while it lists that kind of id and the policy
    /// refuses unlisted ones (`accept_unlisted_ids = false`, the default).
    #[error("{field}: {message}")]
    UnlistedId {
        /// The field.
        field: &'static str,
        /// Which id and which file lists that kind.
        message: String,
    },
    /// A correction (`supersedes`) or `event.withdrawn` of an applied event the engine cannot
    /// correct: not an event of a case it holds (docs/RULES.md, "Corrections").
    #[error("{field}: {id:?} cannot be corrected: {why}")]
    CorrectionUnsupported {
        /// `supersedes` or `withdraws`.
        field: &'static str,
        /// The corrected event's id.
        id: String,
        /// Why, and what to do.
        why: String,
    },
    /// A correction of an event already superseded (SPEC §3: a chain has one head).
    #[error(
        "{field}: {id:?} was already superseded by a later version; correct or withdraw the \
         latest version instead"
    )]
    AlreadySuperseded {
        /// `supersedes` or `withdraws`.
        field: &'static str,
        /// The corrected event's id.
        id: String,
    },
    /// `event.withdrawn` of an event never seen (SPEC §3: `unknown_event`).
    #[error(
        "withdraws: {0:?} is not an event seen in this region and source, or was withdrawn already"
    )]
    UnknownEvent(String),
}

impl Rejection {
    /// Every code [`Rejection::code`] gives (metrics start each at zero).
    pub const CODES: [&'static str; 4] = [
        "unknown_item",
        "correction_unsupported",
        "already_superseded",
        "unknown_event",
    ];

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::UnknownItem(_) => "unknown_item",
            Rejection::RegionMismatch { .. } => "region_mismatch",
            Rejection::UnlistedId { .. } => "unknown_id",
            Rejection::CorrectionUnsupported { .. } => "correction_unsupported",
            Rejection::AlreadySuperseded { .. } => "already_superseded",
            Rejection::UnknownEvent(_) => "unknown_event",
        }
    }

    /// The field of the event the refusal is about.
    pub fn field(&self) -> &'static str {
        match self {
            Rejection::UnknownItem(_) => "item_code",
            Rejection::RegionMismatch { field, .. }
            | Rejection::UnlistedId { field, .. }
            | Rejection::CorrectionUnsupported { field, .. }
            | Rejection::AlreadySuperseded { field, .. } => field,
            Rejection::UnknownEvent(_) => "withdraws",
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Events applied.
    pub applied: u64,
    /// Duplicates ignored.
    pub duplicates: u64,
    /// Inconsistent events (changed nothing).
    pub inconsistent: u64,
    /// Alerts fired.
    pub alerts: u64,
    /// Alerts retracted.
    pub retractions: u64,
    /// Finished cases forgotten after their retention.
    pub evicted: u64,
}

/// The rule engine. See the module documentation.
#[derive(Debug, Clone)]
pub struct Engine {
    reference: Arc<Reference>,
    policy: Policy,
    symbols: Symbols,
    cases: Slab<Case>,
    matters: Slab<Matter>,
    people: People,
    /// Forgotten hall-accepted cases, for fees charged later.
    departed: Departed,
    /// (due, slot | [`MATTER`] for matters, generation), earliest first.
    timers: timers::Timers,
    dedup: Dedup,
    clock: Instant,
    stats: Stats,
    /// Finished-case records waiting for the driver, when it asked for them.
    facts: Option<Vec<CaseFact>>,
    /// Acceptances, ratings and complaints for the metrics, collected with the facts.
    activities: Vec<crate::fact::Activity>,
    /// Live window status, queue tickets and the `window.*` rules' timers.
    board: Board,
    /// The region and centre of the event being applied, as symbols.
    region: Sym,
    center: Sym,
    /// Regions' and centres' symbols, found without hashing.
    hot: HotSymbols,
    /// Jurisdictions learnt from events for ids the reference does not list (a centre's region,
    /// a window's or staff member's centre), bound by the first event accepted with them.
    bound: jurisdiction::Bindings,
    /// `policy.office_hours`, parsed once (a validated policy always parses; an unparsable one
    /// leaves no office time, and `window.unstaffed` never fires).
    office_hours: OfficeHours,
    /// `data.placeholder_staff` firings per staff id, source and day.
    placeholders: integrity::Placeholders,
    /// The feeds (`source.*`).
    sources: sources::Sources,
    /// The completion report of the case the last event applied to ([`NEVER`]: none), for
    /// `source.not_live`.
    case_done_report: T32,
    /// The clock is being advanced explicitly (`advance_to`), not by an event.
    advancing: bool,
    /// Revisions are built lean ([`Engine::lean_revisions`]).
    lean_revisions: bool,
    /// What [`Engine::lookahead`] worked out for the events ahead (not state).
    ahead: Ahead,
    /// The alerts of one timer instant before they are put in order (`fire_timers`), kept
    /// between calls so that its room is not allocated again for every instant (not state).
    timer_batch: Vec<(String, Alert)>,
}

/// The hashes [`Engine::lookahead`] computed for an event `LOOKAHEAD` places ahead, kept so
/// that the prefetch of its case half-way and [`Engine::on_event`] need not compute them
/// again (the duplicate filter's id and the case's hash were a third of an event's hashing).
/// Entries are matched by the event's batch index and address, and the case hash by the
/// region symbol it was computed with: a mismatch of any is simply computed again.
#[derive(Debug, Clone, Default)]
struct Ahead {
    ring: [Option<Hashed>; 2 * LOOKAHEAD],
    /// The batch index of the event the driver applies next.
    next: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Hashed {
    index: usize,
    addr: usize,
    id: table::IdHash,
    region: Sym,
    case: Option<KeyHash>,
}

/// An event's address, to recognise it (never dereferenced).
fn addr(ev: &Event<'_>) -> usize {
    std::ptr::from_ref(ev) as usize
}

impl Ahead {
    /// The entry of the event at `index` and `addr`, if one was computed for it.
    fn get(&self, index: usize, addr: usize) -> Option<Hashed> {
        self.ring[index % self.ring.len()].filter(|h| h.index == index && h.addr == addr)
    }
}

impl Engine {
    /// A fresh engine.
    pub fn new(reference: Arc<Reference>, policy: Policy) -> Engine {
        let mut symbols = Symbols::default();
        let mut board = Board::default();
        board.sync_reference(&reference, &mut symbols);
        Engine {
            dedup: Dedup::new(policy.dedup_capacity as usize),
            office_hours: policy.office_hours().unwrap_or_default(),
            reference,
            policy,
            symbols,
            board,
            bound: jurisdiction::Bindings::default(),
            region: NONE,
            center: NONE,
            hot: HotSymbols::default(),
            cases: Slab::default(),
            matters: Slab::default(),
            people: People::default(),
            departed: Departed::default(),
            timers: timers::Timers::default(),
            clock: Instant(i64::MIN),
            stats: Stats::default(),
            facts: None,
            activities: Vec::new(),
            placeholders: integrity::Placeholders::default(),
            sources: sources::Sources::default(),
            case_done_report: NEVER,
            advancing: false,
            lean_revisions: false,
            ahead: Ahead::default(),
            timer_batch: Vec::new(),
        }
    }

    /// Build the revisions of a finished case's standing alerts lean: right ids, subjects and
    /// revision numbers (which later lines follow), no message or evidence. For a driver that
    /// drops every revision, as `jiancha replay` does ([`Alert::is_revision`]); its printed
    /// lines are the same either way. Off by default: stores and dashboards show revisions.
    pub fn lean_revisions(&mut self, on: bool) {
        self.lean_revisions = on;
    }

    /// Whether revisions are built lean ([`Engine::lean_revisions`]).
    pub fn builds_lean_revisions(&self) -> bool {
        self.lean_revisions
    }

    /// Start (or stop) collecting a [`CaseFact`] for every finished case; the driver takes them
    /// with [`Engine::drain_facts`]. Off by default (replay has no use for them). Not part of a
    /// snapshot: drain before taking one, and switch it on again after a restore.
    pub fn collect_facts(&mut self, on: bool) {
        self.facts = on.then(Vec::new);
    }

    /// The acceptances, ratings and complaints collected since the last call (while
    /// [`Engine::collect_facts`] is on).
    pub fn drain_activities(&mut self) -> Vec<crate::fact::Activity> {
        std::mem::take(&mut self.activities)
    }

    /// Record an activity when facts are collected.
    fn activity(
        &mut self,
        kind: crate::fact::ActivityKind,
        id: &str,
        who: explain::Attribution,
        at: Instant,
        value: i32,
    ) {
        if self.facts.is_some() {
            self.activities
                .push(crate::fact::Activity::new(kind, id, who, at, value));
        }
    }

    /// The finished-case records collected since the last call.
    pub fn drain_facts(&mut self) -> Vec<CaseFact> {
        self.facts.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The engine clock: the largest event time seen or advanced to.
    pub fn clock(&self) -> Instant {
        self.clock
    }

    /// Cases held in memory (open ones and recently finished ones).
    pub fn tracked_cases(&self) -> usize {
        self.cases.len()
    }

    /// Complaints, bad evaluations and case-less fees held in memory.
    pub fn tracked_matters(&self) -> usize {
        self.matters.len()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn retention_secs(&self) -> i64 {
        i64::from(self.policy.closed_case_retention_days) * 86_400
    }

    /// Start loading what a coming event will need, for callers that hold a batch of decoded
    /// events: call [`Engine::lookahead`] before each `on_event`. The engine waits on memory
    /// (a million cases do not fit in cache); loads started a few events ahead arrive while
    /// the events before are applied. A hint only: results never depend on it. Call it with
    /// `i` from 0 for each batch, then `on_event(batch[i])`: the hashes it computes for an
    /// event are reused when that event is applied, and only then.
    pub fn lookahead<'b, T>(
        &mut self,
        batch: &'b [T],
        i: usize,
        event: impl Fn(&'b T) -> Option<&'b Event<'b>>,
    ) {
        if i == 0 {
            // A new batch: what was computed for another (perhaps at the same addresses) is
            // no one's.
            self.ahead.ring = Default::default();
        }
        // First the duplicate filter and the case's index entry; a few events later, with that
        // entry in cache, the case it points to; then what the case points to.
        let far = i + LOOKAHEAD;
        if let Some(ev) = batch.get(far).and_then(&event) {
            let id = event_hash(ev);
            self.dedup.prefetch(id);
            let region = self.hot.lookup(&self.symbols, &ev.region).unwrap_or(NONE);
            let case = self.case_hash_in(ev, region);
            if let Some(h) = case {
                self.cases.prefetch(h);
            }
            let len = self.ahead.ring.len();
            self.ahead.ring[far % len] = Some(Hashed {
                index: far,
                addr: addr(ev),
                id,
                region,
                case,
            });
        }
        let near = i + LOOKAHEAD / 2;
        if let Some(ev) = batch.get(near).and_then(&event) {
            let case = match self.ahead.get(near, addr(ev)) {
                Some(h) => h.case,
                None => self.case_hash(ev),
            };
            if let Some(h) = case {
                self.cases.prefetch_value(h);
            }
        }
        // Last, two events ahead, with the case in cache by now: what it points to.
        let soon = i + LOOKAHEAD / 4;
        if let Some(ev) = batch.get(soon).and_then(&event) {
            let hinted = self.ahead.get(soon, addr(ev)).and_then(|h| h.case);
            if let Some(case) = hinted.and_then(|h| self.cases.hinted(h)) {
                case.prefetch_parts();
            }
        }
        self.ahead.next = Some(i);
    }

    /// The hash of the event's case in the cases table (its id within its region), for a
    /// `case.*` event.
    fn case_hash(&self, ev: &Event<'_>) -> Option<KeyHash> {
        let region = self.hot.lookup(&self.symbols, &ev.region).unwrap_or(NONE);
        self.case_hash_in(ev, region)
    }

    /// [`Engine::case_hash`] with the region's symbol known.
    fn case_hash_in(&self, ev: &Event<'_>, region: Sym) -> Option<KeyHash> {
        let case = ev.case_id.as_deref()?;
        ev.body
            .kind()
            .is_case()
            .then(|| self.cases.key_hash(case, region))
    }

    /// Apply one event. First every timer due at or before its `occurred_at` fires (SPEC §8),
    /// then the event is applied and whatever it makes due fires. Alerts are appended to `out`.
    pub fn on_event(&mut self, ev: &Event<'_>, out: &mut Vec<Alert>) -> Result<Outcome, Rejection> {
        // Hash once and start the loads this event will need (the duplicate filter, the case
        // index) together: their cache misses then overlap instead of queueing. The lookahead
        // may have hashed it already.
        let ahead = (self.ahead.next.take()).and_then(|i| self.ahead.get(i, addr(ev)));
        let id = ahead.map_or_else(|| event_hash(ev), |h| h.id);
        self.dedup.prefetch(id);
        // The event's region and centre as symbols first: cases are keyed within the region.
        self.region = self.hot.intern(&mut self.symbols, &ev.region);
        self.center = self.hot.intern(&mut self.symbols, &ev.center_id);
        let case = match ahead {
            Some(h) if h.region == self.region => h.case,
            _ => self.case_hash_in(ev, self.region),
        };
        let case = case.and_then(|h| Some((ev.case_id.as_deref()?, h)));
        if let Some((_, h)) = case {
            self.cases.prefetch(h);
        }
        if self.dedup.contains(id) {
            self.stats.duplicates += 1;
            return Ok(Outcome::Duplicate);
        }
        self.check(ev, case.map(|(_, h)| h))?;
        let correction = self.check_correction(ev)?;
        // A version of a row that supersedes one not seen yet, or the older version arriving
        // after the one that supersedes it (correct.rs).
        let (unseen, newer) = match correction {
            correct::Correcting::Of(_) => (None, None),
            _ => (self.unseen_target(ev), self.newer_version(id.0, case)),
        };
        let start = out.len();
        self.sources.note(&ev.region, t32(ev.occurred_at));
        self.fire_timers(ev.occurred_at, out);
        let own = out.len();
        self.dedup.insert(id);
        self.stats.applied += 1;
        if let Some((slot, newer)) = newer {
            self.late_version(slot, ev, (id.0, newer), out);
            // Still a report of its feed; not an act (the newer version is the act).
            self.integrity(ev, Outcome::Inconsistent("superseded"), out);
            self.ladder_pass(out, start);
            return Ok(Outcome::Applied);
        }
        let unseen_original = matches!(correction, correct::Correcting::Unseen);
        if let correct::Correcting::Of(target) = correction {
            // A correcting case event is applied within the correction (the case is rebuilt
            // with it); a withdrawal, or a correction of another kind, goes on as usual.
            if self.correct(target, ev, out) {
                // The correcting event is still a report of its feed (`source.*`) and an act
                // of its staff member (`data.placeholder_staff`).
                self.integrity(ev, Outcome::Applied, out);
                self.ladder_pass(out, start);
                return Ok(Outcome::Applied);
            }
        }
        let outcome = match &ev.body {
            Body::FeeCharged {
                receipt_no,
                amount_fen,
                payer_id,
            } => self.on_fee(ev, receipt_no, *amount_fen, payer_id, out),
            Body::ComplaintFiled {
                complaint_id,
                category,
            } => self.on_complaint_filed(ev, complaint_id, *category, out),
            Body::ComplaintResolved {
                complaint_id,
                substantiated,
            } => self.on_complaint_resolved(ev, complaint_id, *substantiated, out),
            Body::EvaluationSubmitted {
                evaluation_id,
                score,
            } => self.on_evaluation(ev, evaluation_id, *score, out),
            Body::EvaluationRectified { evaluation_id } => {
                self.on_rectified(ev, evaluation_id, out)
            }
            Body::StaffSignedIn
            | Body::StaffSignedOut
            | Body::WindowOpened
            | Body::WindowPaused
            | Body::WindowClosed
            | Body::TicketIssued { .. }
            | Body::TicketCalled { .. } => self.on_window_event(ev, out),
            _ => match case {
                Some((case_id, h)) => self.apply_case(case_id, h, ev, out),
                None => Outcome::Applied,
            },
        };
        if let Some(target) = unseen {
            self.note_unseen(case.map(|c| c.0), (target, id.0));
        }
        self.integrity(ev, outcome, out);
        self.late_report(ev, out);
        if unseen_original {
            explain::supersedes_unseen(ev, &mut out[own..]);
        }
        if let Outcome::Inconsistent(_) = outcome {
            self.stats.inconsistent += 1;
        }
        self.ladder_pass(out, start);
        Ok(outcome)
    }

    /// The rules about the feed an event came from: `data.placeholder_staff` for an acceptance
    /// or stage by a placeholder account, and the event's report for `source.*`.
    fn integrity(&mut self, ev: &Event<'_>, outcome: Outcome, out: &mut Vec<Alert>) {
        let kind = ev.body.kind();
        let act = matches!(
            kind,
            crate::event::Kind::CaseAccepted | crate::event::Kind::CaseStage
        );
        if act && outcome == Outcome::Applied && ev.staff_id.is_some() {
            if let Some(alert) =
                self.placeholders
                    .on_act(&self.policy, ev, || event_hash(ev).0, self.clock)
            {
                self.emit(out, alert);
            }
        }
        let Some(source) = ev.source.as_deref() else {
            return;
        };
        let at = t32(integrity::report_time(ev));
        let done = std::mem::replace(&mut self.case_done_report, NEVER);
        let case_event = (kind.is_case() && kind != crate::event::Kind::CaseCompleted)
            .then_some(done != NEVER && at > done);
        let report = sources::Report {
            region: &ev.region,
            source,
            center: &ev.center_id,
            at,
            day: ev.occurred_at.day(),
            case_event,
        };
        let env = sources::Env {
            cal: &self.reference.calendar,
            office: &self.office_hours,
            policy: &self.policy,
        };
        let mut alerts = Vec::new();
        self.sources
            .on_report(env, &report, ev, self.clock, &mut alerts);
        for alert in alerts {
            self.emit(out, alert);
        }
    }

    /// Move the clock to `now`, firing every timer due at or before it, in time order.
    pub fn advance_to(&mut self, now: Instant, out: &mut Vec<Alert>) {
        let start = out.len();
        // An explicit advance (`--until`, the wall clock) judges every region's feeds.
        self.advancing = true;
        self.fire_timers(now, out);
        self.advancing = false;
        self.ladder_pass(out, start);
    }

    fn fire_timers(&mut self, now: Instant, out: &mut Vec<Alert>) {
        if now.0 == i64::MIN {
            return;
        }
        self.board.start(now);
        let mut batch = std::mem::take(&mut self.timer_batch);
        loop {
            let case_due = self.timers.peek().map(|&(d, _, _)| d);
            let sources_due = self.sources.next_due(self.advancing);
            let due = [case_due, self.board.next_due(), sources_due]
                .into_iter()
                .flatten()
                .min();
            // The board's day changes at midnight, after every timer due at or before it: to
            // the day before the next timer due by `now` (so it fires first), else `now`'s day.
            let midnight = self.board.day_end();
            if midnight <= now && due.is_none_or(|d| inst(d) > midnight) {
                let to = match due.filter(|d| inst(*d) <= now) {
                    Some(d) => inst(d).plus_secs(-1).day(),
                    None => now.day(),
                };
                self.roll_over(to);
                continue;
            }
            let Some(due) = due.filter(|d| inst(*d) <= now) else {
                break;
            };
            while let Some(&(d, slot, generation)) = self.timers.peek() {
                if d != due {
                    break;
                }
                self.timers.pop();
                if slot & MATTER != 0 {
                    self.on_matter_timer(slot & !MATTER, generation, due, &mut batch);
                } else {
                    self.on_case_timer(slot, generation, due, &mut batch);
                }
            }
            self.fire_board(due, &mut batch);
            // The feeds only when one of them is due now.
            if sources_due == Some(due) {
                let env = sources::Env {
                    cal: &self.reference.calendar,
                    office: &self.office_hours,
                    policy: &self.policy,
                };
                self.sources.fire(env, due, self.advancing, &mut batch);
            }
            emit_in_key_order(&mut batch, out);
        }
        // The room of an ordinary instant is kept; that of the rare instant when thousands of
        // deadlines fall together is given back.
        if batch.capacity() <= 1024 {
            self.timer_batch = batch;
        }
        self.clock = self.clock.max(now);
    }

    /// Refuse events the engine cannot use (they go to the dead-letter store): one whose ids
    /// cross jurisdictions (checked in the order of SPEC §3's fields), then an acceptance of an
    /// item nobody knows the limits of. Nothing is changed unless the event passes.
    fn check(&mut self, ev: &Event<'_>, case: Option<KeyHash>) -> Result<(), Rejection> {
        let unlisted = self.check_jurisdiction(ev, case)?;
        if let Body::CaseAccepted { overrides, .. } = &ev.body {
            let code = ev.item_code.as_deref().unwrap_or("");
            let has_limit =
                overrides.promised.is_some() || overrides.case_type == Some(CaseType::Instant);
            if !has_limit && self.reference.item_id(code).is_none() {
                return Err(Rejection::UnknownItem(code.to_string()));
            }
        }
        self.bind_unlisted(&unlisted);
        Ok(())
    }

    fn on_case_timer(
        &mut self,
        slot: u32,
        generation: u32,
        due: T32,
        batch: &mut Vec<(String, Alert)>,
    ) {
        if self.cases.generation(slot) != generation {
            return;
        }
        let Some(case) = self.cases.get_mut(slot) else {
            return;
        };
        if case.timer_due != due {
            return;
        }
        case.timer_due = NEVER;
        let mut fired = Vec::new();
        self.settle(slot, inst(due), &mut fired);
        // Sort key of the batch (see `fire_timers`): the case id, as the alerts carry it.
        batch.extend(
            fired
                .into_iter()
                .map(|a| (format!("c{}", a.case_id.as_deref().unwrap_or_default()), a)),
        );
    }

    fn on_matter_timer(
        &mut self,
        slot: u32,
        generation: u32,
        due: T32,
        batch: &mut Vec<(String, Alert)>,
    ) {
        if self.matters.generation(slot) != generation {
            return;
        }
        let Some(matter) = self.matters.get_mut(slot) else {
            return;
        };
        if matter.timer_due != due {
            return;
        }
        matter.timer_due = NEVER;
        let mut fired = Vec::new();
        self.settle_matter(slot, inst(due), &mut fired);
        if !fired.is_empty() {
            let key = format!("m{}", self.matters.get(slot).map_or("", |m| m.key.as_str()));
            batch.extend(fired.into_iter().map(|a| (key.clone(), a)));
        }
    }

    /// Fire every pending alert of the case due at or before `now`, then put its next deadline
    /// (or the time it may be forgotten) on the timer heap.
    fn settle(&mut self, slot: u32, now: Instant, out: &mut Vec<Alert>) {
        let retention = self.retention_secs();
        let Engine {
            reference,
            policy,
            office_hours,
            symbols,
            cases,
            timers,
            board,
            ..
        } = self;
        let ctx = Ctx::of(reference, policy, office_hours);
        let generation = cases.generation(slot);
        let Some(case) = cases.get_mut(slot) else {
            return;
        };
        let start = out.len();
        let next = fire_pending(ctx, symbols, case, now, out, &mut self.stats, Some(board));
        correct::follow_revisions(case, &mut out[start..], false);
        // A finished case (or one known only from fees) is forgotten after the retention, but
        // never while one of its deadlines is still to come.
        let forget = if case.closed_at != NEVER {
            Some(inst(case.closed_at).plus_secs(retention))
        } else {
            case.fee_only_since().map(|t| inst(t).plus_secs(retention))
        };
        match plan(next, forget, now) {
            Plan::Forget => {
                if case.channel == Some(crate::event::Channel::Hall) && case.accepted_at != NEVER {
                    let keep = self.policy.fee_case_memory_days.saturating_mul(86_400);
                    let id = case.id.as_str().to_owned();
                    let region = self.symbols.get(case.who.region).unwrap_or_default();
                    self.departed
                        .remember(region, &id, case.accepted_at, t32(now), keep);
                }
                cases.remove(slot);
                self.stats.evicted += 1;
            }
            Plan::Wake(at) => arm(&mut case.timer_due, at, timers, slot, generation),
            Plan::Sleep => {}
        }
    }

    /// The same for a matter; a case-less fee is forgotten as soon as it has been judged.
    fn settle_matter(&mut self, slot: u32, now: Instant, out: &mut Vec<Alert>) {
        let retention = self.retention_secs();
        let Engine {
            reference,
            policy,
            office_hours,
            symbols,
            matters,
            timers,
            ..
        } = self;
        let ctx = Ctx::of(reference, policy, office_hours);
        let generation = matters.generation(slot);
        let Some(matter) = matters.get_mut(slot) else {
            return;
        };
        let mut next = None;
        for (at, due) in matter.pending(ctx) {
            if at > now {
                next = Some(at);
                break;
            }
            out.push(matter.alert(ctx, symbols, due, at));
            self.stats.alerts += 1;
            matter.mark_fired(due);
        }
        match plan(next, matter.forget_at(ctx, retention), now) {
            Plan::Forget => {
                matters.remove(slot);
            }
            Plan::Wake(at) => arm(&mut matter.timer_due, at, timers, slot | MATTER, generation),
            Plan::Sleep => {}
        }
    }

    fn apply_case(
        &mut self,
        case_id: &str,
        h: KeyHash,
        ev: &Event<'_>,
        out: &mut Vec<Alert>,
    ) -> Outcome {
        let region = self.region;
        let (slot, _) = self
            .cases
            .find_or_insert_hashed(h, case_id, region, || Case::new(case_id, region));
        let t = t32(ev.occurred_at);
        let outcome = {
            let Engine {
                reference,
                policy,
                office_hours,
                symbols,
                cases,
                stats,
                people,
                clock,
                lean_revisions,
                ..
            } = self;
            let ctx = Ctx {
                lean_revisions: *lean_revisions,
                ..Ctx::of(reference, policy, office_hours)
            };
            let Some(case) = cases.get_mut(slot) else {
                return Outcome::Applied;
            };
            let named = case.who.named(ev, symbols);
            if policy.case_history {
                case.history.record(ev, *clock, symbols, &named);
            }
            apply::attribute(case, ev, &named, symbols, reference);
            let start = out.len();
            let mut sink = apply::Sink {
                ctx,
                ev,
                t,
                out,
                stats,
                people,
            };
            let outcome = apply::apply(ctx, symbols, case, ev, t, &mut sink);
            correct::follow_revisions(case, &mut out[start..], false);
            // Its activity record, when facts are kept (not in replay).
            let accepted = (outcome == Outcome::Applied
                && ev.body.kind() == crate::event::Kind::CaseAccepted
                && self.facts.is_some())
            .then(|| explain::Attribution::of_case(symbols, case));
            // The window's live status: an outcome there, and a case that left its count of
            // overdue cases by ending.
            let at_window = (outcome == Outcome::Applied && ev.window_id.is_some())
                .then_some((case.who, case.accepted_at));
            // Ended, or its 黄牌 retracted by a late pause or extension: out of the count.
            let yellow = case.fired & case::fired::YELLOW != 0;
            let ended = if case.closed_at != NEVER || !yellow {
                case.extras.as_mut().and_then(|x| x.overdue_window.take())
            } else {
                None
            };
            // A finished case's record, once both its acceptance and completion are known
            // (they may arrive in either order).
            if let Some(facts) = self.facts.as_mut() {
                if case.fired & case::fired::FACT == 0 {
                    if let Some(fact) = explain::fact(ctx, symbols, case) {
                        case.fired |= case::fired::FACT;
                        facts.push(fact);
                    }
                }
            }
            let done = case.completion_report();
            (outcome, at_window, ended, accepted, done)
        };
        let (outcome, at_window, ended, accepted, done) = outcome;
        self.case_done_report = done;
        if let Some(who) = accepted {
            let kind = crate::fact::ActivityKind::Accepted;
            self.activity(kind, case_id, who, ev.occurred_at, 0);
        }
        if let Some(w) = ended {
            self.board.overdue_remove(w, t);
        }
        if let Some((who, accepted_at)) = at_window {
            let kind = ev.body.kind();
            self.board
                .case_event(who.window, who.center, who.region, kind, t, accepted_at);
        }
        self.settle(slot, self.clock, out);
        outcome
    }

    /// Count every card just emitted on its staff member's ladder (一告知二谈话三通报四辞退):
    /// an open card is added, a retracted one taken off, and each step the change issues,
    /// moves or takes back comes right after the card (`ladder::Ladder`).
    fn ladder_pass(&mut self, out: &mut Vec<Alert>, start: usize) {
        // A revision is a card already counted, shown again with its case's new state.
        let card = |alert: &Alert| {
            alert.rule.counts_for_ladder()
                && alert.level != Level::Warning
                && !alert.is_revision()
                && alert.staff_id.is_some()
        };
        // Most events emit no card: their alerts stay where they are.
        let Some(first) = out[start..].iter().position(card) else {
            return;
        };
        let tail: Vec<Alert> = out.drain(start + first..).collect();
        let mut changes = Vec::new();
        for alert in tail {
            if let (Some(staff), true) = (alert.staff_id.clone(), card(&alert)) {
                let sym = self.symbols.intern(&staff);
                let year = alert.fired_at.day().year();
                let card = ladder::Card::of(&alert, &mut self.symbols);
                let mut alert = alert;
                // A card counts where it was first counted; its retraction is taken off there.
                let owner = match alert.status {
                    AlertStatus::Retracted => self.people.disown_card(&alert.alert_id),
                    _ => Some(self.people.own_card(&alert.alert_id, sym, year)),
                };
                let (sym, year) = owner.unwrap_or((sym, year));
                let staff = self.symbols.owned(sym).unwrap_or(staff);
                alert.staff_id = Some(staff.clone());
                let ladder = self.people.ladder(sym, year);
                match alert.status {
                    AlertStatus::Open => ladder.add(card, &mut changes),
                    AlertStatus::Retracted => ladder.remove(card, &mut changes),
                    _ => {}
                }
                out.push(alert);
                for change in changes.drain(..) {
                    self.stats.alerts += 1;
                    out.push(hall::ladder(&staff, year, change, &self.symbols));
                }
            } else {
                out.push(alert);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::event::{Channel, CompletionResult, LimitOverrides, Unit};
    use crate::reference::Limit;
    use crate::time::parse_rfc3339;

    #[test]
    fn timer_alerts_come_out_in_the_stable_order_of_their_keys() {
        // Keys from a small alphabet (many ties, like a case's warning, yellow and red), the
        // values numbering the arrival: the answer must be a stable sort's, sorted or not.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for n in [0, 1, 2, 5, 40, 300] {
            for sorted in [false, true] {
                let mut batch: Vec<(String, usize)> = (0..n)
                    .map(|i| (format!("c{}", next() % (n / 3 + 1)), i))
                    .collect();
                if sorted {
                    batch.sort_by(|a, b| a.0.cmp(&b.0));
                }
                let mut want = batch.clone();
                want.sort_by(|a, b| a.0.cmp(&b.0));
                let want: Vec<usize> = want.into_iter().map(|(_, v)| v).collect();
                let mut out = vec![usize::MAX];
                emit_in_key_order(&mut batch, &mut out);
                assert_eq!(out[0], usize::MAX, "appended after what was there");
                assert_eq!(out[1..], want[..], "{n} keys, sorted: {sorted}");
                assert!(batch.is_empty());
            }
        }
    }

    fn engine(policy: Policy) -> Engine {
        let reference = Reference::parse(&crate::synth::reference_files()).expect("reference");
        Engine::new(Arc::new(reference), policy)
    }

    fn ev<'a>(id: &'a str, at: &str, case: &'a str, body: Body<'a>) -> Event<'a> {
        Event {
            event_id: Cow::Borrowed(id),
            occurred_at: parse_rfc3339(at).expect("timestamp"),
            reported_at: None,
            received_at: None,
            center_id: Cow::Borrowed("C0"),
            region: Cow::Borrowed("430620"),
            department: None,
            window_id: None,
            staff_id: None,
            case_id: Some(Cow::Borrowed(case)),
            item_code: Some(Cow::Borrowed("I001")),
            source: None,
            supersedes: None,
            body,
        }
    }

    /// A hall acceptance promised in one working day.
    fn accepted_in_one_working_day() -> Body<'static> {
        accepted(LimitOverrides {
            promised: Some(Limit {
                days: 1,
                unit: Unit::Working,
            }),
            ..LimitOverrides::default()
        })
    }

    fn accepted(overrides: LimitOverrides) -> Body<'static> {
        Body::CaseAccepted {
            channel: Channel::Hall,
            overrides,
        }
    }

    /// A completion that raises nothing by itself (an approval without stages would be
    /// `hall.missing_stages`).
    fn completed() -> Body<'static> {
        Body::CaseCompleted {
            result: CompletionResult::Denied,
        }
    }

    /// The alerts on record (last word per id, retracted ones left out): id → (level, fired_at).
    /// `data.corrected` judges corrections, which a corrected stream has none of: left out.
    fn record(out: &[Alert]) -> std::collections::BTreeMap<String, (Level, Instant)> {
        let mut last = std::collections::BTreeMap::new();
        for a in out {
            last.insert(a.alert_id.clone(), a);
        }
        last.into_iter()
            .filter(|(_, a)| {
                a.status != AlertStatus::Retracted && a.rule != crate::alert::Rule::DataCorrected
            })
            .map(|(id, a)| (id, (a.level, a.fired_at)))
            .collect()
    }

    /// The lookahead's hashes are only used for the event they were computed for: two
    /// batches in one buffer (the same addresses, other events) give, event by event, the
    /// outcomes and alerts of applying every event without lookahead.
    #[test]
    fn lookahead_over_a_reused_buffer_changes_nothing() {
        let ids: Vec<String> = (0..48).map(|i| format!("x{i}")).collect();
        let cases: Vec<String> = (0..24).map(|i| format!("K{i}")).collect();
        let accept = |i: usize| {
            let at = "2026-03-02T10:00:00+08:00";
            ev(&ids[i], at, &cases[i], accepted_in_one_working_day())
        };
        // The same cases completed in the other order, late (the case clocks' alerts); longer
        // than the lookahead's ring, so that it wraps within a batch.
        let complete = |i: usize| {
            ev(
                &ids[24 + i],
                "2026-03-05T10:00:00+08:00",
                &cases[23 - i],
                completed(),
            )
        };
        let first: Vec<Event<'_>> = (0..24).map(accept).collect();
        let second: Vec<Event<'_>> = (0..24).map(complete).collect();
        let line = |o: Result<Outcome, Rejection>, alerts: &mut Vec<Alert>| {
            let alerts: Vec<String> = alerts
                .drain(..)
                .map(|a| serde_json::to_string(&a).unwrap())
                .collect();
            format!("{o:?} {alerts:?}")
        };
        let mut plain = engine(Policy::default());
        let mut out = Vec::new();
        let want: Vec<String> = (first.iter().chain(&second))
            .map(|e| line(plain.on_event(e, &mut out), &mut out))
            .collect();
        let mut ahead = engine(Policy::default());
        let mut got = Vec::new();
        let mut buf: Vec<Event<'_>> = Vec::with_capacity(24);
        for batch in [&first, &second] {
            buf.clear();
            buf.extend(batch.iter().cloned());
            for i in 0..buf.len() {
                ahead.lookahead(&buf, i, Some);
                got.push(line(ahead.on_event(&buf[i], &mut out), &mut out));
            }
        }
        assert!(
            want.iter().filter(|l| l.contains("case.overdue")).count() >= 24,
            "{want:?}"
        );
        assert_eq!(got, want);
    }

    /// What a replay of `events` then `until` leaves on record.
    fn replayed(
        events: &[&Event<'_>],
        until: &str,
    ) -> std::collections::BTreeMap<String, (Level, Instant)> {
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        for ev in events {
            e.on_event(ev, &mut out).expect("applied");
        }
        e.advance_to(parse_rfc3339(until).expect("t"), &mut out);
        record(&out)
    }

    /// A correction's replays keep the case's alerts as recipes and build in full only the
    /// lines they emit (`explain::Recipes`): those lines are, message, attribution and
    /// evidence included, the lines a replay of the corrected stream builds, with the
    /// correction named in `corrected_by`; and the lines that a correction retracts are the
    /// ones on record.
    #[test]
    fn corrected_lines_are_built_as_a_replay_builds_them() {
        let at = |s| parse_rfc3339(s).expect("t");
        let e1 = ev(
            "e1",
            "2026-03-02T10:00:00+08:00",
            "K1",
            accepted_in_one_working_day(),
        );
        let e1b = ev(
            "e1b",
            "2026-03-03T10:00:00+08:00",
            "K1",
            accepted_in_one_working_day(),
        );
        let moved = Event {
            supersedes: Some(Cow::Borrowed("e1")),
            ..e1b.clone()
        };
        let mut e = engine(Policy::default());
        let mut on_record = Vec::new();
        e.on_event(&e1, &mut on_record).expect("ok");
        e.advance_to(at("2026-03-10T09:00:00+08:00"), &mut on_record);
        let mut out = Vec::new();
        e.on_event(&moved, &mut out).expect("ok");

        let mut r = engine(Policy::default());
        let mut replay = Vec::new();
        r.advance_to(at("2026-03-10T09:00:00+08:00"), &mut replay);
        r.on_event(&e1b, &mut replay).expect("ok");

        let without_correction = |a: &Alert| {
            let mut a = a.clone();
            if let Some(m) = a.evidence.as_object_mut() {
                m.remove("corrected_by");
            }
            a.revision = 0;
            a
        };
        let fired: Vec<_> = out
            .iter()
            .filter(|a| a.status == AlertStatus::Open)
            .collect();
        assert!(
            fired.len() >= 2,
            "the moved warning and cards fire again: {out:?}"
        );
        for a in fired {
            assert_eq!(a.evidence["corrected_by"]["corrects"], "e1");
            let want = replay
                .iter()
                .find(|b| b.alert_id == a.alert_id)
                .expect("the replay has it");
            assert_eq!(without_correction(a), without_correction(want));
        }
        // Withdrawn: every line on record is retracted, as it was on record.
        on_record.append(&mut out);
        let w = Event {
            body: Body::EventWithdrawn {
                withdraws: Cow::Borrowed("e1b"),
            },
            ..ev("w1", "2026-03-10T09:00:00+08:00", "K1", completed())
        };
        e.on_event(&w, &mut out).expect("ok");
        let retracted: Vec<_> = out
            .iter()
            .filter(|a| a.status == AlertStatus::Retracted)
            .collect();
        assert!(retracted.len() >= 3, "the warning and the cards: {out:?}");
        for a in retracted {
            let was = on_record
                .iter()
                .rfind(|b| b.alert_id == a.alert_id)
                .expect("on record");
            let why = "（事件 e1b 已被撤回，更正后的记录不支持此告警）";
            assert_eq!(a.message, format!("已撤销：{}{why}", was.message));
            let mut evidence = a.evidence.clone();
            if let Some(m) = evidence.as_object_mut() {
                m.remove("retracted_by");
            }
            assert_eq!(evidence, without_correction(was).evidence);
        }
    }

    /// SPEC §3 Corrections, worked by hand. K1 is accepted on Mon 03-02 with 1 working day
    /// (D = 03-03: 预警 03-03T00, 黄牌 03-04T00) and completed on time the same afternoon.
    /// - Withdrawing the completion on 03-05 makes the case overdue again: 预警 and 黄牌 fire
    ///   with the instants a replay without the completion gives.
    /// - A new version of the acceptance dated 03-04 moves D to 03-05: the 黄牌 of 03-04 is
    ///   retracted and the 预警 fires again at 03-05T00.
    /// - A chain has one head; a withdrawn event cannot be withdrawn again.
    #[test]
    fn corrections_leave_what_a_replay_of_the_corrected_stream_gives() {
        let withdraw = |id: &'static str, of: &'static str, at: &'static str| Event {
            body: Body::EventWithdrawn {
                withdraws: Cow::Borrowed(of),
            },
            ..ev(id, at, "K1", completed())
        };
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        let e1 = ev(
            "e1",
            "2026-03-02T10:00:00+08:00",
            "K1",
            accepted_in_one_working_day(),
        );
        let e2 = ev("e2", "2026-03-02T15:00:00+08:00", "K1", completed());
        e.on_event(&e1, &mut out).expect("ok");
        e.on_event(&e2, &mut out).expect("ok");
        e.advance_to(
            parse_rfc3339("2026-03-05T09:00:00+08:00").expect("t"),
            &mut out,
        );
        assert!(record(&out).is_empty(), "on time: {out:?}");

        let w = withdraw("w1", "e2", "2026-03-05T10:00:00+08:00");
        assert_eq!(e.on_event(&w, &mut out), Ok(Outcome::Applied));
        let want = replayed(&[&e1], "2026-03-05T10:00:00+08:00");
        assert_eq!(record(&out), want);
        let at = |s| parse_rfc3339(s).expect("t");
        let fired: Vec<_> = want.values().copied().collect();
        assert!(fired.contains(&(Level::Warning, at("2026-03-03T00:00:00+08:00"))));
        assert!(fired.contains(&(Level::Yellow, at("2026-03-04T00:00:00+08:00"))));
        let yellow = out
            .iter()
            .rfind(|a| a.level == Level::Yellow && a.rule == crate::alert::Rule::CaseOverdue)
            .expect("yellow");
        assert_eq!(yellow.evidence["corrected_by"]["corrects"], "e2");
        // Withdrawn 67 hours after it was reported: data.corrected, yellow (a completion).
        let finding = out.last().expect("finding");
        assert_eq!(
            (finding.rule, finding.level),
            (crate::alert::Rule::DataCorrected, Level::Yellow)
        );

        // Withdrawn already: unknown_event; and it changed nothing.
        let again = withdraw("w2", "e2", "2026-03-05T10:01:00+08:00");
        let n = out.len();
        let refused = e.on_event(&again, &mut out).expect_err("withdrawn already");
        assert_eq!(refused.code(), "unknown_event");
        assert_eq!(out.len(), n);

        let mut e1v2 = ev(
            "e1v2",
            "2026-03-04T10:00:00+08:00",
            "K1",
            accepted_in_one_working_day(),
        );
        e1v2.supersedes = Some(Cow::Borrowed("e1"));
        assert_eq!(e.on_event(&e1v2, &mut out), Ok(Outcome::Applied));
        let plain = Event {
            supersedes: None,
            ..e1v2.clone()
        };
        let want = replayed(&[&plain], "2026-03-05T10:02:00+08:00");
        e.advance_to(at("2026-03-05T10:02:00+08:00"), &mut out);
        assert_eq!(record(&out), want);
        assert_eq!(
            want.values().copied().collect::<Vec<_>>(),
            vec![(Level::Warning, at("2026-03-05T00:00:00+08:00"))]
        );
        let retracted = out
            .iter()
            .rfind(|a| a.status == AlertStatus::Retracted)
            .expect("the 03-04 yellow card is taken back");
        assert_eq!(retracted.level, Level::Yellow);
        assert!(
            retracted.message.contains("事件 e1 已被更正"),
            "{}",
            retracted.message
        );

        let mut e1v3 = ev(
            "e1v3",
            "2026-03-04T11:00:00+08:00",
            "K1",
            accepted_in_one_working_day(),
        );
        e1v3.supersedes = Some(Cow::Borrowed("e1"));
        let refused = e.on_event(&e1v3, &mut out).expect_err("chain has one head");
        assert_eq!(refused.code(), "already_superseded");
        // A supersedes of an event never seen is a new event (a feed joined mid-history).
        let mut k2 = ev(
            "k2v2",
            "2026-03-05T10:03:00+08:00",
            "K2",
            accepted_in_one_working_day(),
        );
        k2.supersedes = Some(Cow::Borrowed("k2v1"));
        assert_eq!(e.on_event(&k2, &mut out), Ok(Outcome::Applied));
        assert_eq!(e.tracked_cases(), 2);
        let refused = e
            .on_event(
                &withdraw("w3", "never", "2026-03-05T10:04:00+08:00"),
                &mut out,
            )
            .expect_err("unknown");
        assert_eq!(refused.code(), "unknown_event");
    }

    /// A correcting case event is a report of its feed and an act of its staff member like any
    /// other: the 09:40 re-report of an acceptance ends the feed's silence since 09:10 (so
    /// `source.silent` counts 60 office minutes from 09:40), and the placeholder account that
    /// re-reported it is `data.placeholder_staff`.
    #[test]
    fn a_correcting_event_is_a_report_and_an_act() {
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        let at = |s| parse_rfc3339(s).expect("t");
        let mut e1 = ev(
            "e1",
            "2026-03-02T09:10:00+08:00",
            "K1",
            accepted(LimitOverrides::default()),
        );
        e1.source = Some(Cow::Borrowed("C0:approval"));
        e1.reported_at = Some(at("2026-03-02T09:10:00+08:00"));
        let mut e1v2 = Event {
            event_id: Cow::Borrowed("e1v2"),
            occurred_at: at("2026-03-02T09:05:00+08:00"),
            reported_at: Some(at("2026-03-02T09:40:00+08:00")),
            staff_id: Some(Cow::Borrowed("000000")),
            ..e1.clone()
        };
        e1v2.supersedes = Some(Cow::Borrowed("e1"));
        e.on_event(&e1, &mut out).expect("ok");
        assert_eq!(e.on_event(&e1v2, &mut out), Ok(Outcome::Applied));
        e.advance_to(at("2026-03-02T11:00:00+08:00"), &mut out);
        let of = |rule| {
            out.iter()
                .filter(|a| a.rule == rule && a.status != AlertStatus::Retracted)
                .collect::<Vec<_>>()
        };
        let silent = of(crate::alert::Rule::SourceSilent);
        assert_eq!(silent.len(), 1, "{out:?}");
        assert_eq!(silent[0].subject["since"], "2026-03-02T09:40:00+08:00");
        assert_eq!(silent[0].fired_at, at("2026-03-02T10:40:00+08:00"));
        let placeholder = of(crate::alert::Rule::PlaceholderStaff);
        assert_eq!(placeholder.len(), 1, "{out:?}");
        assert_eq!(placeholder[0].subject["staff_id"], "000000");
    }

    /// `data.placeholder_staff` follows corrections of the acts it is about (SPEC §3): two
    /// acceptances by `000000` on Mon 03-02, reported 09:00 (K1) and 09:30 (K2). Withdrawing
    /// K1's moves the finding to K2's report; withdrawing K2's too retracts it; a new version
    /// of K1's acceptance by `000000` makes it fire again — each time what a replay of the
    /// corrected stream leaves on record.
    #[test]
    fn a_placeholder_finding_follows_corrections_of_its_acts() {
        let at = |s| parse_rfc3339(s).expect("t");
        let act = |id: &'static str, t: &'static str, case: &'static str| Event {
            staff_id: Some(Cow::Borrowed("000000")),
            reported_at: Some(at(t)),
            ..ev(id, t, case, accepted(LimitOverrides::default()))
        };
        let withdraw = |id: &'static str, of: &'static str, t: &'static str, case| Event {
            body: Body::EventWithdrawn {
                withdraws: Cow::Borrowed(of),
            },
            ..ev(id, t, case, completed())
        };
        let placeholder = |out: &[Alert]| {
            out.iter()
                .filter(|a| a.rule == crate::alert::Rule::PlaceholderStaff)
                .map(|a| (a.status, a.fired_at, a.revision))
                .collect::<Vec<_>>()
        };
        let (k1, k2) = (
            act("a1", "2026-03-02T09:00:00+08:00", "K1"),
            act("a2", "2026-03-02T09:30:00+08:00", "K2"),
        );
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        e.on_event(&k1, &mut out).expect("ok");
        e.on_event(&k2, &mut out).expect("ok");
        assert_eq!(
            placeholder(&out),
            vec![(AlertStatus::Open, at("2026-03-02T09:00:00+08:00"), 0)],
            "{out:?}"
        );

        let w1 = withdraw("w1", "a1", "2026-03-02T10:00:00+08:00", "K1");
        let n = out.len();
        e.on_event(&w1, &mut out).expect("ok");
        assert_eq!(record(&out), replayed(&[&k2], "2026-03-02T10:00:00+08:00"));
        assert_eq!(
            placeholder(&out[n..]),
            vec![(AlertStatus::Open, at("2026-03-02T09:30:00+08:00"), 3)],
            "moved to K2's report: a new firing"
        );

        let w2 = withdraw("w2", "a2", "2026-03-02T10:05:00+08:00", "K2");
        let n = out.len();
        e.on_event(&w2, &mut out).expect("ok");
        assert_eq!(record(&out), replayed(&[], "2026-03-02T10:05:00+08:00"));
        assert_eq!(
            placeholder(&out[n..]),
            vec![(AlertStatus::Retracted, at("2026-03-02T09:30:00+08:00"), 4)]
        );

        // K1's acceptance again, a later version of the row, still by the placeholder.
        let mut k1v2 = act("a1v2", "2026-03-02T10:10:00+08:00", "K1");
        k1v2.supersedes = Some(Cow::Borrowed("a1"));
        let n = out.len();
        e.on_event(&k1v2, &mut out).expect("ok");
        let plain = Event {
            supersedes: None,
            ..k1v2.clone()
        };
        assert_eq!(
            record(&out),
            replayed(&[&plain], "2026-03-02T10:10:00+08:00")
        );
        assert_eq!(
            placeholder(&out[n..]),
            vec![(AlertStatus::Open, at("2026-03-02T10:10:00+08:00"), 5)]
        );
    }

    /// A new version of a row delivered before the version it supersedes (batches out of
    /// order) leaves what in-order delivery leaves: the older version, when it comes, changes
    /// nothing in the case and the correction is judged as it would have been. K1's
    /// acceptance of Mon 03-02 10:00 (reported then) is re-reported on 03-03 at 10:05 as
    /// accepted 03-03 10:00: `data.corrected`, yellow, at 03-03 10:05; the case's clock runs
    /// from 03-03 either way.
    #[test]
    fn a_newer_version_delivered_first_leaves_what_in_order_delivery_leaves() {
        let at = |s| parse_rfc3339(s).expect("t");
        let e1 = Event {
            reported_at: Some(at("2026-03-02T10:00:00+08:00")),
            ..ev(
                "e1",
                "2026-03-02T10:00:00+08:00",
                "K1",
                accepted_in_one_working_day(),
            )
        };
        let e1v2 = Event {
            reported_at: Some(at("2026-03-03T10:05:00+08:00")),
            supersedes: Some(Cow::Borrowed("e1")),
            ..ev(
                "e1v2",
                "2026-03-03T10:00:00+08:00",
                "K1",
                accepted_in_one_working_day(),
            )
        };
        let run = |events: &[&Event<'_>]| {
            let mut e = engine(Policy::default());
            let mut out = Vec::new();
            for ev in events {
                assert_eq!(e.on_event(ev, &mut out), Ok(Outcome::Applied));
            }
            e.advance_to(at("2026-03-06T00:00:00+08:00"), &mut out);
            let corrected: Vec<_> = out
                .iter()
                .filter(|a| a.rule == crate::alert::Rule::DataCorrected)
                .map(|a| (a.alert_id.clone(), a.level, a.fired_at, a.evidence.clone()))
                .collect();
            (record(&out), corrected)
        };
        let in_order = run(&[&e1, &e1v2]);
        let newer_first = run(&[&e1v2, &e1]);
        assert_eq!(newer_first, in_order);
        let (cards, corrected) = in_order;
        assert_eq!(corrected.len(), 1);
        assert_eq!(
            (corrected[0].1, corrected[0].2),
            (Level::Yellow, at("2026-03-03T10:05:00+08:00"))
        );
        // D = 03-04 from the corrected 03-03: 预警 03-04T00, 黄牌 03-05T00.
        let fired: Vec<_> = cards.values().copied().collect();
        assert!(
            fired.contains(&(Level::Yellow, at("2026-03-05T00:00:00+08:00"))),
            "{fired:?}"
        );
        // The older version is superseded: a third version of it is a dead letter.
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        e.on_event(&e1v2, &mut out).expect("ok");
        e.on_event(&e1, &mut out).expect("ok");
        let e1v3 = Event {
            event_id: Cow::Borrowed("e1v3"),
            ..e1v2.clone()
        };
        let refused = e
            .on_event(&e1v3, &mut out)
            .expect_err("a chain has one head");
        assert_eq!(refused.code(), "already_superseded");
    }

    /// With `case_history = false` nothing is kept, and a correction of an applied event is
    /// refused whole, saying why.
    #[test]
    fn without_case_history_corrections_of_applied_events_are_refused() {
        let mut e = engine(Policy {
            case_history: false,
            ..Policy::default()
        });
        let mut out = Vec::new();
        let first = ev(
            "e1",
            "2026-03-02T10:00:00+08:00",
            "K1",
            accepted(LimitOverrides::default()),
        );
        e.on_event(&first, &mut out).expect("ok");
        let mut again = ev("e1v2", "2026-03-02T10:05:00+08:00", "K1", completed());
        again.supersedes = Some(Cow::Borrowed("e1"));
        let refused = e.on_event(&again, &mut out).expect_err("correction");
        assert_eq!(refused.code(), "correction_unsupported");
        assert!(
            refused.to_string().contains("case_history = false"),
            "{refused}"
        );
        // Nothing refused entered the duplicate filter: the same id is refused again.
        assert!(e.on_event(&again, &mut out).is_err());
    }

    #[test]
    fn unknown_item_is_refused_and_can_be_sent_again_once_fixed() {
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        let mut bad = ev(
            "e1",
            "2026-03-02T10:00:00+08:00",
            "K1",
            accepted(LimitOverrides::default()),
        );
        bad.item_code = Some(Cow::Borrowed("NOT-IN-CATALOGUE"));
        let refused = e.on_event(&bad, &mut out).expect_err("unknown item");
        assert_eq!(refused.code(), "unknown_item");
        assert_eq!(e.tracked_cases(), 0, "a refused event changes nothing");
        // The publisher re-sends the same event with the limits: not a duplicate.
        let fixed = Event {
            body: accepted(LimitOverrides {
                promised: Some(Limit {
                    days: 1,
                    unit: Unit::Working,
                }),
                ..LimitOverrides::default()
            }),
            ..bad
        };
        assert_eq!(e.on_event(&fixed, &mut out), Ok(Outcome::Applied));
        e.advance_to(
            parse_rfc3339("2026-03-04T00:00:00+08:00").expect("t"),
            &mut out,
        );
        assert_eq!(
            out.len(),
            2,
            "warning and yellow for the 1-day promised limit: {out:?}"
        );
        assert_eq!(e.stats().alerts, 2, "each alert counted once");
    }

    #[test]
    fn a_late_completion_revises_the_standing_cards_with_the_case_state() {
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        let one_day = LimitOverrides {
            promised: Some(Limit {
                days: 1,
                unit: Unit::Working,
            }),
            ..LimitOverrides::default()
        };
        // S = 03-02 (Mon), 1 working day → D = 03-03: warning 03-03T00, yellow 03-04T00.
        let t = "2026-03-02T10:00:00+08:00";
        e.on_event(&ev("a", t, "K1", accepted(one_day)), &mut out)
            .expect("ok");
        // Completed 03-05: 03-04 and 03-05 are the working days after D → 2 days late.
        let t = "2026-03-05T10:00:00+08:00";
        e.on_event(&ev("b", t, "K1", completed()), &mut out)
            .expect("ok");
        let stage = out
            .iter()
            .rfind(|a| a.rule == crate::alert::Rule::StageOverdue)
            .expect("the undertake stage (1 day) is late too");
        assert!(stage.is_revision());
        assert!(
            stage
                .message
                .ends_with("（应于 2026-03-03 前完成）（办件已于 03-05 办结）"),
            "{}",
            stage.message
        );
        out.retain(|a| a.rule == crate::alert::Rule::CaseOverdue);
        let kinds: Vec<(Level, AlertStatus, u8)> = out
            .iter()
            .map(|a| (a.level, a.status, a.revision))
            .collect();
        assert_eq!(
            kinds,
            [
                (Level::Warning, AlertStatus::Open, 0),
                (Level::Yellow, AlertStatus::Open, 0),
                (Level::Warning, AlertStatus::Open, 1),
                (Level::Yellow, AlertStatus::Open, 1),
            ],
            "the warning is not cleared once a yellow stands; both are revised: {out:?}"
        );
        let yellow = &out[3];
        assert!(yellow.is_revision());
        assert_eq!(yellow.alert_id, out[1].alert_id);
        assert!(
            yellow.message.contains("已超期 2 个工作日于 03-05 办结")
                && !yellow.message.contains("尚未办结"),
            "{}",
            yellow.message
        );
        let state = &yellow.evidence["subject_state"];
        assert_eq!(state["status"], "completed");
        assert_eq!(state["closed_at"], "2026-03-05T10:00:00+08:00");
        assert_eq!(state["result"], "denied");
        assert_eq!(state["overdue_working_days"], 2);
        assert_eq!(out[1].evidence["subject_state"]["status"], "open");
        assert_eq!(
            out[1].evidence["supersedes"][0]["alert_id"],
            out[0].alert_id.as_str()
        );
        assert_eq!(
            e.stats().alerts,
            3,
            "three firings; revisions are not new alerts"
        );
    }

    #[test]
    fn a_complaint_resolved_late_revises_its_card_with_its_state() {
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        let complaint = |id: &'static str, at: &str, body: Body<'static>| {
            let mut x = ev(id, at, "-", body);
            x.case_id = None;
            x.item_code = None;
            x
        };
        // Filed 03-02 (Mon): D = 03-09, yellow 03-10T00 (golden 143's working).
        let filed = Body::ComplaintFiled {
            complaint_id: Cow::Borrowed("K1"),
            category: crate::event::ComplaintCategory::Attitude,
        };
        e.on_event(
            &complaint("a", "2026-03-02T10:00:00+08:00", filed),
            &mut out,
        )
        .expect("ok");
        // Resolved 03-11: 03-10 and 03-11 after D → 2 working days late; before the red (03-13).
        let resolved = Body::ComplaintResolved {
            complaint_id: Cow::Borrowed("K1"),
            substantiated: false,
        };
        e.on_event(
            &complaint("b", "2026-03-11T15:00:00+08:00", resolved),
            &mut out,
        )
        .expect("ok");
        let yellows: Vec<&Alert> = out
            .iter()
            .filter(|a| a.rule == crate::alert::Rule::ComplaintOverdue)
            .collect();
        assert_eq!(yellows.len(), 2, "the yellow, then its revision: {out:?}");
        assert_eq!(yellows[0].evidence["subject_state"]["status"], "open");
        let revised = yellows[1];
        assert!(revised.is_revision());
        assert_eq!(revised.alert_id, yellows[0].alert_id);
        assert!(
            revised
                .message
                .ends_with("，已超期 2 个工作日于 03-11 办结"),
            "{}",
            revised.message
        );
        assert_eq!(revised.evidence["subject_state"]["status"], "resolved");
        assert_eq!(revised.evidence["subject_state"]["overdue_working_days"], 2);
    }

    #[test]
    fn finished_cases_are_forgotten_after_their_retention() {
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        e.on_event(
            &ev(
                "a",
                "2026-03-02T10:00:00+08:00",
                "K1",
                accepted(LimitOverrides::default()),
            ),
            &mut out,
        )
        .expect("ok");
        e.on_event(
            &ev("b", "2026-03-02T11:00:00+08:00", "K1", completed()),
            &mut out,
        )
        .expect("ok");
        assert_eq!(e.tracked_cases(), 1, "kept for late events");
        e.advance_to(
            parse_rfc3339("2026-03-09T10:59:59+08:00").expect("t"),
            &mut out,
        );
        assert_eq!(e.tracked_cases(), 1);
        e.advance_to(
            parse_rfc3339("2026-03-09T11:00:00+08:00").expect("t"),
            &mut out,
        );
        assert_eq!(e.tracked_cases(), 0, "evicted 7 days after completion");
        assert_eq!(e.stats().evicted, 1);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn inconsistent_events_change_nothing_and_are_counted() {
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        let resumed = Body::CaseResumed { reason: None };
        assert_eq!(
            e.on_event(
                &ev("r", "2026-03-02T09:00:00+08:00", "K1", resumed),
                &mut out
            ),
            Ok(Outcome::Inconsistent("not_suspended"))
        );
        e.on_event(
            &ev("c1", "2026-03-02T10:00:00+08:00", "K1", completed()),
            &mut out,
        )
        .expect("ok");
        assert_eq!(
            e.on_event(
                &ev("c2", "2026-03-02T11:00:00+08:00", "K1", completed()),
                &mut out
            ),
            Ok(Outcome::Inconsistent("already_finished"))
        );
        assert_eq!(e.stats().inconsistent, 2);
    }

    #[test]
    fn acceptances_ratings_and_complaints_are_recorded_for_the_metrics() {
        use crate::event::ComplaintCategory;
        use crate::fact::ActivityKind;
        // Staff S1 and BOSS are not in the synthetic staff.csv: let the first event bind them.
        let mut e = engine(Policy {
            accept_unlisted_ids: true,
            ..Policy::default()
        });
        let mut out = Vec::new();
        let with_staff = |mut ev: Event<'static>, staff: &'static str| {
            ev.staff_id = Some(Cow::Borrowed(staff));
            ev.window_id = Some(Cow::Borrowed("W000"));
            ev
        };
        let accept = ev(
            "a1",
            "2026-03-02T10:00:00+08:00",
            "K1",
            accepted(LimitOverrides::default()),
        );
        e.on_event(&accept, &mut out).expect("ok");
        assert!(
            e.drain_activities().is_empty(),
            "nothing without collect_facts"
        );
        e.collect_facts(true);
        let accept = ev(
            "a2",
            "2026-03-02T10:05:00+08:00",
            "K2",
            accepted(LimitOverrides::default()),
        );
        e.on_event(&with_staff(accept, "S1"), &mut out).expect("ok");
        let rating = Body::EvaluationSubmitted {
            evaluation_id: Cow::Borrowed("E1"),
            score: 4,
        };
        e.on_event(
            &with_staff(ev("e1", "2026-03-02T11:00:00+08:00", "", rating), "S1"),
            &mut out,
        )
        .expect("ok");
        let filed = Body::ComplaintFiled {
            complaint_id: Cow::Borrowed("C1"),
            category: ComplaintCategory::Attitude,
        };
        e.on_event(
            &with_staff(ev("c1", "2026-03-02T12:00:00+08:00", "", filed), "S1"),
            &mut out,
        )
        .expect("ok");
        let resolved = Body::ComplaintResolved {
            complaint_id: Cow::Borrowed("C1"),
            substantiated: true,
        };
        // Resolved by a supervisor: the complaint still counts against its target, S1.
        let resolution = with_staff(ev("c2", "2026-03-03T09:00:00+08:00", "", resolved), "BOSS");
        e.on_event(&resolution, &mut out).expect("ok");
        let activities = e.drain_activities();
        // A rating or complaint that names a window but no department is the window's
        // department's (绩效 by department counts it there).
        let w000 = e.reference.windows["W000"].department.clone();
        for a in activities
            .iter()
            .filter(|a| a.kind != ActivityKind::Accepted)
        {
            assert_eq!(a.department.as_deref(), Some(w000.as_str()), "{a:?}");
        }
        let got: Vec<(ActivityKind, String, Option<String>, i32)> = activities
            .into_iter()
            .map(|a| (a.kind, a.id, a.staff_id, a.value))
            .collect();
        let s1 = Some("S1".to_string());
        assert_eq!(
            got,
            vec![
                (ActivityKind::Accepted, "K2".into(), s1.clone(), 0),
                (ActivityKind::Evaluation, "E1".into(), s1.clone(), 4),
                (ActivityKind::Complaint, "C1".into(), s1.clone(), 0),
                (ActivityKind::ComplaintResolved, "C1".into(), s1, 1),
            ]
        );
        assert!(e.drain_activities().is_empty(), "drained");
    }

    #[test]
    fn finished_cases_yield_one_fact_each_whatever_the_arrival_order() {
        // I001: promised 3 working days. Accepted Mon 2026-03-02 → D = Thu 03-05.
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        assert!(e.drain_facts().is_empty(), "not collecting by default");
        e.collect_facts(true);
        let accept = |id: &'static str, case: &'static str| {
            ev(
                id,
                "2026-03-02T10:00:00+08:00",
                case,
                accepted(LimitOverrides::default()),
            )
        };
        let done = |id: &'static str, at: &str, case: &'static str| ev(id, at, case, completed());
        e.on_event(&accept("a1", "K1"), &mut out).unwrap();
        e.on_event(&done("d1", "2026-03-04T15:00:00+08:00", "K1"), &mut out)
            .unwrap();
        e.on_event(&accept("a2", "K2"), &mut out).unwrap();
        e.on_event(&done("d2", "2026-03-02T10:20:00+08:00", "K2"), &mut out)
            .unwrap();
        // K3's completion arrives before its acceptance (both in the past of the clock).
        e.on_event(&done("d3", "2026-03-09T09:00:00+08:00", "K3"), &mut out)
            .unwrap();
        let mut facts = e.drain_facts();
        assert!(facts.iter().all(|f| f.case_id != "K3"), "not accepted yet");
        e.on_event(&accept("a3", "K3"), &mut out).unwrap();
        facts.extend(e.drain_facts());
        let by = |id: &str| facts.iter().find(|f| f.case_id == id).unwrap();
        let k1 = by("K1");
        assert_eq!(k1.deadline_date.to_string(), "2026-03-05");
        assert_eq!(k1.deadline.to_string(), "2026-03-06T00:00:00+08:00");
        assert_eq!(k1.working_days_used, 2);
        assert!(k1.on_time && k1.early && !k1.on_site && k1.within_legal);
        let k2 = by("K2");
        assert!(k2.on_site && k2.on_time);
        assert_eq!(k2.working_days_used, 0);
        let k3 = by("K3");
        assert!(!k3.on_time, "completed 03-09, after the 03-06 deadline");
        assert_eq!(k3.working_days_used, 5);
        assert_eq!(facts.len(), 3, "{facts:?}");
        e.on_event(&done("d3b", "2026-03-09T10:00:00+08:00", "K3"), &mut out)
            .unwrap();
        assert!(e.drain_facts().is_empty(), "one fact per case");
    }

    #[test]
    fn spent_complaints_and_ratings_are_forgotten_after_their_red_card() {
        let mut e = engine(Policy::default());
        let mut out = Vec::new();
        let mut rating = ev(
            "r1",
            "2026-03-02T10:00:00+08:00",
            "K1",
            Body::EvaluationSubmitted {
                evaluation_id: Cow::Borrowed("V1"),
                score: 1,
            },
        );
        rating.case_id = None;
        e.on_event(&rating, &mut out).unwrap();
        assert_eq!(e.tracked_matters(), 1);
        // Rectify deadline: 5 working days after 03-02 → 03-09, yellow 03-10T00:00; red after 3
        // more working days → 03-12, 03-13T00:00; forgotten stale_matter_days (90) after that,
        // on 06-11.
        e.advance_to(
            parse_rfc3339("2026-06-10T23:59:59+08:00").unwrap(),
            &mut out,
        );
        let rules: Vec<_> = out
            .iter()
            .map(|a| (a.rule.as_str(), a.level.as_str()))
            .collect();
        assert_eq!(
            rules,
            [
                ("evaluation.bad", "warning"),
                ("evaluation.unrectified", "yellow"),
                ("evaluation.unrectified", "red")
            ]
        );
        assert_eq!(e.tracked_matters(), 1, "kept for a late rectification");
        e.advance_to(
            parse_rfc3339("2026-06-11T00:00:00+08:00").unwrap(),
            &mut out,
        );
        assert_eq!(e.tracked_matters(), 0, "stale: forgotten");
    }

    #[test]
    fn duplicates_are_dropped_within_the_bounded_window() {
        let mut e = engine(Policy {
            dedup_capacity: 4,
            ..Policy::default()
        });
        let mut out = Vec::new();
        let first = ev(
            "dup",
            "2026-03-02T10:00:00+08:00",
            "K1",
            Body::CaseDelivered,
        );
        assert_eq!(e.on_event(&first, &mut out), Ok(Outcome::Applied));
        assert_eq!(e.on_event(&first, &mut out), Ok(Outcome::Duplicate));
        for i in 0..4 {
            let id = format!("other-{i}");
            let other = ev(&id, "2026-03-02T10:00:00+08:00", "K1", Body::CaseDelivered);
            e.on_event(&other, &mut out).expect("ok");
        }
        // Four newer ids pushed it out of a 4-id window: it counts as new again.
        assert_eq!(e.on_event(&first, &mut out), Ok(Outcome::Applied));
        assert_eq!(e.stats().duplicates, 1);
    }
}

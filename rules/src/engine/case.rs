//! One case's clocks (SPEC §5): acceptance period, promised/legal limits with pauses and
//! extensions, stage limits and special procedures.
//!
//! A [`Case`] stores only facts (when things happened); every deadline is recomputed from them
//! on demand with O(1) calendar lookups. That keeps the state small (≈110 bytes plus the case
//! id), makes late and out-of-order events simply more facts, and means there is no derived
//! state to keep consistent. Rarely used facts (pauses, extensions, special procedures, fired
//! alerts) live in a boxed [`Extras`] that most cases never allocate.

use crate::alert::{Level, Rule};
use crate::calendar::Calendar;
use crate::event::{CaseType, Channel, CompletionResult, Procedure, Stage, Unit};
use crate::policy::Policy;
use crate::reference::{Limit, Reference};
use crate::time::{Day, Instant};

use super::explain::{Recipes, Who};
use super::table::{CompactKey, Keyed, Sym, NONE};

/// Compact instant: seconds since 1999-12-31T23:59:59+08:00, so every supported instant is
/// ≥ 1 and 0 can mean "never". Fits until 2136.
pub type T32 = u32;
/// "Never" / "not yet".
pub const NEVER: T32 = 0;
const T_BASE: i64 = 946_656_000 - 1; // 2000-01-01T00:00:00+08:00 minus one second

/// Compact form of an instant.
pub fn t32(i: Instant) -> T32 {
    (i.0 - T_BASE).clamp(1, i64::from(u32::MAX)) as T32
}

/// Instant of a compact time.
pub fn inst(t: T32) -> Instant {
    Instant(i64::from(t) + T_BASE)
}

/// Pause kinds (bit flags): the clock stops while any is open.
pub mod pause {
    /// 特别程序 (行政许可法 §45).
    pub const SPECIAL: u8 = 1;
    /// 挂起.
    pub const SUSPEND: u8 = 2;
    /// 补正 after acceptance (`pause_on_supplement`).
    pub const SUPPLEMENT: u8 = 4;

    /// Wire names of the kinds in a mask.
    pub fn names(mask: u8) -> Vec<&'static str> {
        [
            (SPECIAL, "special"),
            (SUSPEND, "suspension"),
            (SUPPLEMENT, "supplement"),
        ]
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, name)| *name)
        .collect()
    }
}

/// Bits of [`Case::fired`]: which alerts of the case have fired.
pub mod fired {
    /// `case.acceptance_overdue` of the current period.
    pub const PERIOD: u16 = 1;
    /// `case.overdue` warning.
    pub const WARNING: u16 = 2;
    /// `case.overdue` yellow.
    pub const YELLOW: u16 = 4;
    /// `case.overdue` red.
    pub const RED: u16 = 8;
    /// `case.rejected_without_reason`.
    pub const REJECTED: u16 = 16;
    /// `case.stage_overdue` for stage index i is `STAGE << i`.
    pub const STAGE: u16 = 32;
    /// `hall.completed_without_acceptance`.
    pub const NO_ACCEPTANCE: u16 = 256;
    /// `hall.missing_stages`.
    pub const MISSING_STAGES: u16 = 512;
    /// Some `hall.fee_without_case` of the case's fees.
    pub const FEE: u16 = 1024;
    /// Some `case.special_overdue`.
    pub const SPECIAL: u16 = 2048;
    /// The case's fact (finished case record) has been emitted.
    pub const FACT: u16 = 4096;
    /// Some data-integrity alert (`hall.retroactive_pause`, `hall.stage_fabricated`,
    /// `data.deadline_mismatch`): `integrity.rs`.
    pub const INTEGRITY: u16 = 8192;
    /// The case clock's alerts, which completion or rejection ends.
    pub const CLOCK: u16 = WARNING | YELLOW | RED | (STAGE * 7) | SPECIAL;
}

/// A closed pause interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pause {
    /// When the first of the overlapping pauses opened.
    pub from: T32,
    /// When the last of them closed.
    pub to: T32,
    /// [`pause`] kinds that made it.
    pub kinds: u8,
}

/// A `case.extended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extension {
    /// When it occurred.
    pub at: T32,
    /// Extra days.
    pub days: u16,
    /// Whether it was in time (before the promised deadline, or during a pause).
    pub applied: bool,
}

/// A special procedure and its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Special {
    /// 1-based ordinal within the case.
    pub n: u8,
    /// When it ended ([`NEVER`] while open).
    pub ended_at: T32,
    /// Which procedure.
    pub procedure: Procedure,
    /// When it started.
    pub started_at: T32,
    /// Its own limit, if given.
    pub limit: Option<Limit>,
    /// Its overdue alert has fired.
    pub fired: bool,
}

/// An alert that fired for the case, kept (8 bytes) so a later event can retract it; the alert
/// itself is rebuilt from the case if that happens, rather than stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fired {
    /// Which deadline.
    pub due: Due,
    /// Its `fired_at`.
    pub at: T32,
    /// Acceptance period or special-procedure ordinal (0 otherwise).
    pub n: u8,
    /// Already retracted.
    pub retracted: bool,
}

/// The alerts fired for a case, in firing order, held exactly sized: a case fires a few in its
/// life, and a `Vec` would keep room for four from the first (16 bytes a case with alerts, and
/// 8 more for its capacity). Reads as a slice; serialised as a sequence, like the `Vec` it
/// replaces.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Fires(Box<[Fired]>);

impl Fires {
    /// Append `f` (one reallocation to the new exact size).
    pub fn push(&mut self, f: Fired) {
        let mut v = std::mem::take(&mut self.0).into_vec();
        v.reserve_exact(1);
        v.push(f);
        self.0 = v.into_boxed_slice();
    }
}

impl std::ops::Deref for Fires {
    type Target = [Fired];
    fn deref(&self) -> &[Fired] {
        &self.0
    }
}

impl std::ops::DerefMut for Fires {
    fn deref_mut(&mut self) -> &mut [Fired] {
        &mut self.0
    }
}

/// A `fee.charged` naming this case (以票管审).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseFee {
    /// 票据号.
    pub receipt_no: Box<str>,
    /// 缴款人.
    pub payer_id: Box<str>,
    /// When it was charged.
    pub at: T32,
    /// Amount in fen.
    pub amount_fen: u64,
    /// Item charged for (interned).
    pub item: Sym,
    /// Window that charged it.
    pub window: Sym,
    /// Staff member who charged it.
    pub staff: Sym,
    /// Its `hall.fee_without_case` alert has fired.
    pub fired: bool,
}

/// Facts most cases never have: the records of fired alerts (the most common), and behind a
/// second box the rarer ones, so a case with alerts but no fee, pause or extension pays for one
/// `Vec` header instead of five.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Extras {
    /// Alerts fired for this case that a later event could retract.
    pub fired: Fires,
    /// Fees, pauses, extensions and special procedures.
    pub rare: Option<Box<Rare>>,
    /// The window whose live `overdue_cases` count this case is in (its `case.overdue` yellow
    /// fired while the case was open and attributed to that window), until the case ends.
    pub overdue_window: Option<Sym>,
}

/// Who completed a case, and where, for 事后补录.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Completion {
    pub staff: Box<str>,
    pub place: super::batch::Place,
}

/// A `case.stage` by back-office staff whose item was not known when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnjudgedStage {
    pub stage: crate::event::Stage,
    pub at: T32,
    pub staff_id: Box<str>,
    pub event_id: Box<str>,
}

/// The rarer facts of a case.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rare {
    /// Fees charged for the case.
    pub fees: Vec<CaseFee>,
    /// Closed pause intervals, in order.
    pub pauses: Vec<Pause>,
    /// Extensions, in order of arrival.
    pub extensions: Vec<Extension>,
    /// Special procedures, in order; the last one is open if it has not ended.
    pub specials: Vec<Special>,
    /// Stages done by back-office staff before the case's item was known (its submission and
    /// acceptance not yet arrived): judged for 前店后场 once it is.
    #[serde(default)]
    pub unjudged_stages: Vec<UnjudgedStage>,
    /// A completion of a 承诺件 by a named staff member that arrived before the acceptance:
    /// judged for 事后补录 when the acceptance arrives.
    #[serde(default)]
    pub completion: Option<Completion>,
    /// After a correction: the last revision emitted of each of the case's alerts (by
    /// XXH3 of `alert_id`), so a later line of the same alert always has a higher one
    /// (`correct.rs`, `follow_revisions`).
    #[serde(default)]
    pub revisions: Vec<(u64, u8)>,
    /// Each pause as reported (kind, start, end, report time), for `hall.retroactive_pause`:
    /// the deadline without one of them is computed from the others.
    #[serde(default)]
    pub pause_reports: Vec<super::integrity::PauseReport>,
    /// The acceptance's `source_deadline` (its date), kept only when it differs from jiancha's
    /// D (`data.deadline_mismatch`), to rebuild that alert.
    #[serde(default)]
    pub source_deadline: Option<u32>,
    /// Open pause kinds ([`pause`] bits; the clock stops while any is open).
    #[serde(default)]
    pub pause_open: u8,
    /// Kinds seen in the open pause interval.
    #[serde(default)]
    pub pause_kinds: u8,
    /// Start of the open pause, when one is open.
    #[serde(default)]
    pub pause_since: T32,
    /// End of the latest pause (an alert held back by a pause fires no earlier).
    #[serde(default)]
    pub pause_ended: T32,
    /// Start of the earliest acceptance period that passed unanswered (deemed acceptance).
    #[serde(default)]
    pub missed_start: T32,
    /// Versions applied before the version they supersede arrived (a feed's batches out of
    /// order): (duplicate-filter hash of the superseded id, of the superseding event). The older
    /// version, when it comes, is kept as superseded and judged (`data.corrected`).
    #[serde(default)]
    pub unseen: Vec<(u64, u64)>,
}

/// One case's state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Case {
    /// 办件编号.
    pub id: CompactKey,
    /// Rare facts.
    pub extras: Option<Box<Extras>>,
    /// Attribution: the last window and staff member that acted, the department from events
    /// (else the item's).
    pub who: Who,
    /// Index into the reference catalogue, or [`NONE`].
    pub item_ref: u32,
    /// `case.submitted`.
    pub submitted_at: T32,
    /// Start of the current acceptance period (submission or last 补正受理).
    pub period_start: T32,
    /// First answer (accept/reject/补正告知) in the current period.
    pub answered_at: T32,
    /// `case.accepted`.
    pub accepted_at: T32,
    /// `case.completed` or `case.rejected`: the clocks' end.
    pub closed_at: T32,
    /// `reported_at` of the `case.accepted` ([`NEVER`]: not accepted, or reported without one).
    pub accepted_reported: T32,
    /// `reported_at` of the `case.completed` or `case.rejected` ([`NEVER`]: none).
    pub closed_reported: T32,
    /// Completion instant of each stage.
    pub stage_done: [T32; 3],
    /// The latest report time of the case's `case.stage` events ([`NEVER`]: none), for
    /// `hall.stage_fabricated`.
    pub stage_reported: T32,
    /// Due time of this case's live timer entry ([`NEVER`]: none).
    pub timer_due: T32,
    /// 承诺时限 days (before extensions).
    pub promised_days: u16,
    /// 法定时限 days, `u16::MAX` when none.
    pub legal_days: u16,
    /// Unit of the promised limit.
    pub promised_unit: Unit,
    /// Unit of the legal limit.
    pub legal_unit: Unit,
    /// Case type.
    pub case_type: CaseType,
    /// Acceptance period number (0: no period yet).
    pub period_no: u8,
    /// [`fired`] bits.
    pub fired: u16,
    /// Acceptance channel, once accepted.
    pub channel: Option<Channel>,
    /// The completion's result: `Some` once closed by `case.completed` (rather than
    /// `case.rejected`).
    pub result: Option<CompletionResult>,
    /// Every event that reached the case, for corrections (`history.rs`; empty when
    /// `case_history = false`).
    #[serde(default)]
    pub history: super::history::History,
}

impl Case {
    /// Start loading what the case points to (its history, its rarer facts), for the
    /// engine's lookahead once the case itself is in cache.
    pub fn prefetch_parts(&self) {
        self.history.prefetch();
        if let Some(extras) = &self.extras {
            super::table::prefetch(&**extras);
        }
    }
}

impl Keyed for Case {
    fn key(&self) -> &[u8] {
        self.id.as_bytes()
    }
    /// Cases are unique per region: another region's event naming the same 办件编号 reaches a
    /// case of its own region, never this one.
    fn scope(&self) -> Sym {
        self.who.region
    }
}

/// What a pending deadline is for, in firing order within one instant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Due {
    /// Acceptance period deadline.
    Acceptance,
    /// 预警.
    Warning,
    /// 黄牌.
    Yellow,
    /// 红牌.
    Red,
    /// Open stage's limit.
    Stage(Stage),
    /// Open special procedure's own limit.
    Special,
    /// Completed, and no acceptance within the grace period.
    NoAcceptance,
    /// A fee's match deadline (index into [`Extras::fees`]).
    Fee(u8),
    /// Completed as approved without any stage (fired by the completion; kept for retraction).
    MissingStages,
    /// `data.deadline_mismatch` (fired by the acceptance).
    DeadlineMismatch,
    /// `hall.retroactive_pause` of the pause reported at `Fired::at` whose kind is `Fired::n`.
    RetroactivePause,
    /// `hall.stage_fabricated`.
    StageFabricated,
}

impl Due {
    /// The alert rule and level.
    pub fn rule_level(self) -> (Rule, Level) {
        match self {
            Due::Acceptance => (Rule::AcceptanceOverdue, Level::Yellow),
            Due::Warning => (Rule::CaseOverdue, Level::Warning),
            Due::Yellow => (Rule::CaseOverdue, Level::Yellow),
            Due::Red => (Rule::CaseOverdue, Level::Red),
            Due::Stage(_) => (Rule::StageOverdue, Level::Yellow),
            Due::Special => (Rule::SpecialOverdue, Level::Yellow),
            Due::NoAcceptance => (Rule::CompletedWithoutAcceptance, Level::Yellow),
            Due::Fee(_) => (Rule::FeeWithoutCase, Level::Yellow),
            Due::MissingStages => (Rule::MissingStages, Level::Yellow),
            Due::DeadlineMismatch => (Rule::DeadlineMismatch, Level::Warning),
            Due::RetroactivePause => (Rule::RetroactivePause, Level::Yellow),
            Due::StageFabricated => (Rule::StageFabricated, Level::Yellow),
        }
    }
}

/// A case's pending deadlines, in firing order (at most one of each [`Due`]), kept inline: it is
/// computed on every case event, so it must not allocate.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    items: [(Instant, Due); 8],
    len: usize,
}

impl Pending {
    fn new() -> Self {
        Pending {
            items: [(Instant(0), Due::Acceptance); 8],
            len: 0,
        }
    }

    fn push(&mut self, at: Instant, due: Due) {
        if self.len < self.items.len() {
            self.items[self.len] = (at, due);
            self.len += 1;
        }
    }

    /// The deadlines, earliest first.
    pub fn as_slice(&self) -> &[(Instant, Due)] {
        &self.items[..self.len]
    }
}

/// Read-only context for deadline arithmetic.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// Working-day calendar.
    pub cal: &'a Calendar,
    /// Thresholds.
    pub policy: &'a Policy,
    /// Catalogue.
    pub reference: &'a Reference,
    /// `office_hours` spans (minutes after local midnight), for the office-time units.
    pub office: &'a [(u32, u32)],
    /// When a correction rebuilds a case aside: where its case alerts are kept as recipes,
    /// built in full only if they are emitted ([`Recipes`]). `None` everywhere else.
    pub recipes: Option<&'a Recipes>,
    /// A finished case's standing alerts, sent again with its new state (revision 1), are
    /// built lean: id, subject and numbers, without message or evidence. For a driver that
    /// drops every revision (`jiancha replay` prints firings, retractions and clearings only),
    /// where building them in full was a quarter of the engine's work (docs/BENCHMARKS.md).
    pub lean_revisions: bool,
}

impl<'a> Ctx<'a> {
    /// The context of a reference, policy and its parsed office hours.
    pub fn of(reference: &'a Reference, policy: &'a Policy, office: &'a [(u32, u32)]) -> Self {
        Ctx {
            cal: &reference.calendar,
            policy,
            reference,
            office,
            recipes: None,
            lean_revisions: false,
        }
    }
}

/// Where a limit runs out (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitEnd {
    /// The deadline instant: 00:00 after D for the day units, the moment the office time runs
    /// out for the office-time units.
    pub at: Instant,
    /// D, the last day: for the office-time units the date of the deadline instant.
    pub day: Day,
    /// What the pauses added: days of the unit (natural days for months), minutes of office
    /// time for the office-time units.
    pub paused: u32,
}

/// The case clock's computation, ready to be fired or shown as evidence.
#[derive(Debug, Clone)]
pub struct Clock {
    /// Start date (not counted).
    pub start: Day,
    /// Deemed acceptance (§32) rather than the acceptance date.
    pub deemed: bool,
    /// Applied extension days.
    pub extension_days: u32,
    /// Promised last day D.
    pub promised_day: Day,
    /// Promised deadline instant (the end of D, or when the office time runs out).
    pub promised_at: Instant,
    /// Pause days added to the promised limit.
    pub promised_pause_days: u32,
    /// 预警 day, when warnings apply.
    pub warning_day: Option<Day>,
    /// 预警 instant: the start of the 预警 day, or half the office time for office-time units.
    pub warning_at: Option<Instant>,
    /// Supervision last day (D + supervise_working_days).
    pub supervision_day: Day,
    /// Legal last day and its pause days (minutes for office-time units).
    pub legal: Option<(Day, u32)>,
    /// Legal deadline instant.
    pub legal_at: Option<Instant>,
}

impl Clock {
    /// Red fires at the earlier of supervision and legal deadline instants; true if legal.
    pub fn red(&self) -> (Instant, bool) {
        let sup = self.supervision_day.end();
        match self.legal_at {
            Some(l) if l < sup => (l, true),
            _ => (sup, false),
        }
    }
}

/// What a pause from `from` to `to` adds to a limit of `unit` (§5): the days of the unit in
/// `(date(from), date(to)]` (natural days for months), or the minutes of office time in
/// `[from, to)` for the office-time units.
pub fn pause_amount(ctx: Ctx<'_>, unit: Unit, from: T32, to: T32) -> u32 {
    let (a, b) = (inst(from).day(), inst(to).day());
    match unit {
        Unit::Working => ctx.cal.working_days_between(a, b),
        Unit::Natural | Unit::Months => b.0.saturating_sub(a.0),
        Unit::WorkingHours | Unit::WorkingMinutes => {
            (ctx.cal.office_secs(ctx.office, inst(from), inst(to)) / 60) as u32
        }
    }
}

/// D for a day-based limit of `n` units from start date `s`, with `k` pause days (§5):
/// working days count on; natural days and months land on a date moved to the next working
/// day if needed (months: the same day number N months on, or that month's last day, then the
/// pause days). Office-time units are not day-based: see [`Case::limit_end`].
pub fn last_day(cal: &Calendar, unit: Unit, s: Day, n: u32, k: u32) -> Day {
    match unit {
        Unit::Working => cal.add_working_days(s, n + k),
        Unit::Natural => cal.add_natural_days(s, n + k),
        Unit::Months => cal.working_day_on_or_after(s.plus_months(n).plus(k)),
        // Counted as working days only if a caller forgets the office time: never silently 0.
        Unit::WorkingHours | Unit::WorkingMinutes => cal.add_working_days(s, n + k),
    }
}

/// When `secs` of office time (without the `pauses`) have elapsed since `since`; a limit that
/// cannot run out within the walk (no working day configured) ends where the walk ends.
fn office_instant(
    ctx: Ctx<'_>,
    since: Instant,
    secs: i64,
    pauses: impl Iterator<Item = (Instant, Instant)> + Clone,
) -> Instant {
    ctx.cal
        .office_elapse(ctx.office, since, secs, pauses)
        .unwrap_or_else(|| since.day().plus(crate::calendar::OFFICE_WALK_DAYS).start())
}

impl Case {
    /// A case seen for the first time.
    pub fn new(id: &str, region: Sym) -> Case {
        Case {
            id: CompactKey::new(id),
            extras: None,
            who: Who {
                region,
                ..Who::UNKNOWN
            },
            item_ref: NONE,
            submitted_at: NEVER,
            period_start: NEVER,
            answered_at: NEVER,
            accepted_at: NEVER,
            closed_at: NEVER,
            accepted_reported: NEVER,
            closed_reported: NEVER,
            stage_done: [NEVER; 3],
            stage_reported: NEVER,
            timer_due: NEVER,
            promised_days: 0,
            legal_days: u16::MAX,
            promised_unit: Unit::Working,
            legal_unit: Unit::Working,
            case_type: CaseType::Promised,
            period_no: 0,
            fired: 0,
            channel: None,
            result: None,
            history: Default::default(),
        }
    }

    /// The extras, allocated on first use.
    pub fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
    }

    /// The rarer facts, if any.
    pub fn rare(&self) -> Option<&Rare> {
        self.extras.as_ref()?.rare.as_deref()
    }

    /// The rarer facts, allocated on first use.
    pub fn rare_mut(&mut self) -> &mut Rare {
        self.extras_mut().rare.get_or_insert_with(Default::default)
    }

    pub(super) fn rare_if_any(&mut self) -> Option<&mut Rare> {
        self.extras.as_mut()?.rare.as_deref_mut()
    }

    /// The last special procedure started, if it is still open.
    pub fn open_special_mut(&mut self) -> Option<&mut Special> {
        self.rare_if_any()?
            .specials
            .last_mut()
            .filter(|s| s.ended_at == NEVER)
    }

    /// Closed pauses.
    pub fn pauses(&self) -> &[Pause] {
        self.rare().map_or(&[], |r| &r.pauses)
    }

    /// Closed by `case.completed` (rather than `case.rejected`, or open).
    pub fn completed(&self) -> bool {
        self.result.is_some()
    }

    /// The [`pause`] kinds open now (0: the clock runs).
    pub fn pause_open(&self) -> u8 {
        self.rare().map_or(0, |r| r.pause_open)
    }

    /// Start of the open pause ([`NEVER`] when none is open).
    pub fn pause_since(&self) -> T32 {
        self.rare().map_or(NEVER, |r| r.pause_since)
    }

    /// End of the latest pause ([`NEVER`]: none closed).
    pub fn pause_ended(&self) -> T32 {
        self.rare().map_or(NEVER, |r| r.pause_ended)
    }

    /// Start of the earliest acceptance period that passed unanswered ([`NEVER`]: none).
    pub fn missed_start(&self) -> T32 {
        self.rare().map_or(NEVER, |r| r.missed_start)
    }

    /// Open a pause of `kind` at `t`.
    pub fn open_pause(&mut self, kind: u8, t: T32) {
        let r = self.rare_mut();
        if r.pause_open == 0 {
            r.pause_since = t;
            r.pause_kinds = 0;
        }
        r.pause_open |= kind;
        r.pause_kinds |= kind;
    }

    /// Close a pause of `kind` at `t`; false if none of that kind was open.
    pub fn close_pause(&mut self, kind: u8, t: T32) -> bool {
        let Some(r) = self.rare_if_any().filter(|r| r.pause_open & kind != 0) else {
            return false;
        };
        r.pause_open &= !kind;
        if r.pause_open == 0 {
            let pause = Pause {
                from: r.pause_since,
                to: t.max(r.pause_since),
                kinds: r.pause_kinds,
            };
            r.pauses.push(pause);
            r.pause_ended = r.pause_ended.max(pause.to);
            r.pause_since = NEVER;
        }
        true
    }

    /// Pause days of `unit` that fall after `floor` (only the part of each pause after it);
    /// minutes of office time for the office-time units.
    pub fn pause_days(&self, ctx: Ctx<'_>, unit: Unit, floor: T32) -> u32 {
        self.pauses()
            .iter()
            .filter(|p| p.to > floor)
            .map(|p| pause_amount(ctx, unit, p.from.max(floor), p.to))
            .sum()
    }

    /// Where a limit of `n` `unit`s counted from `from` runs out (§5), with the closed pauses
    /// after `from` when `paused`. Day units count from the date of `from` (not counted);
    /// office-time units from the instant itself, over office time with the pauses cut out.
    pub fn limit_end(&self, ctx: Ctx<'_>, unit: Unit, from: T32, n: u32, paused: bool) -> LimitEnd {
        let Some(per_unit) = unit.office_secs() else {
            let k = if paused {
                self.pause_days(ctx, unit, from)
            } else {
                0
            };
            let day = last_day(ctx.cal, unit, inst(from).day(), n, k);
            return LimitEnd {
                at: day.end(),
                day,
                paused: k,
            };
        };
        let since = inst(from);
        let pauses = self
            .pauses()
            .iter()
            .filter(move |p| paused && p.to > from)
            .map(move |p| (inst(p.from.max(from)), inst(p.to)));
        let limit = i64::from(n) * per_unit;
        let at = office_instant(ctx, since, limit, pauses);
        let covered = ctx.cal.office_secs(ctx.office, since, at);
        LimitEnd {
            at,
            // The date the limit runs out on: a deadline at a span's end belongs to that day.
            day: if at > since {
                Instant(at.0 - 1).day()
            } else {
                since.day()
            },
            paused: ((covered - limit).max(0) / 60) as u32,
        }
    }

    /// Applied extension days.
    pub fn extension_days(&self) -> u32 {
        self.rare().map_or(0, |e| {
            e.extensions
                .iter()
                .filter(|x| x.applied)
                .map(|x| u32::from(x.days))
                .sum()
        })
    }

    /// When the office time of the promised limit is half gone (the office-time units' 预警,
    /// §5), counting the closed pauses after `from`.
    fn office_halfway(&self, ctx: Ctx<'_>, from: T32, n: u32, per_unit: i64) -> Option<Instant> {
        let half = i64::from(n) * per_unit / 2;
        let pauses = self
            .pauses()
            .iter()
            .filter(move |p| p.to > from)
            .map(move |p| (inst(p.from.max(from)), inst(p.to)));
        (half > 0).then(|| office_instant(ctx, inst(from), half, pauses))
    }

    /// Last day of the current acceptance period, if one runs.
    pub fn acceptance_day(&self, ctx: Ctx<'_>) -> Option<Day> {
        (self.period_start != NEVER).then(|| {
            ctx.cal.add_working_days(
                inst(self.period_start).day(),
                ctx.policy.acceptance_working_days,
            )
        })
    }

    /// Did the current period pass its deadline unanswered?
    pub fn period_missed(&self, ctx: Ctx<'_>) -> bool {
        self.acceptance_day(ctx).is_some_and(|d| {
            let deadline = t32(d.end());
            self.answered_at == NEVER || self.answered_at >= deadline
        })
    }

    /// Clock start instant and whether acceptance is deemed (行政许可法 §32).
    pub fn start(&self, ctx: Ctx<'_>) -> Option<(T32, bool)> {
        if self.accepted_at == NEVER {
            return None;
        }
        let missed = self.missed_start();
        if missed != NEVER {
            return Some((missed, true));
        }
        if let Some(d) = self.acceptance_day(ctx) {
            if self.period_missed(ctx) && self.accepted_at >= t32(d.end()) {
                return Some((self.period_start, true));
            }
        }
        Some((self.accepted_at, false))
    }

    /// The case clock, once accepted.
    pub fn clock(&self, ctx: Ctx<'_>) -> Option<Clock> {
        let (start_t, deemed) = self.start(ctx)?;
        let start = inst(start_t).day();
        let ext = self.extension_days();
        let cal = ctx.cal;
        let promised_n = u32::from(self.promised_days) + ext;
        let promised = self.limit_end(ctx, self.promised_unit, start_t, promised_n, true);
        let (warning_day, warning_at) = match self.promised_unit.office_secs() {
            Some(per_unit) => {
                let at = self.office_halfway(ctx, start_t, promised_n, per_unit);
                (at.map(Instant::day), at)
            }
            None => {
                let w = ctx.policy.warn_before_working_days;
                let day = (w >= 1 && promised_n >= 1)
                    .then(|| cal.working_days_before(promised.day, w - 1))
                    .flatten();
                (day, day.map(Day::start))
            }
        };
        let legal = (self.legal_days != u16::MAX).then(|| {
            let n = u32::from(self.legal_days) + ext;
            self.limit_end(ctx, self.legal_unit, start_t, n, true)
        });
        Some(Clock {
            start,
            deemed,
            extension_days: ext,
            promised_day: promised.day,
            promised_at: promised.at,
            promised_pause_days: promised.paused,
            warning_day,
            warning_at,
            supervision_day: cal.add_working_days(promised.day, ctx.policy.supervise_working_days),
            legal: legal.map(|l| (l.day, l.paused)),
            legal_at: legal.map(|l| l.at),
        })
    }

    /// The open stage and when it started.
    pub fn open_stage(&self) -> Option<(Stage, T32)> {
        if self.accepted_at == NEVER {
            return None;
        }
        match self.stage_done.iter().rposition(|&t| t != NEVER) {
            None => Some((Stage::Undertake, self.accepted_at)),
            Some(i) => Stage::from_index(i + 1).map(|s| (s, self.stage_done[i])),
        }
    }

    /// Limit of a stage: the item's stage days in the promised unit.
    pub fn stage_limit(&self, ctx: Ctx<'_>, stage: Stage) -> Option<Limit> {
        if self.item_ref == NONE {
            return None;
        }
        let days = ctx.reference.item(self.item_ref).stage_days[stage.index()]?;
        Some(Limit {
            days,
            unit: self.promised_unit,
        })
    }

    /// End of the open stage's limit (with the pauses inside it).
    pub fn stage_end(&self, ctx: Ctx<'_>, stage: Stage, started: T32) -> Option<LimitEnd> {
        let limit = self.stage_limit(ctx, stage)?;
        Some(self.limit_end(ctx, limit.unit, started, u32::from(limit.days), true))
    }

    /// The open special procedure, if any.
    pub fn open_special(&self) -> Option<&Special> {
        self.rare()
            .and_then(|e| e.specials.last())
            .filter(|s| s.ended_at == NEVER)
    }

    /// Special procedure number `n` (1-based).
    pub fn special(&self, n: u8) -> Option<&Special> {
        self.rare()
            .and_then(|e| e.specials.get(usize::from(n).checked_sub(1)?))
    }

    /// Ordinal that goes into the subject of an alert for `due` (period or special number).
    pub fn ordinal(&self, due: Due) -> u8 {
        match due {
            Due::Acceptance => self.period_no,
            Due::Special => self.open_special().map_or(0, |s| s.n),
            _ => 0,
        }
    }

    /// End of a special procedure's own limit (its own clock: no pauses).
    pub fn special_end(&self, ctx: Ctx<'_>, sp: &Special) -> Option<LimitEnd> {
        let limit = sp.limit?;
        Some(self.limit_end(ctx, limit.unit, sp.started_at, u32::from(limit.days), false))
    }

    /// Every alert still to fire, with its instant, in firing order for equal instants.
    /// A clock that ended (case closed) only fires deadlines at or before its end.
    pub fn pending(&self, ctx: Ctx<'_>) -> Pending {
        let mut out = Pending::new();
        let end = if self.closed_at == NEVER {
            Instant(i64::MAX)
        } else {
            inst(self.closed_at)
        };
        let held = inst(self.pause_ended());
        if self.fired & fired::PERIOD == 0 && self.period_missed(ctx) {
            if let Some(d) = self.acceptance_day(ctx) {
                out.push(d.end(), Due::Acceptance);
            }
        }
        if self.pause_open() == 0 {
            if let Some(clock) = self.clock(ctx) {
                let accepted = inst(self.accepted_at);
                let yellow = clock.promised_at.max(held);
                if let Some(w) = clock.warning_at {
                    // A warning no earlier than the yellow card would tell nobody anything.
                    let warn = w.max(accepted).max(held);
                    if self.fired & fired::WARNING == 0 && warn < yellow {
                        out.push(warn, Due::Warning);
                    }
                }
                if self.fired & fired::YELLOW == 0 {
                    out.push(yellow, Due::Yellow);
                }
                if self.fired & fired::RED == 0 {
                    out.push(clock.red().0.max(held), Due::Red);
                }
            }
            if let Some((stage, started)) = self.open_stage() {
                if self.fired & (fired::STAGE << stage.index()) == 0 {
                    if let Some(end) = self.stage_end(ctx, stage, started) {
                        out.push(end.at.max(held), Due::Stage(stage));
                    }
                }
            }
        }
        if let Some(sp) = self.open_special() {
            if !sp.fired {
                if let Some(end) = self.special_end(ctx, sp) {
                    out.push(end.at, Due::Special);
                }
            }
        }
        if self.completed()
            && !self.acceptance_reported_in_time(ctx)
            && self.fired & fired::NO_ACCEPTANCE == 0
        {
            out.push(self.acceptance_grace_end(ctx), Due::NoAcceptance);
        }
        // Only the earliest unmatched fee: once it fires, the case is settled again.
        if let Some((at, i)) = self.next_unmatched_fee(ctx) {
            out.push(at, Due::Fee(i));
        }
        let mut kept = Pending::new();
        for &(at, due) in out.as_slice() {
            // A finished case's clocks only fire deadlines up to its end; the sequence and fee
            // checks are not clocks of the case and run past it.
            if at <= end || matches!(due, Due::NoAcceptance | Due::Fee(_)) {
                kept.push(at, due);
            }
        }
        kept.items[..kept.len].sort_unstable();
        kept
    }

    /// When the case's completion was reported (when it occurred, if it carries no report
    /// time); [`NEVER`] while it is not completed. `source.not_live` asks whether another event
    /// of the case was reported after it.
    pub fn completion_report(&self) -> T32 {
        match (self.completed(), self.closed_reported) {
            (false, _) => NEVER,
            (true, NEVER) => self.closed_at,
            (true, r) => r,
        }
    }

    /// When `hall.completed_without_acceptance` is judged: `sequence_grace_minutes` after the
    /// completion was reported (its `reported_at`, never before its `occurred_at`), or after it
    /// occurred when it carries no report time. The rule waits for its grace in report time.
    pub fn acceptance_grace_end(&self, ctx: Ctx<'_>) -> Instant {
        let grace = i64::from(ctx.policy.sequence_grace_minutes) * 60;
        let reported = if self.closed_reported == NEVER {
            self.closed_at
        } else {
            self.closed_reported.max(self.closed_at)
        };
        inst(reported).plus_secs(grace)
    }

    /// Whether the acceptance counts as reported in time for `hall.completed_without_acceptance`
    /// (docs/RULES.md): when both the acceptance and the completion carry `reported_at`, the
    /// acceptance's report must be at most `sequence_grace_minutes` after the completion's,
    /// whatever order they arrived in; otherwise (report times unknown) an acceptance applied
    /// before the alert fired counts, which is arrival order.
    pub fn acceptance_reported_in_time(&self, ctx: Ctx<'_>) -> bool {
        if self.accepted_at == NEVER {
            return false;
        }
        if self.accepted_reported == NEVER || self.closed_reported == NEVER {
            return true;
        }
        let grace = i64::from(ctx.policy.sequence_grace_minutes) * 60;
        inst(self.accepted_reported) <= inst(self.closed_reported).plus_secs(grace)
    }

    /// Match deadline of a fee charged at `at` (以票管审).
    pub fn fee_deadline(ctx: Ctx<'_>, at: T32) -> Instant {
        ctx.cal
            .add_working_days(inst(at).day(), ctx.policy.fee_match_working_days)
            .end()
    }

    /// Was the case accepted in the hall before `deadline`?
    pub fn accepted_in_hall_before(&self, deadline: Instant) -> bool {
        self.channel == Some(Channel::Hall)
            && self.accepted_at != NEVER
            && inst(self.accepted_at) < deadline
    }

    fn next_unmatched_fee(&self, ctx: Ctx<'_>) -> Option<(Instant, u8)> {
        let fees = &self.rare()?.fees;
        fees.iter()
            .enumerate()
            .filter(|(_, f)| !f.fired)
            .map(|(i, f)| (Case::fee_deadline(ctx, f.at), i as u8))
            .filter(|(deadline, _)| !self.accepted_in_hall_before(*deadline))
            .min()
    }

    /// For a case known only from fees (never submitted, accepted, staged or finished): the
    /// time of its last fee, from which it may be forgotten once nothing is pending.
    pub fn fee_only_since(&self) -> Option<T32> {
        let untouched = self.submitted_at == NEVER
            && self.accepted_at == NEVER
            && self.closed_at == NEVER
            && self.stage_done.iter().all(|&t| t == NEVER);
        if !untouched {
            return None;
        }
        self.rare()?.fees.iter().map(|f| f.at).max()
    }

    /// Mark an alert as fired.
    pub fn mark_fired(&mut self, due: Due) {
        match due {
            Due::NoAcceptance => self.fired |= fired::NO_ACCEPTANCE,
            Due::MissingStages => self.fired |= fired::MISSING_STAGES,
            Due::DeadlineMismatch | Due::RetroactivePause | Due::StageFabricated => {
                self.fired |= fired::INTEGRITY
            }
            Due::Fee(i) => {
                self.fired |= fired::FEE;
                if let Some(f) = self
                    .rare_if_any()
                    .and_then(|e| e.fees.get_mut(usize::from(i)))
                {
                    f.fired = true;
                }
            }
            Due::Acceptance => self.fired |= fired::PERIOD,
            Due::Warning => self.fired |= fired::WARNING,
            Due::Yellow => self.fired |= fired::YELLOW,
            Due::Red => self.fired |= fired::RED,
            Due::Stage(s) => self.fired |= fired::STAGE << s.index(),
            Due::Special => {
                self.fired |= fired::SPECIAL;
                if let Some(sp) = self.rare_if_any().and_then(|e| e.specials.last_mut()) {
                    sp.fired = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_instants_round_trip_and_never_is_zero() {
        let i = crate::time::parse_rfc3339("2000-01-01T00:00:00+08:00").unwrap();
        assert_eq!(t32(i), 1);
        let j = crate::time::parse_rfc3339("2099-12-31T23:59:59+08:00").unwrap();
        assert_eq!(inst(t32(j)), j);
    }

    #[test]
    fn overlapping_pauses_count_once() {
        let mut c = Case::new("C", NONE);
        c.open_pause(pause::SPECIAL, 100);
        c.open_pause(pause::SUSPEND, 200);
        assert!(c.close_pause(pause::SPECIAL, 300));
        assert!(c.pauses().is_empty(), "suspension still open");
        assert!(c.close_pause(pause::SUSPEND, 400));
        assert!(!c.close_pause(pause::SUSPEND, 500), "nothing open");
        assert_eq!(
            c.pauses(),
            &[Pause {
                from: 100,
                to: 400,
                kinds: pause::SPECIAL | pause::SUSPEND
            }]
        );
        assert_eq!(c.pause_ended(), 400);
    }

    #[test]
    fn fired_records_keep_their_order_and_are_written_as_before() {
        let mut f = Fires::default();
        for at in 1..=3 {
            f.push(Fired {
                due: Due::Yellow,
                at,
                n: 0,
                retracted: false,
            });
        }
        f[1].retracted = true;
        let ats: Vec<(T32, bool)> = f.iter().map(|x| (x.at, x.retracted)).collect();
        assert_eq!(ats, [(1, false), (2, true), (3, false)]);
        // Written as the sequence the `Vec` of earlier versions was.
        let v: Vec<Fired> = f.to_vec();
        assert_eq!(
            postcard::to_allocvec(&f).unwrap(),
            postcard::to_allocvec(&v).unwrap()
        );
    }

    #[test]
    fn case_state_stays_small() {
        // The ≤ 230 bytes per open case budget (issue 23): the struct itself must stay well
        // inside it (152 with the case's history, kept for corrections; 136 since the pause's
        // and the missed period's instants live with the rare facts).
        assert!(
            std::mem::size_of::<Case>() <= 136,
            "{}",
            std::mem::size_of::<Case>()
        );
    }
}

//! Applying a case event (`case.*`) to its case: the facts it records, the alerts it fires at
//! once (hall checks at acceptance, stage and completion; rejection without reason) and the
//! alerts a late event retracts. Deadlines that become due are fired afterwards by the engine.

use crate::alert::Alert;
use crate::event::{Body, CaseType, Channel, CompletionResult, Event, Unit};
use crate::reference::{Limit, Reference};

use super::batch::{BatchEntry, BurstChange, Place};
use super::case::Completion;
use super::case::{
    fired, inst, pause, t32, Case, Ctx, Due, Extension, Fired, Special, UnjudgedStage, NEVER, T32,
};
use super::people::People;
use super::table::{Symbols, NONE};
use super::{explain, hall, integrity, Outcome, Stats};

/// Record who and what the event names on the case.
pub(super) fn attribute(
    case: &mut Case,
    ev: &Event<'_>,
    named: &explain::Who,
    symbols: &mut Symbols,
    reference: &Reference,
) {
    case.who.take(named);
    if let Some(code) = ev.item_code.as_deref() {
        if case.item_ref == NONE {
            case.item_ref = reference.item_id(code).unwrap_or(NONE);
        }
    }
    if case.who.department == NONE && case.item_ref != NONE {
        case.who.department = symbols.intern(&reference.item(case.item_ref).department);
    }
}

/// Where a case event's consequences go: alerts it fires at once, retractions of alerts a late
/// event disproves, and the staff state behind the count-based rules.
pub(super) struct Sink<'a, 'e> {
    pub ctx: Ctx<'a>,
    pub ev: &'a Event<'e>,
    pub t: T32,
    pub out: &'a mut Vec<Alert>,
    pub stats: &'a mut Stats,
    pub people: &'a mut People,
}

impl Sink<'_, '_> {
    /// Emit an alert caused by the event itself.
    fn fire(&mut self, alert: Alert) {
        self.stats.alerts += 1;
        self.out.push(alert);
    }

    /// Emit the alert for `due` now and remember it so a later event can retract it.
    fn fire_due(&mut self, symbols: &Symbols, case: &mut Case, due: Due) {
        let at = inst(self.t);
        let alert = explain::alert(self.ctx, symbols, case, due, at, 0);
        case.mark_fired(due);
        case.extras_mut().fired.push(Fired {
            due,
            at: self.t,
            n: 0,
            retracted: false,
        });
        self.fire(alert);
    }

    /// Retract the case's alerts that `matches` selects and that fired after this event.
    /// `bits` are the [`fired`] bits of those alerts: when none is set there is nothing to look
    /// for, and the case's extras (a cache miss) are not touched.
    fn retract(
        &mut self,
        symbols: &Symbols,
        case: &mut Case,
        bits: u16,
        matches: impl Fn(&Fired) -> bool,
    ) {
        let t = self.t;
        self.retract_any(symbols, case, bits, |f| f.at > t && matches(f));
    }

    /// Retract the case's alerts that `matches` selects, whenever they fired.
    fn retract_any(
        &mut self,
        symbols: &Symbols,
        case: &mut Case,
        bits: u16,
        matches: impl Fn(&Fired) -> bool,
    ) {
        if case.fired & bits == 0 {
            return;
        }
        let Some(extras) = case.extras.as_mut() else {
            return;
        };
        let mut hits = Vec::new();
        for (k, f) in extras.fired.iter_mut().enumerate() {
            if !f.retracted && matches(f) {
                f.retracted = true;
                hits.push((k, *f));
            }
        }
        for (k, f) in hits {
            let mut alert = explain::alert(self.ctx, symbols, case, f.due, inst(f.at), f.n);
            alert.revision = firing_revision(case, k);
            self.stats.retractions += 1;
            self.out.push(explain::retracted(alert, self.ev));
        }
    }

    /// SPEC v1.1 §5: a pause or an extension counts like any other fact, however late it is
    /// reported. The case-clock alerts (预警, 黄牌, 红牌, stage) that fired after this event and
    /// that its facts disprove are retracted — while a pause is open nothing fires, and an
    /// applied extension moves the deadlines — and may fire again when the moved deadline
    /// passes (a new firing: their record bits are cleared).
    fn retract_disproved(&mut self, symbols: &Symbols, case: &mut Case) {
        let bits = fired::WARNING | fired::YELLOW | fired::RED | (fired::STAGE * 7);
        if case.fired & bits == 0 {
            return;
        }
        let ctx = self.ctx;
        let paused_since = (case.pause_open() != 0).then_some(case.pause_since().min(self.t));
        let clock = case.clock(ctx);
        let held = inst(case.pause_ended());
        let accepted = inst(case.accepted_at);
        let t = self.t;
        let disproved = |f: &Fired| -> bool {
            if let Some(since) = paused_since {
                return f.at > since && is_case_clock(f) && f.due != Due::Special;
            }
            if f.at <= t {
                return false;
            }
            let at = inst(f.at);
            match (f.due, clock.as_ref()) {
                (Due::Yellow, Some(c)) => c.promised_at.max(held) > at,
                (Due::Red, Some(c)) => c.red().0.max(held) > at,
                (Due::Warning, Some(c)) => {
                    c.warning_at.is_none_or(|w| w.max(accepted).max(held) > at)
                }
                _ => false,
            }
        };
        let Some(extras) = case.extras.as_mut() else {
            return;
        };
        let mut hits = Vec::new();
        for (k, f) in extras.fired.iter_mut().enumerate() {
            if !f.retracted && disproved(f) {
                f.retracted = true;
                hits.push((k, *f));
            }
        }
        for (k, f) in hits {
            case.fired &= !fired_bit(f.due);
            let mut alert = explain::alert(self.ctx, symbols, case, f.due, inst(f.at), f.n);
            alert.revision = firing_revision(case, k);
            self.stats.retractions += 1;
            let what = format!(
                "{}已于 {} 发生",
                self.ev.body.kind().zh(),
                self.ev.occurred_at
            );
            self.out.push(explain::retracted_as(alert, self.ev, &what));
        }
    }

    /// The case has just finished (completed or rejected by this event, after the retractions
    /// it caused): its alerts still standing follow it (SPEC §7 v1.1). A 预警 whose case
    /// finished before any 黄牌 stood is cleared (系统自动解除); every other standing alert of
    /// the case is sent again with the case's new state (a revision, e.g. "已超期 2 个工作日于
    /// 12-03 办结"). In the order they fired; the fee and completion-check alerts are about
    /// other subjects and stay as they are.
    fn follow_close(&mut self, symbols: &Symbols, case: &Case) {
        if case.fired & (fired::CLOCK | fired::PERIOD) == 0 {
            return;
        }
        let Some(extras) = case.extras.as_ref() else {
            return;
        };
        let standing = |f: &&Fired| !f.retracted && f.at <= self.t;
        let yellow_stands = extras
            .fired
            .iter()
            .filter(standing)
            .any(|f| f.due == Due::Yellow);
        for (k, f) in extras.fired.iter().enumerate().filter(|(_, f)| standing(f)) {
            let alert = match f.due {
                Due::Warning if !yellow_stands => {
                    let mut alert = explain::alert(self.ctx, symbols, case, f.due, inst(f.at), f.n);
                    alert.revision = firing_revision(case, k);
                    explain::cleared(alert, self.ev)
                }
                Due::Warning
                | Due::Yellow
                | Due::Red
                | Due::Stage(_)
                | Due::Special
                | Due::Acceptance => {
                    let lean = self
                        .ctx
                        .lean_revisions
                        .then(|| explain::lean_revision(symbols, case, f.due, inst(f.at), f.n))
                        .flatten();
                    if let Some(alert) = lean {
                        self.out.push(alert);
                        continue;
                    }
                    let mut alert = explain::alert(self.ctx, symbols, case, f.due, inst(f.at), f.n);
                    alert.revision = explain::revision::SUBJECT_FINISHED;
                    alert
                }
                _ => continue,
            };
            self.out.push(alert);
        }
    }
}

/// The [`fired`] bit of a case-clock alert.
fn fired_bit(due: Due) -> u16 {
    match due {
        Due::Warning => fired::WARNING,
        Due::Yellow => fired::YELLOW,
        Due::Red => fired::RED,
        Due::Stage(s) => fired::STAGE << s.index(),
        _ => 0,
    }
}

/// The revision of firing `k` of the case's record: the j-th firing of the same alert (after
/// j retractions) is revision 2j + 1, its first 0 (`explain::revision`).
pub(super) fn firing_revision(case: &Case, k: usize) -> u8 {
    let Some(extras) = case.extras.as_ref() else {
        return 0;
    };
    let Some(f) = extras.fired.get(k) else {
        return 0;
    };
    let before = extras.fired[..k]
        .iter()
        .filter(|g| g.due == f.due && g.n == f.n)
        .count();
    if before == 0 {
        0
    } else {
        explain::revision::fired_after(2 * before as u8)
    }
}

/// The event's `reported_at` as a case time ([`NEVER`] when it carries none).
fn reported(ev: &Event<'_>) -> T32 {
    ev.reported_at.map_or(NEVER, t32)
}

/// Alerts of the case's own clocks, which its completion or rejection ends.
fn is_case_clock(f: &Fired) -> bool {
    matches!(
        f.due,
        Due::Warning | Due::Yellow | Due::Red | Due::Stage(_) | Due::Special
    )
}

/// An answer to the acceptance period (受理, 不予受理 or 补正告知 before acceptance).
fn answer(symbols: &Symbols, case: &mut Case, t: T32, r: &mut Sink<'_, '_>) {
    if case.answered_at == NEVER || t < case.answered_at {
        case.answered_at = t;
    }
    let period = case.period_no;
    r.retract(symbols, case, fired::PERIOD, |f| {
        f.due == Due::Acceptance && f.n == period
    });
}

pub(super) fn apply(
    ctx: Ctx<'_>,
    symbols: &mut Symbols,
    case: &mut Case,
    ev: &Event<'_>,
    t: T32,
    r: &mut Sink<'_, '_>,
) -> Outcome {
    let before_acceptance = case.accepted_at == NEVER || t < case.accepted_at;
    match &ev.body {
        Body::CaseSubmitted { .. } => {
            if case.submitted_at == NEVER || t < case.submitted_at {
                case.submitted_at = t;
            }
            if case.period_no == 0 {
                case.period_no = 1;
                case.period_start = t;
            }
        }
        Body::CaseAccepted { channel, overrides } => {
            if case.accepted_at != NEVER {
                return Outcome::Inconsistent("already_accepted");
            }
            case.accepted_at = t;
            case.accepted_reported = reported(ev);
            let item = (case.item_ref != NONE).then(|| ctx.reference.item(case.item_ref));
            case.case_type = overrides
                .case_type
                .or(item.map(|i| i.case_type))
                .unwrap_or(CaseType::Promised);
            let instant = Limit {
                days: 0,
                unit: Unit::Working,
            };
            let promised = overrides.promised.or_else(|| match case.case_type {
                CaseType::Instant => Some(instant),
                _ => item.map(|i| i.promised),
            });
            // `check` guarantees a promised limit; 0 days is the safe reading otherwise.
            let promised = promised.unwrap_or(instant);
            case.promised_days = promised.days;
            case.promised_unit = promised.unit;
            match overrides.legal.or(item.and_then(|i| i.legal)) {
                Some(l) => {
                    case.legal_days = l.days;
                    case.legal_unit = l.unit;
                }
                None => case.legal_days = u16::MAX,
            }
            case.channel = Some(*channel);
            answer(symbols, case, t, r);
            // A completion that arrived before this acceptance, judged for 事后补录 now.
            let pending = case.extras.as_mut().and_then(|x| x.rare.as_mut());
            if let Some(done) = pending.and_then(|rare| rare.completion.take()) {
                if case_type(ctx, case) == CaseType::Promised {
                    batch(ctx, symbols, case, done, r);
                }
            }
            // 办结无受理 judged on report times: an acceptance reported within the grace after
            // the completion's report disproves it, however late it arrived (docs/RULES.md).
            // Without report times on both, arrival order decides and the alert stays.
            let reports = case.accepted_reported != NEVER && case.closed_reported != NEVER;
            if case.fired & fired::NO_ACCEPTANCE != 0
                && reports
                && case.acceptance_reported_in_time(ctx)
            {
                r.retract_any(symbols, case, fired::NO_ACCEPTANCE, |f| {
                    f.due == Due::NoAcceptance
                });
            }
            if *channel == Channel::Hall {
                // 以票管审: a hall acceptance that occurred before a fee alert disproves it.
                r.retract(symbols, case, fired::FEE, |f| matches!(f.due, Due::Fee(_)));
            }
            if let Some(day) = overrides.source_deadline {
                integrity::check_source_deadline(symbols, case, day, ev, r);
            }
            if let Some(item) = item.filter(|i| i.in_hall) {
                let outside_window = ev
                    .window_id
                    .as_deref()
                    .and_then(|w| ctx.reference.windows.get(w))
                    .is_some_and(|w| !w.in_hall);
                if item.channels & channel.bit() == 0 || outside_window {
                    let alert = hall::accepted_outside_hall(
                        symbols,
                        case,
                        item,
                        *channel,
                        ev,
                        outside_window,
                    );
                    r.fire(alert);
                }
            }
        }
        Body::CaseRejected { reason } => {
            if case.closed_at != NEVER {
                return Outcome::Inconsistent("already_finished");
            }
            answer(symbols, case, t, r);
            case.closed_at = t;
            case.closed_reported = reported(ev);
            r.retract(symbols, case, fired::CLOCK, is_case_clock);
            r.follow_close(symbols, case);
            let blank = reason.as_deref().is_none_or(|s| s.trim().is_empty());
            if blank && case.fired & fired::REJECTED == 0 {
                case.fired |= fired::REJECTED;
                let at = inst(t);
                let alert = explain::rejected_without_reason(ctx, symbols, case, &ev.event_id, at);
                r.fire(alert);
            }
        }
        Body::SupplementRequested { .. } => {
            if before_acceptance {
                answer(symbols, case, t, r);
            } else if ctx.policy.pause_on_supplement {
                case.open_pause(pause::SUPPLEMENT, t);
                integrity::pause_opened(case, pause::SUPPLEMENT, t, ev);
                r.retract_disproved(symbols, case);
            }
        }
        Body::SupplementReceived => {
            let ends_pause = case.close_pause(pause::SUPPLEMENT, t);
            if ends_pause {
                integrity::pause_closed(case, pause::SUPPLEMENT, t);
            }
            if !ends_pause && before_acceptance {
                // 补正受理 before acceptance: a new acceptance period starts (§32).
                if case.missed_start() == NEVER && case.period_missed(ctx) {
                    case.rare_mut().missed_start = case.period_start;
                }
                case.period_no = case.period_no.saturating_add(1);
                case.period_start = t;
                case.answered_at = NEVER;
                case.fired &= !fired::PERIOD;
            } else if !ends_pause && ctx.policy.pause_on_supplement {
                // With pauses off, a 补正 after acceptance was never a pause: nothing to end.
                return Outcome::Inconsistent("supplement_not_requested");
            }
        }
        Body::CaseStage { stage, .. } => {
            let reported = t32(integrity::report_time(ev));
            case.stage_reported = case.stage_reported.max(reported);
            let done = &mut case.stage_done[stage.index()];
            if *done == NEVER || t < *done {
                *done = t;
            }
            let stage = *stage;
            r.retract(symbols, case, fired::STAGE << stage.index(), |f| {
                f.due == Due::Stage(stage)
            });
            // A stage that occurred at or before the completion, however late it arrives, is
            // what an in-order report would have shown before it (docs/RULES.md).
            r.retract_any(symbols, case, fired::MISSING_STAGES, |f| {
                f.due == Due::MissingStages && t <= f.at
            });
            // 前店后场: a delegated stage performed by back-office staff.
            let delegated = case.item_ref != NONE
                && ctx.reference.item(case.item_ref).window_authority & (stage.bit() << 1) != 0;
            let back_office = ev
                .staff_id
                .as_deref()
                .and_then(|s| ctx.reference.staff.get(s))
                .filter(|s| !s.in_hall);
            if let (true, Some(staff)) = (delegated, back_office) {
                let at = (ev.occurred_at, ev.event_id.as_ref());
                r.fire(hall::back_office(ctx, symbols, case, stage, staff, at));
            } else if let (NONE, Some(staff)) = (case.item_ref, back_office) {
                // The item is not known yet (its acceptance arrives later): judged then.
                case.rare_mut().unjudged_stages.push(UnjudgedStage {
                    stage,
                    at: t,
                    staff_id: staff.staff_id.as_str().into(),
                    event_id: ev.event_id.as_ref().into(),
                });
            }
        }
        Body::CaseTransferred { to_department } => {
            symbols.update(&mut case.who.department, Some(to_department));
        }
        Body::SpecialStarted { procedure, limit } => {
            case.open_pause(pause::SPECIAL, t);
            integrity::pause_closed(case, pause::SPECIAL, t);
            integrity::pause_opened(case, pause::SPECIAL, t, ev);
            let specials = &mut case.rare_mut().specials;
            // A new one while one is open replaces the open one's own limit (docs/RULES.md).
            if let Some(open) = specials.last_mut().filter(|s| s.ended_at == NEVER) {
                open.ended_at = t;
            }
            specials.push(Special {
                n: u8::try_from(specials.len() + 1).unwrap_or(u8::MAX),
                ended_at: NEVER,
                procedure: *procedure,
                started_at: t,
                limit: *limit,
                fired: false,
            });
            r.retract_disproved(symbols, case);
        }
        Body::SpecialEnded => {
            if !case.close_pause(pause::SPECIAL, t) {
                return Outcome::Inconsistent("special_not_started");
            }
            integrity::pause_closed(case, pause::SPECIAL, t);
            if let Some(sp) = case.open_special_mut() {
                sp.ended_at = t;
                let n = sp.n;
                r.retract(symbols, case, fired::SPECIAL, |f| {
                    f.due == Due::Special && f.n == n
                });
            }
        }
        Body::CaseSuspended { .. } => {
            case.open_pause(pause::SUSPEND, t);
            integrity::pause_opened(case, pause::SUSPEND, t, ev);
            r.retract_disproved(symbols, case);
        }
        Body::CaseResumed { .. } => {
            let was_suspended = case.close_pause(pause::SUSPEND, t);
            if !was_suspended {
                return Outcome::Inconsistent("not_suspended");
            }
            integrity::pause_closed(case, pause::SUSPEND, t);
        }
        Body::CaseExtended { extra_days } => {
            // 限时办结: an extension asked for after the promised deadline moves nothing.
            let applied =
                case.pause_open() != 0 || case.clock(ctx).is_none_or(|c| inst(t) < c.promised_at);
            case.rare_mut().extensions.push(Extension {
                at: t,
                days: *extra_days,
                applied,
            });
            if applied {
                r.retract_disproved(symbols, case);
            }
        }
        Body::CaseCompleted { result } => {
            if case.closed_at != NEVER {
                return Outcome::Inconsistent("already_finished");
            }
            case.closed_at = t;
            case.closed_reported = reported(ev);
            case.result = Some(*result);
            r.retract(symbols, case, fired::CLOCK, is_case_clock);
            r.follow_close(symbols, case);
            let case_type = case_type(ctx, case);
            let no_stage = case.stage_done.iter().all(|&s| s == NEVER);
            if *result == CompletionResult::Approved && case_type == CaseType::Promised && no_stage
            {
                r.fire_due(symbols, case, Due::MissingStages);
            }
            if case_type == CaseType::Promised {
                if let Some(staff) = ev.staff_id.as_deref() {
                    let done = Completion {
                        staff: staff.into(),
                        place: Place::of(ev),
                    };
                    if case.accepted_at == NEVER {
                        // Judged for 事后补录 when the acceptance arrives.
                        case.rare_mut().completion = Some(done);
                    } else {
                        batch(ctx, symbols, case, done, r);
                    }
                }
            }
        }
        Body::CaseDelivered | Body::CaseArchived => {}
        _ => {}
    }
    // 前店后场 of stages that arrived before the item was known, judged now that it is, at the
    // instant each stage was done (what an in-order report would have given).
    if case.item_ref != NONE {
        let unjudged = case.extras.as_mut().and_then(|x| x.rare.as_mut());
        let stages = unjudged.map(|r| std::mem::take(&mut r.unjudged_stages));
        let authority = ctx.reference.item(case.item_ref).window_authority;
        for s in stages.unwrap_or_default() {
            let staff = ctx.reference.staff.get(&*s.staff_id);
            if let (true, Some(staff)) = (authority & (s.stage.bit() << 1) != 0, staff) {
                let at = (inst(s.at), &*s.event_id);
                r.fire(hall::back_office(ctx, symbols, case, s.stage, staff, at));
            }
        }
    }
    // `hall.missing_stages` is for 承诺件: judged at a completion that arrived before the case's
    // item or acceptance, it is retracted once they show another type (docs/RULES.md, "Order").
    if case.fired & fired::MISSING_STAGES != 0 && case_type(ctx, case) != CaseType::Promised {
        r.retract_any(symbols, case, fired::MISSING_STAGES, |f| {
            f.due == Due::MissingStages
        });
    }
    integrity::judge(symbols, case, r);
    Outcome::Applied
}

/// A completion of a 承诺件 whose acceptance is known: if it came less than
/// `batch_max_case_seconds` after the acceptance it counts on its staff member's bursts
/// (`batch.rs`), and what that changes is emitted.
fn batch(ctx: Ctx<'_>, symbols: &mut Symbols, case: &Case, done: Completion, r: &mut Sink<'_, '_>) {
    let (accepted, completed) = (case.accepted_at, case.closed_at);
    let max = i64::from(ctx.policy.batch_max_case_seconds);
    if completed < accepted || i64::from(completed - accepted) >= max {
        return;
    }
    let entry = BatchEntry {
        completed,
        accepted,
        case_id: case.id.as_str().into(),
        place: done.place,
    };
    let p = ctx.policy;
    let window = i64::from(p.batch_window_minutes) * 60;
    let keep = i64::from(p.closed_case_retention_days) * 86_400;
    let mut changes = Vec::new();
    let staff = symbols.intern(&done.staff);
    r.people.bursts(staff).insert(
        entry,
        window,
        p.batch_min_cases as usize,
        keep,
        &mut changes,
    );
    burst_lines(ctx, &done.staff, changes, r.ev, r.out, r.stats);
}

/// The alert lines of what changed in `staff`'s bursts (事后补录), caused by `ev`.
pub(super) fn burst_lines(
    ctx: Ctx<'_>,
    staff: &str,
    changes: Vec<BurstChange>,
    ev: &Event<'_>,
    out: &mut Vec<Alert>,
    stats: &mut Stats,
) {
    for change in changes {
        match change {
            BurstChange::Fire { entries, revision } => {
                if let Some(alert) = hall::batch_entry(ctx, staff, &entries, revision) {
                    stats.alerts += 1;
                    out.push(alert);
                }
            }
            BurstChange::Retract { entries, revision } => {
                let before = revision.saturating_sub(1);
                if let Some(alert) = hall::batch_entry(ctx, staff, &entries, before) {
                    stats.retractions += 1;
                    out.push(explain::retracted(alert, ev));
                }
            }
        }
    }
}

/// The case's type as known now: the acceptance's (with its override), else its item's, else
/// 承诺件.
fn case_type(ctx: Ctx<'_>, case: &Case) -> CaseType {
    if case.accepted_at != NEVER || case.item_ref == NONE {
        case.case_type
    } else {
        ctx.reference.item(case.item_ref).case_type
    }
}

//! The engine: events in, alerts out, time passed in.
//!
//! ```text
//! on_event(ev) ─ duplicate? ─ advance_to(ev.occurred_at) ─ apply to the case ─ fire what is due
//! advance_to(t) ─ pop timers due ≤ t in time order ─ fire ─ reschedule
//! ```
//! Each case has at most one live entry in a binary heap of timers: the earliest instant at which
//! one of its alerts could fire. An entry carries the slot's generation and is ignored if the case
//! has since been rescheduled or evicted (lazy deletion), so an event never searches the heap.
//! Alerts due at the same instant are emitted ordered by case id, then rule and level, so the
//! output does not depend on the order in which cases were created.

mod case;
mod explain;
mod table;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::alert::{Alert, AlertStatus};
use crate::event::{Body, CaseType, Event, Unit};
use crate::policy::Policy;
use crate::reference::{Limit, Reference};
use crate::time::Instant;

use case::{inst, pause, t32, Case, Ctx, Due, Extension, Fired, Special, NEVER, T32};
use table::{Dedup, Slab, Symbols, NONE};

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
}

impl Rejection {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::UnknownItem(_) => "unknown_item",
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// (due, slot, generation), earliest first.
    timers: BinaryHeap<Reverse<(T32, u32, u32)>>,
    dedup: Dedup,
    clock: Instant,
    stats: Stats,
}

impl Engine {
    /// A fresh engine.
    pub fn new(reference: Arc<Reference>, policy: Policy) -> Engine {
        Engine {
            dedup: Dedup::new(policy.dedup_capacity as usize),
            reference,
            policy,
            symbols: Symbols::default(),
            cases: Slab::default(),
            timers: BinaryHeap::new(),
            clock: Instant(i64::MIN),
            stats: Stats::default(),
        }
    }

    /// The engine clock: the largest event time seen or advanced to.
    pub fn clock(&self) -> Instant {
        self.clock
    }

    /// Cases held in memory (open ones and recently finished ones).
    pub fn tracked_cases(&self) -> usize {
        self.cases.len()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Apply one event. First every timer due at or before its `occurred_at` fires (SPEC §8),
    /// then the event is applied and whatever it makes due fires. Alerts are appended to `out`.
    pub fn on_event(&mut self, ev: &Event<'_>, out: &mut Vec<Alert>) -> Result<Outcome, Rejection> {
        let id = Dedup::hash(&ev.event_id);
        if self.dedup.contains(id) {
            self.stats.duplicates += 1;
            return Ok(Outcome::Duplicate);
        }
        self.check(ev)?;
        self.advance_to(ev.occurred_at, out);
        self.dedup.insert(id);
        self.stats.applied += 1;
        let outcome = match ev.case_id.as_deref() {
            Some(case_id) if ev.body.kind().is_case() => self.apply_case(case_id, ev, out),
            _ => Outcome::Applied,
        };
        if let Outcome::Inconsistent(_) = outcome {
            self.stats.inconsistent += 1;
        }
        Ok(outcome)
    }

    /// Move the clock to `now`, firing every timer due at or before it, in time order.
    pub fn advance_to(&mut self, now: Instant, out: &mut Vec<Alert>) {
        let mut batch = Vec::new();
        while let Some(&Reverse((due, _, _))) = self.timers.peek() {
            if inst(due) > now {
                break;
            }
            while let Some(&Reverse((d, slot, generation))) = self.timers.peek() {
                if d != due {
                    break;
                }
                self.timers.pop();
                let live = self.cases.generation(slot) == generation
                    && self.cases.get(slot).is_some_and(|c| c.timer_due == due);
                if live {
                    self.on_timer(slot, inst(due), &mut batch);
                }
            }
            // Stable: alerts of one case keep their warning → yellow → red order.
            batch.sort_by(|a: &Alert, b: &Alert| a.case_id.cmp(&b.case_id));
            self.stats.alerts += batch.len() as u64;
            out.append(&mut batch);
        }
        self.clock = self.clock.max(now);
    }

    /// Refuse events the engine cannot use (they go to the dead-letter store).
    fn check(&self, ev: &Event<'_>) -> Result<(), Rejection> {
        if let Body::CaseAccepted { overrides, .. } = &ev.body {
            let code = ev.item_code.as_deref().unwrap_or("");
            let has_limit =
                overrides.promised.is_some() || overrides.case_type == Some(CaseType::Instant);
            if !has_limit && self.reference.item_id(code).is_none() {
                return Err(Rejection::UnknownItem(code.to_string()));
            }
        }
        Ok(())
    }

    fn on_timer(&mut self, slot: u32, due: Instant, batch: &mut Vec<Alert>) {
        let retention = i64::from(self.policy.closed_case_retention_days) * 86_400;
        let Some(case) = self.cases.get_mut(slot) else {
            return;
        };
        case.timer_due = NEVER;
        if case.closed_at != NEVER && inst(case.closed_at).plus_secs(retention) <= due {
            self.cases.remove(slot);
            self.stats.evicted += 1;
            return;
        }
        self.settle(slot, due, batch);
    }

    /// Fire every pending alert of the case due at or before `now`, then put its next deadline
    /// (or, once it is finished, its eviction) on the timer heap. Pending deadlines are computed
    /// once: firing one never moves another.
    fn settle(&mut self, slot: u32, now: Instant, out: &mut Vec<Alert>) {
        let retention = i64::from(self.policy.closed_case_retention_days) * 86_400;
        let Engine {
            reference,
            policy,
            symbols,
            cases,
            timers,
            ..
        } = self;
        let ctx = Ctx {
            cal: &reference.calendar,
            policy,
            reference,
        };
        let generation = cases.generation(slot);
        let Some(case) = cases.get_mut(slot) else {
            return;
        };
        let mut next = None;
        for &(at, due) in case.pending(ctx).as_slice() {
            if at > now {
                next = Some(at);
                break;
            }
            let n = case.ordinal(due);
            out.push(explain::alert(ctx, symbols, case, due, at, n));
            case.mark_fired(due);
            case.extras_mut().fired.push(Fired {
                due,
                at: t32(at),
                n,
                retracted: false,
            });
        }
        if case.closed_at != NEVER {
            next = Some(inst(case.closed_at).plus_secs(retention));
        }
        let Some(next) = next.map(t32) else {
            return;
        };
        // Keep an earlier live entry: when it pops, the case is simply settled again.
        if case.timer_due == NEVER || next < case.timer_due {
            case.timer_due = next;
            timers.push(Reverse((next, slot, generation)));
        }
    }

    fn apply_case(&mut self, case_id: &str, ev: &Event<'_>, out: &mut Vec<Alert>) -> Outcome {
        let (slot, _) = self.cases.find_or_insert(case_id, || Case::new(case_id));
        let t = t32(ev.occurred_at);
        let outcome = {
            let Engine {
                reference,
                policy,
                symbols,
                cases,
                stats,
                ..
            } = self;
            let ctx = Ctx {
                cal: &reference.calendar,
                policy,
                reference,
            };
            let Some(case) = cases.get_mut(slot) else {
                return Outcome::Applied;
            };
            attribute(case, ev, symbols, reference);
            let mut retract = Retractor {
                ctx,
                ev,
                t,
                out,
                stats,
            };
            apply(ctx, symbols, case, ev, t, &mut retract)
        };
        let before = out.len();
        self.settle(slot, self.clock, out);
        self.stats.alerts += (out.len() - before) as u64;
        outcome
    }
}

/// Record who and what the event names on the case.
fn attribute(case: &mut Case, ev: &Event<'_>, symbols: &mut Symbols, reference: &Reference) {
    symbols.update(&mut case.center, Some(&ev.center_id));
    symbols.update(&mut case.region, Some(&ev.region));
    symbols.update(&mut case.department, ev.department.as_deref());
    symbols.update(&mut case.window, ev.window_id.as_deref());
    symbols.update(&mut case.staff, ev.staff_id.as_deref());
    if let Some(code) = ev.item_code.as_deref() {
        symbols.update(&mut case.item, Some(code));
        if case.item_ref == NONE {
            case.item_ref = reference.item_id(code).unwrap_or(NONE);
        }
    }
    if case.department == NONE && case.item_ref != NONE {
        case.department = symbols.intern(&reference.item(case.item_ref).department);
    }
}

/// Retracts a case's alerts that a late event shows were fired after their clock ended.
struct Retractor<'a, 'e> {
    ctx: Ctx<'a>,
    ev: &'a Event<'e>,
    t: T32,
    out: &'a mut Vec<Alert>,
    stats: &'a mut Stats,
}

impl Retractor<'_, '_> {
    fn retract(&mut self, symbols: &Symbols, case: &mut Case, matches: impl Fn(&Fired) -> bool) {
        let Some(extras) = case.extras.as_mut() else {
            return;
        };
        let mut hits = Vec::new();
        for f in extras.fired.iter_mut() {
            if !f.retracted && f.at > self.t && matches(f) {
                f.retracted = true;
                hits.push(*f);
            }
        }
        let ended = inst(self.t);
        for f in hits {
            let mut alert = explain::alert(self.ctx, symbols, case, f.due, inst(f.at), f.n);
            alert.status = AlertStatus::Retracted;
            alert.evidence["retracted_by"] = serde_json::json!({
                "event_id": self.ev.event_id,
                "kind": self.ev.body.kind().as_str(),
                "occurred_at": ended,
            });
            alert.message = format!(
                "已撤销：{}（后到事件表明 {} 已于 {} 发生，早于告警时间）",
                alert.message,
                self.ev.body.kind().as_str(),
                ended
            );
            self.stats.retractions += 1;
            self.out.push(alert);
        }
    }
}

fn is_case_clock(f: &Fired) -> bool {
    !matches!(f.due, Due::Acceptance)
}

/// An answer to the acceptance period (受理, 不予受理 or 补正告知 before acceptance).
fn answer(symbols: &Symbols, case: &mut Case, t: T32, r: &mut Retractor<'_, '_>) {
    if case.answered_at == NEVER || t < case.answered_at {
        case.answered_at = t;
    }
    let period = case.period_no;
    r.retract(symbols, case, |f| f.due == Due::Acceptance && f.n == period);
}

fn apply(
    ctx: Ctx<'_>,
    symbols: &mut Symbols,
    case: &mut Case,
    ev: &Event<'_>,
    t: T32,
    r: &mut Retractor<'_, '_>,
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
        Body::CaseAccepted { overrides, .. } => {
            if case.accepted_at != NEVER {
                return Outcome::Inconsistent("already_accepted");
            }
            case.accepted_at = t;
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
            answer(symbols, case, t, r);
        }
        Body::CaseRejected { reason } => {
            if case.closed_at != NEVER {
                return Outcome::Inconsistent("already_finished");
            }
            answer(symbols, case, t, r);
            case.closed_at = t;
            r.retract(symbols, case, is_case_clock);
            let blank = reason.as_deref().is_none_or(|s| s.trim().is_empty());
            if blank && case.fired & case::fired::REJECTED == 0 {
                case.fired |= case::fired::REJECTED;
                let at = inst(t);
                let alert = explain::rejected_without_reason(ctx, symbols, case, &ev.event_id, at);
                r.stats.alerts += 1;
                r.out.push(alert);
            }
        }
        Body::SupplementRequested { .. } => {
            if before_acceptance {
                answer(symbols, case, t, r);
            } else if ctx.policy.pause_on_supplement {
                case.open_pause(pause::SUPPLEMENT, t);
            }
        }
        Body::SupplementReceived => {
            if case.close_pause(pause::SUPPLEMENT, t) {
            } else if before_acceptance {
                // 补正受理 before acceptance: a new acceptance period starts (§32).
                if case.missed_start == NEVER && case.period_missed(ctx) {
                    case.missed_start = case.period_start;
                }
                case.period_no = case.period_no.saturating_add(1);
                case.period_start = t;
                case.answered_at = NEVER;
                case.fired &= !case::fired::PERIOD;
            } else if !ctx.policy.pause_on_supplement {
                return Outcome::Applied;
            } else {
                return Outcome::Inconsistent("supplement_not_requested");
            }
        }
        Body::CaseStage { stage, .. } => {
            let done = &mut case.stage_done[stage.index()];
            if *done == NEVER || t < *done {
                *done = t;
            }
            let stage = *stage;
            r.retract(symbols, case, |f| f.due == Due::Stage(stage));
        }
        Body::CaseTransferred { to_department } => {
            symbols.update(&mut case.department, Some(to_department));
        }
        Body::SpecialStarted { procedure, limit } => {
            case.open_pause(pause::SPECIAL, t);
            let specials = &mut case.extras_mut().specials;
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
        }
        Body::SpecialEnded => {
            if !case.close_pause(pause::SPECIAL, t) {
                return Outcome::Inconsistent("special_not_started");
            }
            let open = case
                .extras
                .as_mut()
                .and_then(|e| e.specials.last_mut())
                .filter(|s| s.ended_at == NEVER);
            if let Some(sp) = open {
                sp.ended_at = t;
                let n = sp.n;
                r.retract(symbols, case, |f| f.due == Due::Special && f.n == n);
            }
        }
        Body::CaseSuspended { .. } => case.open_pause(pause::SUSPEND, t),
        Body::CaseResumed { .. } => {
            let was_suspended = case.close_pause(pause::SUSPEND, t);
            if !was_suspended {
                return Outcome::Inconsistent("not_suspended");
            }
        }
        Body::CaseExtended { extra_days } => {
            // 限时办结: an extension asked for after the promised deadline moves nothing.
            let applied = case.pause_open != 0
                || case
                    .clock(ctx)
                    .is_none_or(|c| inst(t) < c.promised_day.end());
            case.extras_mut().extensions.push(Extension {
                at: t,
                days: *extra_days,
                applied,
            });
        }
        Body::CaseCompleted { .. } => {
            if case.closed_at != NEVER {
                return Outcome::Inconsistent("already_finished");
            }
            case.closed_at = t;
            r.retract(symbols, case, is_case_clock);
        }
        Body::CaseDelivered | Body::CaseArchived => {}
        _ => {}
    }
    Outcome::Applied
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::event::{Channel, CompletionResult, LimitOverrides};
    use crate::time::parse_rfc3339;

    fn engine(policy: Policy) -> Engine {
        let reference = Reference::parse(&crate::synth::reference_files()).expect("reference");
        Engine::new(Arc::new(reference), policy)
    }

    fn ev<'a>(id: &'a str, at: &str, case: &'a str, body: Body<'a>) -> Event<'a> {
        Event {
            event_id: Cow::Borrowed(id),
            occurred_at: parse_rfc3339(at).expect("timestamp"),
            reported_at: None,
            center_id: Cow::Borrowed("C0"),
            region: Cow::Borrowed("430620"),
            department: None,
            window_id: None,
            staff_id: None,
            case_id: Some(Cow::Borrowed(case)),
            item_code: Some(Cow::Borrowed("I001")),
            body,
        }
    }

    fn accepted(overrides: LimitOverrides) -> Body<'static> {
        Body::CaseAccepted {
            channel: Channel::Hall,
            overrides,
        }
    }

    fn completed() -> Body<'static> {
        Body::CaseCompleted {
            result: CompletionResult::Approved,
        }
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

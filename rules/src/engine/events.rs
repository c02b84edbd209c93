//! Applying the events that are not about a case's clocks: fees (以票管审), complaints, 好差评
//! evaluations, and the lateness of any event's report.

use crate::alert::Alert;
use crate::event::{ComplaintCategory, Event};

use super::batch::Place;
use super::case::{inst, t32, Case, CaseFee, Ctx, NEVER};
use super::count::{CountChange, Strike};
use super::explain::Attribution;
use super::ladder::{self, Card};
use super::matter::{complaint_filed, evaluation_bad, Matter, MatterKind, Resolution};
use super::table::{Symbols, NONE};
use super::{hall, Engine, Outcome};

/// Record an event's attribution on a matter. The event that opens a matter (filing, rating,
/// charging) names its target; the one that ends it (resolution, rectification) names who
/// handled it, so it only fills in what is still unknown.
///
/// An event that names a window but no department (ratings and complaints usually do) is the
/// window's department's, from the reference: 绩效 by department counts it there.
fn attribute(
    matter: &mut Matter,
    ev: &Event<'_>,
    symbols: &mut Symbols,
    reference: &crate::Reference,
    opens: bool,
) {
    matter.who.record(ev, symbols, opens);
    if matter.who.department == NONE {
        if let Some(w) = ev
            .window_id
            .as_deref()
            .and_then(|w| reference.windows.get(w))
        {
            matter.who.department = symbols.intern(&w.department);
        }
    }
    if matter.case_id.is_none() || opens {
        if let Some(case) = ev.case_id.as_deref() {
            matter.case_id = Some(case.into());
        }
    }
}

/// `hall.fee_irregular`: a fee that differs from its item's statutory fee.
pub(super) fn fee_standard(
    reference: &crate::Reference,
    ev: &Event<'_>,
    receipt_no: &str,
    amount_fen: u64,
) -> Option<Alert> {
    let item = reference.item(reference.item_id(ev.item_code.as_deref()?)?);
    let standard = item.fee_fen?;
    (standard != amount_fen)
        .then(|| hall::fee_irregular(ev, item, receipt_no, amount_fen, standard))
}

/// Record a fee charged for a case on the case.
pub(super) fn fee_on_case(
    symbols: &mut Symbols,
    case: &mut Case,
    ev: &Event<'_>,
    receipt_no: &str,
    amount_fen: u64,
    payer_id: &str,
) {
    // A fee may be the first thing seen of a case: give it a centre and an item.
    if case.who.center == NONE {
        symbols.update(&mut case.who.center, Some(&ev.center_id));
        symbols.update(&mut case.who.region, Some(&ev.region));
    }
    if case.who.item == NONE {
        symbols.update(&mut case.who.item, ev.item_code.as_deref());
    }
    let mut fee = CaseFee {
        receipt_no: receipt_no.into(),
        payer_id: payer_id.into(),
        at: t32(ev.occurred_at),
        amount_fen,
        item: NONE,
        window: NONE,
        staff: NONE,
        fired: false,
    };
    symbols.update(&mut fee.item, ev.item_code.as_deref());
    symbols.update(&mut fee.window, ev.window_id.as_deref());
    symbols.update(&mut fee.staff, ev.staff_id.as_deref());
    case.rare_mut().fees.push(fee);
}

impl Engine {
    pub(super) fn emit(&mut self, out: &mut Vec<Alert>, alert: Alert) {
        self.stats.alerts += 1;
        out.push(alert);
    }

    /// `fee.charged`: 以票管审 and the fee standard.
    pub(super) fn on_fee(
        &mut self,
        ev: &Event<'_>,
        receipt_no: &str,
        amount_fen: u64,
        payer_id: &str,
        out: &mut Vec<Alert>,
    ) -> Outcome {
        if let Some(alert) = fee_standard(&self.reference, ev, receipt_no, amount_fen) {
            self.emit(out, alert);
        }
        let t = t32(ev.occurred_at);
        let Some(case_id) = ev.case_id.as_deref() else {
            let key = super::matter::key('f', receipt_no);
            let kind = MatterKind::Fee {
                payer_id: payer_id.into(),
                amount_fen,
            };
            let region = self.region;
            let (slot, new) = self
                .matters
                .find_or_insert(&key, region, || Matter::new(&key, kind, region));
            if !new {
                return Outcome::Inconsistent("duplicate_receipt");
            }
            if let Some(m) = self.matters.get_mut(slot) {
                attribute(m, ev, &mut self.symbols, &self.reference, true);
                m.started = t;
            }
            self.settle_matter(slot, self.clock, out);
            return Outcome::Applied;
        };
        let region = self.region;
        let slot = match self.cases.find(case_id, region) {
            Some(slot) => slot,
            None => {
                // A case finished and forgotten after being accepted in the hall: the fee
                // (typically paid at 出件) matches it, and there is nothing left to track.
                if let Some(accepted) = self.departed.accepted_at(&ev.region, case_id) {
                    let ctx = Ctx::of(&self.reference, &self.policy, &self.office_hours);
                    if inst(accepted) < Case::fee_deadline(ctx, t) {
                        return Outcome::Applied;
                    }
                }
                self.cases
                    .find_or_insert(case_id, region, || Case::new(case_id, region))
                    .0
            }
        };
        let clock = self.clock;
        let Some(case) = self.cases.get_mut(slot) else {
            return Outcome::Applied;
        };
        if self.policy.case_history {
            let named = case.who.named(ev, &mut self.symbols);
            case.history.record(ev, clock, &mut self.symbols, &named);
        }
        fee_on_case(
            &mut self.symbols,
            case,
            ev,
            receipt_no,
            amount_fen,
            payer_id,
        );
        self.settle(slot, self.clock, out);
        Outcome::Applied
    }

    /// Slot of the complaint (`c`) or evaluation (`e`) `id` in `region`, created as `kind` if
    /// new.
    fn matter_slot(&mut self, region: &str, prefix: char, id: &str, kind: MatterKind) -> u32 {
        let key = super::matter::key(prefix, id);
        let region = self.hot.intern(&mut self.symbols, region);
        self.matters
            .find_or_insert(&key, region, || Matter::new(&key, kind, region))
            .0
    }

    /// `complaint.filed`: the complaint alert, its deadline, and the window's strike count.
    pub(super) fn on_complaint_filed(
        &mut self,
        ev: &Event<'_>,
        complaint_id: &str,
        category: ComplaintCategory,
        out: &mut Vec<Alert>,
    ) -> Outcome {
        let slot = self.matter_slot(
            &ev.region,
            'c',
            complaint_id,
            MatterKind::Complaint { category: None },
        );
        let Some(m) = self.matters.get_mut(slot) else {
            return Outcome::Applied;
        };
        if let MatterKind::Complaint { category: Some(_) } = m.kind {
            return Outcome::Inconsistent("already_filed");
        }
        m.kind = MatterKind::Complaint {
            category: Some(category),
        };
        m.started = t32(ev.occurred_at);
        attribute(m, ev, &mut self.symbols, &self.reference, true);
        let kind = crate::fact::ActivityKind::Complaint;
        self.activity(
            kind,
            complaint_id,
            Attribution::of_event_in(ev, &self.reference),
            ev.occurred_at,
            0,
        );
        let alert = complaint_filed(
            Attribution::of_event_in(ev, &self.reference),
            complaint_id,
            category,
            ev.occurred_at,
            &ev.event_id,
        );
        self.emit(out, alert);
        self.window_strike(ev, complaint_id, out);
        // A substantiated resolution that arrived before this filing counts now, against the
        // target the filing names, as it would have in order.
        let pending = self.matters.get_mut(slot).and_then(|m| m.resolution.take());
        let target = self
            .matters
            .get(slot)
            .and_then(|m| self.symbols.owned(m.who.staff));
        if let (Some(res), Some(staff)) = (pending, target) {
            self.substantiated(ev, &staff, complaint_id, *res, out);
        }
        self.settle_matter(slot, self.clock, out);
        Outcome::Applied
    }

    /// A complaint or bad evaluation against a window (`complaint.repeated_window`).
    fn window_strike(&mut self, ev: &Event<'_>, trigger: &str, out: &mut Vec<Alert>) {
        let Some(window) = ev.window_id.as_deref() else {
            return;
        };
        let sym = self.symbols.intern(window);
        let threshold = self.policy.repeat_window_count;
        let strike = Strike {
            at: t32(ev.occurred_at),
            id: trigger.into(),
            place: Place::from_attribution(&Attribution::of_event_in(ev, &self.reference)),
        };
        let keep = self.late_secs();
        let mut changes = Vec::new();
        self.people
            .window_strike(sym, strike, threshold as usize, keep, &mut changes);
        self.emit_counts(ev, changes, out, |counted, revision| {
            hall::repeated_window(window, counted, revision)
        });
    }

    /// Emit what a count's change gives: its alert fired (or again), or retracted by `ev`.
    fn emit_counts(
        &mut self,
        ev: &Event<'_>,
        changes: Vec<CountChange>,
        out: &mut Vec<Alert>,
        build: impl Fn(&[Strike], u8) -> Option<Alert>,
    ) {
        for change in changes {
            let alert = match change {
                CountChange::Fire { counted, revision } => build(&counted, revision),
                CountChange::Retract { counted, revision } => {
                    build(&counted, revision.saturating_sub(1))
                        .map(|a| super::explain::retracted(a, ev))
                }
            };
            if let Some(alert) = alert {
                self.emit(out, alert);
            }
        }
    }

    /// How long after its window a count keeps what it counted, for reports that arrive late
    /// (`closed_case_retention_days`, as for cases).
    fn late_secs(&self) -> i64 {
        i64::from(self.policy.closed_case_retention_days) * 86_400
    }

    /// `complaint.resolved`: ends the complaint's clock; a substantiated complaint counts against
    /// its target (repeated complaints, discipline ladder).
    pub(super) fn on_complaint_resolved(
        &mut self,
        ev: &Event<'_>,
        complaint_id: &str,
        substantiated: bool,
        out: &mut Vec<Alert>,
    ) -> Outcome {
        let slot = self.matter_slot(
            &ev.region,
            'c',
            complaint_id,
            MatterKind::Complaint { category: None },
        );
        if !self.end_matter(slot, ev, out) {
            return Outcome::Inconsistent("already_resolved");
        }
        // Attributed to the complaint's target (what the filing named), not the resolver.
        if let Some(m) = self.matters.get(slot) {
            let who = super::explain::Attribution {
                case_id: None,
                ..m.who.attribution(&self.symbols)
            };
            let kind = crate::fact::ActivityKind::ComplaintResolved;
            self.activity(
                kind,
                complaint_id,
                who,
                ev.occurred_at,
                i32::from(substantiated),
            );
        }
        if substantiated {
            let res = Resolution {
                at: t32(ev.occurred_at),
                event_id: ev.event_id.as_ref().into(),
                place: Place::from_attribution(&Attribution::of_event_in(ev, &self.reference)),
            };
            let filed = self
                .matters
                .get(slot)
                .is_some_and(|m| matches!(m.kind, MatterKind::Complaint { category: Some(_) }));
            if !filed {
                // Its filing (which names the target) has not arrived: counted when it does.
                if let Some(m) = self.matters.get_mut(slot) {
                    m.resolution = Some(Box::new(res));
                }
            } else {
                let target = self
                    .matters
                    .get(slot)
                    .and_then(|m| self.symbols.owned(m.who.staff))
                    .or_else(|| ev.staff_id.as_deref().map(str::to_string));
                if let Some(staff) = target {
                    self.substantiated(ev, &staff, complaint_id, res, out);
                }
            }
        }
        self.settle_matter(slot, self.clock, out);
        Outcome::Applied
    }

    /// A substantiated complaint counts against `staff`: resolved by `res` (its instant, event
    /// id and where it was recorded); `ev` is the event applying it now (the resolution, or a
    /// filing that arrived after it).
    fn substantiated(
        &mut self,
        ev: &Event<'_>,
        staff: &str,
        complaint_id: &str,
        res: Resolution,
        out: &mut Vec<Alert>,
    ) {
        let sym = self.symbols.intern(staff);
        let t = res.at;
        let mut who = res.place.attribution();
        who.staff_id = Some(staff.to_string());
        let threshold = self.policy.repeat_staff_count;
        let strike = Strike {
            at: t,
            id: complaint_id.into(),
            place: Place::from_attribution(&who),
        };
        let keep = self.late_secs();
        let mut changes = Vec::new();
        self.people
            .substantiated(sym, strike, threshold as usize, keep, &mut changes);
        self.emit_counts(ev, changes, out, |counted, revision| {
            hall::repeated_staff(staff, counted, revision)
        });
        let year = inst(t).day().year();
        let place = ladder::place(
            &mut self.symbols,
            &who.center_id,
            &who.region,
            who.department.as_deref(),
            who.window_id.as_deref(),
        );
        let card = Card::complaint(t, complaint_id, res.event_id, place);
        let mut changes = Vec::new();
        self.people.ladder(sym, year).add(card, &mut changes);
        for change in changes {
            self.emit(out, hall::ladder(staff, year, change, &self.symbols));
        }
    }

    /// End a complaint or evaluation at the event's time, retracting what fired after it.
    /// False if it had already ended.
    fn end_matter(&mut self, slot: u32, ev: &Event<'_>, out: &mut Vec<Alert>) -> bool {
        let t = t32(ev.occurred_at);
        let ctx = Ctx::of(&self.reference, &self.policy, &self.office_hours);
        let Some(m) = self.matters.get_mut(slot) else {
            return false;
        };
        if m.ended != NEVER {
            return false;
        }
        m.ended = t;
        attribute(m, ev, &mut self.symbols, &self.reference, false);
        let Some((yellow, red)) = m.deadlines(ctx) else {
            return true;
        };
        use super::matter::{fired, MatterDue};
        for (bit, due, at) in [
            (fired::YELLOW, MatterDue::Yellow, yellow),
            (fired::RED, MatterDue::Red, red),
        ] {
            if m.fired & bit == 0 {
                continue;
            }
            let alert = m.alert(ctx, &self.symbols, due, at);
            if at > ev.occurred_at {
                let what = format!("已于 {} 办结", ev.occurred_at);
                self.stats.retractions += 1;
                out.push(super::explain::retracted_as(alert, ev, &what));
            } else {
                // It stands: sent again with the complaint's or rating's new state (SPEC §7).
                let mut alert = alert;
                alert.revision = super::explain::revision::SUBJECT_FINISHED;
                out.push(alert);
            }
        }
        true
    }

    /// `evaluation.submitted`: bad ratings (≤ 2) open a rectification period; every rating of a
    /// window feeds its satisfaction rate.
    pub(super) fn on_evaluation(
        &mut self,
        ev: &Event<'_>,
        evaluation_id: &str,
        score: u8,
        out: &mut Vec<Alert>,
    ) -> Outcome {
        let kind = crate::fact::ActivityKind::Evaluation;
        self.activity(
            kind,
            evaluation_id,
            Attribution::of_event_in(ev, &self.reference),
            ev.occurred_at,
            i32::from(score),
        );
        if score <= 2 {
            let slot = self.matter_slot(
                &ev.region,
                'e',
                evaluation_id,
                MatterKind::Evaluation { score: None },
            );
            let Some(m) = self.matters.get_mut(slot) else {
                return Outcome::Applied;
            };
            if let MatterKind::Evaluation { score: Some(_) } = m.kind {
                return Outcome::Inconsistent("already_rated");
            }
            m.kind = MatterKind::Evaluation { score: Some(score) };
            m.started = t32(ev.occurred_at);
            attribute(m, ev, &mut self.symbols, &self.reference, true);
            let days = self.policy.rectify_working_days;
            let alert = evaluation_bad(
                Attribution::of_event_in(ev, &self.reference),
                evaluation_id,
                score,
                ev.occurred_at,
                days,
                &ev.event_id,
            );
            self.emit(out, alert);
            self.window_strike(ev, evaluation_id, out);
            self.settle_matter(slot, self.clock, out);
        }
        if let Some(window) = ev.window_id.as_deref() {
            let sym = self.symbols.intern(window);
            let (sample, floor) = (
                self.policy.satisfaction_sample as usize,
                self.policy.satisfaction_floor,
            );
            let day = ev.occurred_at.day();
            if let Some((good, n)) = self
                .people
                .window_score(sym, score >= 4, day, sample, floor)
            {
                let alert = hall::satisfaction_low(
                    Attribution::of_event_in(ev, &self.reference),
                    window,
                    good,
                    n,
                    floor,
                    ev.occurred_at,
                );
                self.emit(out, alert);
            }
        }
        Outcome::Applied
    }

    /// `evaluation.rectified`: ends a bad evaluation's rectification clock.
    pub(super) fn on_rectified(
        &mut self,
        ev: &Event<'_>,
        evaluation_id: &str,
        out: &mut Vec<Alert>,
    ) -> Outcome {
        let slot = self.matter_slot(
            &ev.region,
            'e',
            evaluation_id,
            MatterKind::Evaluation { score: None },
        );
        if !self.end_matter(slot, ev, out) {
            return Outcome::Inconsistent("already_rectified");
        }
        self.settle_matter(slot, self.clock, out);
        Outcome::Applied
    }

    /// `hall.late_report`: reported (or, live, received) too long after it happened.
    pub(super) fn late_report(&mut self, ev: &Event<'_>, out: &mut Vec<Alert>) {
        if let Some(alert) = late_report(&self.policy, ev) {
            self.emit(out, alert);
        }
    }
}

/// `hall.late_report` of `ev`, if it was reported too long after it happened.
pub(super) fn late_report(policy: &crate::Policy, ev: &Event<'_>) -> Option<Alert> {
    let reported = ev.reported_at.or(ev.received_at)?;
    let hours = policy.late_report_hours;
    (reported.0 - ev.occurred_at.0 > i64::from(hours) * 3600)
        .then(|| hall::late_report(ev, reported, hours))
}

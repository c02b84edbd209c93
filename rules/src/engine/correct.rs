//! Corrections (SPEC §3): after an event that `supersedes` another, or an `event.withdrawn`,
//! the alerts on record are those a replay of the corrected stream gives.
//!
//! ```text
//! correction of event E of case C
//!   ├─ decode C's history once (every live entry, with the clock it arrived at)
//!   ├─ before: replay it aside, the case's alerts as lean lines (explain::Recipes)
//!   ├─ mark E superseded / withdrawn in the history (and record the correcting event)
//!   ├─ after:  replay again, without E (with the correcting event)
//!   ├─ C := after's state (its timers re-armed; the window board and 事后补录 bursts follow)
//!   └─ emit the difference of the two replays' alerts: retract what no longer stands, fire
//!      what newly does (with replay's ids and fired_at), revise what changed; only these
//!      lines are built in full
//! then the correcting event itself (if any) is applied like any other, at the current clock
//! ```
//!
//! A replay of the case's history at the clocks its events arrived at is what the live engine
//! did for the case (every case alert depends only on the case's events, the clock and the
//! reference), so the "before" replay stands for what is on record, including the alerts an
//! event raises at once (hall checks, late reports, fee standards) that a case does not keep.
//! Alerts about several cases (事后补录 bursts) are re-worked from the completions the two
//! replays count; the discipline ladder follows the cards emitted (`ladder.rs`).

use xxhash_rust::xxh3::xxh3_64;

use crate::alert::{Alert, AlertStatus};
use crate::event::{Body, Event, Kind};
use crate::time::Instant;

use super::apply;
use super::case::{fired, t32, Case, Ctx, NEVER};
use super::events::{fee_on_case, fee_standard, late_report};
use super::explain::{self, revision, Recipes};
use super::history::{into_owned, state};
use super::people::People;
use super::table::Dedup;
use super::{fire_pending, Engine, Rejection, Stats};

/// A correction the engine accepted: the corrected entry of a case's history.
pub(super) struct Target {
    slot: u32,
    at: usize,
    withdrawn: bool,
}

/// A history entry to replay: its offset, the clock it arrived at, its event, and whether it
/// superseded an event never seen (none before it in the history).
type Replayed = (usize, Instant, Event<'static>, bool);

/// What an event with `supersedes` or `withdraws` asks of the engine.
pub(super) enum Correcting {
    /// Nothing to correct: not a correction, or a `supersedes` of a withdrawn event (a deleted
    /// row written again). Applied as usual.
    Nothing,
    /// A `supersedes` of an event never seen (a feed joined mid-history): applied as a new
    /// event, and the lines it raises say so ([`explain::supersedes_unseen`]).
    Unseen,
    /// A correction of an entry of a case's history.
    Of(Target),
}

/// A case rebuilt aside from its history.
struct Rebuilt {
    case: Case,
    /// Every alert line the case's events and deadlines gave.
    lines: Lines,
    /// The case's completions as 事后补录 counts them.
    people: People,
}

/// A replay's alert lines, in order, and what the lean ones among them are built from.
struct Lines {
    alerts: Vec<Alert>,
    recipes: Recipes,
}

impl Engine {
    /// Find what a correction corrects, or refuse it (nothing is changed either way). A
    /// `supersedes` of an event never seen is a new event (a feed joined mid-history), as is
    /// one of a withdrawn event (a row deleted, then written again).
    pub(super) fn check_correction(&self, ev: &Event<'_>) -> Result<Correcting, Rejection> {
        let (field, id, withdrawn) = match (&ev.body, &ev.supersedes) {
            (Body::EventWithdrawn { withdraws }, _) => ("withdraws", withdraws, true),
            (_, Some(id)) => ("supersedes", id, false),
            _ => return Ok(Correcting::Nothing),
        };
        let hash = Dedup::hash(&ev.region, ev.source.as_deref().unwrap_or(""), id);
        let case = ev.case_id.as_deref();
        let slot = case.and_then(|c| self.cases.find(c, self.region));
        let history = |s: u32| Some(&self.cases.get(s)?.history);
        let found =
            slot.and_then(|s| Some((s, history(s)?.find(hash.0, &ev.region, &self.symbols)?)));
        match found {
            Some((slot, (at, state::LIVE))) => {
                return Ok(Correcting::Of(Target {
                    slot,
                    at,
                    withdrawn,
                }))
            }
            Some((_, (_, state::SUPERSEDED))) => {
                return Err(Rejection::AlreadySuperseded {
                    field,
                    id: id.to_string(),
                })
            }
            Some(_) if withdrawn => return Err(Rejection::UnknownEvent(id.to_string())),
            Some(_) => return Ok(Correcting::Nothing),
            None => {}
        }
        if !self.dedup.contains(hash) {
            return match withdrawn {
                true => Err(Rejection::UnknownEvent(id.to_string())),
                false => Ok(Correcting::Unseen),
            };
        }
        let why = match (case, slot) {
            _ if !self.policy.case_history => {
                "policy.toml sets case_history = false, so applied events cannot be corrected"
                    .to_string()
            }
            (None, _) => "the correction names no case_id; send it with the case_id of the \
                          event it corrects"
                .to_string(),
            (Some(c), None) => format!(
                "case {c:?} is no longer held (a finished case is forgotten \
                 closed_case_retention_days = {} days after it finished)",
                self.policy.closed_case_retention_days
            ),
            (Some(c), Some(_)) => format!(
                "it is not an event of case {c:?}: only case events and fees charged for a case \
                 can be corrected (docs/RULES.md, \"Corrections\")"
            ),
        };
        Err(Rejection::CorrectionUnsupported {
            field,
            id: id.to_string(),
            why,
        })
    }

    /// Apply an accepted correction (see the module documentation). The engine clock is at the
    /// correcting event's time. A correcting event that belongs in the case's history (a case
    /// event, a fee charged for the case) is recorded and replayed with it, and `true` says the
    /// caller has nothing left to apply; otherwise the caller applies the event as usual.
    pub(super) fn correct(&mut self, target: Target, ev: &Event<'_>, out: &mut Vec<Alert>) -> bool {
        let Target {
            slot,
            at,
            withdrawn,
        } = target;
        let corrected = match (&ev.body, &ev.supersedes) {
            (Body::EventWithdrawn { withdraws }, _) => withdraws.to_string(),
            (_, id) => id.as_deref().unwrap_or_default().to_string(),
        };
        let mark = match withdrawn {
            true => state::WITHDRAWN,
            false => state::SUPERSEDED,
        };
        let recorded =
            !withdrawn && (ev.body.kind().is_case() || matches!(ev.body, Body::FeeCharged { .. }));
        let clock = self.clock;
        let change = |engine: &mut Engine| {
            if let Some(case) = engine.cases.get_mut(slot) {
                case.history.set_state(at, mark);
                if recorded {
                    let named = case.who.named(ev, &mut engine.symbols);
                    case.history.record(ev, clock, &mut engine.symbols, &named);
                }
            }
        };
        let original = self.original(slot, at);
        let finding = original
            .as_ref()
            .and_then(|o| self.correction_finding(o, ev, withdrawn));
        self.rework(slot, ev, &corrected, change, out);
        if let Some(original) = &original {
            self.undo_act(original, ev, &corrected, out);
        }
        if recorded {
            // Applied here rather than by `apply_case`: for `source.not_live`, as it does.
            self.case_done_report = self.cases.get(slot).map_or(NEVER, Case::completion_report);
        }
        if let Some(alert) = finding {
            self.stats.alerts += 1;
            out.push(alert);
        }
        recorded
    }

    /// The duplicate-filter hash of the event `ev` supersedes when it was never seen (then `ev`
    /// is applied as a new event: SPEC §3).
    pub(super) fn unseen_target(&self, ev: &Event<'_>) -> Option<u64> {
        let s = ev.supersedes.as_deref()?;
        if matches!(ev.body, Body::EventWithdrawn { .. }) || !self.policy.case_history {
            return None;
        }
        let hash = Dedup::hash(&ev.region, ev.source.as_deref().unwrap_or(""), s);
        (!self.dedup.contains(hash)).then_some(hash.0)
    }

    /// `ev` (hash `id`) of `case` is the older version of a row whose newer version was applied
    /// first: the case's slot and the newer version's hash.
    pub(super) fn newer_version(
        &self,
        id: u64,
        case: Option<(&str, super::table::KeyHash)>,
    ) -> Option<(u32, u64)> {
        let (case_id, h) = case?;
        let slot = self.cases.find_hashed(h, case_id, self.region)?;
        let rare = self.cases.get(slot)?.rare()?;
        let (_, newer) = rare.unseen.iter().find(|u| u.0 == id)?;
        Some((slot, *newer))
    }

    /// The event (hash `id`) of `case` superseded the event (hash `target`) never seen: kept,
    /// so that the older version, if it comes, is recognised.
    pub(super) fn note_unseen(&mut self, case: Option<&str>, (target, id): (u64, u64)) {
        let Some(slot) = case.and_then(|c| self.cases.find(c, self.region)) else {
            return;
        };
        if let Some(case) = self.cases.get_mut(slot) {
            case.rare_mut().unseen.push((target, id));
        }
    }

    /// The older version `ev` (hash `id`) of a row arrives after the newer one (hash `newer`)
    /// that supersedes it: what is on record is what in-order delivery gives — the case stays
    /// as the newer version made it, `ev` enters its history as superseded, and the correction
    /// is judged (`data.corrected`) as it would have been.
    pub(super) fn late_version(
        &mut self,
        slot: u32,
        ev: &Event<'_>,
        (id, newer): (u64, u64),
        out: &mut Vec<Alert>,
    ) {
        let clock = self.clock;
        let Engine { cases, symbols, .. } = self;
        let Some(case) = cases.get_mut(slot) else {
            return;
        };
        case.rare_mut().unseen.retain(|u| u.0 != id);
        let named = case.who.named(ev, symbols);
        case.history.record(ev, clock, symbols, &named);
        let region = &*ev.region;
        if let Some((at, _)) = case.history.find(id, region, symbols) {
            case.history.set_state(at, state::SUPERSEDED);
        }
        self.case_done_report = case.completion_report();
        let correction = case
            .history
            .find(newer, region, symbols)
            .and_then(|(at, _)| self.original(slot, at));
        if let Some(alert) = correction.and_then(|c| self.correction_finding(ev, &c, false)) {
            self.stats.alerts += 1;
            out.push(alert);
        }
    }

    /// The event of the history entry at `at` of the case at `slot`.
    fn original(&self, slot: u32, at: usize) -> Option<Event<'static>> {
        let case = self.cases.get(slot)?;
        let region = self.symbols.get(case.who.region)?;
        let entry = case
            .history
            .entry_at(at, region, case.id.as_str(), &self.symbols)?;
        Some(into_owned(entry.event))
    }

    /// A placeholder's act corrected by `ev`: `data.placeholder_staff` follows the acts left.
    fn undo_act(
        &mut self,
        original: &Event<'_>,
        ev: &Event<'_>,
        corrected: &str,
        out: &mut Vec<Alert>,
    ) {
        let start = out.len();
        let Engine {
            policy,
            placeholders,
            cases,
            symbols,
            region,
            ..
        } = self;
        let region_name = symbols.owned(*region).unwrap_or_default();
        let event_of = |case_id: &str, id: u64| {
            let slot = cases.find(case_id, *region)?;
            let history = &cases.get(slot)?.history;
            let (at, _) = history.find(id, &region_name, symbols)?;
            let entry = history.entry_at(at, &region_name, case_id, symbols)?;
            Some(into_owned(entry.event))
        };
        placeholders.undo(policy, (original, ev, corrected), event_of, out);
        for alert in &out[start..] {
            match alert.status {
                AlertStatus::Retracted => self.stats.retractions += 1,
                _ => self.stats.alerts += 1,
            }
        }
    }

    /// `data.corrected` (SPEC §6): the correction `ev` of `original` came more than
    /// `correction_grace_hours` after the original was reported. Yellow when a 受理, 办结 or
    /// 特别程序 time moves by a day or more, or an acceptance or completion is withdrawn.
    fn correction_finding(
        &self,
        original: &Event<'_>,
        ev: &Event<'_>,
        withdrawn: bool,
    ) -> Option<Alert> {
        let reported = |e: &Event<'_>| e.reported_at.or(e.received_at).unwrap_or(e.occurred_at);
        let (was, now) = (reported(original), reported(ev));
        let grace = self.policy.correction_grace_hours;
        if now.0 - was.0 <= i64::from(grace) * 3600 {
            return None;
        }
        let kind = original.body.kind();
        let timed = matches!(
            kind,
            Kind::CaseAccepted | Kind::CaseCompleted | Kind::SpecialStarted
        );
        let moved = (!withdrawn).then(|| ev.occurred_at.0 - original.occurred_at.0);
        let yellow = match moved {
            Some(m) => timed && m.abs() >= 86_400,
            None => matches!(kind, Kind::CaseAccepted | Kind::CaseCompleted),
        };
        Some(explain::data_corrected(
            original,
            ev,
            (was, now),
            grace,
            yellow,
        ))
    }

    /// Rebuild the case at `slot` before and after `change` (to its history), take the state
    /// after, and emit the difference; `corrected` is the id `ev` corrects.
    fn rework(
        &mut self,
        slot: u32,
        ev: &Event<'_>,
        corrected: &str,
        change: impl FnOnce(&mut Engine),
        out: &mut Vec<Alert>,
    ) {
        // The history is decoded once: after the change, the corrected entry is left out and
        // what the change recorded is decoded and added.
        let mut entries = Vec::new();
        let end = self.live_entries(slot, 0, &mut entries);
        let Some(before) = self.rebuild(slot, &entries) else {
            return;
        };
        change(self);
        if let Some(history) = self.cases.get(slot).map(|c| &c.history) {
            entries.retain(|(at, ..)| history.state_at(*at) == Some(state::LIVE));
        }
        self.live_entries(slot, end, &mut entries);
        let Some(after) = self.rebuild(slot, &entries) else {
            return;
        };
        let now = t32(self.clock);
        let Engine {
            reference,
            policy,
            office_hours,
            symbols,
            cases,
            facts,
            ..
        } = self;
        let ctx = Ctx::of(reference, policy, office_hours);
        let Some(live) = cases.get_mut(slot) else {
            return;
        };
        let was_window = live.extras.as_ref().and_then(|x| x.overdue_window);
        let mut case = after.case;
        case.history = std::mem::take(&mut live.history);
        case.fired |= live.fired & fired::FACT;
        if let Some(revisions) = live.rare().map(|r| r.revisions.clone()) {
            case.rare_mut().revisions = revisions;
        }
        let is_window = case.extras.as_ref().and_then(|x| x.overdue_window);
        let (center, region) = (case.who.center, case.who.region);
        let case_id = case.id.as_str().to_string();
        // The case's record for the metrics, as it now stands.
        if let Some(facts) = facts.as_mut() {
            let fact = explain::fact(ctx, symbols, &case);
            if fact.is_some() && explain::fact(ctx, symbols, live) != fact {
                facts.extend(fact);
            }
        }
        *live = case;
        // The window's live count of overdue cases.
        if was_window != is_window {
            if let Some(w) = was_window {
                self.board.overdue_remove(w, now);
            }
            if let Some(w) = is_window {
                self.board.overdue_add(w, center, region, now);
            }
        }
        self.rework_bursts(&case_id, &before.people, &after.people, ev, out);
        let start = out.len();
        self.diff(before.lines, after.lines, ev, corrected, out);
        // The rebuilt case's next deadline.
        if let Some(case) = self.cases.get_mut(slot) {
            follow_revisions(case, &mut out[start..], true);
            case.timer_due = NEVER;
        }
        self.settle(slot, self.clock, out);
    }

    /// Add the live entries of the history of the case at `slot` from offset `from` on to
    /// `entries` (offset, the clock it arrived at, the event, owning its strings: a rebuild
    /// interns symbols as it applies them); the history's length is returned.
    fn live_entries(&self, slot: u32, from: usize, entries: &mut Vec<Replayed>) -> usize {
        let Some(live) = self.cases.get(slot) else {
            return from;
        };
        let region = self.symbols.get(live.who.region).unwrap_or_default();
        let history = &live.history;
        let unseen = |at: usize, ev: &Event<'_>| {
            let Some(original) = ev.supersedes.as_deref() else {
                return false;
            };
            let source = ev.source.as_deref().unwrap_or("");
            let hash = Dedup::hash(region, source, original).0;
            history
                .find(hash, region, &self.symbols)
                .is_none_or(|(seen, _)| seen > at)
        };
        entries.extend(
            history
                .entries_from(from, region, live.id.as_str(), &self.symbols)
                .filter(|(_, e)| e.state == state::LIVE)
                .map(|(at, e)| {
                    let unseen = unseen(at, &e.event);
                    (at, e.clock, into_owned(e.event), unseen)
                }),
        );
        history.end()
    }

    /// The case at `slot` replayed from `entries` (its live history entries), each at the
    /// clock it arrived at, then to the engine clock; nothing of the engine but symbols is
    /// touched.
    fn rebuild(&mut self, slot: u32, entries: &[Replayed]) -> Option<Rebuilt> {
        let live = self.cases.get(slot)?;
        let case_id = live.id.as_str().to_string();
        let mut case = Case::new(&case_id, live.who.region);
        let Engine {
            reference,
            policy,
            office_hours,
            symbols,
            clock,
            ..
        } = self;
        let recipes = Recipes::default();
        let ctx = Ctx {
            recipes: Some(&recipes),
            ..Ctx::of(reference, policy, office_hours)
        };
        let mut people = People::default();
        let mut stats = Stats::default();
        let mut alerts = Vec::new();
        // The clock the case was last brought to: nothing is due again before it moves on (a
        // new case has nothing due at all).
        let mut settled = None;
        for (_, at, ev, unseen) in entries {
            if settled.is_some_and(|t| t < *at) {
                fire_pending(ctx, symbols, &mut case, *at, &mut alerts, &mut stats, None);
            }
            let own = alerts.len();
            match &ev.body {
                Body::FeeCharged {
                    receipt_no,
                    amount_fen,
                    payer_id,
                } => {
                    alerts.extend(fee_standard(reference, ev, receipt_no, *amount_fen));
                    fee_on_case(symbols, &mut case, ev, receipt_no, *amount_fen, payer_id);
                }
                _ => {
                    let t = t32(ev.occurred_at);
                    let named = case.who.named(ev, symbols);
                    apply::attribute(&mut case, ev, &named, symbols, reference);
                    let mut sink = apply::Sink {
                        ctx,
                        ev,
                        t,
                        out: &mut alerts,
                        stats: &mut stats,
                        people: &mut people,
                    };
                    apply::apply(ctx, symbols, &mut case, ev, t, &mut sink);
                    // As `apply_case`: a finished case leaves its window's overdue count.
                    if case.closed_at != NEVER && case.fired & fired::YELLOW != 0 {
                        if let Some(x) = case.extras.as_mut() {
                            x.overdue_window = None;
                        }
                    }
                }
            }
            alerts.extend(late_report(policy, ev));
            fire_pending(ctx, symbols, &mut case, *at, &mut alerts, &mut stats, None);
            settled = Some(*at);
            if *unseen {
                explain::supersedes_unseen(ev, &mut alerts[own..]);
            }
        }
        fire_pending(
            ctx,
            symbols,
            &mut case,
            *clock,
            &mut alerts,
            &mut stats,
            None,
        );
        Some(Rebuilt {
            case,
            lines: Lines { alerts, recipes },
            people,
        })
    }

    /// 事后补录: the case's completion as the corrected history counts it, in place of the one
    /// counted before; what that changes in the staff members' bursts is emitted.
    fn rework_bursts(
        &mut self,
        case_id: &str,
        before: &People,
        after: &People,
        ev: &Event<'_>,
        out: &mut Vec<Alert>,
    ) {
        let was: Vec<_> = before.burst_entries().collect();
        let is: Vec<_> = after.burst_entries().collect();
        if was == is {
            return;
        }
        let p = &self.policy;
        let window = i64::from(p.batch_window_minutes) * 60;
        let keep = i64::from(p.closed_case_retention_days) * 86_400;
        let min = p.batch_min_cases as usize;
        let mut changes = Vec::new();
        let mut lines = Vec::new();
        for (staff, _) in &was {
            self.people
                .bursts(*staff)
                .remove(case_id, window, min, &mut changes);
            lines.push((*staff, std::mem::take(&mut changes)));
        }
        for (staff, entry) in is {
            self.people
                .bursts(staff)
                .insert(entry.clone(), window, min, keep, &mut changes);
            lines.push((staff, std::mem::take(&mut changes)));
        }
        let mut stats = Stats::default();
        let ctx = self.ctx();
        for (staff, changes) in lines {
            let name = self.symbols.get(staff).unwrap_or_default();
            apply::burst_lines(ctx, name, changes, ev, out, &mut stats);
        }
        self.stats.alerts += stats.alerts;
        self.stats.retractions += stats.retractions;
    }

    /// Emit the difference between what the history gave before the correction and after:
    /// in the order of the lines after, so that a case's levels keep their order. Lean lines
    /// are built in full only when emitted (or to compare their messages: [`Recipes`]).
    fn diff(
        &mut self,
        before: Lines,
        after: Lines,
        ev: &Event<'_>,
        corrected: &str,
        out: &mut Vec<Alert>,
    ) {
        let (was_made, recipes) = (&before.recipes, &after.recipes);
        // A case has a handful of alerts: linear lookups beat hashing their ids.
        let before = last_word(before.alerts);
        let after = last_word(after.alerts);
        let find = |lines: &'_ [Alert], id: &str| -> Option<usize> {
            lines.iter().position(|a| a.alert_id == id)
        };
        let stands = |a: &Alert| a.status != AlertStatus::Retracted;
        let ctx = Ctx::of(&self.reference, &self.policy, &self.office_hours);
        let symbols = &self.symbols;
        for old in before.iter().filter(|a| stands(a)) {
            let still = find(&after, &old.alert_id).is_some_and(|i| stands(&after[i]));
            if !still {
                self.stats.retractions += 1;
                let old = was_made.full(ctx, symbols, old.clone());
                out.push(explain::retracted_by_correction(old, ev, corrected));
            }
        }
        for new in after.into_iter().filter(stands) {
            let was = find(&before, &new.alert_id).map(|i| &before[i]);
            let mut restated = false;
            let revision = match was {
                // New on record: a firing, even if the corrected history also finished its case
                // (the line then carries the finished case's state).
                None if new.is_revision() => 0,
                None => new.revision,
                Some(old)
                    if old.status == new.status
                        && old.fired_at == new.fired_at
                        && was_made.same_message(ctx, symbols, old, recipes, &new) =>
                {
                    continue;
                }
                Some(old) => {
                    // Open again after an end, or at another instant: a new firing. The same
                    // firing with its case's new state: a revision. An end: after the last.
                    let again = old.status != AlertStatus::Open || old.fired_at != new.fired_at;
                    match new.status {
                        AlertStatus::Open if again => revision::fired_after(old.revision),
                        AlertStatus::Open => {
                            restated = true;
                            old.revision.saturating_add(1).max(new.revision)
                        }
                        _ => revision::ended_after(old.revision).max(new.revision),
                    }
                }
            };
            let new = recipes.full(ctx, symbols, new);
            let mut alert = explain::after_correction(new, ev, corrected);
            alert.revision = revision;
            // The same firing with its case's new state: a revision, whatever its number.
            alert.restated = restated && revision != revision::SUBJECT_FINISHED;
            self.stats.alerts += 1;
            out.push(alert);
        }
    }
}

/// Once a case has been corrected, every line about it follows the revisions already emitted:
/// an alert retracted by a correction and firing again later (at the deadline the corrected
/// history gives) comes with a higher revision than its retraction, so stores, which keep
/// each alert's highest revision, show it. `force` starts following (at a correction).
pub(super) fn follow_revisions(case: &mut Case, lines: &mut [Alert], force: bool) {
    if !force && case.rare().is_none_or(|r| r.revisions.is_empty()) {
        return;
    }
    let id = case.id.as_str().to_string();
    let revisions = &mut case.rare_mut().revisions;
    let about = |a: &&mut Alert| a.subject.get("case_id").and_then(|v| v.as_str()) == Some(&id);
    for a in lines.iter_mut().filter(about) {
        let h = xxh3_64(a.alert_id.as_bytes());
        match revisions.iter_mut().find(|(k, _)| *k == h) {
            Some((_, prev)) => {
                if a.revision <= *prev {
                    a.revision = match a.status {
                        AlertStatus::Open if a.is_revision() => {
                            let r = prev.saturating_add(1);
                            a.restated = r != revision::SUBJECT_FINISHED;
                            r
                        }
                        AlertStatus::Open => revision::fired_after(*prev),
                        _ => revision::ended_after(*prev),
                    };
                }
                *prev = a.revision;
            }
            None => revisions.push((h, a.revision)),
        }
    }
}

/// Each alert's last line, in the order of their first.
fn last_word(lines: Vec<Alert>) -> Vec<Alert> {
    let mut out: Vec<Alert> = Vec::with_capacity(lines.len());
    for a in lines {
        match out.iter_mut().find(|b| b.alert_id == a.alert_id) {
            Some(b) => *b = a,
            None => out.push(a),
        }
    }
    out
}

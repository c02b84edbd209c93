//! Data integrity of a case (数据真实性, SPEC §6): what a window system or its bridge does to
//! hide what it should show.
//!
//! ```text
//! case.accepted {source_deadline} ─ D from the acceptance date ≠ source's date? ─ data.deadline_mismatch
//! pause opened/closed ─ PauseReport (kind, from, to, reported) in Rare
//! any case event ─ judge(): per pause, the deadline without it ─ hall.retroactive_pause
//!                           stages + completion               ─ hall.stage_fabricated
//! ```
//! **Facts, not statuses.** Like the case clock, these verdicts are functions of the case's
//! facts: `judge` runs after every event of a case that has pauses or a completion with stages,
//! computes which alerts should stand, and fires what is missing and retracts what no longer
//! holds, so an event arriving late changes the verdict exactly as an in-order report would
//! have. Each alert is recorded in the case's `Fired` list (a `Due` of its own), like the clock's
//! alerts, so a later event or correction can retract it.
//!
//! **Why the pauses are kept as reported.** A case stores its pauses merged (overlapping ones
//! count once); "the deadline the case would have had without it" needs each pause on its own,
//! with the time it was reported. Pauses are rare, so the list lives in `Rare`.
//!
//! Report times are `reported_at`, else the receipt time in live ingest, else `occurred_at`
//! (SPEC §6: a replayed event without `reported_at` counts as reported when it occurred).

use serde_json::json;

use crate::alert::{Alert, Level, Rule};
use crate::event::{Event, Unit};
use crate::evidence::{fields, Fields, F};
use crate::time::{Day, Instant};

use super::apply::Sink;
use super::case::{fired, inst, pause, t32, Case, Clock, Ctx, Due, Fired, Pause, NEVER, T32};
use super::explain::{self, Attribution};
use super::table::{Symbols, NONE};

/// A pause as it was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PauseReport {
    /// One [`pause`] kind.
    pub kind: u8,
    /// When it started.
    pub from: T32,
    /// When it ended ([`NEVER`] while open).
    pub to: T32,
    /// When its start was reported.
    pub reported: T32,
}

/// The report time of an event (module documentation).
pub fn report_time(ev: &Event<'_>) -> Instant {
    ev.reported_at.or(ev.received_at).unwrap_or(ev.occurred_at)
}

/// A pause of `kind` opened at `t` by `ev`.
pub(super) fn pause_opened(case: &mut Case, kind: u8, t: T32, ev: &Event<'_>) {
    case.rare_mut().pause_reports.push(PauseReport {
        kind,
        from: t,
        to: NEVER,
        reported: t32(report_time(ev)),
    });
}

/// The open pause of `kind` closed at `t`.
pub(super) fn pause_closed(case: &mut Case, kind: u8, t: T32) {
    if let Some(p) = case
        .rare_if_any()
        .and_then(|r| r.pause_reports.iter_mut().rev().find(|p| p.kind == kind))
        .filter(|p| p.to == NEVER)
    {
        p.to = t.max(p.from);
    }
}

/// The case clock with the reported pauses except `skip` (an index into `pause_reports`), open
/// pauses taken as ending when the case closed. `None` when the case is not accepted, or a pause
/// is still open on an open case (then no deadline runs out).
fn clock_with(ctx: Ctx<'_>, case: &Case, skip: Option<usize>) -> Option<Clock> {
    let reports = case
        .rare()
        .map(|r| r.pause_reports.as_slice())
        .unwrap_or(&[]);
    let mut spans: Vec<Pause> = Vec::with_capacity(reports.len());
    for (i, p) in reports.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        let to = if p.to == NEVER { case.closed_at } else { p.to };
        if to == NEVER {
            return None;
        }
        spans.push(Pause {
            from: p.from,
            to: to.max(p.from),
            kinds: p.kind,
        });
    }
    spans.sort_by_key(|p| (p.from, p.to));
    let mut merged: Vec<Pause> = Vec::with_capacity(spans.len());
    for p in spans {
        match merged.last_mut() {
            Some(m) if p.from <= m.to => {
                m.to = m.to.max(p.to);
                m.kinds |= p.kinds;
            }
            _ => merged.push(p),
        }
    }
    let mut copy = case.clone();
    let r = copy.rare_mut();
    r.pause_open = 0;
    r.pause_since = NEVER;
    r.pauses = merged;
    copy.clock(ctx)
}

/// Why a pause is retroactive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retro {
    /// (a) reported at or after the deadline the case would have had without it.
    AfterDeadline,
    /// (b) reported within `batch_window_minutes` of the completion's report, the case late
    /// without it.
    WithLateCompletion,
}

/// The verdict on pause `i`: why it is retroactive, with the deadline without it.
fn retro(ctx: Ctx<'_>, case: &Case, i: usize) -> Option<(Retro, Clock)> {
    let p = case.rare()?.pause_reports.get(i)?;
    if p.kind == pause::SUPPLEMENT {
        return None;
    }
    let without = clock_with(ctx, case, Some(i))?;
    if inst(p.reported) >= without.promised_at {
        return Some((Retro::AfterDeadline, without));
    }
    let done = case.completion_report();
    let window = i64::from(ctx.policy.batch_window_minutes) * 60;
    let together = done != NEVER && (i64::from(p.reported) - i64::from(done)).abs() <= window;
    (together && inst(case.closed_at) >= without.promised_at)
        .then_some((Retro::WithLateCompletion, without))
}

/// `hall.stage_fabricated`: whether the completed case's stages look back-filled, and when that
/// became true (the later of the completion's `occurred_at` and the last report involved).
fn fabricated(ctx: Ctx<'_>, case: &Case) -> Option<(&'static str, T32)> {
    if !case.completed() {
        return None;
    }
    // Stage times in place (no allocation: this runs after every event of a finished case).
    let mut stamps = case.stage_done;
    stamps.sort_unstable();
    let first = stamps.iter().position(|&t| t != NEVER).unwrap_or(3);
    let stamps = &stamps[first..];
    if stamps.len() < 2 {
        return None;
    }
    let same_second = stamps.windows(2).any(|w| w[0] == w[1]);
    let done = case.completion_report();
    let span = ctx.policy.fabricated_stage_seconds;
    let close = case.closed_at;
    let just_before = stamps.iter().all(|&t| t <= close && close - t <= span)
        && case.stage_reported != NEVER
        && case.stage_reported > done;
    let why = if same_second {
        "same_second"
    } else if just_before {
        "just_before_completion_reported_after"
    } else {
        return None;
    };
    let at = close.max(done).max(case.stage_reported);
    Some((why, at))
}

/// Fire `due` at `at` (kind `n`) with the revision its place in the Fired list gives: the
/// k-th firing of the same alert after k retractions is revision 2k + 1.
fn fire(r: &mut Sink<'_, '_>, symbols: &Symbols, case: &mut Case, due: Due, at: T32, n: u8) {
    let before = case.extras.as_ref().map_or(0, |x| {
        x.fired.iter().filter(|f| f.due == due && f.n == n).count()
    });
    let mut alert = alert(r.ctx, symbols, case, due, inst(at), n);
    if before > 0 {
        alert.revision = explain::revision::fired_after(2 * before as u8);
    }
    case.mark_fired(due);
    case.extras_mut().fired.push(Fired {
        due,
        at,
        n,
        retracted: false,
    });
    r.stats.alerts += 1;
    r.out.push(alert);
}

/// Retract the standing firing `k` of the Fired list.
fn retract(r: &mut Sink<'_, '_>, symbols: &Symbols, case: &mut Case, k: usize) {
    let Some(f) = case.extras.as_mut().and_then(|x| x.fired.get_mut(k)) else {
        return;
    };
    f.retracted = true;
    let f = *f;
    let earlier = case.extras.as_ref().map_or(0, |x| {
        x.fired[..k]
            .iter()
            .filter(|g| g.due == f.due && g.n == f.n)
            .count()
    });
    let mut alert = alert(r.ctx, symbols, case, f.due, inst(f.at), f.n);
    alert.revision = if earlier > 0 {
        explain::revision::fired_after(2 * earlier as u8)
    } else {
        0
    };
    r.stats.retractions += 1;
    r.out.push(explain::retracted_as(
        alert,
        r.ev,
        "该告警所依据的事实已不成立",
    ));
}

/// Make the case's integrity alerts what its facts say: fire what holds and is not on record,
/// retract what is on record and no longer holds (see the module documentation).
pub(super) fn judge(symbols: &Symbols, case: &mut Case, r: &mut Sink<'_, '_>) {
    let ctx = r.ctx;
    let pauses = case.rare().map_or(0, |x| x.pause_reports.len());
    if pauses == 0 && !case.completed() {
        return;
    }
    // What should stand: (due, fired_at, n).
    let mut want: Vec<(Due, T32, u8)> = Vec::new();
    for i in 0..pauses {
        if retro(ctx, case, i).is_some() {
            if let Some(p) = case.rare().and_then(|x| x.pause_reports.get(i)) {
                want.push((Due::RetroactivePause, p.reported, p.kind));
            }
        }
    }
    if let Some((_, at)) = fabricated(ctx, case) {
        want.push((Due::StageFabricated, at, 0));
    }
    if want.is_empty() && case.fired & fired::INTEGRITY == 0 {
        return;
    }
    let standing: Vec<(usize, Fired)> = case
        .extras
        .as_ref()
        .map(|x| {
            x.fired
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, f)| {
                    !f.retracted && matches!(f.due, Due::RetroactivePause | Due::StageFabricated)
                })
                .collect()
        })
        .unwrap_or_default();
    for (k, f) in &standing {
        if !want.contains(&(f.due, f.at, f.n)) {
            retract(r, symbols, case, *k);
        }
    }
    for (due, at, n) in want {
        if !standing
            .iter()
            .any(|(_, f)| (f.due, f.at, f.n) == (due, at, n))
        {
            fire(r, symbols, case, due, at, n);
        }
    }
}

/// `data.deadline_mismatch`, judged once at the acceptance: the source's date against jiancha's
/// D from the acceptance date and the promised limit, without pauses or extensions (what the
/// source could know when it computed its date). Fires at the acceptance's report time.
pub(super) fn check_source_deadline(
    symbols: &Symbols,
    case: &mut Case,
    source: Day,
    ev: &Event<'_>,
    r: &mut Sink<'_, '_>,
) {
    let ours = own_deadline(r.ctx, case);
    if ours == source || case.accepted_at == NEVER {
        return;
    }
    case.rare_mut().source_deadline = Some(source.0);
    let at = t32(report_time(ev));
    fire(r, symbols, case, Due::DeadlineMismatch, at, 0);
}

/// jiancha's D for the case from its acceptance date, without pauses or extensions.
fn own_deadline(ctx: Ctx<'_>, case: &Case) -> Day {
    let n = u32::from(case.promised_days);
    case.limit_end(ctx, case.promised_unit, case.accepted_at, n, false)
        .day
}

/// Monday = 0 … Sunday = 6 (2000-01-01, day 0, was a Saturday).
fn weekday(d: Day) -> u32 {
    (d.0 + 5) % 7
}

/// Where the source's count and the official calendar part: the first day in the span that the
/// source must treat differently, and how.
fn parting(
    ctx: Ctx<'_>,
    case: &Case,
    start: Day,
    ours: Day,
    theirs: Day,
) -> (Option<Day>, &'static str) {
    let cal = ctx.cal;
    let days = |a: Day, b: Day| (a.0 + 1..=b.0).map(Day);
    match case.promised_unit {
        Unit::Working if theirs < ours => {
            // The source reached N working days earlier: it counted an official rest day.
            let rest = days(start, theirs).find(|&d| !cal.is_working(d));
            match rest {
                Some(d) if weekday(d) < 5 => (Some(d), "source_counts_official_holiday"),
                Some(d) => (Some(d), "source_counts_rest_day"),
                None => (None, "source_start_differs"),
            }
        }
        Unit::Working => {
            // The source needed more days: it skipped an official working day (调休).
            let made_up = days(start, ours).find(|&d| cal.is_working(d) && weekday(d) >= 5);
            match made_up {
                Some(d) => (Some(d), "source_skips_adjusted_working_day"),
                None => (None, "source_start_differs"),
            }
        }
        _ if !cal.is_working(theirs) => (Some(theirs), "source_ends_on_rest_day"),
        _ => (None, "source_start_differs"),
    }
}

/// Rebuild the alert for one of this module's dues (also for a retraction).
pub(super) fn alert(
    ctx: Ctx<'_>,
    symbols: &Symbols,
    case: &Case,
    due: Due,
    at: Instant,
    n: u8,
) -> Alert {
    let name = if case.item_ref != NONE {
        ctx.reference.item(case.item_ref).name.clone()
    } else {
        symbols
            .owned(case.who.item)
            .unwrap_or_else(|| "未知事项".into())
    };
    let mut subject = explain::subject(&[("case_id", json!(case.id.as_str().to_owned()))]);
    let who = Attribution::of_case(symbols, case);
    let (rule, level) = due.rule_level();
    let (message, evidence) = match due {
        Due::DeadlineMismatch => mismatch(ctx, case, &name),
        Due::StageFabricated => stages(ctx, case, &name),
        _ => {
            let i = case.rare().and_then(|x| {
                x.pause_reports
                    .iter()
                    .position(|p| p.kind == n && inst(p.reported) == at)
            });
            let p = i.and_then(|i| Some((i, *case.rare()?.pause_reports.get(i)?)));
            if let Some((_, p)) = p {
                subject.insert("pause_from".into(), json!(inst(p.from)));
                subject.insert("pause_kind".into(), json!(pause::names(p.kind).join("+")));
            }
            retroactive(ctx, case, p, &name)
        }
    };
    let mut evidence = evidence;
    evidence.insert("subject_state", F::Object(explain::case_state(ctx, case)));
    explain::build(rule, level, subject, at, who, message, evidence)
}

fn mismatch(ctx: Ctx<'_>, case: &Case, name: &str) -> (String, Fields) {
    let start = inst(case.accepted_at).day();
    let ours = own_deadline(ctx, case);
    let theirs = case
        .rare()
        .and_then(|r| r.source_deadline)
        .map_or(ours, Day);
    let n = u32::from(case.promised_days);
    let counted: Vec<Day> = match case.promised_unit {
        Unit::Working => (start.0 + 1..=ours.0)
            .map(Day)
            .filter(|&d| ctx.cal.is_working(d))
            .take(60)
            .collect(),
        _ => Vec::new(),
    };
    let (parts_on, why) = parting(ctx, case, start, ours, theirs);
    let gap = if theirs < ours {
        -(ctx.cal.working_days_between(theirs, ours) as i64)
    } else {
        i64::from(ctx.cal.working_days_between(ours, theirs))
    };
    let how = match why {
        "source_counts_official_holiday" => "把法定节假日当作工作日计算",
        "source_counts_rest_day" => "把休息日当作工作日计算",
        "source_skips_adjusted_working_day" => "未把调休上班日计为工作日",
        "source_ends_on_rest_day" => "期限末日落在休息日而未顺延",
        _ => "起算日或时钟与受理时间不一致",
    };
    let parted = parts_on.map_or(String::new(), |d| format!("，两者自 {d} 起不同"));
    let message = format!(
        "预警：办件 {}（{name}）来源系统计算的承诺办结日期为 {theirs}，按法定工作日历应为 {ours}（{start} 受理，承诺 {n}{}）{parted}：来源系统{how}",
        case.id,
        case.promised_unit.zh()
    );
    let evidence = fields!({
        "accepted_at": inst(case.accepted_at),
        "difference_working_days": gap,
        "explanation": why,
        "jiancha": fields!({"counted_days": counted, "deadline_date": ours}),
        "limit": fields!({"days": n, "unit": case.promised_unit.as_str()}),
        "parts_on": parts_on,
        "parts_on_working": parts_on.map(|d| ctx.cal.is_working(d)),
        "provisional_years": ctx.cal.provisional_years(start, ours.max(theirs)),
        "source": fields!({"deadline_date": theirs}),
        "start": start,
    });
    (message, evidence)
}

fn stages(ctx: Ctx<'_>, case: &Case, name: &str) -> (String, Fields) {
    let (why, _) = fabricated(ctx, case).unwrap_or(("same_second", case.closed_at));
    let list: Vec<Fields> = crate::event::Stage::ALL
        .iter()
        .zip(case.stage_done)
        .filter(|(_, t)| *t != NEVER)
        .map(|(s, t)| fields!({"occurred_at": inst(t), "stage": s.as_str()}))
        .collect();
    let done = case.completion_report();
    let how = if why == "same_second" {
        "多个审批环节时间戳精确到秒完全相同".to_string()
    } else {
        format!(
            "全部审批环节均在办结前 {} 秒内且在办结之后才上报",
            ctx.policy.fabricated_stage_seconds
        )
    };
    let message = format!(
        "黄牌：办件 {}（{name}）于 {} 办结，{how}，疑为事后补录的审批环节",
        case.id,
        inst(case.closed_at)
    );
    let evidence = fields!({
        "completed_at": inst(case.closed_at),
        "completion_reported_at": (done != NEVER).then(|| inst(done)),
        "fabricated_stage_seconds": ctx.policy.fabricated_stage_seconds,
        "finding": why,
        "last_stage_reported_at": (case.stage_reported != NEVER).then(|| inst(case.stage_reported)),
        "stages": list,
    });
    (message, evidence)
}

fn deadline_json(c: Option<&Clock>) -> Option<Fields> {
    c.map(|c| {
        fields!({
            "deadline": c.promised_at,
            "deadline_date": c.promised_day,
            "pause_days": c.promised_pause_days,
        })
    })
}

fn retroactive(
    ctx: Ctx<'_>,
    case: &Case,
    p: Option<(usize, PauseReport)>,
    name: &str,
) -> (String, Fields) {
    let Some((i, p)) = p else {
        return (
            format!("黄牌：办件 {}（{name}）事后补报暂停", case.id),
            Fields::default(),
        );
    };
    let verdict = retro(ctx, case, i);
    let without = verdict
        .as_ref()
        .map(|(_, c)| c.clone())
        .or_else(|| clock_with(ctx, case, Some(i)));
    let with = clock_with(ctx, case, None);
    let what = if p.kind == pause::SPECIAL {
        "特别程序"
    } else {
        "挂起"
    };
    let done = case.completion_report();
    let finding = match verdict.map(|(w, _)| w) {
        Some(Retro::WithLateCompletion) => "reported_with_late_completion",
        _ => "reported_after_deadline",
    };
    let without_text = without
        .as_ref()
        .map_or("?".to_string(), |c| c.promised_day.to_string());
    let with_text = with.as_ref().map_or("（暂停未结束）".to_string(), |c| {
        c.promised_day.to_string()
    });
    let why = if finding == "reported_with_late_completion" {
        format!(
            "与办结一同上报（办结上报于 {}），不计该暂停办件已超期",
            inst(done)
        )
    } else {
        "此时不计该暂停的承诺期限已过".to_string()
    };
    let message = format!(
        "黄牌：办件 {}（{name}）自 {} 起的{what}直到 {} 才上报，{why}（不计暂停应于 {without_text} 前办结，计入后为 {with_text}），疑为事后补报暂停以掩盖超期",
        case.id,
        inst(p.from),
        inst(p.reported),
    );
    let evidence = fields!({
        "accepted_at": (case.accepted_at != NEVER).then(|| inst(case.accepted_at)),
        "batch_window_minutes": ctx.policy.batch_window_minutes,
        "completed_at": case.completed().then(|| inst(case.closed_at)),
        "completion_reported_at": (done != NEVER).then(|| inst(done)),
        "deadline_with_pause": deadline_json(with.as_ref()),
        "deadline_without_pause": deadline_json(without.as_ref()),
        "finding": finding,
        "pause": fields!({
            "from": inst(p.from),
            "kind": pause::names(p.kind).join("+"),
            "reported_at": inst(p.reported),
            "to": (p.to != NEVER).then(|| inst(p.to)),
        }),
    });
    (message, evidence)
}

/// `data.placeholder_staff` for an acceptance or stage by a placeholder account: nobody is
/// accountable for it. Kept per (region, staff id, source, day of `occurred_at`): the alert is
/// the day's earliest report; a report arriving later but made earlier moves it (a new firing).
/// Every act is kept (its event's hash, report and case), so that a correction of the act on
/// record moves the alert to the next earliest, or retracts it when none is left.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Placeholders {
    /// (region, staff id, source, day) → the firing on record.
    marks: std::collections::BTreeMap<(String, String, String, u32), Mark>,
}

/// The firing on record for one placeholder, source and day.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Mark {
    /// Report time of the earliest act (the alert's `fired_at`); [`NEVER`]: retracted.
    at: T32,
    revision: u8,
    /// Every act standing: (event hash, report time, case id), in arrival order.
    acts: Vec<(u64, T32, String)>,
}

/// The key of a placeholder act, and the pattern its staff id matched.
type ActKey = ((String, String, String, u32), String);

impl Placeholders {
    fn key(policy: &crate::Policy, ev: &Event<'_>) -> Option<ActKey> {
        let staff = ev.staff_id.as_deref()?;
        let pattern = policy.placeholder_pattern(staff)?;
        let key = (
            ev.region.to_string(),
            staff.to_string(),
            ev.source.as_deref().unwrap_or("").to_string(),
            ev.occurred_at.day().0,
        );
        Some((key, pattern.to_string()))
    }

    /// Judge an applied `case.accepted` or `case.stage` (its id hashed by `id`, asked only of
    /// a placeholder's act); an alert to emit, if any.
    pub(super) fn on_act(
        &mut self,
        policy: &crate::Policy,
        ev: &Event<'_>,
        id: impl FnOnce() -> u64,
        now: Instant,
    ) -> Option<Alert> {
        let (key, pattern) = Self::key(policy, ev)?;
        let id = id();
        let at = t32(report_time(ev));
        // Forget days older than the retention of finished cases: late acts of them are not
        // expected (docs/RULES.md, "Order").
        let keep = policy.closed_case_retention_days + 1;
        let floor = now.day().0.saturating_sub(keep);
        self.marks.retain(|k, _| k.3 >= floor);
        let case = ev.case_id.as_deref().unwrap_or("").to_string();
        let mark = self.marks.entry(key).or_insert(Mark {
            at: NEVER,
            revision: 0,
            acts: Vec::new(),
        });
        mark.acts.push((id, at, case));
        let revision = match mark.at {
            NEVER if mark.revision == 0 => 0,
            NEVER => explain::revision::fired_after(mark.revision),
            prev if prev <= at => return None,
            _ => explain::revision::fired_after(mark.revision),
        };
        mark.at = at;
        mark.revision = revision;
        let mut alert = placeholder_alert(policy, ev, &pattern, at);
        alert.revision = revision;
        Some(alert)
    }

    /// The act `original` was superseded or withdrawn by `ev` (which corrects the id
    /// `corrected`): when it was the one on record, the alert moves to the next earliest act
    /// (`event_of` finds an act's event by case id and hash) or, with none left, is retracted.
    pub(super) fn undo(
        &mut self,
        policy: &crate::Policy,
        (original, ev, corrected): (&Event<'_>, &Event<'_>, &str),
        event_of: impl Fn(&str, u64) -> Option<Event<'static>>,
        out: &mut Vec<Alert>,
    ) {
        let Some((key, pattern)) = Self::key(policy, original) else {
            return;
        };
        let Some(mark) = self.marks.get_mut(&key) else {
            return;
        };
        let id = super::event_hash(original).0;
        let Some(i) = mark.acts.iter().position(|a| a.0 == id) else {
            return;
        };
        let (_, at, _) = mark.acts.remove(i);
        if at != mark.at {
            return;
        }
        // The earliest report left (of equal ones, the first to arrive), as a replay gives it.
        let next = mark
            .acts
            .iter()
            .min_by_key(|a| a.1)
            .and_then(|(h, t, case)| Some((*t, event_of(case, *h)?)));
        let mut old = placeholder_alert(policy, original, &pattern, at);
        old.revision = mark.revision;
        match next {
            Some((t, next)) => {
                let mut alert = placeholder_alert(policy, &next, &pattern, t);
                alert.revision = match t == at {
                    true => mark.revision.saturating_add(1),
                    false => explain::revision::fired_after(mark.revision),
                };
                (mark.at, mark.revision) = (t, alert.revision);
                out.push(explain::after_correction(alert, ev, corrected));
            }
            None => {
                let retracted = explain::retracted_by_correction(old, ev, corrected);
                // Its acts' cases are all forgotten, or there are none: nothing is left.
                mark.acts.clear();
                (mark.at, mark.revision) = (NEVER, retracted.revision);
                out.push(retracted);
            }
        }
    }
}

/// The `data.placeholder_staff` alert for the act `ev` (its staff id matched `pattern`),
/// reported at `at`.
fn placeholder_alert(policy: &crate::Policy, ev: &Event<'_>, pattern: &str, at: T32) -> Alert {
    let staff = ev.staff_id.as_deref().unwrap_or("");
    let source = ev.source.as_deref().unwrap_or("");
    let day = ev.occurred_at.day();
    let what = match ev.body {
        crate::event::Body::CaseStage { stage, .. } => {
            format!("审批环节（{}）", stage.as_str())
        }
        _ => "受理".to_string(),
    };
    let case = ev.case_id.as_deref().unwrap_or("");
    let message =
        format!(
        "预警：办件 {case} 的{what}由占位账号 {staff} 办理（来源 {}，{day}），无法追溯到具体责任人",
        if source.is_empty() { "未注明" } else { source }
    );
    let evidence = json!({
        "staff_id": staff,
        "matched": pattern,
        "placeholder_staff": policy.placeholder_staff,
        "source": source,
        "date": day,
        "event_id": ev.event_id,
        "kind": ev.body.kind().as_str(),
        "occurred_at": ev.occurred_at,
        "reported_at": inst(at),
        "case_id": case,
    });
    let subject = explain::subject(&[
        ("staff_id", json!(staff)),
        ("source", json!(source)),
        ("date", json!(day.to_string())),
    ]);
    explain::build(
        Rule::PlaceholderStaff,
        Level::Warning,
        subject,
        inst(at),
        Attribution::of_event(ev),
        message,
        evidence,
    )
}

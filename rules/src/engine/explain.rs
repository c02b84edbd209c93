//! Turning a fired deadline into an [`Alert`]: subject, zh-CN message and evidence.
//!
//! The evidence carries everything an inspector needs to redo the computation by hand with a
//! calendar: the start and why, the limit, every pause with the days it added, every extension
//! and whether it counted, the last day and the deadline instant, and the years whose holiday
//! schedule was not yet published.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::alert::{alert_id, Alert, AlertStatus, Level, Rule, Subject};
use crate::event::{Event, Procedure, Unit};
use crate::evidence::{fields, Evidence, Fields, F};
use crate::time::{Day, Instant};

use super::case::{inst, pause, pause_amount, Case, Clock, Ctx, Due, NEVER, T32};
use super::table::{Sym, Symbols, NONE};

/// A JSON object of `"key": value` pairs, as `json!({…})` makes it (each value converted by
/// `json!`), but built in one go — the pairs sorted once, then the map filled — instead of one
/// insertion (a search of the map, and node splits) per key: evidence is made for every alert
/// line, and this was a third of its cost (docs/BENCHMARKS.md, "Corrections"). Keys are
/// written in the order the map keeps them (byte order), so the sort is one pass. Only for flat
/// values; a value already made as JSON is better added with [`with_parts`], uncopied.
macro_rules! object {
    ({ $($k:literal : $v:expr),* $(,)? }) => {
        serde_json::Value::Object(serde_json::Map::from_iter([
            $(($k.to_string(), serde_json::json!($v))),*
        ]))
    };
}

/// Build the alert for `due`, firing at `at`; `n` is the acceptance period or special-procedure
/// number it belongs to (see [`Case::ordinal`]). In a correction's replay (`ctx.recipes`) a
/// case-clock alert is a lean line instead ([`Recipes`]).
pub fn alert(ctx: Ctx<'_>, symbols: &Symbols, case: &Case, due: Due, at: Instant, n: u8) -> Alert {
    if let (Some(recipes), Some(id)) = (ctx.recipes, lean_id(due, n)) {
        return recipes.line(case, due, at, n, id);
    }
    let Some(subject) = case_subject(case, due, n) else {
        return match due {
            Due::Fee(i) => fee_without_case(ctx, symbols, case, usize::from(i), at),
            _ => super::integrity::alert(ctx, symbols, case, due, at, n),
        };
    };
    let (rule, level) = due.rule_level();
    let name = item_name(ctx, symbols, case);
    // The case clock's alerts need its clock, as does how a finished case closed: computed
    // once for both.
    let clock = matches!(due, Due::Warning | Due::Yellow | Due::Red).then(|| case.clock(ctx));
    let closing = closing_with(ctx, case, clock.as_ref());
    let (message, evidence) = match due {
        Due::Acceptance => acceptance(ctx, case, &name, closing),
        Due::Stage(stage) => stage_clock(ctx, case, stage, &name, closing),
        Due::Special => special(ctx, case, n, &name, closing),
        Due::NoAcceptance => no_acceptance(ctx, case, &name),
        Due::MissingStages => (
            format!(
                "黄牌：承诺件 {}（{name}）准予办结，但没有任何审批环节记录（审批未在线办理）",
                case.id
            ),
            Some(fields!({
                "case_type": case.case_type.as_str(),
                "completed_at": inst(case.closed_at),
                "stages": F::List(Vec::new()),
            })),
        ),
        _ => case_clock(ctx, case, due, &name, closing, clock.flatten()),
    };
    let evidence = evidence.map(|mut f| {
        f.insert("subject_state", F::Object(state_of(case, closing)));
        f
    });
    let mut alert = build(
        rule,
        level,
        subject,
        at,
        Attribution::of_case(symbols, case),
        message,
        evidence.map_or_else(Evidence::default, Evidence::from),
    );
    superseded(case, due, &mut alert);
    alert
}

/// The revision of a finished case's standing alert `due` as [`Ctx::lean_revisions`] asks
/// for it: the same id, subject, case and numbers as [`alert`] gives, without the message and
/// evidence nobody reads. `None` for the alerts built elsewhere (fees, integrity rules), which
/// stay full.
pub fn lean_revision(
    symbols: &Symbols,
    case: &Case,
    due: Due,
    at: Instant,
    n: u8,
) -> Option<Alert> {
    let subject = case_subject(case, due, n)?;
    let (rule, level) = due.rule_level();
    let region = symbols.owned(case.who.region).unwrap_or_default();
    let who = Attribution {
        center_id: String::new(),
        region,
        department: None,
        window_id: None,
        staff_id: None,
        case_id: Some(case.id.as_str().to_owned()),
        item_code: None,
    };
    let mut alert = build(rule, level, subject, at, who, String::new(), Value::Null);
    alert.revision = revision::SUBJECT_FINISHED;
    Some(alert)
}

/// The subject of the alerts [`alert`] builds itself (the case's clocks, acceptance, missing
/// stages); `None` for those built elsewhere (fees, the integrity rules).
fn case_subject(case: &Case, due: Due, n: u8) -> Option<Subject> {
    let mut subject = Subject::new();
    subject.insert("case_id".into(), Value::String(case.id.as_str().to_owned()));
    match due {
        Due::Acceptance => {
            subject.insert("period".into(), json!(n));
        }
        Due::Stage(stage) => {
            subject.insert("stage".into(), json!(stage.as_str()));
        }
        Due::Special => {
            subject.insert("special".into(), json!(n));
        }
        Due::Warning | Due::Yellow | Due::Red | Due::NoAcceptance | Due::MissingStages => {}
        Due::Fee(_) | Due::DeadlineMismatch | Due::RetroactivePause | Due::StageFabricated => {
            return None
        }
    }
    Some(subject)
}

/// A lean line's id (within its case): what its real id is made of besides the case's region
/// and id, so that two lean lines of a case have the same id exactly when their alerts do
/// ([`case_subject`]). `None` where [`case_subject`] is.
fn lean_id(due: Due, n: u8) -> Option<String> {
    let (tag, n) = match due {
        Due::Acceptance => ('a', n),
        Due::Warning => ('w', 0),
        Due::Yellow => ('y', 0),
        Due::Red => ('r', 0),
        Due::Stage(stage) => ('s', stage.index() as u8),
        Due::Special => ('p', n),
        Due::NoAcceptance => ('n', 0),
        Due::MissingStages => ('m', 0),
        Due::Fee(_) | Due::DeadlineMismatch | Due::RetroactivePause | Due::StageFabricated => {
            return None
        }
    };
    // A NUL, the tag, then the number as one char (U+0000–U+00FF): never a real id (32 hex
    // digits), and distinct for distinct (tag, number).
    let mut id = String::from(HOLE);
    id.push(tag);
    id.push(char::from(n));
    Some(id)
}

/// The case alerts of a case rebuilt aside by a correction (`correct.rs`), kept as recipes.
///
/// A correction replays the case's history twice and emits only the difference, usually a line
/// or two out of many; building each line in full (message, JSON evidence, attribution) was
/// most of a correction's cost. So in a replay [`alert`] records the case as it stood, the due,
/// the instant and the ordinal (everything the line is a function of, with the reference and
/// the symbols, which a replay does not change), and returns a *lean line*: its rule, level,
/// status, `fired_at` and revision are real; its id is a [`lean_id`], equal for two lean lines
/// of the case exactly when their real ids are; its message is [`HOLE`] and its evidence holds
/// only the recipe's number. Whatever the replay then does to the line (cleared,
/// retracted, a revision) applies to the lean line as to a full one: status and revision are
/// set, the message gets its prefix and suffix around the hole, the evidence its
/// `cleared_by`/`retracted_by`. [`Recipes::full`] builds the recipe's line and puts those back,
/// giving byte for byte the line the replay would have built.
#[derive(Default)]
pub struct Recipes(std::cell::RefCell<Vec<Recipe>>);

/// What a case alert is built from.
#[derive(PartialEq)]
struct Recipe {
    case: Case,
    due: Due,
    at: Instant,
    n: u8,
}

/// Where a lean line's message goes (no message has a NUL of its own around it: the prefixes
/// and suffixes put around a message are the engine's own words).
const HOLE: &str = "\u{0}";
/// The evidence key of a lean line's recipe number.
const RECIPE: &str = "\u{0}recipe";

impl Recipes {
    fn line(&self, case: &Case, due: Due, at: Instant, n: u8, id: String) -> Alert {
        let (rule, level) = due.rule_level();
        let mut recipes = self.0.borrow_mut();
        let mut evidence = serde_json::Map::new();
        evidence.insert(RECIPE.into(), json!(recipes.len()));
        recipes.push(Recipe {
            case: case.clone(),
            due,
            at,
            n,
        });
        Alert {
            alert_id: id,
            rule,
            level,
            status: AlertStatus::Open,
            fired_at: at,
            center_id: String::new(),
            region: String::new(),
            department: None,
            window_id: None,
            staff_id: None,
            case_id: None,
            item_code: None,
            subject: Subject::new(),
            message: HOLE.to_string(),
            evidence: Value::Object(evidence).into(),
            cleared_at: None,
            revision: 0,
            restated: false,
        }
    }

    fn recipe_of(line: &Alert) -> Option<usize> {
        let k = line.evidence.get(RECIPE)?.as_u64()?;
        usize::try_from(k).ok()
    }

    /// `line` in full: as it is when it is not a lean line of these recipes.
    pub fn full(&self, ctx: Ctx<'_>, symbols: &Symbols, line: Alert) -> Alert {
        let recipes = self.0.borrow();
        let Some(r) = Self::recipe_of(&line).and_then(|k| recipes.get(k)) else {
            return line;
        };
        let ctx = Ctx {
            recipes: None,
            ..ctx
        };
        let mut full = alert(ctx, symbols, &r.case, r.due, r.at, r.n);
        full.status = line.status;
        full.revision = line.revision;
        full.cleared_at = line.cleared_at;
        full.message = line.message.replacen(HOLE, &full.message, 1);
        if let Value::Object(added) = line.evidence.into_value() {
            for (k, v) in added.into_iter().filter(|(k, _)| k != RECIPE) {
                full.evidence[k.as_str()] = v;
            }
        }
        full
    }

    /// Whether line `a` of these recipes and line `b` of `other` say the same (their messages
    /// are equal): without building them when both are lean lines of the same recipe with the
    /// same wording around it.
    pub fn same_message(
        &self,
        ctx: Ctx<'_>,
        symbols: &Symbols,
        a: &Alert,
        other: &Recipes,
        b: &Alert,
    ) -> bool {
        let (ka, kb) = (Self::recipe_of(a), Self::recipe_of(b));
        if ka.is_none() && kb.is_none() {
            return a.message == b.message;
        }
        if let (Some(ka), Some(kb)) = (ka, kb) {
            let same = self.0.borrow().get(ka) == other.0.borrow().get(kb);
            if same && a.message == b.message {
                return true;
            }
        }
        let a = self.full(ctx, symbols, a.clone());
        let b = other.full(ctx, symbols, b.clone());
        a.message == b.message
    }
}

/// SPEC §7 v1.1, "superseded": a 黄牌 or 红牌 of `case.overdue` names the lower levels of the
/// same case that still stand (`evidence.supersedes`: id, level, `fired_at`), so a queue shows
/// them folded under it, one row per case and rule.
fn superseded(case: &Case, due: Due, alert: &mut Alert) {
    let lower: &[Due] = match due {
        Due::Yellow => &[Due::Warning],
        Due::Red => &[Due::Warning, Due::Yellow],
        _ => return,
    };
    let list: Vec<F> = case
        .extras
        .as_ref()
        .map(|x| &*x.fired)
        .unwrap_or_default()
        .iter()
        .filter(|f| !f.retracted && lower.contains(&f.due))
        .map(|f| {
            let level = f.due.rule_level().1;
            F::Object(fields!({
                "alert_id": alert_id(alert.rule, level, &alert.region, &alert.subject),
                "fired_at": inst(f.at),
                "level": level.as_str(),
            }))
        })
        .collect();
    if let (false, Some(m)) = (list.is_empty(), alert.evidence.fields_mut()) {
        m.insert("supersedes", F::List(list));
    }
}

/// `case.rejected_without_reason`, fired by the rejection itself.
pub fn rejected_without_reason(
    ctx: Ctx<'_>,
    symbols: &Symbols,
    case: &Case,
    event_id: &str,
    at: Instant,
) -> Alert {
    let mut subject = Subject::new();
    subject.insert("case_id".into(), Value::String(case.id.as_str().to_owned()));
    let name = item_name(ctx, symbols, case);
    let message = format!(
        "黄牌：办件 {}（{name}）于 {} 不予受理，未说明理由（行政许可法第三十八条要求说明理由）",
        case.id,
        inst(case.closed_at)
    );
    let evidence =
        fields!({"event_id": event_id.to_string(), "reason": F::Null, "rejected_at": at});
    build(
        Rule::RejectedWithoutReason,
        Level::Yellow,
        subject,
        at,
        Attribution::of_case(symbols, case),
        message,
        evidence,
    )
}

/// Who and where an alert is about.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    /// Service centre.
    pub center_id: String,
    /// GB/T 2260 code.
    pub region: String,
    /// Department.
    pub department: Option<String>,
    /// Window.
    pub window_id: Option<String>,
    /// Staff member.
    pub staff_id: Option<String>,
    /// Case.
    pub case_id: Option<String>,
    /// Item.
    pub item_code: Option<String>,
}

/// The same, interned: what a case or matter carries (six 4-byte symbols).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Who {
    /// Service centre.
    pub center: Sym,
    /// GB/T 2260 code.
    pub region: Sym,
    /// Department.
    pub department: Sym,
    /// Window.
    pub window: Sym,
    /// Staff member.
    pub staff: Sym,
    /// Item.
    pub item: Sym,
}

impl Who {
    /// Nothing known yet.
    pub const UNKNOWN: Who = Who {
        center: NONE,
        region: NONE,
        department: NONE,
        window: NONE,
        staff: NONE,
        item: NONE,
    };

    /// Take what an event names. With `overwrite`, its values replace known ones (the event
    /// that opens a matter names its target; on a case, the last actor counts); without, they
    /// only fill in what is unknown.
    pub fn record(&mut self, ev: &crate::event::Event<'_>, symbols: &mut Symbols, overwrite: bool) {
        let mut set = |slot: &mut Sym, value: Option<&str>| {
            if overwrite || *slot == NONE {
                symbols.update(slot, value);
            }
        };
        set(&mut self.center, Some(&ev.center_id));
        set(&mut self.region, Some(&ev.region));
        set(&mut self.department, ev.department.as_deref());
        set(&mut self.window, ev.window_id.as_deref());
        set(&mut self.staff, ev.staff_id.as_deref());
        set(&mut self.item, ev.item_code.as_deref());
    }

    /// The symbols of what `ev` names, [`NONE`] where it names nothing; each is confirmed
    /// against this attribution's by one compare before any hashing (an event usually names
    /// the centre, window, staff member and item its case already has).
    pub fn named(&self, ev: &crate::event::Event<'_>, symbols: &mut Symbols) -> Who {
        let sym = |symbols: &mut Symbols, hint: Sym, value: Option<&str>| {
            let mut slot = hint;
            match value {
                Some(_) => symbols.update(&mut slot, value),
                None => slot = NONE,
            }
            slot
        };
        Who {
            center: sym(symbols, self.center, Some(&ev.center_id)),
            region: sym(symbols, self.region, Some(&ev.region)),
            department: sym(symbols, self.department, ev.department.as_deref()),
            window: sym(symbols, self.window, ev.window_id.as_deref()),
            staff: sym(symbols, self.staff, ev.staff_id.as_deref()),
            item: sym(symbols, self.item, ev.item_code.as_deref()),
        }
    }

    /// Take every value `named` has (from [`Who::named`]): what
    /// [`record`](Self::record)`(ev, symbols, true)` does, with the symbols already found.
    pub fn take(&mut self, named: &Who) {
        let set = |slot: &mut Sym, value: Sym| {
            if value != NONE {
                *slot = value;
            }
        };
        set(&mut self.center, named.center);
        set(&mut self.region, named.region);
        set(&mut self.department, named.department);
        set(&mut self.window, named.window);
        set(&mut self.staff, named.staff);
        set(&mut self.item, named.item);
    }

    /// Owned strings for an alert or a fact (no case id).
    pub fn attribution(&self, symbols: &Symbols) -> Attribution {
        Attribution {
            center_id: symbols.owned(self.center).unwrap_or_default(),
            region: symbols.owned(self.region).unwrap_or_default(),
            department: symbols.owned(self.department),
            window_id: symbols.owned(self.window),
            staff_id: symbols.owned(self.staff),
            case_id: None,
            item_code: symbols.owned(self.item),
        }
    }
}

impl Attribution {
    /// From a case's interned attribution.
    pub fn of_case(symbols: &Symbols, case: &Case) -> Self {
        Attribution {
            case_id: Some(case.id.as_str().to_owned()),
            ..case.who.attribution(symbols)
        }
    }

    /// From an event's own fields.
    pub fn of_event(ev: &crate::event::Event<'_>) -> Self {
        let own = |s: &Option<std::borrow::Cow<'_, str>>| s.as_deref().map(str::to_string);
        Attribution {
            center_id: ev.center_id.to_string(),
            region: ev.region.to_string(),
            department: own(&ev.department),
            window_id: own(&ev.window_id),
            staff_id: own(&ev.staff_id),
            case_id: own(&ev.case_id),
            item_code: own(&ev.item_code),
        }
    }

    /// The same, with the department of the event's window (from the reference) when the event
    /// names a window but no department, as ratings and complaints usually do: their alerts and
    /// 绩效 by department then count where the window belongs.
    pub fn of_event_in(ev: &crate::event::Event<'_>, reference: &crate::Reference) -> Self {
        let mut who = Self::of_event(ev);
        if who.department.is_none() {
            who.department = who
                .window_id
                .as_deref()
                .and_then(|w| reference.windows.get(w))
                .map(|w| w.department.clone());
        }
        who
    }
}

/// Assemble an alert; the id is derived from rule, level and subject.
pub fn build(
    rule: Rule,
    level: Level,
    subject: Subject,
    at: Instant,
    who: Attribution,
    message: String,
    evidence: impl Into<Evidence>,
) -> Alert {
    Alert {
        alert_id: alert_id(rule, level, &who.region, &subject),
        rule,
        level,
        status: AlertStatus::Open,
        fired_at: at,
        center_id: who.center_id,
        region: who.region,
        department: who.department,
        window_id: who.window_id,
        staff_id: who.staff_id,
        case_id: who.case_id,
        item_code: who.item_code,
        subject,
        message,
        evidence: evidence.into(),
        cleared_at: None,
        revision: 0,
        restated: false,
    }
}

/// The revision an engine change gives an alert (the store's `version`; see
/// [`Alert::revision`]). Today an alert goes through at most firing → subject finished →
/// retracted or cleared, so each change has its place in that order.
pub mod revision {
    /// The alert again, with its case now finished (status unchanged): a *revision*, not a
    /// new firing ([`crate::Alert::is_revision`]).
    pub const SUBJECT_FINISHED: u8 = 1;
    /// Retracted, or cleared (the first end).
    pub const ENDED: u8 = 2;
    /// Open again after an end, or fired again at another instant or cause (a ladder step
    /// reached again, a burst or count re-worked by a late report): from here on a new firing.
    pub const REFIRED: u8 = 3;

    /// The revision of an end (retraction) that follows revision `prev`.
    pub fn ended_after(prev: u8) -> u8 {
        prev.saturating_add(1).max(ENDED)
    }

    /// The revision of a new firing of an alert whose last revision was `prev`.
    pub fn fired_after(prev: u8) -> u8 {
        prev.saturating_add(1).max(REFIRED)
    }
}

/// How a finished case closed: when, and the working days past the promised deadline at the
/// close when the clock is known (0 = in time).
type Ending = (Instant, Option<u32>);

/// The case's [`Ending`]; `None` while it is open.
fn closing(ctx: Ctx<'_>, case: &Case) -> Option<Ending> {
    closing_with(ctx, case, None)
}

/// [`closing`], given the case's clock when it was computed already.
fn closing_with(ctx: Ctx<'_>, case: &Case, clock: Option<&Option<Clock>>) -> Option<Ending> {
    if case.closed_at == NEVER {
        return None;
    }
    let closed_at = inst(case.closed_at);
    let mut computed = None;
    let clock = match clock {
        Some(known) => known.as_ref(),
        None => computed.insert(case.clock(ctx)).as_ref(),
    };
    let overdue = clock.map(|c| {
        if closed_at < c.promised_at {
            0
        } else {
            ctx.cal
                .working_days_between(c.promised_day, closed_at.day())
                .max(1)
        }
    });
    Some((closed_at, overdue))
}

/// What a finished case was: 办结 (completed) or 不予受理 (rejected).
fn closed_verb(case: &Case) -> &'static str {
    if case.completed() {
        "办结"
    } else {
        "不予受理"
    }
}

/// The case's current state (SPEC §7, "current facts"), as `evidence.subject_state`: `open`,
/// or `completed`/`rejected` with `closed_at`, the result and, when the clock is known, the
/// working days past the promised deadline at the close (`overdue_working_days`, 0 = in time).
pub fn case_state(ctx: Ctx<'_>, case: &Case) -> Fields {
    state_of(case, closing(ctx, case))
}

fn state_of(case: &Case, closing: Option<Ending>) -> Fields {
    let Some((closed_at, overdue)) = closing else {
        return fields!({"status": "open"});
    };
    fields!({
        "closed_at": closed_at,
        "overdue_working_days": overdue,
        "result": case.result.map(|r| r.as_str()),
        "status": if case.completed() { "completed" } else { "rejected" },
    })
}

/// `12-03`: the month and day of a date as messages write it, written into `out` (a finished
/// case's phrase is in many alerts: no `format!`).
fn push_month_day(out: &mut String, d: Day) {
    let (_, m, day) = d.ymd();
    let two = |out: &mut String, n: u32| {
        out.push(char::from(b'0' + (n / 10 % 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    };
    two(out, m);
    out.push('-');
    two(out, day);
}

/// What a finished case's alerts say instead of "尚未办结": `已超期 2 个工作日于 12-03 办结`.
fn closed_phrase(case: &Case, closing: Ending) -> String {
    phrase(closed_verb(case), closing)
}

/// [`closed_phrase`] with the verb given.
fn phrase(verb: &str, (closed, overdue): Ending) -> String {
    let mut out = String::with_capacity(64);
    match overdue {
        Some(n @ 1..) => {
            // Writing to a `String` cannot fail.
            let _ = write!(out, "已超期 {n} 个工作日于 ");
        }
        _ => out.push_str("已于 "),
    }
    push_month_day(&mut out, closed.day());
    out.push_str(if overdue == Some(0) {
        " 在承诺时限内"
    } else {
        " "
    });
    out.push_str(verb);
    out
}

/// What a finished case's stage, special-procedure and acceptance alerts add at the end of
/// their message: `（办件已于 12-03 办结）` (the count of days late is the case's, not theirs).
fn finished_note(case: &Case, closing: Option<Ending>) -> String {
    closing.map_or_else(String::new, |(closed, _)| {
        finished(closed_verb(case), closed)
    })
}

/// [`finished_note`] of a case closed at `closed` with `verb`.
fn finished(verb: &str, closed: Instant) -> String {
    let mut out = String::with_capacity(40);
    out.push_str("（办件已于 ");
    push_month_day(&mut out, closed.day());
    out.push(' ');
    out.push_str(verb);
    out.push('）');
    out
}

/// A warning whose condition ended before it escalated (SPEC §7 v1.1): the case was completed
/// (or rejected) by `ev` before its promised deadline. Cleared at the event's time.
pub fn cleared(mut alert: Alert, ev: &Event<'_>) -> Alert {
    alert.status = AlertStatus::Cleared;
    alert.cleared_at = Some(ev.occurred_at);
    alert.revision = revision::ended_after(alert.revision);
    put(&mut alert.evidence, "cleared_by", event_ref(ev));
    alert.message = format!("系统自动解除：{}", alert.message);
    alert
}

/// Mark a rebuilt alert as retracted by `ev`, a later-arriving event showing that the
/// condition did not hold at `fired_at`.
pub fn retracted(alert: Alert, ev: &Event<'_>) -> Alert {
    let what = format!("{}已于 {} 发生", ev.body.kind().zh(), ev.occurred_at);
    retracted_as(alert, ev, &what)
}

/// The same, saying in the message what the event showed (`what` follows "后到事件表明").
pub fn retracted_as(mut alert: Alert, ev: &Event<'_>, what: &str) -> Alert {
    alert.status = AlertStatus::Retracted;
    alert.revision = revision::ended_after(alert.revision);
    put(&mut alert.evidence, "retracted_by", event_ref(ev));
    alert.message = format!(
        "已撤销：{}（后到事件表明{what}，早于告警时间）",
        alert.message
    );
    alert
}

/// Set `key` of `evidence` to `part`: in place when it is still [`Fields`], as JSON
/// otherwise (where `null` evidence becomes an object, as indexing a `Value` makes it).
pub(crate) fn put(evidence: &mut Evidence, key: &'static str, part: Fields) {
    match evidence.fields_mut() {
        Some(f) => f.insert(key, F::Object(part)),
        None => evidence[key] = part.to_value(),
    }
}

/// The event `ev` that ended an alert, as evidence (`cleared_by`, `retracted_by`).
fn event_ref(ev: &Event<'_>) -> Fields {
    fields!({
        "event_id": ev.event_id.to_string(),
        "kind": ev.body.kind().as_str(),
        "occurred_at": ev.occurred_at,
    })
}

/// The correction `ev` (a `supersedes` or an `event.withdrawn` of `corrected`), as evidence.
fn correction_json(ev: &Event<'_>, corrected: &str) -> Fields {
    fields!({
        "corrects": corrected.to_string(),
        "event_id": ev.event_id.to_string(),
        "kind": ev.body.kind().as_str(),
        "occurred_at": ev.occurred_at,
    })
}

/// What a correction does to an event, in a message: 撤回 or 更正.
fn correction_verb(ev: &Event<'_>) -> &'static str {
    match ev.body {
        crate::event::Body::EventWithdrawn { .. } => "撤回",
        _ => "更正",
    }
}

/// SPEC §3: `ev` supersedes an event never seen (a feed that joined mid-history sends a later
/// version of a row whose first version it sent before), so it was applied as a new event. The
/// lines it raised say so in `evidence.supersedes_unseen`: its id and kind and the id of the
/// original, which jiancha never received.
pub fn supersedes_unseen(ev: &Event<'_>, lines: &mut [Alert]) {
    let Some(original) = ev.supersedes.as_deref() else {
        return;
    };
    for line in lines {
        if line.evidence.is_object() || line.evidence.is_null() {
            let part = fields!({
                "event_id": ev.event_id.to_string(),
                "kind": ev.body.kind().as_str(),
                "supersedes": original.to_string(),
            });
            put(&mut line.evidence, "supersedes_unseen", part);
        }
    }
}

/// Mark an alert retracted by a correction: `ev` superseded or withdrew `corrected`, and the
/// corrected history does not support it (SPEC §3 Corrections).
pub fn retracted_by_correction(mut alert: Alert, ev: &Event<'_>, corrected: &str) -> Alert {
    alert.status = AlertStatus::Retracted;
    alert.revision = revision::ended_after(alert.revision);
    put(
        &mut alert.evidence,
        "retracted_by",
        correction_json(ev, corrected),
    );
    alert.message = format!(
        "已撤销：{}（事件 {corrected} 已被{}，更正后的记录不支持此告警）",
        alert.message,
        correction_verb(ev)
    );
    alert
}

/// An alert as the corrected history gives it (new, or changed), after a correction: says
/// which correction it follows.
pub fn after_correction(mut alert: Alert, ev: &Event<'_>, corrected: &str) -> Alert {
    if alert.evidence.is_object() {
        put(
            &mut alert.evidence,
            "corrected_by",
            correction_json(ev, corrected),
        );
    }
    alert
}

/// What an inspector compares in a corrected event: its time, report, actor and the fields of
/// its kind that rules read.
fn event_values(ev: &Event<'_>) -> Value {
    use crate::event::Body;
    let mut v = object!({
        "event_id": ev.event_id,
        "kind": ev.body.kind().as_str(),
        "occurred_at": ev.occurred_at,
        "reported_at": ev.reported_at,
        "staff_id": ev.staff_id,
        "window_id": ev.window_id,
    });
    let extra = match &ev.body {
        Body::CaseAccepted { channel, .. } => json!({"channel": channel.as_str()}),
        Body::CaseCompleted { result } => json!({"result": result.as_str()}),
        Body::CaseStage { stage, result } => {
            json!({"stage": stage.as_str(), "result": result.as_str()})
        }
        Body::SpecialStarted { procedure, limit } => json!({
            "procedure": procedure.as_str(),
            "limit_days": limit.map(|l| l.days),
            "limit_unit": limit.map(|l| l.unit.as_str()),
        }),
        Body::CaseExtended { extra_days } => json!({"extra_days": extra_days}),
        Body::FeeCharged { amount_fen, .. } => json!({"amount_fen": amount_fen}),
        Body::CaseRejected { reason } => json!({"reason": reason}),
        _ => json!({}),
    };
    if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    v
}

/// `data.corrected`: `original` superseded or withdrawn by `correction` long after it was
/// reported (`reports`: the original's and the correction's report times).
pub fn data_corrected(
    original: &Event<'_>,
    correction: &Event<'_>,
    reports: (Instant, Instant),
    grace_hours: u32,
    yellow: bool,
) -> Alert {
    let withdrawn = matches!(correction.body, crate::event::Body::EventWithdrawn { .. });
    let hours = (reports.1 .0 - reports.0 .0) as f64 / 3600.0;
    let kind = original.body.kind();
    let case = original.case_id.as_deref().unwrap_or_default();
    let level = if yellow {
        Level::Yellow
    } else {
        Level::Warning
    };
    let what = if withdrawn {
        "被撤回（删除）".to_string()
    } else if correction.occurred_at != original.occurred_at {
        format!(
            "被更正，{}时间由 {} 改为 {}",
            kind.zh(),
            original.occurred_at,
            correction.occurred_at
        )
    } else {
        "被更正".to_string()
    };
    let message = format!(
        "{}：办件 {case} 已上报的{}（事件 {}）在上报 {hours:.1} 小时后{what}（更正宽限 {grace_hours} 小时）",
        level.zh(),
        kind.zh(),
        original.event_id,
    );
    let evidence = object!({
        "corrected_event_id": original.event_id,
        "corrected_kind": kind.as_str(),
        "correction_event_id": correction.event_id,
        "correction_reported_at": reports.1,
        "delay_hours": (hours * 10.0).round() / 10.0,
        "grace_hours": grace_hours,
        "moved_seconds": (!withdrawn).then(|| correction.occurred_at.0 - original.occurred_at.0),
        "original_reported_at": reports.0,
        "withdrawn": withdrawn,
    });
    let new = match withdrawn {
        true => Value::Null,
        false => event_values(correction),
    };
    let evidence = with_parts(evidence, [("old", event_values(original)), ("new", new)]);
    build(
        Rule::DataCorrected,
        level,
        subject(&[("event_id", json!(original.event_id))]),
        reports.1,
        Attribution::of_event(correction),
        message,
        evidence,
    )
}

/// The object `v` with `parts` added: for values already made as JSON, which `json!` would
/// copy through the serializer (a deep copy, then the original dropped).
pub fn with_parts<const N: usize>(mut v: Value, parts: [(&str, Value); N]) -> Value {
    if let Value::Object(m) = &mut v {
        for (k, part) in parts {
            m.insert(k.to_string(), part);
        }
    }
    v
}

/// A subject from key/value pairs.
pub fn subject(pairs: &[(&str, Value)]) -> Subject {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn item_name(ctx: Ctx<'_>, symbols: &Symbols, case: &Case) -> String {
    if case.item_ref != NONE {
        return ctx.reference.item(case.item_ref).name.clone();
    }
    symbols
        .owned(case.who.item)
        .unwrap_or_else(|| "未知事项".into())
}

/// A deadline as messages say it: the last day D for the day units, the day and the minute the
/// office time runs out (`2026-03-02 15:00`) for the office-time units.
fn deadline_text(unit: Unit, day: Day, at: Instant) -> String {
    let mut text = String::with_capacity(16);
    day.push_to(&mut text);
    if unit.office_secs().is_some() {
        text.push(' ');
        text.push_str(at.to_string().get(11..16).unwrap_or_default());
    }
    text
}

fn limit_json(days: u32, unit: Unit) -> F {
    F::Object(fields!({"days": days, "unit": unit.as_str()}))
}

fn pauses_json(ctx: Ctx<'_>, case: &Case, unit: Unit, floor: u32) -> F {
    let list: Vec<F> = case
        .pauses()
        .iter()
        .filter(|p| p.to > floor)
        .map(|p| {
            let from = p.from.max(floor);
            F::Object(fields!({
                "days": pause_amount(ctx, unit, from, p.to),
                "from": inst(from),
                "kinds": pause::names(p.kinds),
                "to": inst(p.to),
                "unit": unit.pause_unit().as_str(),
            }))
        })
        .collect();
    F::List(list)
}

/// Provisional-calendar note for messages, and the years for evidence.
fn provisional(ctx: Ctx<'_>, from: Day, to: Day) -> (String, Vec<i32>) {
    let years = ctx.cal.provisional_years(from, to);
    let note = if years.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = years.iter().map(|y| format!("{y}年")).collect();
        format!(
            "（{}节假日安排未发布，按周末推算，时限为暂定）",
            list.join("、")
        )
    };
    (note, years)
}

/// The case clock's alerts. Once the case is finished (`closing`) they say how it ended where
/// they said it was still open (SPEC §7 v1.1: an alert follows its case).
fn case_clock(
    ctx: Ctx<'_>,
    case: &Case,
    due: Due,
    name: &str,
    closing: Option<Ending>,
    clock: Option<Clock>,
) -> (String, Option<Fields>) {
    // `pending` only yields these dues for accepted cases, so the clock exists.
    let Some(clock) = clock else {
        let mut message = format!("办件 {} 时限无法计算", case.id);
        if let (Due::Red, Some(c)) = (due, closing) {
            message = message + "，" + &closed_phrase(case, c);
        }
        return (message, None);
    };
    let Clock {
        start,
        promised_day: d,
        promised_at,
        ..
    } = clock;
    let due_text = deadline_text(case.promised_unit, d, promised_at);
    let (_, red_is_legal) = clock.red();
    let legal_day = clock.legal.map(|(l, _)| l);
    let last = match due {
        Due::Red if red_is_legal => legal_day.unwrap_or(d).max(d),
        Due::Red => clock.supervision_day,
        _ => d,
    };
    let (note, years) = provisional(ctx, start, last);
    let (start_t, _) = case.start(ctx).unwrap_or((case.accepted_at, false));
    let promised = u32::from(case.promised_days);
    let legal_limit = match case.legal_days {
        u16::MAX => F::Null,
        days => limit_json(u32::from(days), case.legal_unit),
    };
    let mut ev = fields!({
        "accepted_at": inst(case.accepted_at),
        "case_type": case.case_type.as_str(),
        "deadline": promised_at,
        "deadline_date": d,
        "extension_days": clock.extension_days,
        "extensions": extensions_json(case),
        "legal_deadline": clock.legal_at,
        "legal_deadline_date": clock.legal.map(|(l, _)| l),
        "legal_limit": legal_limit,
        "legal_pause_days": clock.legal.map(|(_, k)| k),
        "legal_pause_unit": (case.legal_days != u16::MAX)
            .then(|| case.legal_unit.pause_unit().as_str()),
        "limit": limit_json(promised, case.promised_unit),
        "pause_days": clock.promised_pause_days,
        "pause_unit": case.promised_unit.pause_unit().as_str(),
        "pauses": pauses_json(ctx, case, case.promised_unit, start_t),
        "provisional_years": years,
        "start": start,
        "start_reason": if clock.deemed { "deemed_accepted" } else { "accepted" },
        "submitted_at": (case.submitted_at != NEVER).then(|| inst(case.submitted_at)),
        "supervision_date": clock.supervision_day,
        "supervision_deadline": clock.supervision_day.end(),
        "warning_at": clock.warning_at,
    });
    let limit_text = [
        &(promised + clock.extension_days).to_string(),
        case.promised_unit.zh(),
    ]
    .concat();
    let deemed = if clock.deemed {
        "（逾期未作受理决定，自收到申请之日起视为受理）"
    } else {
        ""
    };
    let closed = closing.map(|c| closed_phrase(case, c));
    let message = match due {
        Due::Warning => {
            ev.insert("warning_date", clock.warning_day.into());
            let hurry = closed.as_deref().unwrap_or("请抓紧办结");
            [
                "预警：办件 ",
                case.id.as_str(),
                "（",
                name,
                "）承诺时限",
                &limit_text,
                "，将于 ",
                &due_text,
                " 届满，",
                hurry,
                deemed,
                &note,
            ]
            .concat()
        }
        Due::Yellow => [
            "黄牌：办件 ",
            case.id.as_str(),
            "（",
            name,
            "）已超过承诺时限",
            &limit_text,
            "（应于 ",
            &due_text,
            " 前办结），",
            closed.as_deref().unwrap_or("尚未办结"),
            deemed,
            &note,
        ]
        .concat(),
        _ => {
            ev.insert(
                "red_basis",
                if red_is_legal { "legal" } else { "supervision" }.into(),
            );
            let basis = if red_is_legal {
                let legal = match (legal_day, clock.legal_at) {
                    (Some(day), Some(at)) => deadline_text(case.legal_unit, day, at),
                    _ => due_text.clone(),
                };
                ["已超过法定时限（应于 ", &legal, " 前办结）"].concat()
            } else {
                let still = closed.as_ref().map_or("仍", |_| "");
                [
                    "超过承诺时限后 ",
                    &ctx.policy.supervise_working_days.to_string(),
                    " 个工作日督办期",
                    still,
                    "未办结",
                ]
                .concat()
            };
            let end = closed.as_deref().map_or("", |_| "，");
            let closed = closed.as_deref().unwrap_or("");
            [
                "红牌：办件 ",
                case.id.as_str(),
                "（",
                name,
                "）",
                &basis,
                deemed,
                &note,
                end,
                closed,
            ]
            .concat()
        }
    };
    (message, Some(ev))
}

fn extensions_json(case: &Case) -> F {
    let list: Vec<F> = case
        .rare()
        .map(|e| {
            e.extensions
                .iter()
                .map(|x| {
                    F::Object(
                        fields!({"applied": x.applied, "at": inst(x.at), "extra_days": x.days}),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    F::List(list)
}

fn stage_clock(
    ctx: Ctx<'_>,
    case: &Case,
    stage: crate::event::Stage,
    name: &str,
    closing: Option<Ending>,
) -> (String, Option<Fields>) {
    let (open, started) = case.open_stage().unwrap_or((stage, case.accepted_at));
    let limit = case.stage_limit(ctx, open);
    let end = case.stage_end(ctx, open, started);
    let (d, k) = end.map_or((inst(started).day(), 0), |e| (e.day, e.paused));
    let at = end.map_or(inst(started), |e| e.at);
    let due_text = deadline_text(case.promised_unit, d, at);
    let start = inst(started).day();
    let (note, years) = provisional(ctx, start, d);
    let days = limit.map_or(0, |l| u32::from(l.days));
    let ev = fields!({
        "deadline": at,
        "deadline_date": d,
        "limit": limit_json(days, case.promised_unit),
        "pause_days": k,
        "pause_unit": case.promised_unit.pause_unit().as_str(),
        "pauses": pauses_json(ctx, case, case.promised_unit, started),
        "provisional_years": years,
        "stage": stage.as_str(),
        "stage_started_at": inst(started),
        "start": start,
    });
    let still = closing.map_or("，尚未完成", |_| "");
    let message = [
        "黄牌：办件 ",
        case.id.as_str(),
        "（",
        name,
        "）",
        stage.zh(),
        "环节超过环节时限",
        &days.to_string(),
        case.promised_unit.zh(),
        "（应于 ",
        &due_text,
        " 前完成）",
        still,
        &note,
        &finished_note(case, closing),
    ]
    .concat();
    (message, Some(ev))
}

fn special(
    ctx: Ctx<'_>,
    case: &Case,
    n: u8,
    name: &str,
    closing: Option<Ending>,
) -> (String, Option<Fields>) {
    let Some(&sp) = case.special(n) else {
        let note = finished_note(case, closing);
        return (format!("办件 {} 特别程序信息缺失{note}", case.id), None);
    };
    let start = inst(sp.started_at).day();
    let end = case.special_end(ctx, &sp);
    let d = end.map_or(start, |e| e.day);
    let at = end.map_or(d.end(), |e| e.at);
    let (note, years) = provisional(ctx, start, d);
    let (days, unit) = sp
        .limit
        .map_or((0, Unit::Working), |l| (u32::from(l.days), l.unit));
    let ev = fields!({
        "deadline": at,
        "deadline_date": d,
        "limit": limit_json(days, unit),
        "procedure": sp.procedure.as_str(),
        "provisional_years": years,
        "special": sp.n,
        "start": start,
        "started_at": inst(sp.started_at),
    });
    let due_text = deadline_text(unit, d, at);
    let still = closing.map_or("，尚未结束", |_| "");
    let message = format!(
        "黄牌：办件 {}（{name}）的特别程序（{}）超过其时限{days}{}（应于 {due_text} 前结束）{still}{note}{}",
        case.id,
        procedure_zh(sp.procedure),
        unit.zh(),
        finished_note(case, closing)
    );
    (message, Some(ev))
}

fn acceptance(
    ctx: Ctx<'_>,
    case: &Case,
    name: &str,
    closing: Option<Ending>,
) -> (String, Option<Fields>) {
    let start = inst(case.period_start).day();
    let d = case.acceptance_day(ctx).unwrap_or(start);
    let (note, years) = provisional(ctx, start, d);
    let days = ctx.policy.acceptance_working_days;
    let ev = fields!({
        "deadline": d.end(),
        "deadline_date": d,
        "limit": limit_json(days, Unit::Working),
        "period": case.period_no,
        "period_started_at": inst(case.period_start),
        "provisional_years": years,
        "start": start,
    });
    let message = format!(
        "黄牌：办件 {}（{name}）收到申请材料后 {days} 个工作日内（应于 {d} 前）未作出受理、不予受理或补正告知（行政许可法第三十二条）{note}{}",
        case.id,
        finished_note(case, closing)
    );
    (message, Some(ev))
}

fn no_acceptance(ctx: Ctx<'_>, case: &Case, name: &str) -> (String, Option<Fields>) {
    let grace = ctx.policy.sequence_grace_minutes;
    let when = |t: T32| (t != NEVER).then(|| inst(t));
    // Judged on report times when the completion carries one (docs/RULES.md).
    let by_report = case.closed_reported != NEVER;
    let message = if by_report {
        let accepted = match when(case.accepted_reported) {
            Some(r) => format!("受理记录迟至 {r} 才报送"),
            None => "没有受理记录".to_string(),
        };
        format!(
            "黄牌：办件 {}（{name}）于 {} 办结、{} 报送，但报送后 {grace} 分钟内{accepted}（办结无受理，疑似体外循环）",
            case.id,
            inst(case.closed_at),
            inst(case.closed_reported)
        )
    } else {
        format!(
            "黄牌：办件 {}（{name}）于 {} 办结，但 {grace} 分钟内没有受理记录（办结无受理，疑似体外循环）",
            case.id,
            inst(case.closed_at)
        )
    };
    let ev = fields!({
        "accepted_at": when(case.accepted_at),
        "accepted_reported_at": when(case.accepted_reported),
        "completed_at": inst(case.closed_at),
        "completed_reported_at": when(case.closed_reported),
        "grace_ends_at": case.acceptance_grace_end(ctx),
        "grace_minutes": grace,
        "judged_on": if by_report { "reported_at" } else { "arrival" },
    });
    (message, Some(ev))
}

/// Yuan with two decimals, for messages.
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn fee_without_case(ctx: Ctx<'_>, symbols: &Symbols, case: &Case, i: usize, at: Instant) -> Alert {
    let Some(fee) = case.rare().and_then(|e| e.fees.get(i)) else {
        return build(
            Rule::FeeWithoutCase,
            Level::Yellow,
            Subject::new(),
            at,
            Attribution::of_case(symbols, case),
            format!("办件 {} 收费信息缺失", case.id),
            Value::Null,
        );
    };
    let mut who = Attribution::of_case(symbols, case);
    who.window_id = symbols.owned(fee.window);
    who.staff_id = symbols.owned(fee.staff);
    who.item_code = symbols.owned(fee.item).or(who.item_code);
    let days = ctx.policy.fee_match_working_days;
    let deadline = Case::fee_deadline(ctx, fee.at);
    let accepted = (case.accepted_at != NEVER).then(
        || fields!({"at": inst(case.accepted_at), "channel": case.channel.map(|c| c.as_str())}),
    );
    let why = match case.channel {
        Some(c) if case.accepted_at != NEVER && c != crate::event::Channel::Hall => {
            format!("办件 {} 经{}渠道受理，不是窗口受理", case.id, c.zh())
        }
        _ if case.accepted_at != NEVER => {
            format!(
                "办件 {} 于 {} 才受理，晚于期限",
                case.id,
                inst(case.accepted_at)
            )
        }
        _ => format!("办件 {} 没有受理记录", case.id),
    };
    let message = format!(
        "黄牌：票据 {}（{} 元）开具后 {days} 个工作日内（{deadline} 前）没有窗口受理的办件与之对应：{why}（以票管审）",
        fee.receipt_no,
        yuan(fee.amount_fen)
    );
    let evidence = fields!({
        "acceptance": accepted,
        "amount_fen": fee.amount_fen,
        "case_id": case.id.as_str().to_string(),
        "charged_at": inst(fee.at),
        "deadline": deadline,
        "deadline_date": deadline.day().prev(),
        "fee_match_working_days": days,
        "payer_id": fee.payer_id.to_string(),
        "receipt_no": fee.receipt_no.to_string(),
    });
    build(
        Rule::FeeWithoutCase,
        Level::Yellow,
        subject(&[("receipt_no", json!(&*fee.receipt_no))]),
        at,
        who,
        message,
        evidence,
    )
}

fn procedure_zh(p: Procedure) -> &'static str {
    match p {
        Procedure::Hearing => "听证",
        Procedure::Tender => "招标",
        Procedure::Auction => "拍卖",
        Procedure::Inspection => "检验",
        Procedure::Testing => "检测",
        Procedure::Quarantine => "检疫",
        Procedure::Appraisal => "鉴定",
        Procedure::ExpertReview => "专家评审",
        Procedure::Publicity => "公示",
        Procedure::Other => "其他",
    }
}

/// The record of a finished case, once both its acceptance and its completion are known.
pub fn fact(ctx: Ctx<'_>, symbols: &Symbols, case: &Case) -> Option<crate::fact::CaseFact> {
    if !case.completed() || case.accepted_at == NEVER {
        return None;
    }
    let clock = case.clock(ctx)?;
    let (start_t, _) = case.start(ctx)?;
    let completed_at = inst(case.closed_at);
    let done = completed_at.day();
    let deadline = clock.promised_at;
    let legal_deadline = clock.legal_at;
    let paused = case.pause_days(ctx, Unit::Working, start_t);
    let who = Attribution::of_case(symbols, case);
    Some(crate::fact::CaseFact {
        case_id: case.id.as_str().to_owned(),
        center_id: who.center_id,
        region: who.region,
        department: who.department,
        window_id: who.window_id,
        staff_id: who.staff_id,
        item_code: who.item_code,
        case_type: case.case_type,
        channel: case.channel,
        accepted_at: inst(case.accepted_at),
        completed_at,
        result: case.result?,
        start: clock.start,
        deemed: clock.deemed,
        promised_days: case.promised_days,
        promised_unit: case.promised_unit,
        legal_days: (case.legal_days != u16::MAX).then_some(case.legal_days),
        legal_unit: case.legal_unit,
        extension_days: clock.extension_days,
        pause_days: clock.promised_pause_days,
        deadline_date: clock.promised_day,
        deadline,
        legal_deadline,
        working_days_used: ctx
            .cal
            .working_days_between(clock.start, done)
            .saturating_sub(paused),
        on_time: completed_at < deadline,
        early: done < clock.promised_day,
        on_site: done == inst(case.accepted_at).day(),
        within_legal: legal_deadline.is_none_or(|l| completed_at < l),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The finished case's wording, written without `format!`, says what the `format!`
    /// templates it replaced said, for every day of two years (a month equal to its day
    /// included) and days late from none to many.
    #[test]
    fn a_finished_cases_wording_is_the_templates() {
        let start = Instant(1_767_196_800); // 2026-01-01T00:00:00+08:00
        for d in 0..730 {
            let closed = start.plus_secs(d * 86_400 + 3_600 * 10);
            let (_, m, day) = closed.day().ymd();
            let md = format!("{m:02}-{day:02}");
            for verb in ["办结", "不予受理"] {
                assert_eq!(finished(verb, closed), format!("（办件已于 {md} {verb}）"));
                for overdue in [
                    None,
                    Some(0),
                    Some(1),
                    Some(9),
                    Some(10),
                    Some(4_294_967_295),
                ] {
                    let template = match overdue {
                        Some(0) => format!("已于 {md} 在承诺时限内{verb}"),
                        Some(n) => format!("已超期 {n} 个工作日于 {md} {verb}"),
                        None => format!("已于 {md} {verb}"),
                    };
                    assert_eq!(phrase(verb, (closed, overdue)), template);
                }
            }
        }
    }

    /// A deadline as messages say it, written without `format!`, is what the template it
    /// replaced said: the day for the day units, the day and the minute for office time.
    #[test]
    fn deadline_texts_are_the_templates() {
        let start = Instant(1_767_196_800); // 2026-01-01T00:00:00+08:00
        let units = [
            Unit::Working,
            Unit::Natural,
            Unit::Months,
            Unit::WorkingHours,
            Unit::WorkingMinutes,
        ];
        for step in 0..2_000 {
            let at = start.plus_secs(step * 17_317);
            let day = at.day();
            for unit in units {
                let template = match unit.office_secs() {
                    None => day.to_string(),
                    Some(_) => format!("{} {}", day, &at.to_string()[11..16]),
                };
                assert_eq!(deadline_text(unit, day, at), template, "{unit:?} {at}");
            }
        }
    }
}

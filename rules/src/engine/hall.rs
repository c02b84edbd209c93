//! Alerts of the out-of-hall (体外循环), complaint and discipline rules that an event or a count
//! fires at once: each function builds one alert with its subject, zh-CN message and the
//! evidence naming the events that made it true.

use serde_json::json;

use crate::alert::{Alert, AlertStatus, Level, Rule};
use crate::event::{Channel, Event, Stage};
use crate::evidence::{fields, Fields};
use crate::reference::{Item, Staff};
use crate::time::Instant;

use super::batch::BatchEntry;
use super::case::{inst, Case, Ctx};
use super::count::Strike;
use super::explain::{self, build, subject, yuan, Attribution};
use super::ladder::{Card, StepChange, What};
use super::table::{Sym, Symbols};

/// `hall.accepted_outside_hall`: an in-hall item accepted through a channel it does not allow,
/// or at a window outside the hall.
pub fn accepted_outside_hall(
    symbols: &Symbols,
    case: &Case,
    item: &Item,
    channel: Channel,
    ev: &Event<'_>,
    outside_window: bool,
) -> Alert {
    let allowed: Vec<&'static str> = Channel::ALL
        .iter()
        .filter(|c| item.channels & c.bit() != 0)
        .map(|c| c.as_str())
        .collect();
    let allowed_zh: Vec<&str> = Channel::ALL
        .iter()
        .filter(|c| item.channels & c.bit() != 0)
        .map(|c| c.zh())
        .collect();
    let how = if outside_window {
        format!(
            "在大厅外窗口 {} 受理",
            ev.window_id.as_deref().unwrap_or_default()
        )
    } else {
        format!(
            "经{}渠道受理（允许：{}）",
            channel.zh(),
            allowed_zh.join("、")
        )
    };
    let message = format!(
        "黄牌：办件 {}（{}）为应进厅办理事项，却{how}",
        case.id, item.name
    );
    let evidence = fields!({
        "accepted_at": ev.occurred_at,
        "allowed_channels": allowed,
        "channel": channel.as_str(),
        "event_id": ev.event_id.to_string(),
        "item_in_hall": item.in_hall,
        "window_id": ev.window_id.as_deref().map(str::to_string),
        "window_in_hall": !outside_window,
    });
    build(
        Rule::AcceptedOutsideHall,
        Level::Yellow,
        subject(&[("case_id", json!(case.id.as_str()))]),
        ev.occurred_at,
        Attribution::of_case(symbols, case),
        message,
        evidence,
    )
}

/// `hall.back_office` (前店后场): a stage delegated to the window performed by back-office staff.
pub fn back_office(
    ctx: Ctx<'_>,
    symbols: &Symbols,
    case: &Case,
    stage: Stage,
    staff: &Staff,
    (at, event_id): (Instant, &str),
) -> Alert {
    let item = &ctx.reference.item(case.item_ref).name;
    let message = format!(
        "预警：办件 {}（{item}）的{}环节已授权窗口办理，却由大厅外人员 {}（{}）完成（前店后场）",
        case.id,
        stage.zh(),
        staff.name,
        staff.staff_id
    );
    let evidence = fields!({
        "event_id": event_id.to_string(),
        "performed_at": at,
        "stage": stage.as_str(),
        "staff_department": staff.department.clone(),
        "staff_id": staff.staff_id.clone(),
        "staff_in_hall": staff.in_hall,
    });
    build(
        Rule::BackOffice,
        Level::Warning,
        subject(&[
            ("case_id", json!(case.id.as_str())),
            ("stage", json!(stage.as_str())),
        ]),
        at,
        Attribution::of_case(symbols, case),
        message,
        evidence,
    )
}

/// `hall.batch_entry` (事后补录): a burst of completions each accepted moments before, fired
/// at the last of them and attributed like it.
/// `None` for an empty burst (there is none).
pub fn batch_entry(ctx: Ctx<'_>, staff: &str, burst: &[BatchEntry], revision: u8) -> Option<Alert> {
    let (first, last) = (burst.first()?, burst.last()?);
    let p = ctx.policy;
    let message = format!(
        "黄牌：工作人员 {staff} 在 {} 分钟内集中办结 {} 件承诺件，每件受理至办结不足 {} 秒（疑似事后补录）",
        p.batch_window_minutes,
        burst.len(),
        p.batch_max_case_seconds
    );
    let cases: Vec<Fields> = burst
        .iter()
        .map(|e| {
            fields!({
                "accepted_at": inst(e.accepted),
                "case_id": e.case_id.to_string(),
                "completed_at": inst(e.completed),
                "seconds": inst(e.completed).0 - inst(e.accepted).0,
            })
        })
        .collect();
    let evidence = fields!({
        "cases": cases,
        "max_case_seconds": p.batch_max_case_seconds,
        "min_cases": p.batch_min_cases,
        "window_minutes": p.batch_window_minutes,
    });
    let own = |s: &Option<Box<str>>| s.as_deref().map(str::to_string);
    let who = Attribution {
        center_id: last.place.center_id.to_string(),
        region: last.place.region.to_string(),
        department: own(&last.place.department),
        window_id: own(&last.place.window_id),
        staff_id: Some(staff.to_string()),
        case_id: Some(last.case_id.to_string()),
        item_code: own(&last.place.item_code),
    };
    let mut alert = build(
        Rule::BatchEntry,
        Level::Yellow,
        subject(&[
            ("staff_id", json!(staff)),
            ("batch", json!(inst(first.completed))),
        ]),
        inst(last.completed),
        who,
        message,
        evidence,
    );
    alert.revision = revision;
    Some(alert)
}

/// `hall.fee_irregular`: a fee that differs from the item's statutory fee.
pub fn fee_irregular(
    ev: &Event<'_>,
    item: &Item,
    receipt_no: &str,
    amount_fen: u64,
    standard: u64,
) -> Alert {
    let message = format!(
        "黄牌：票据 {receipt_no} 收费 {} 元，与事项 {}（{}）收费标准 {} 元不符",
        yuan(amount_fen),
        item.code,
        item.name,
        yuan(standard)
    );
    let evidence = fields!({
        "amount_fen": amount_fen,
        "charged_at": ev.occurred_at,
        "event_id": ev.event_id.to_string(),
        "fee_fen": standard,
        "item_code": item.code.clone(),
        "receipt_no": receipt_no.to_string(),
    });
    build(
        Rule::FeeIrregular,
        Level::Yellow,
        subject(&[("receipt_no", json!(receipt_no))]),
        ev.occurred_at,
        Attribution::of_event(ev),
        message,
        evidence,
    )
}

/// `hall.late_report` (迟报).
pub fn late_report(ev: &Event<'_>, reported: Instant, hours: u32) -> Alert {
    let delay = reported.0 - ev.occurred_at.0;
    let message = format!(
        "预警：事件 {}（{}）发生于 {}，至 {reported} 才上报，迟报 {:.1} 小时（限 {hours} 小时）",
        ev.event_id,
        ev.body.kind().as_str(),
        ev.occurred_at,
        delay as f64 / 3600.0
    );
    let evidence = fields!({
        "delay_seconds": delay,
        "event_id": ev.event_id.to_string(),
        "kind": ev.body.kind().as_str(),
        "limit_hours": hours,
        "occurred_at": ev.occurred_at,
        "reported_at": reported,
    });
    build(
        Rule::LateReport,
        Level::Warning,
        subject(&[("event_id", json!(ev.event_id))]),
        ev.occurred_at,
        Attribution::of_event(ev),
        message,
        evidence,
    )
}

/// The counted complaints or evaluations, for evidence.
fn strikes_json(counted: &[Strike]) -> Vec<Fields> {
    counted
        .iter()
        .map(|s| fields!({"at": inst(s.at), "id": s.id.to_string()}))
        .collect()
}

/// `complaint.repeated_staff`: substantiated complaints against one person within 365 days,
/// fired at the last one counted and attributed like it (`None` for an empty count).
pub fn repeated_staff(staff: &str, counted: &[Strike], revision: u8) -> Option<Alert> {
    let trigger = counted.last()?;
    let complaint_id = &*trigger.id;
    let message = format!(
        "红牌：工作人员 {staff} 一年内有效投诉已达 {} 次（最近一次：{complaint_id}）",
        counted.len()
    );
    let mut alert = build(
        Rule::RepeatedStaff,
        Level::Red,
        subject(&[
            ("staff_id", json!(staff)),
            ("complaint_id", json!(complaint_id)),
        ]),
        inst(trigger.at),
        Attribution {
            staff_id: Some(staff.to_string()),
            ..trigger.place.attribution()
        },
        message,
        fields!({
            "count": counted.len(),
            "substantiated_complaints": strikes_json(counted),
            "window_days": 365u32,
        }),
    );
    alert.revision = revision;
    Some(alert)
}

/// `complaint.repeated_window`: complaints and bad evaluations against one window in 30 days,
/// fired at the last one counted and attributed like it.
pub fn repeated_window(window: &str, counted: &[Strike], revision: u8) -> Option<Alert> {
    let trigger = counted.last()?;
    let message = format!(
        "黄牌：窗口 {window} 30 日内投诉和差评已达 {} 次（最近一次：{}）",
        counted.len(),
        trigger.id
    );
    let mut alert = build(
        Rule::RepeatedWindow,
        Level::Yellow,
        subject(&[
            ("window_id", json!(window)),
            ("trigger", json!(&*trigger.id)),
        ]),
        inst(trigger.at),
        trigger.place.attribution(),
        message,
        fields!({
            "complaints_and_bad_evaluations": strikes_json(counted),
            "count": counted.len(),
            "window_days": 30u32,
        }),
    );
    alert.revision = revision;
    Some(alert)
}

/// `evaluation.satisfaction_low`.
pub fn satisfaction_low(
    who: Attribution,
    window: &str,
    good: usize,
    sample: usize,
    floor: f64,
    at: Instant,
) -> Alert {
    let rate = good as f64 / sample as f64;
    let message = format!(
        "预警：窗口 {window} 最近 {sample} 次评价满意率 {:.1}%（{good} 次满意），低于 {:.1}%",
        rate * 100.0,
        floor * 100.0
    );
    build(
        Rule::SatisfactionLow,
        Level::Warning,
        subject(&[("window_id", json!(window)), ("date", json!(at.day()))]),
        at,
        who,
        message,
        fields!({"floor": floor, "rate": rate, "sample": sample, "satisfied": good}),
    )
}

/// A `discipline.ladder` step as a [`StepChange`] gives it: issued at its card (attributed like
/// the card, with the card as `cause`), or retracted because a card was taken off the count.
pub fn ladder(staff: &str, year: i32, change: StepChange, symbols: &Symbols) -> Alert {
    let (step, card, revision) = match &change {
        StepChange::Issue {
            step,
            card,
            revision,
        }
        | StepChange::Retract {
            step,
            card,
            revision,
            ..
        } => (*step, card, *revision),
    };
    let (level, action) = match step {
        1 => (Level::Warning, "告知"),
        2 => (Level::Yellow, "谈话"),
        3 => (Level::Yellow, "通报"),
        _ => (Level::Red, "辞退建议"),
    };
    let message = format!(
        "{}：工作人员 {staff} {year} 年度累计第 {step} 次违规（黄牌、红牌或有效投诉），按“一告知二谈话三通报四辞退”应予{action}",
        level.zh()
    );
    let cause = card_json(card);
    let name = |sym: Sym| symbols.owned(sym);
    let who = Attribution {
        center_id: name(card.center_id).unwrap_or_default(),
        region: name(card.region).unwrap_or_default(),
        department: name(card.department),
        window_id: name(card.window_id),
        staff_id: Some(staff.to_string()),
        ..Default::default()
    };
    let mut alert = build(
        Rule::DisciplineLadder,
        level,
        subject(&[
            ("staff_id", json!(staff)),
            ("year", json!(year)),
            ("step", json!(step)),
        ]),
        inst(card.at),
        who,
        message,
        fields!({"action": action, "cause": cause, "count": step, "year": year}),
    );
    alert.revision = revision;
    if let StepChange::Retract { because, .. } = &change {
        alert.status = AlertStatus::Retracted;
        explain::put(&mut alert.evidence, "retracted_because", card_json(because));
        alert.message = format!(
            "已撤销：{}（计入的告警 {} 已被撤销，年度累计不足 {step} 次）",
            alert.message, because.id
        );
    }
    alert
}

fn card_json(card: &Card) -> Fields {
    match card.what {
        What::Alert { rule, level } => fields!({
            "alert_id": card.id.to_string(),
            "case_id": card.detail.as_deref().map(str::to_string),
            "fired_at": inst(card.at),
            "level": level.as_str(),
            "rule": rule.as_str(),
        }),
        What::Complaint => fields!({
            "event_id": card.detail.as_deref().unwrap_or_default().to_string(),
            "resolved_at": inst(card.at),
            "substantiated_complaint": card.complaint_id(),
        }),
    }
}

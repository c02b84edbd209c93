//! Alerts (SPEC §7): what the engine emits.
//!
//! An alert's id is a pure function of its rule, level and subject, so a replayed or
//! re-delivered alert is the same alert, and stores can de-duplicate on `alert_id`.

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::time::Instant;

wire_enum!(
    /// Rules of the catalogue (SPEC §6).
    Rule {
        /// 超时 (承诺/法定时限)
        CaseOverdue = "case.overdue",
        /// 环节超时
        StageOverdue = "case.stage_overdue",
        /// 特别程序超时
        SpecialOverdue = "case.special_overdue",
        /// 受理超时 (行政许可法 §32)
        AcceptanceOverdue = "case.acceptance_overdue",
        /// 不予受理未说明理由
        RejectedWithoutReason = "case.rejected_without_reason",
        /// 以票管审: a fee with no in-hall case
        FeeWithoutCase = "hall.fee_without_case",
        /// 收费与标准不符
        FeeIrregular = "hall.fee_irregular",
        /// 办结无受理
        CompletedWithoutAcceptance = "hall.completed_without_acceptance",
        /// 应进厅事项在厅外受理
        AcceptedOutsideHall = "hall.accepted_outside_hall",
        /// 前店后场
        BackOffice = "hall.back_office",
        /// 事后补录
        BatchEntry = "hall.batch_entry",
        /// 审批未在线办理
        MissingStages = "hall.missing_stages",
        /// 迟报
        LateReport = "hall.late_report",
        /// 投诉
        ComplaintFiled = "complaint.filed",
        /// 投诉超期未办结
        ComplaintOverdue = "complaint.overdue",
        /// 差评
        EvaluationBad = "evaluation.bad",
        /// 差评超期未整改
        EvaluationUnrectified = "evaluation.unrectified",
        /// 同一工作人员一年内多次有效投诉
        RepeatedStaff = "complaint.repeated_staff",
        /// 同一窗口 30 日内多次投诉或差评
        RepeatedWindow = "complaint.repeated_window",
        /// 满意率低
        SatisfactionLow = "evaluation.satisfaction_low",
        /// 一告知二谈话三通报四辞退
        DisciplineLadder = "discipline.ladder",
        /// 空岗: an open window with nobody signed in
        WindowUnstaffed = "window.unstaffed",
        /// 等候超时: a queue ticket not called in time
        LongWait = "window.long_wait",
        /// 数据更正: an event superseded or withdrawn long after it was reported
        DataCorrected = "data.corrected",
        /// 来源系统承诺办结时间与法定日历不符
        DeadlineMismatch = "data.deadline_mismatch",
        /// 事后补挂起: a pause reported after the deadline it moves, or with a late completion
        RetroactivePause = "hall.retroactive_pause",
        /// 补录的审批环节
        StageFabricated = "hall.stage_fabricated",
        /// 占位账号办件 (自动预审, 000000)
        PlaceholderStaff = "data.placeholder_staff",
        /// 数据源静默
        SourceSilent = "source.silent",
        /// 数据源非实时 (办结后才上报)
        SourceNotLive = "source.not_live",
    }
);

impl Rule {
    /// Whether a yellow or red alert of this rule is a card on the staff member's discipline
    /// ladder. Complaint-derived rules are not: a complaint counts once, when substantiated.
    /// Nor are the `window.*` rules: they are warnings about a window, not cards for a person.
    /// Nor are the integrity rules about what a feed did (`hall.retroactive_pause`,
    /// `hall.stage_fabricated`): a bridge or reporter program makes those entries, and nothing
    /// shows which person, if any, asked for them (docs/RULES.md, "Data integrity").
    pub fn counts_for_ladder(self) -> bool {
        let name = self.as_str();
        let feed = matches!(self, Rule::RetroactivePause | Rule::StageFabricated);
        (name.starts_with("case.")
            || name.starts_with("hall.")
            || self == Rule::EvaluationUnrectified)
            && !feed
    }

    /// 中文 name, as dashboards show it.
    pub fn zh(self) -> &'static str {
        match self {
            Rule::CaseOverdue => "办件超时",
            Rule::StageOverdue => "环节超时",
            Rule::SpecialOverdue => "特别程序超时",
            Rule::AcceptanceOverdue => "受理超时",
            Rule::RejectedWithoutReason => "不予受理未说明理由",
            Rule::FeeWithoutCase => "收费无办件（以票管审）",
            Rule::FeeIrregular => "收费与标准不符",
            Rule::CompletedWithoutAcceptance => "办结无受理",
            Rule::AcceptedOutsideHall => "应进厅事项厅外受理",
            Rule::BackOffice => "前店后场",
            Rule::BatchEntry => "事后集中补录",
            Rule::MissingStages => "审批环节未在线办理",
            Rule::LateReport => "数据迟报",
            Rule::ComplaintFiled => "投诉",
            Rule::ComplaintOverdue => "投诉超期未办结",
            Rule::EvaluationBad => "差评",
            Rule::EvaluationUnrectified => "差评超期未整改",
            Rule::RepeatedStaff => "多次有效投诉（个人）",
            Rule::RepeatedWindow => "多次投诉差评（窗口）",
            Rule::SatisfactionLow => "满意率低",
            Rule::DisciplineLadder => "纪律处理",
            Rule::WindowUnstaffed => "空岗",
            Rule::LongWait => "等候超时",
            Rule::DataCorrected => "数据更正",
            Rule::DeadlineMismatch => "承诺期限与来源系统不一致",
            Rule::RetroactivePause => "事后补报暂停（倒签挂起）",
            Rule::StageFabricated => "审批环节事后补录",
            Rule::PlaceholderStaff => "占位账号办件",
            Rule::SourceSilent => "数据源静默",
            Rule::SourceNotLive => "数据源非实时上报",
        }
    }
}

wire_enum!(
    /// Alert levels.
    Level {
        /// 预警
        Warning = "warning",
        /// 黄牌
        Yellow = "yellow",
        /// 红牌
        Red = "red",
    }
);

impl Level {
    /// 中文 name.
    pub fn zh(self) -> &'static str {
        match self {
            Level::Warning => "预警",
            Level::Yellow => "黄牌",
            Level::Red => "红牌",
        }
    }
}

wire_enum!(
    /// Alert lifecycle states (SPEC §7). The engine emits `open`, `retracted` and `cleared`; the
    /// others are set by inspectors through the API.
    AlertStatus {
        Open = "open",
        Acknowledged = "acknowledged",
        Supervising = "supervising",
        Resolved = "resolved",
        Dismissed = "dismissed",
        Retracted = "retracted",
        /// 系统自动解除: a warning whose condition ended before it escalated (v1.1).
        Cleared = "cleared",
    }
);

/// What an alert is about: `case_id` plus the stage, special procedure or acceptance period.
/// Keys are sorted, which makes the canonical form used for ids unambiguous.
pub type Subject = serde_json::Map<String, serde_json::Value>;

/// One alert, as printed by `jiancha replay` and stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Deterministic id: see [`alert_id`].
    pub alert_id: String,
    /// The rule.
    pub rule: Rule,
    /// The level.
    pub level: Level,
    /// `open`; `retracted` when later events disproved it; `cleared` when a warning's condition
    /// ended before it escalated (the case was completed in time).
    pub status: AlertStatus,
    /// When the condition became true, in event time.
    pub fired_at: Instant,
    /// Service centre.
    pub center_id: String,
    /// GB/T 2260 code.
    pub region: String,
    /// Department.
    pub department: Option<String>,
    /// Window.
    pub window_id: Option<String>,
    /// Staff member (工号).
    pub staff_id: Option<String>,
    /// Case number.
    pub case_id: Option<String>,
    /// Item code.
    pub item_code: Option<String>,
    /// What the alert is about.
    pub subject: Subject,
    /// zh-CN text for people.
    pub message: String,
    /// The computation, for an inspector to check by hand. For alerts about a case it holds
    /// `subject_state`: the case's current state (see [`Alert::revision`]).
    pub evidence: crate::evidence::Evidence,
    /// For `cleared`: when the condition ended (the completion's `occurred_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<Instant>,
    /// The engine's version of this alert; stores keep the highest (the `version` of a
    /// `ReplacingMergeTree`). 0 for the firing; 1 for a *revision*, the same alert with its
    /// subject's new state, which replaces the stored one but is not a new line of
    /// `jiancha replay` ([`Alert::is_revision`]); 2 or more for an end (retracted, cleared);
    /// 3 or more for a new firing after that or at another instant (a ladder step reached
    /// again, a burst or count re-worked by a late report): see `engine::explain::revision`.
    #[serde(skip_serializing_if = "is_zero")]
    pub revision: u8,
    /// A *revision* numbered above 1: once a correction has re-worked a case, every later line
    /// of its alerts must outnumber the last one emitted (stores keep the highest), so the
    /// same firing with its subject's new state can no longer be revision 1. `true` says it
    /// still is only that: not a line of `jiancha replay`, not a card, not a notification
    /// ([`Alert::is_revision`]). Absent (false) on every other line.
    #[serde(skip_serializing_if = "is_false")]
    pub restated: bool,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Alert {
    /// An `open` alert the engine sent again with its subject's new state (SPEC §7, "current
    /// facts"): stored and shown, but neither a firing (replay does not print it, the ladder
    /// does not count it) nor a new notification.
    pub fn is_revision(&self) -> bool {
        self.status == AlertStatus::Open && (self.revision == 1 || self.restated)
    }
}

/// The id of an alert: lowercase hex XXH3-128 of `rule|level|k=v;k=v…` (subject keys sorted).
pub fn alert_id(rule: Rule, level: Level, region: &str, subject: &Subject) -> String {
    // The region is part of the identity: the same subject id (a 办件编号, a 工号) in two
    // regions names two subjects, and a store keeping one row per alert id must never let one
    // region's alert replace or retract another's.
    // Built by hand rather than with `format!`: ids are made for every alert line, and a
    // correction's replays make many (docs/BENCHMARKS.md, "Corrections").
    let (rule, level) = (rule.as_str(), level.as_str());
    let mut canonical = String::with_capacity(rule.len() + level.len() + region.len() + 48);
    for part in [rule, "|", level, "|", region, "|"] {
        canonical.push_str(part);
    }
    for (i, (k, v)) in subject.iter().enumerate() {
        if i > 0 {
            canonical.push(';');
        }
        canonical.push_str(k);
        canonical.push('=');
        match v {
            serde_json::Value::String(s) => canonical.push_str(s),
            other => canonical.push_str(&other.to_string()),
        }
    }
    hex32(xxh3_128(canonical.as_bytes()))
}

/// `{:032x}` of `v`.
fn hex32(v: u128) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (pair, byte) in out.chunks_exact_mut(2).zip(v.to_be_bytes()) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&out).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinguish_rule_level_and_subject() {
        let mut s = Subject::new();
        s.insert("case_id".into(), "C1".into());
        let a = alert_id(Rule::CaseOverdue, Level::Yellow, "430626", &s);
        assert_eq!(
            a,
            alert_id(Rule::CaseOverdue, Level::Yellow, "430626", &s.clone())
        );
        assert_eq!(a.len(), 32);
        assert_ne!(a, alert_id(Rule::CaseOverdue, Level::Red, "430626", &s));
        assert_ne!(a, alert_id(Rule::StageOverdue, Level::Yellow, "430626", &s));
        let mut t = s.clone();
        t.insert("stage".into(), "review".into());
        assert_ne!(a, alert_id(Rule::StageOverdue, Level::Yellow, "430626", &t));
        assert_ne!(a, alert_id(Rule::CaseOverdue, Level::Yellow, "430621", &s));
        // Pinned: ids must never change between releases, or stored alerts would duplicate.
        // (XXH3-128 of "case.overdue|yellow|430626|case_id=C1", checked with Python's xxhash.
        // The region joined the identity in format 3 of the snapshot: docs/RULES.md.)
        assert_eq!(a, "b55d5b31dc57af5dfbd33eb3ddd57fd4");
    }

    #[test]
    fn ids_are_32_hex_digits_with_leading_zeros() {
        for v in [0, 1, 0xabc, u128::MAX, 0x0123_4567_89ab_cdef << 40] {
            assert_eq!(hex32(v), format!("{v:032x}"));
        }
    }

    #[test]
    fn window_rules_are_not_ladder_cards() {
        assert_eq!(Rule::parse("window.unstaffed"), Some(Rule::WindowUnstaffed));
        assert_eq!(Rule::parse("window.long_wait"), Some(Rule::LongWait));
        assert!(!Rule::WindowUnstaffed.counts_for_ladder());
        assert!(!Rule::LongWait.counts_for_ladder());
        assert!(Rule::CaseOverdue.counts_for_ladder());
    }
}

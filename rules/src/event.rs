//! Typed events (`jiancha.event.v1`, SPEC §3) as the engine sees them.
//!
//! Strings borrow from the decoded input where they can ([`Text`] is a `Cow`), so decoding a
//! message allocates nothing in the common case. Validation happens in `ingest::decode`; a value
//! of these types is always well-formed.

use std::borrow::Cow;

use crate::reference::Limit;
use crate::time::Instant;

/// A string borrowed from the input when possible.
pub type Text<'a> = Cow<'a, str>;

wire_enum!(
    /// Event kinds (SPEC §3).
    Kind {
        /// 申请/收件
        CaseSubmitted = "case.submitted",
        /// 受理
        CaseAccepted = "case.accepted",
        /// 不予受理
        CaseRejected = "case.rejected",
        /// 补正告知
        SupplementRequested = "case.supplement_requested",
        /// 补正受理
        SupplementReceived = "case.supplement_received",
        /// 审批环节完成
        CaseStage = "case.stage",
        /// 转办
        CaseTransferred = "case.transferred",
        /// 特别程序开始
        SpecialStarted = "case.special_started",
        /// 特别程序结束
        SpecialEnded = "case.special_ended",
        /// 挂起
        CaseSuspended = "case.suspended",
        /// 解挂
        CaseResumed = "case.resumed",
        /// 延长审批
        CaseExtended = "case.extended",
        /// 办结
        CaseCompleted = "case.completed",
        /// 出件/送达
        CaseDelivered = "case.delivered",
        /// 归档
        CaseArchived = "case.archived",
        /// 收费/开票
        FeeCharged = "fee.charged",
        /// 投诉
        ComplaintFiled = "complaint.filed",
        /// 投诉办结
        ComplaintResolved = "complaint.resolved",
        /// 好差评
        EvaluationSubmitted = "evaluation.submitted",
        /// 差评整改完成
        EvaluationRectified = "evaluation.rectified",
        /// 签到
        StaffSignedIn = "staff.signed_in",
        /// 签退
        StaffSignedOut = "staff.signed_out",
        /// 开窗
        WindowOpened = "window.opened",
        /// 暂停
        WindowPaused = "window.paused",
        /// 关窗
        WindowClosed = "window.closed",
        /// 取号
        TicketIssued = "queue.ticket_issued",
        /// 叫号
        TicketCalled = "queue.ticket_called",
        /// 撤回: an earlier event removed from history (SPEC §3 Corrections)
        EventWithdrawn = "event.withdrawn",
    }
);

impl Kind {
    /// 中文 name, as messages say it.
    pub fn zh(self) -> &'static str {
        match self {
            Kind::CaseSubmitted => "申请",
            Kind::CaseAccepted => "受理",
            Kind::CaseRejected => "不予受理",
            Kind::SupplementRequested => "补正告知",
            Kind::SupplementReceived => "补正受理",
            Kind::CaseStage => "审批环节",
            Kind::CaseTransferred => "转办",
            Kind::SpecialStarted => "特别程序开始",
            Kind::SpecialEnded => "特别程序结束",
            Kind::CaseSuspended => "挂起",
            Kind::CaseResumed => "解挂",
            Kind::CaseExtended => "延长审批",
            Kind::CaseCompleted => "办结",
            Kind::CaseDelivered => "出件",
            Kind::CaseArchived => "归档",
            Kind::FeeCharged => "收费",
            Kind::ComplaintFiled => "投诉",
            Kind::ComplaintResolved => "投诉办结",
            Kind::EvaluationSubmitted => "好差评",
            Kind::EvaluationRectified => "差评整改",
            Kind::StaffSignedIn => "签到",
            Kind::StaffSignedOut => "签退",
            Kind::WindowOpened => "开窗",
            Kind::WindowPaused => "暂停",
            Kind::WindowClosed => "关窗",
            Kind::TicketIssued => "取号",
            Kind::TicketCalled => "叫号",
            Kind::EventWithdrawn => "撤回",
        }
    }

    /// Kinds of the `case.*` family, which need a `case_id`.
    pub fn is_case(self) -> bool {
        self.as_str().starts_with("case.")
    }
}

wire_enum!(
    /// Acceptance channel.
    Channel {
        /// 窗口 in the hall
        Hall = "hall",
        /// 网上
        Online = "online",
        /// 自助终端
        SelfService = "self_service",
        /// 移动端
        Mobile = "mobile",
        /// 部门办公室 (outside the hall)
        Office = "office",
    }
);

impl Channel {
    /// 中文 name, as messages say it.
    pub fn zh(self) -> &'static str {
        match self {
            Channel::Hall => "窗口",
            Channel::Online => "网上",
            Channel::SelfService => "自助终端",
            Channel::Mobile => "移动端",
            Channel::Office => "部门办公室",
        }
    }

    /// Bit for channel masks.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

wire_enum!(
    /// Approval stages, in order.
    Stage {
        /// 承办
        Undertake = "undertake",
        /// 审核
        Review = "review",
        /// 批准
        Approve = "approve",
    }
);

impl Stage {
    /// Bit for stage masks.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Stage at an index.
    pub fn from_index(i: usize) -> Option<Stage> {
        Stage::ALL.get(i).copied()
    }

    /// 中文 name.
    pub fn zh(self) -> &'static str {
        match self {
            Stage::Undertake => "承办",
            Stage::Review => "审核",
            Stage::Approve => "批准",
        }
    }
}

wire_enum!(
    /// Result of an approval stage.
    StageResult { Agree = "agree", Disagree = "disagree", Return = "return" }
);

wire_enum!(
    /// Unit of a time limit.
    Unit {
        /// 工作日
        Working = "working",
        /// 自然日
        Natural = "natural",
        /// 工作小时: office time (`office_hours` of working days), from the acceptance instant.
        WorkingHours = "working_hours",
        /// 工作分钟: office time, like [`Unit::WorkingHours`].
        WorkingMinutes = "working_minutes",
        /// 自然月 (民法典 §201–§203).
        Months = "months",
    }
);

impl Unit {
    /// 中文 name.
    pub fn zh(self) -> &'static str {
        match self {
            Unit::Working => "个工作日",
            Unit::Natural => "个自然日",
            Unit::WorkingHours => "个工作小时",
            Unit::WorkingMinutes => "个工作分钟",
            Unit::Months => "个月",
        }
    }

    /// The unit in which pauses add to a limit of this unit (§5): minutes of office time for
    /// the office-time units, natural days for months, the unit itself otherwise.
    pub fn pause_unit(self) -> Unit {
        match self {
            Unit::WorkingHours | Unit::WorkingMinutes => Unit::WorkingMinutes,
            Unit::Months => Unit::Natural,
            Unit::Working | Unit::Natural => self,
        }
    }

    /// Seconds of office time in one unit, for the office-time units (§5); `None` for the
    /// day-based ones.
    pub fn office_secs(self) -> Option<i64> {
        match self {
            Unit::WorkingHours => Some(3600),
            Unit::WorkingMinutes => Some(60),
            Unit::Working | Unit::Natural | Unit::Months => None,
        }
    }
}

wire_enum!(
    /// Case types.
    CaseType {
        /// 即办件
        Instant = "instant",
        /// 承诺件
        Promised = "promised",
        /// 上报件
        Reported = "reported",
        /// 联办件
        Joint = "joint",
    }
);

wire_enum!(
    /// 特别程序 kinds (行政许可法 §45).
    Procedure {
        Hearing = "hearing",
        Tender = "tender",
        Auction = "auction",
        Inspection = "inspection",
        Testing = "testing",
        Quarantine = "quarantine",
        Appraisal = "appraisal",
        ExpertReview = "expert_review",
        Publicity = "publicity",
        Other = "other",
    }
);

wire_enum!(
    /// 办结 results.
    CompletionResult {
        Approved = "approved",
        Denied = "denied",
        Returned = "returned",
        Voided = "voided",
        Forwarded = "forwarded",
    }
);

wire_enum!(
    /// Complaint categories.
    ComplaintCategory {
        /// 服务态度
        Attitude = "attitude",
        /// 办事效率
        Efficiency = "efficiency",
        /// 收费
        Fee = "fee",
        /// 廉政
        Integrity = "integrity",
        Other = "other",
    }
);

/// Per-case overrides of the catalogue's limits, carried by `case.accepted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// Overrides the item's case type.
    pub case_type: Option<CaseType>,
    /// Overrides the 承诺时限.
    pub promised: Option<Limit>,
    /// Overrides the 法定时限.
    pub legal: Option<Limit>,
    /// Not an override: the 承诺办结时间 the source system computed (`source_deadline`, its
    /// local date), which `data.deadline_mismatch` compares with jiancha's own D.
    pub source_deadline: Option<crate::time::Day>,
}

/// What happened: the kind with its kind-specific fields.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // field names are the wire names of SPEC §3
pub enum Body<'a> {
    CaseSubmitted {
        channel: Option<Channel>,
    },
    CaseAccepted {
        channel: Channel,
        overrides: LimitOverrides,
    },
    CaseRejected {
        reason: Option<Text<'a>>,
    },
    SupplementRequested {
        reason: Option<Text<'a>>,
    },
    SupplementReceived,
    CaseStage {
        stage: Stage,
        result: StageResult,
    },
    CaseTransferred {
        to_department: Text<'a>,
    },
    SpecialStarted {
        procedure: Procedure,
        limit: Option<Limit>,
    },
    SpecialEnded,
    CaseSuspended {
        reason: Option<Text<'a>>,
    },
    CaseResumed {
        reason: Option<Text<'a>>,
    },
    CaseExtended {
        extra_days: u16,
    },
    CaseCompleted {
        result: CompletionResult,
    },
    CaseDelivered,
    CaseArchived,
    FeeCharged {
        receipt_no: Text<'a>,
        amount_fen: u64,
        payer_id: Text<'a>,
    },
    ComplaintFiled {
        complaint_id: Text<'a>,
        category: ComplaintCategory,
    },
    ComplaintResolved {
        complaint_id: Text<'a>,
        substantiated: bool,
    },
    EvaluationSubmitted {
        evaluation_id: Text<'a>,
        score: u8,
    },
    EvaluationRectified {
        evaluation_id: Text<'a>,
    },
    StaffSignedIn,
    StaffSignedOut,
    WindowOpened,
    WindowPaused,
    WindowClosed,
    TicketIssued {
        ticket_no: Text<'a>,
    },
    TicketCalled {
        ticket_no: Text<'a>,
    },
    EventWithdrawn {
        withdraws: Text<'a>,
    },
}

impl Body<'_> {
    /// The event kind.
    pub fn kind(&self) -> Kind {
        match self {
            Body::CaseSubmitted { .. } => Kind::CaseSubmitted,
            Body::CaseAccepted { .. } => Kind::CaseAccepted,
            Body::CaseRejected { .. } => Kind::CaseRejected,
            Body::SupplementRequested { .. } => Kind::SupplementRequested,
            Body::SupplementReceived => Kind::SupplementReceived,
            Body::CaseStage { .. } => Kind::CaseStage,
            Body::CaseTransferred { .. } => Kind::CaseTransferred,
            Body::SpecialStarted { .. } => Kind::SpecialStarted,
            Body::SpecialEnded => Kind::SpecialEnded,
            Body::CaseSuspended { .. } => Kind::CaseSuspended,
            Body::CaseResumed { .. } => Kind::CaseResumed,
            Body::CaseExtended { .. } => Kind::CaseExtended,
            Body::CaseCompleted { .. } => Kind::CaseCompleted,
            Body::CaseDelivered => Kind::CaseDelivered,
            Body::CaseArchived => Kind::CaseArchived,
            Body::FeeCharged { .. } => Kind::FeeCharged,
            Body::ComplaintFiled { .. } => Kind::ComplaintFiled,
            Body::ComplaintResolved { .. } => Kind::ComplaintResolved,
            Body::EvaluationSubmitted { .. } => Kind::EvaluationSubmitted,
            Body::EvaluationRectified { .. } => Kind::EvaluationRectified,
            Body::StaffSignedIn => Kind::StaffSignedIn,
            Body::StaffSignedOut => Kind::StaffSignedOut,
            Body::WindowOpened => Kind::WindowOpened,
            Body::WindowPaused => Kind::WindowPaused,
            Body::WindowClosed => Kind::WindowClosed,
            Body::TicketIssued { .. } => Kind::TicketIssued,
            Body::TicketCalled { .. } => Kind::TicketCalled,
            Body::EventWithdrawn { .. } => Kind::EventWithdrawn,
        }
    }
}

/// A validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Unique id; a repeat is a duplicate.
    pub event_id: Text<'a>,
    /// Event time.
    pub occurred_at: Instant,
    /// When the window system sent it (`None`: not given).
    pub reported_at: Option<Instant>,
    /// When jiancha received it, in live ingest (`None` in replay: a file has no receipt time).
    pub received_at: Option<Instant>,
    /// Service centre.
    pub center_id: Text<'a>,
    /// GB/T 2260 code, validated.
    pub region: Text<'a>,
    /// Department code.
    pub department: Option<Text<'a>>,
    /// Window (窗口).
    pub window_id: Option<Text<'a>>,
    /// Staff number (工号).
    pub staff_id: Option<Text<'a>>,
    /// Case number (办件编号); always present on `case.*`.
    pub case_id: Option<Text<'a>>,
    /// 事项编码.
    pub item_code: Option<Text<'a>>,
    /// The source system that produced it (SPEC §3 `source`, at most 64 bytes): adapters and
    /// publishers set it; HTTP ingest fills in `http:<publisher>` when absent. With the region it
    /// is the namespace of `event_id` (docs/RULES.md, "Jurisdiction").
    pub source: Option<Text<'a>>,
    /// The `event_id` of an earlier event this one corrects (SPEC §3 `supersedes`: a re-report
    /// with a higher data version).
    pub supersedes: Option<Text<'a>>,
    /// Kind and kind-specific fields.
    pub body: Body<'a>,
}

/// GB/T 2260 province-level prefixes (the first two digits of every valid code).
const PROVINCES: &[&str] = &[
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82",
];

/// Is `s` a plausible GB/T 2260 administrative code: six digits under a real province.
pub fn is_valid_region(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) && {
        let b = s.as_bytes();
        let province = usize::from(b[0] - b'0') * 10 + usize::from(b[1] - b'0');
        PROVINCE_SET & (1u128 << province) != 0
    }
}

/// [`PROVINCES`] as a set of numbers 0–99, one bit each.
const PROVINCE_SET: u128 = {
    let mut set = 0u128;
    let mut i = 0;
    while i < PROVINCES.len() {
        let p = PROVINCES[i].as_bytes();
        set |= 1 << ((p[0] - b'0') as u32 * 10 + (p[1] - b'0') as u32);
        i += 1;
    }
    set
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(Kind::ALL.len(), 28);
        assert!(Kind::CaseAccepted.is_case());
        assert!(!Kind::FeeCharged.is_case());
        assert_eq!(Channel::parse("self_service"), Some(Channel::SelfService));
        assert!(Channel::expected().contains("mobile"));
    }

    #[test]
    fn regions() {
        assert!(is_valid_region("430626"));
        assert!(!is_valid_region("43062"));
        assert!(!is_valid_region("990626"));
        assert!(!is_valid_region("43062a"));
        for p in 0..100 {
            let code = format!("{p:02}0626");
            assert_eq!(
                is_valid_region(&code),
                PROVINCES.contains(&&code[..2]),
                "{code}"
            );
        }
    }
}

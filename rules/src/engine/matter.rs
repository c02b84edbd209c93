//! Things with deadlines that are not cases: complaints (投诉), bad evaluations (差评) and fees
//! that name no case (以票管审).
//!
//! Like a case, a [`Matter`] stores facts (when it started, when it ended) and its deadlines are
//! recomputed from them; none of its clocks pause, so a fired alert can always be rebuilt exactly
//! for a retraction.

use serde_json::json;

use crate::alert::{Alert, Level, Rule};
use crate::event::ComplaintCategory;
use crate::evidence::{fields, Fields, F};
use crate::time::Instant;

use super::case::{inst, Case, Ctx, NEVER, T32};
use super::explain::{build, subject, yuan, Attribution, Who};
use super::table::{CompactKey, Keyed, Sym, Symbols};

/// What kind of matter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MatterKind {
    /// 投诉.
    Complaint {
        /// Category, once filed.
        category: Option<ComplaintCategory>,
    },
    /// 差评 (score ≤ 2), or a rectification seen before its rating.
    Evaluation {
        /// Score, once rated.
        score: Option<u8>,
    },
    /// A fee naming no case.
    Fee {
        /// 缴款人.
        payer_id: Box<str>,
        /// Amount in fen.
        amount_fen: u64,
    },
}

/// Bits of [`Matter::fired`].
pub mod fired {
    /// Yellow (overdue / unrectified / fee without case).
    pub const YELLOW: u8 = 1;
    /// Red.
    pub const RED: u8 = 2;
}

/// A complaint, bad evaluation or case-less fee.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Matter {
    /// `c:` + complaint id, `e:` + evaluation id or `f:` + receipt number.
    pub key: CompactKey,
    /// Kind and its facts.
    pub kind: MatterKind,
    /// Attribution: the target (complaints, ratings) or who charged (fees).
    pub who: Who,
    /// Related case, if named.
    pub case_id: Option<Box<str>>,
    /// Filed / rated / charged.
    pub started: T32,
    /// Resolved / rectified.
    pub ended: T32,
    /// Due time of the live timer entry.
    pub timer_due: T32,
    /// [`fired`] bits.
    pub fired: u8,
    /// A substantiated resolution that arrived before the complaint's filing: counted against
    /// the target when the filing arrives.
    pub resolution: Option<Box<Resolution>>,
}

/// A substantiated complaint's resolution: when, which event, where it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resolution {
    pub at: T32,
    pub event_id: Box<str>,
    pub place: super::batch::Place,
}

/// A matter's key in the table: its kind's letter (`c` complaint, `e` evaluation, `f` fee),
/// `:` and its id. Joined by hand: a `format!` cost ten times as much, once per matter event.
pub fn key(prefix: char, id: &str) -> String {
    let mut key = String::with_capacity(id.len() + 2);
    key.push(prefix);
    key.push(':');
    key.push_str(id);
    key
}

impl Keyed for Matter {
    fn key(&self) -> &[u8] {
        self.key.as_bytes()
    }
    /// Complaints, ratings and receipts are unique per region, as cases are.
    fn scope(&self) -> Sym {
        self.who.region
    }
}

/// A matter's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatterDue {
    /// Yellow.
    Yellow,
    /// Red (supervision).
    Red,
}

impl Matter {
    /// A matter seen for the first time.
    pub fn new(key: &str, kind: MatterKind, region: Sym) -> Matter {
        Matter {
            key: CompactKey::new(key),
            kind,
            who: Who {
                region,
                ..Who::UNKNOWN
            },
            case_id: None,
            started: NEVER,
            ended: NEVER,
            timer_due: NEVER,
            fired: 0,
            resolution: None,
        }
    }

    /// The id without its kind prefix.
    pub fn id(&self) -> &str {
        self.key.as_str().get(2..).unwrap_or_default()
    }

    /// Working days allowed, for complaints and bad evaluations.
    fn limit_days(&self, ctx: Ctx<'_>) -> Option<u32> {
        match self.kind {
            MatterKind::Complaint { category: Some(_) } => Some(ctx.policy.complaint_working_days),
            MatterKind::Evaluation { score: Some(s) } if s <= 2 => {
                Some(ctx.policy.rectify_working_days)
            }
            _ => None,
        }
    }

    /// Deadline instants: (yellow, red).
    pub fn deadlines(&self, ctx: Ctx<'_>) -> Option<(Instant, Instant)> {
        if self.started == NEVER {
            return None;
        }
        if let MatterKind::Fee { .. } = self.kind {
            let at = Case::fee_deadline(ctx, self.started);
            return Some((at, at));
        }
        let d = ctx
            .cal
            .add_working_days(inst(self.started).day(), self.limit_days(ctx)?);
        let sup = ctx
            .cal
            .add_working_days(d, ctx.policy.supervise_working_days);
        Some((d.end(), sup.end()))
    }

    /// Alerts still to fire, earliest first; a deadline counts only if the matter had not
    /// ended before it (ending at the instant itself is late).
    pub fn pending(&self, ctx: Ctx<'_>) -> Vec<(Instant, MatterDue)> {
        let Some((yellow, red)) = self.deadlines(ctx) else {
            return Vec::new();
        };
        let open = |at: Instant| self.ended == NEVER || at <= inst(self.ended);
        let mut out = Vec::with_capacity(2);
        if self.fired & fired::YELLOW == 0 && open(yellow) {
            out.push((yellow, MatterDue::Yellow));
        }
        let has_red = !matches!(self.kind, MatterKind::Fee { .. });
        if has_red && self.fired & fired::RED == 0 && open(red) {
            out.push((red, MatterDue::Red));
        }
        out
    }

    /// Record that `due` fired.
    pub fn mark_fired(&mut self, due: MatterDue) {
        self.fired |= match due {
            MatterDue::Yellow => fired::YELLOW,
            MatterDue::Red => fired::RED,
        };
    }

    /// When the matter may be forgotten: `retention_secs` after it ended; never resolved or
    /// rectified, `stale_matter_days` after its red card; a case-less fee right after it has
    /// been judged. Window systems do not all
    /// report rectifications, and an unresolved matter must not stay in memory for ever.
    pub fn forget_at(&self, ctx: Ctx<'_>, retention_secs: i64) -> Option<Instant> {
        match self.kind {
            MatterKind::Fee { .. } => (self.fired != 0).then(|| inst(self.started)),
            _ if self.ended != NEVER => Some(inst(self.ended).plus_secs(retention_secs)),
            _ if self.fired & fired::RED != 0 => {
                let stale = i64::from(ctx.policy.stale_matter_days) * 86_400;
                self.deadlines(ctx).map(|(_, red)| red.plus_secs(stale))
            }
            _ => None,
        }
    }

    fn who(&self, symbols: &Symbols) -> Attribution {
        Attribution {
            case_id: self.case_id.as_deref().map(str::to_string),
            ..self.who.attribution(symbols)
        }
    }

    /// The alert for a deadline.
    pub fn alert(&self, ctx: Ctx<'_>, symbols: &Symbols, due: MatterDue, at: Instant) -> Alert {
        let level = match due {
            MatterDue::Yellow => Level::Yellow,
            MatterDue::Red => Level::Red,
        };
        let (yellow, red) = self.deadlines(ctx).unwrap_or((at, at));
        let who = self.who(symbols);
        let target = target_text(&who);
        let id = self.id();
        let sup = ctx.policy.supervise_working_days;
        let evidence = fields!({
            "deadline": yellow,
            "deadline_date": yellow.day().prev(),
            "limit": fields!({"days": self.limit_days(ctx), "unit": "working"}),
            "provisional_years": ctx.cal.provisional_years(inst(self.started).day(), red.day()),
            "start": inst(self.started).day(),
            "started_at": inst(self.started),
            "supervision_date": red.day().prev(),
            "supervision_deadline": red,
        });
        let (rule, key, message) = match (&self.kind, due) {
            (MatterKind::Complaint { .. }, MatterDue::Yellow) => (
                Rule::ComplaintOverdue,
                "complaint_id",
                format!(
                    "黄牌：针对{target}的投诉 {id} 未在 {} 个工作日内（{} 前）办结",
                    ctx.policy.complaint_working_days,
                    yellow.day().prev()
                ),
            ),
            (MatterKind::Complaint { .. }, MatterDue::Red) => (
                Rule::ComplaintOverdue,
                "complaint_id",
                format!(
                    "红牌：针对{target}的投诉 {id} 超过办理期限后 {sup} 个工作日督办期仍未办结"
                ),
            ),
            (MatterKind::Evaluation { .. }, MatterDue::Yellow) => (
                Rule::EvaluationUnrectified,
                "evaluation_id",
                format!(
                    "黄牌：{target}的差评 {id} 未在 {} 个工作日内（{} 前）整改完成",
                    ctx.policy.rectify_working_days,
                    yellow.day().prev()
                ),
            ),
            (MatterKind::Evaluation { .. }, MatterDue::Red) => (
                Rule::EvaluationUnrectified,
                "evaluation_id",
                format!("红牌：{target}的差评 {id} 超过整改期限后 {sup} 个工作日督办期仍未整改"),
            ),
            (
                MatterKind::Fee {
                    payer_id,
                    amount_fen,
                },
                _,
            ) => {
                let days = ctx.policy.fee_match_working_days;
                let evidence = fields!({
                    "acceptance": F::Null,
                    "amount_fen": *amount_fen,
                    "case_id": F::Null,
                    "charged_at": inst(self.started),
                    "deadline": yellow,
                    "deadline_date": yellow.day().prev(),
                    "fee_match_working_days": days,
                    "payer_id": payer_id.to_string(),
                    "receipt_no": id.to_string(),
                });
                let message = format!(
                    "黄牌：票据 {id}（{} 元）未关联任何办件，开具后 {days} 个工作日内无窗口受理的办件与之对应（以票管审）",
                    yuan(*amount_fen)
                );
                return build(
                    Rule::FeeWithoutCase,
                    Level::Yellow,
                    subject(&[("receipt_no", json!(id))]),
                    at,
                    who,
                    message,
                    evidence,
                );
            }
        };
        let (message, evidence) = self.with_state(ctx, yellow, message, evidence);
        build(
            rule,
            level,
            subject(&[(key, json!(id))]),
            at,
            who,
            message,
            evidence,
        )
    }

    /// The complaint's or rating's current state (SPEC §7, "current facts"), as
    /// `evidence.subject_state` — `open`, or `resolved`/`rectified` with `closed_at` and the
    /// working days past its deadline (`yellow`, an instant) — and, once it has ended, said in
    /// the message instead of 仍未办结/仍未整改.
    fn with_state(
        &self,
        ctx: Ctx<'_>,
        yellow: Instant,
        message: String,
        mut evidence: Fields,
    ) -> (String, Fields) {
        let done = if matches!(self.kind, MatterKind::Complaint { .. }) {
            ("resolved", "办结")
        } else {
            ("rectified", "整改")
        };
        let (state, message) = if self.ended == NEVER {
            (fields!({"status": "open"}), message)
        } else {
            let closed = inst(self.ended);
            let late = if closed < yellow {
                0
            } else {
                ctx.cal
                    .working_days_between(yellow.day().prev(), closed.day())
                    .max(1)
            };
            let (_, m, d) = closed.day().ymd();
            let phrase = if late == 0 {
                format!("已于 {m:02}-{d:02} 在期限内{}", done.1)
            } else {
                format!("已超期 {late} 个工作日于 {m:02}-{d:02} {}", done.1)
            };
            let message = message.replacen(&format!("仍未{}", done.1), &format!("未{}", done.1), 1)
                + "，"
                + &phrase;
            let state =
                fields!({"closed_at": closed, "overdue_working_days": late, "status": done.0});
            (state, message)
        };
        evidence.insert("subject_state", F::Object(state));
        (message, evidence)
    }
}

/// "窗口 W01 / 工作人员 S001" for messages.
pub fn target_text(who: &Attribution) -> String {
    match (&who.window_id, &who.staff_id) {
        (Some(w), Some(s)) => format!("窗口 {w} 工作人员 {s} "),
        (Some(w), None) => format!("窗口 {w} "),
        (None, Some(s)) => format!("工作人员 {s} "),
        (None, None) => String::new(),
    }
}

/// `complaint.filed`: every complaint, its level by category.
pub fn complaint_filed(
    who: Attribution,
    complaint_id: &str,
    category: ComplaintCategory,
    at: Instant,
    event_id: &str,
) -> Alert {
    let level = match category {
        ComplaintCategory::Integrity => Level::Red,
        ComplaintCategory::Fee => Level::Yellow,
        _ => Level::Warning,
    };
    let category_zh = match category {
        ComplaintCategory::Attitude => "服务态度",
        ComplaintCategory::Efficiency => "办事效率",
        ComplaintCategory::Fee => "收费",
        ComplaintCategory::Integrity => "廉政",
        ComplaintCategory::Other => "其他",
    };
    let message = format!(
        "{}：收到针对{}的{category_zh}类投诉 {complaint_id}",
        level.zh(),
        target_text(&who)
    );
    build(
        Rule::ComplaintFiled,
        level,
        subject(&[("complaint_id", json!(complaint_id))]),
        at,
        who,
        message,
        fields!({"category": category.as_str(), "event_id": event_id.to_string(), "filed_at": at}),
    )
}

/// `evaluation.bad`: a rating of 2 or less.
pub fn evaluation_bad(
    who: Attribution,
    evaluation_id: &str,
    score: u8,
    at: Instant,
    rectify_days: u32,
    event_id: &str,
) -> Alert {
    let message = format!(
        "预警：{}收到差评 {evaluation_id}（{score} 分），须在 {rectify_days} 个工作日内核实整改",
        target_text(&who)
    );
    build(
        Rule::EvaluationBad,
        Level::Warning,
        subject(&[("evaluation_id", json!(evaluation_id))]),
        at,
        who,
        message,
        fields!({"event_id": event_id.to_string(), "rated_at": at, "score": score}),
    )
}

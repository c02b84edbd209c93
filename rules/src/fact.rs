//! Case facts: one record per finished case (办结), the basis of 绩效 metrics (按时办结率,
//! 提前办结率, 现场办结率, average working days used, 承诺提速率).

use serde::Serialize;

use crate::event::{CaseType, Channel, CompletionResult, Unit};
use crate::time::{Day, Instant};

/// A finished case: its limits as they applied, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseFact {
    /// 办件编号.
    pub case_id: String,
    /// Service centre.
    pub center_id: String,
    /// GB/T 2260 code.
    pub region: String,
    /// Department.
    pub department: Option<String>,
    /// Window that last handled it.
    pub window_id: Option<String>,
    /// Staff member who last handled it.
    pub staff_id: Option<String>,
    /// Item.
    pub item_code: Option<String>,
    /// Case type.
    pub case_type: CaseType,
    /// Acceptance channel.
    pub channel: Option<Channel>,
    /// `case.accepted`.
    pub accepted_at: Instant,
    /// `case.completed`.
    pub completed_at: Instant,
    /// 办结 result.
    pub result: CompletionResult,
    /// Clock start date (not counted).
    pub start: Day,
    /// Deemed acceptance (行政许可法 §32).
    pub deemed: bool,
    /// 承诺时限 days, before extensions.
    pub promised_days: u16,
    /// Its unit.
    pub promised_unit: Unit,
    /// 法定时限 days, if the item has one.
    pub legal_days: Option<u16>,
    /// Its unit.
    pub legal_unit: Unit,
    /// Extension days applied.
    pub extension_days: u32,
    /// What the pauses added to the promised limit, in `promised_unit.pause_unit()`: days
    /// (natural days for months), minutes of office time for the office-time units.
    pub pause_days: u32,
    /// Promised last day D.
    pub deadline_date: Day,
    /// Promised deadline instant (00:00 after D).
    pub deadline: Instant,
    /// Legal deadline instant, if any.
    pub legal_deadline: Option<Instant>,
    /// Working days from the start to the completion date, pauses excluded.
    pub working_days_used: u32,
    /// Completed before the promised deadline instant (按时办结).
    pub on_time: bool,
    /// Completed before the promised last day (提前办结).
    pub early: bool,
    /// Completed on the day of acceptance (现场办结).
    pub on_site: bool,
    /// Completed before the legal deadline (or no legal limit).
    pub within_legal: bool,
}

/// What an [`Activity`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    /// A case accepted (受理): `id` is the case, `at` the acceptance.
    Accepted,
    /// A rating (好差评): `id` is the evaluation, `value` the score 1–5.
    Evaluation,
    /// A complaint filed (投诉): `id` is the complaint.
    Complaint,
    /// A complaint resolved: `value` 1 if substantiated (有效投诉), else 0; attributed to the
    /// complaint's target, `at` the resolution.
    ComplaintResolved,
}

impl ActivityKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Accepted => "accepted",
            ActivityKind::Evaluation => "evaluation",
            ActivityKind::Complaint => "complaint",
            ActivityKind::ComplaintResolved => "complaint_resolved",
        }
    }
}

/// A countable happening for 绩效 metrics that is not a finished case: acceptances, ratings,
/// complaints and their outcome, attributed like alerts. Collected with the case facts
/// ([`crate::Engine::collect_facts`]); the same input always gives the same records, so a
/// re-derived one collapses with the stored one by (region, kind, id).
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// What happened.
    pub kind: ActivityKind,
    /// Case, evaluation or complaint id.
    pub id: String,
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
    /// Item.
    pub item_code: Option<String>,
    /// When.
    pub at: Instant,
    /// Score (evaluation), 1/0 substantiated (complaint resolved), else 0.
    pub value: i32,
}

impl Activity {
    /// From an attribution.
    pub(crate) fn new(
        kind: ActivityKind,
        id: &str,
        who: crate::engine::explain::Attribution,
        at: Instant,
        value: i32,
    ) -> Activity {
        Activity {
            kind,
            id: id.to_string(),
            center_id: who.center_id,
            region: who.region,
            department: who.department,
            window_id: who.window_id,
            staff_id: who.staff_id,
            item_code: who.item_code,
            at,
            value,
        }
    }
}

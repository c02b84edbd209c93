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
    /// Days the clock was paused (promised unit).
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

//! Rows as stored, translated from the engine's types at this edge. Times are whole seconds
//! since the Unix epoch (ClickHouse `DateTime`); absent strings are empty.

use rules::Alert;
use serde::{Deserialize, Serialize};

/// One version of an alert. The engine emits `open` and, when a later event disproves it,
/// `retracted`; `version` orders them so the store keeps the latest (ReplacingMergeTree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct AlertRow {
    /// Deterministic id (SPEC §7).
    pub alert_id: String,
    /// Rule.
    pub rule: String,
    /// `warning`, `yellow` or `red`.
    pub level: String,
    /// Engine status: `open` or `retracted`.
    pub status: String,
    /// 0 for `open`, 1 for `retracted`: a retraction always wins over a re-delivered `open`.
    pub version: u8,
    /// When the condition became true (event time).
    pub fired_at: u32,
    /// Service centre.
    pub center_id: String,
    /// GB/T 2260 code (jurisdiction filters use its prefix).
    pub region: String,
    /// Department.
    pub department: String,
    /// Window.
    pub window_id: String,
    /// Staff member.
    pub staff_id: String,
    /// Case.
    pub case_id: String,
    /// Item.
    pub item_code: String,
    /// Subject, as JSON.
    pub subject: String,
    /// zh-CN message.
    pub message: String,
    /// Evidence, as JSON.
    pub evidence: String,
}

impl From<&Alert> for AlertRow {
    fn from(a: &Alert) -> Self {
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        AlertRow {
            alert_id: a.alert_id.clone(),
            rule: a.rule.as_str().to_string(),
            level: a.level.as_str().to_string(),
            status: a.status.as_str().to_string(),
            version: u8::from(a.status == rules::AlertStatus::Retracted),
            fired_at: seconds(a.fired_at),
            center_id: a.center_id.clone(),
            region: a.region.clone(),
            department: text(&a.department),
            window_id: text(&a.window_id),
            staff_id: text(&a.staff_id),
            case_id: text(&a.case_id),
            item_code: text(&a.item_code),
            subject: serde_json::Value::Object(a.subject.clone()).to_string(),
            message: a.message.clone(),
            evidence: a.evidence.to_string(),
        }
    }
}

/// Seconds since the epoch as ClickHouse `DateTime` (clamped to its range).
pub fn seconds(t: rules::Instant) -> u32 {
    t.0.clamp(0, i64::from(u32::MAX)) as u32
}

/// An invalid input kept with its reason (SPEC §3: never dropped silently).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct DeadLetterRow {
    /// When it was received.
    pub received_at: u32,
    /// Where it came from (`kafka:topic/partition/offset`, `http:…`, `file:…:line`).
    pub source: String,
    /// Stable reason code (`missing_field`, `unknown_item`, …).
    pub reason: String,
    /// Field concerned, if any.
    pub field: String,
    /// The reason in words.
    pub message: String,
    /// The raw input, as received (lossless for UTF-8; other bytes are hex-escaped).
    pub raw: String,
}

/// A raw event as received, for history and audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct EventRow {
    /// `event_id`.
    pub event_id: String,
    /// `kind`.
    pub kind: String,
    /// `occurred_at`.
    pub occurred_at: u32,
    /// Receipt time.
    pub received_at: u32,
    /// `center_id`.
    pub center_id: String,
    /// `region`.
    pub region: String,
    /// `case_id`, if any.
    pub case_id: String,
    /// The event as received.
    pub raw: String,
}

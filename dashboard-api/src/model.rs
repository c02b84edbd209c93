//! The API's own records: alerts as the engine fired them, window status, inspector actions.
//!
//! These are the JSON shapes on the wire (REST, WebSocket, and the Kafka topics API processes
//! read in cluster mode). They are translated from the engine's types here, at the edge, so the
//! engine's internals can change without breaking a dashboard.

use rules::alert::{AlertStatus, Level};
use rules::time::Instant;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// RFC 3339 (de)serialisation of [`Instant`] (`2026-10-13T00:00:00+08:00`).
pub mod rfc3339 {
    use rules::time::{parse_rfc3339, Instant};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialise.
    pub fn serialize<S: Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    /// Deserialise.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        parse_rfc3339(&s)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time: {e:?}")))
    }

    /// The same for optional times.
    pub mod option {
        use super::*;

        /// Serialise.
        pub fn serialize<S: Serializer>(t: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.collect_str(t),
                None => s.serialize_none(),
            }
        }

        /// Deserialise.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Instant>, D::Error> {
            let s = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.map(|s| {
                parse_rfc3339(&s).map_err(|e| {
                    serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time: {e:?}"))
                })
            })
            .transpose()
        }
    }
}

/// An alert as the engine fired it (SPEC §7). `status` is the engine's: `open`, `retracted` or
/// `cleared`; `revision` counts the engine's changes to it (see [`AlertDoc::rank`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDoc {
    /// Deterministic id.
    pub alert_id: String,
    /// Rule name (kept as text so an older API process can show a newer engine's rules).
    pub rule: String,
    /// Level as fired.
    pub level: Level,
    /// `open`, `retracted` or `cleared`.
    pub status: AlertStatus,
    /// When the condition became true.
    #[serde(with = "rfc3339")]
    pub fired_at: Instant,
    /// For `cleared`: when its condition ended (the case finished in time).
    #[serde(
        default,
        with = "rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cleared_at: Option<Instant>,
    /// The engine's changes to the alert since it fired (0: as fired; 1: again with its case
    /// finished; 2 or more: retracted or cleared; 3 or more: fired again, e.g. a ladder step
    /// reached again).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u8,
    /// Centre.
    pub center_id: String,
    /// GB/T 2260 code.
    pub region: String,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Window.
    #[serde(default)]
    pub window_id: Option<String>,
    /// Staff member.
    #[serde(default)]
    pub staff_id: Option<String>,
    /// Case.
    #[serde(default)]
    pub case_id: Option<String>,
    /// Item.
    #[serde(default)]
    pub item_code: Option<String>,
    /// What it is about.
    #[serde(default)]
    pub subject: Value,
    /// zh-CN text.
    #[serde(default)]
    pub message: String,
    /// The computation.
    #[serde(default)]
    pub evidence: Value,
}

pub(crate) fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl AlertDoc {
    /// Which of two copies of one alert is the later change: the engine's revision, with an
    /// ended alert (retracted, cleared) never below 2 — copies written before revisions existed
    /// carry 0 or 1 for a retraction.
    pub fn rank(&self) -> u8 {
        match self.status {
            AlertStatus::Retracted | AlertStatus::Cleared => self.revision.max(2),
            _ => self.revision,
        }
    }

    /// The case's current state (`evidence.subject_state`), when the engine gave one.
    pub fn subject_state(&self) -> Option<&Value> {
        self.evidence.get("subject_state")
    }
}

impl From<&rules::Alert> for AlertDoc {
    fn from(a: &rules::Alert) -> AlertDoc {
        AlertDoc {
            alert_id: a.alert_id.clone(),
            rule: a.rule.as_str().to_string(),
            level: a.level,
            status: a.status,
            fired_at: a.fired_at,
            cleared_at: a.cleared_at,
            revision: a.revision,
            center_id: a.center_id.clone(),
            region: a.region.clone(),
            department: a.department.clone(),
            window_id: a.window_id.clone(),
            staff_id: a.staff_id.clone(),
            case_id: a.case_id.clone(),
            item_code: a.item_code.clone(),
            subject: Value::Object(a.subject.clone()),
            message: a.message.clone(),
            evidence: (*a.evidence).clone(),
        }
    }
}

/// Live status of one window (SPEC §6), as the engine keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowDoc {
    /// Window.
    pub window_id: String,
    /// Centre.
    pub center_id: String,
    /// GB/T 2260 code.
    pub region: String,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// `closed`, `open_idle`, `serving`, `paused` or `unstaffed`.
    pub state: String,
    /// Staff signed in.
    #[serde(default)]
    pub staff: Vec<String>,
    /// Tickets waiting.
    #[serde(default)]
    pub waiting: u32,
    /// Issue time of the longest-waiting ticket.
    #[serde(default, with = "rfc3339::option")]
    pub oldest_ticket_at: Option<Instant>,
    /// The day the counters are for (`YYYY-MM-DD`).
    #[serde(default)]
    pub day: String,
    /// Cases accepted that day.
    #[serde(default)]
    pub accepted_today: u32,
    /// Cases completed that day.
    #[serde(default)]
    pub completed_today: u32,
    /// Of those, completed on the day of acceptance (当场办结).
    #[serde(default)]
    pub on_site_today: u32,
    /// Open cases of this window past their promised deadline.
    #[serde(default)]
    pub overdue_cases: u32,
    /// Event time of the last change.
    #[serde(with = "rfc3339")]
    pub updated_at: Instant,
}

/// What an inspector (or the system) did to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// 签收: seen and taken on.
    Acknowledge,
    /// 督办: a supervision notice to the unit, with a reply deadline.
    Supervise,
    /// 回告: the unit's reply, recorded by the inspector.
    Reply,
    /// 办结: handled; the reason says how.
    Resolve,
    /// 不予处理: not a violation; the reason says why.
    Dismiss,
    /// The system turned a 督办 red: its reply deadline passed without a reply.
    Escalate,
    /// 系统自动解除: the engine cleared a warning whose case finished in time. Derived from
    /// the cleared alert itself (never stored, never asked for).
    Clear,
}

impl ActionKind {
    /// Every kind.
    pub const ALL: [ActionKind; 7] = [
        ActionKind::Acknowledge,
        ActionKind::Supervise,
        ActionKind::Reply,
        ActionKind::Resolve,
        ActionKind::Dismiss,
        ActionKind::Escalate,
        ActionKind::Clear,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Acknowledge => "acknowledge",
            ActionKind::Supervise => "supervise",
            ActionKind::Reply => "reply",
            ActionKind::Resolve => "resolve",
            ActionKind::Dismiss => "dismiss",
            ActionKind::Escalate => "escalate",
            ActionKind::Clear => "clear",
        }
    }

    /// 中文 name, as the dashboards and error messages say it.
    pub fn zh(self) -> &'static str {
        match self {
            ActionKind::Acknowledge => "签收",
            ActionKind::Supervise => "督办",
            ActionKind::Reply => "回告",
            ActionKind::Resolve => "办结",
            ActionKind::Dismiss => "不予处理",
            ActionKind::Escalate => "逾期升级",
            ActionKind::Clear => "系统自动解除",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One entry of an alert's audit trail: who did what, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The alert.
    pub alert_id: String,
    /// What was done.
    pub action: ActionKind,
    /// Username, or `system`.
    pub actor: String,
    /// When (wall clock, or the reply deadline for an escalation).
    #[serde(with = "rfc3339")]
    pub at: Instant,
    /// Note, reply text, or the reason for resolving or dismissing.
    #[serde(default)]
    pub note: String,
    /// For `supervise`: when the unit must reply by.
    #[serde(default, with = "rfc3339::option")]
    pub reply_deadline: Option<Instant>,
    /// The alert's region (stores partition the trail by jurisdiction).
    #[serde(default)]
    pub region: String,
}

impl Action {
    /// Two copies of one action (re-delivered, or loaded and then seen on the topic) are the same
    /// action: same alert, kind, actor and second.
    pub fn same_as(&self, other: &Action) -> bool {
        self.alert_id == other.alert_id
            && self.action == other.action
            && self.actor == other.actor
            && self.at == other.at
    }
}

/// The actor name of actions the system takes by itself.
pub const SYSTEM: &str = "system";

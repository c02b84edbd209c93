//! Rows as stored, translated from the engine's types at this edge, the same for every backend.
//! Times are whole seconds since the Unix epoch (ClickHouse `DateTime`, SQLite `INTEGER`);
//! absent strings are empty.

use rules::Alert;
use serde::{Deserialize, Serialize};

/// One version of an alert. The engine emits `open`, then possibly the same alert again with its
/// case's new state (still `open`), `retracted` when a later event disproves it or `cleared`
/// when a warning's case finished in time, and open again when a ladder step, burst or count is
/// reached again; `version` orders them so the store keeps the latest
/// (ReplacingMergeTree).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct AlertRow {
    /// Deterministic id (SPEC §7).
    pub alert_id: String,
    /// Rule.
    pub rule: String,
    /// `warning`, `yellow` or `red`.
    pub level: String,
    /// Engine status: `open`, `retracted` or `cleared`.
    pub status: String,
    /// The engine's `revision` (`Alert::revision`): 0 when it fired; 1 the alert again with its
    /// case finished; 2 or more retracted or cleared; 3 or more fired again after that or at
    /// another instant. The latest change always wins over a re-delivered earlier one. Rows
    /// written before revisions existed have 0 for `open` and 1 for `retracted`, which keeps the
    /// same order.
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
            version: a.revision,
            fired_at: seconds(a.fired_at),
            center_id: a.center_id.clone(),
            region: a.region.clone(),
            department: text(&a.department),
            window_id: text(&a.window_id),
            staff_id: text(&a.staff_id),
            case_id: text(&a.case_id),
            item_code: text(&a.item_code),
            // Written straight from the alert (no copy as a `Value` first): the same text.
            subject: json_text(&a.subject),
            message: a.message.clone(),
            evidence: a.evidence.json_text(),
        }
    }
}

/// `value` as compact JSON text, as `Value`'s `Display` writes it. Serialising an alert's
/// subject or evidence cannot fail (string keys only); should it, the column is `null`.
fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
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
    /// What source health (SPEC §10) keeps of it besides the columns above, stored with them
    /// in `source_events` beside `events` (not columns of `events`: its schema predates §10).
    /// `None` for a row not built from a decoded event.
    #[serde(skip)]
    pub health: Option<Health>,
    /// The embedded ingest log's entry whose payload is `raw` byte for byte ([`EventRow::logged`]):
    /// SQLite then stores this reference instead of a second copy of the line, and `raw` is
    /// empty. Not a column of ClickHouse's `events`.
    #[serde(skip)]
    pub log_seq: Option<i64>,
}

/// The part of a [`SourceEventRow`] that an [`EventRow`] does not already hold: kept apart so
/// that a row copies the event's ids once, not twice (an event row is made for every event).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// `source` (empty: the event named none and its transport gave none).
    pub source: String,
    /// `reported_at`, else the receipt time (SPEC §3: its default).
    pub reported_at: u32,
    /// The China-time date of `occurred_at`, days since 1970.
    pub day: u16,
    /// `reported_at − occurred_at` in seconds (negative when a clock runs ahead).
    pub delay_seconds: i32,
    /// 1 when the event corrects an earlier one (`supersedes`).
    pub corrects: u8,
}

/// An event as source health sees it (SPEC §10): who reported it, when it happened and when
/// it was reported. `day` and `delay_seconds` are derived here, at the edge, so both backends
/// group and rank them with the same plain SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct SourceEventRow {
    /// `source` (empty: the event named none and its transport gave none).
    pub source: String,
    /// `region`.
    pub region: String,
    /// `center_id`.
    pub center_id: String,
    /// `event_id`.
    pub event_id: String,
    /// `kind`.
    pub kind: String,
    /// `case_id`, if any.
    pub case_id: String,
    /// `occurred_at`.
    pub occurred_at: u32,
    /// `reported_at`, else the receipt time (SPEC §3: its default).
    pub reported_at: u32,
    /// The China-time date of `occurred_at`, days since 1970.
    pub day: u16,
    /// `reported_at − occurred_at` in seconds (negative when a clock runs ahead).
    pub delay_seconds: i32,
    /// 1 when the event corrects an earlier one (`supersedes`).
    pub corrects: u8,
}

impl EventRow {
    /// The row for a decoded event and the text it was decoded from, without its unknown
    /// fields when they exceed the cap (`ingest::decode::stored_form`).
    pub fn new(ev: &rules::Event<'_>, raw: &str, received_at: rules::Instant) -> Self {
        let raw = match ingest::decode::stored_form(raw.as_bytes()) {
            std::borrow::Cow::Borrowed(_) => raw.to_owned(),
            // Written by serde_json: UTF-8.
            std::borrow::Cow::Owned(object) => String::from_utf8(object)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        };
        EventRow::of(ev, received_at, raw, None)
    }

    /// The row of an event read from the ingest log's entry `seq`, whose payload `raw` is: when
    /// that payload is exactly the stored form ([`EventRow::new`]; true of what the log's
    /// writers append), the row refers to the entry instead of copying it (`raw` empty,
    /// `log_seq` set). `ev` was decoded from `raw`, which decoding checked is UTF-8: the line
    /// is not scanned for it again on the engine's thread.
    pub fn logged(
        ev: &rules::Event<'_>,
        raw: &[u8],
        received_at: rules::Instant,
        seq: i64,
    ) -> Self {
        let stored = ingest::decode::stored_form(raw);
        if matches!(stored, std::borrow::Cow::Owned(_)) {
            return EventRow::new(ev, &String::from_utf8_lossy(raw), received_at);
        }
        debug_assert!(std::str::from_utf8(raw).is_ok(), "decoded from UTF-8");
        EventRow::of(ev, received_at, String::new(), Some(seq))
    }

    fn of(
        ev: &rules::Event<'_>,
        received_at: rules::Instant,
        raw: String,
        log_seq: Option<i64>,
    ) -> Self {
        EventRow {
            event_id: ev.event_id.to_string(),
            kind: ev.body.kind().as_str().to_string(),
            occurred_at: seconds(ev.occurred_at),
            received_at: seconds(received_at),
            center_id: ev.center_id.to_string(),
            region: ev.region.to_string(),
            case_id: ev.case_id.as_deref().unwrap_or_default().to_string(),
            raw,
            health: Some(Health::new(ev, received_at)),
            log_seq,
        }
    }

    /// Its source-health row, if it was built from a decoded event.
    fn source_event(&self) -> Option<SourceEventRow> {
        let h = self.health.as_ref()?;
        Some(SourceEventRow {
            source: h.source.clone(),
            region: self.region.clone(),
            center_id: self.center_id.clone(),
            event_id: self.event_id.clone(),
            kind: self.kind.clone(),
            case_id: self.case_id.clone(),
            occurred_at: self.occurred_at,
            reported_at: h.reported_at,
            day: h.day,
            delay_seconds: h.delay_seconds,
            corrects: h.corrects,
        })
    }
}

/// The source-health rows of `rows` (those built from a decoded event).
pub(crate) fn health_rows(rows: &[EventRow]) -> Vec<SourceEventRow> {
    rows.iter().filter_map(EventRow::source_event).collect()
}

impl Health {
    /// What source health needs of a decoded event received at `received_at`.
    pub fn new(ev: &rules::Event<'_>, received_at: rules::Instant) -> Self {
        let reported = ev.reported_at.unwrap_or(received_at);
        Health {
            source: ev.source.as_deref().unwrap_or_default().to_string(),
            reported_at: seconds(reported),
            day: u16::try_from(ev.occurred_at.day().days_since_unix_epoch()).unwrap_or(u16::MAX),
            delay_seconds: i32::try_from(reported.0 - ev.occurred_at.0).unwrap_or(
                if reported.0 > ev.occurred_at.0 {
                    i32::MAX
                } else {
                    i32::MIN
                },
            ),
            corrects: u8::from(ev.supersedes.is_some()),
        }
    }
}

/// A finished case (绩效 basis); see [`rules::CaseFact`]. Dates are days since 1970 (`Date`),
/// flags 0/1, an absent legal limit 0 with an empty unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
#[allow(missing_docs)] // the columns of rules::CaseFact, documented there
pub struct CaseFactRow {
    pub case_id: String,
    pub center_id: String,
    pub region: String,
    pub department: String,
    pub window_id: String,
    pub staff_id: String,
    pub item_code: String,
    pub case_type: String,
    pub channel: String,
    pub accepted_at: u32,
    pub completed_at: u32,
    pub result: String,
    pub start: u16,
    pub deemed: u8,
    pub promised_days: u16,
    pub promised_unit: String,
    pub legal_days: u16,
    pub legal_unit: String,
    pub extension_days: u16,
    pub pause_days: u16,
    pub deadline_date: u16,
    pub deadline: u32,
    pub legal_deadline: u32,
    pub working_days_used: u16,
    pub on_time: u8,
    pub early: u8,
    pub on_site: u8,
    pub within_legal: u8,
    /// ReplacingMergeTree version: the completion time (facts are deterministic).
    pub version: u32,
}

impl From<&rules::CaseFact> for CaseFactRow {
    fn from(f: &rules::CaseFact) -> Self {
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        let date = |d: rules::Day| u16::try_from(d.days_since_unix_epoch()).unwrap_or(u16::MAX);
        let small = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
        CaseFactRow {
            case_id: f.case_id.clone(),
            center_id: f.center_id.clone(),
            region: f.region.clone(),
            department: text(&f.department),
            window_id: text(&f.window_id),
            staff_id: text(&f.staff_id),
            item_code: text(&f.item_code),
            case_type: f.case_type.as_str().into(),
            channel: f
                .channel
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            accepted_at: seconds(f.accepted_at),
            completed_at: seconds(f.completed_at),
            result: f.result.as_str().into(),
            start: date(f.start),
            deemed: u8::from(f.deemed),
            promised_days: f.promised_days,
            promised_unit: f.promised_unit.as_str().into(),
            legal_days: f.legal_days.unwrap_or(0),
            legal_unit: if f.legal_days.is_some() {
                f.legal_unit.as_str().into()
            } else {
                String::new()
            },
            extension_days: small(f.extension_days),
            pause_days: small(f.pause_days),
            deadline_date: date(f.deadline_date),
            deadline: seconds(f.deadline),
            legal_deadline: f.legal_deadline.map_or(0, seconds),
            working_days_used: small(f.working_days_used),
            on_time: u8::from(f.on_time),
            early: u8::from(f.early),
            on_site: u8::from(f.on_site),
            within_legal: u8::from(f.within_legal),
            version: seconds(f.completed_at),
        }
    }
}

/// One chunk of an engine checkpoint in ClickHouse (see [`crate::Store::save_checkpoint`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct CheckpointRow {
    /// Kafka consumer group.
    pub group_id: String,
    /// Events topic.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// Alternating slot (0 or 1).
    pub slot: u8,
    /// First offset the snapshot does not cover.
    pub next_offset: i64,
    /// Chunk number, from 0.
    pub chunk: u32,
    /// Chunks in this checkpoint.
    pub chunks: u32,
    /// Snapshot bytes.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// When it was written (seconds since the epoch).
    pub written_at: u32,
}

/// One entry of an alert's audit trail (who, when, why); the table is append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct ActionRow {
    /// The alert.
    pub alert_id: String,
    /// `acknowledge`, `supervise`, `reply`, `resolve`, `dismiss` or `escalate`.
    pub action: String,
    /// Username, or `system`.
    pub actor: String,
    /// When.
    pub at: u32,
    /// The note, reply text or reason.
    pub reason: String,
    /// For `supervise`: the reply deadline; 0 otherwise.
    pub reply_deadline: u32,
    /// The alert's region.
    pub region: String,
}

/// One delivery record of a notification (docs/NOTIFICATIONS.md): once a key (alert, status,
/// target) has a row, the notifiers never send it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct NotificationRow {
    /// The alert.
    pub alert_id: String,
    /// `open` or `retracted`.
    pub status: String,
    /// Channel name, or `channel/phone` for SMS.
    pub target: String,
    /// The alert's level.
    pub level: String,
    /// `sent`, `suppressed` (storm limit) or `failed` (refused, or given up).
    pub fate: String,
    /// Why, for `failed`.
    pub detail: String,
    /// When it was recorded.
    pub at: u32,
}

/// The live status of one window, as the API serves it (the JSON document), with its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct WindowStatusRow {
    /// Window.
    pub window_id: String,
    /// Centre.
    pub center_id: String,
    /// GB/T 2260 code.
    pub region: String,
    /// Event time of the change (the version: the latest wins).
    pub updated_at: u32,
    /// The status, as JSON.
    pub doc: String,
}

/// One dated fact of a 绩效 measure that is not a finished case or an alert: an acceptance
/// (受理), a rating (评议), a complaint filed or resolved. Keyed by (region, kind, id); a
/// re-delivered one collapses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct ActivityRow {
    /// `accepted`, `evaluation`, `complaint` or `complaint_resolved`.
    pub kind: String,
    /// The case, evaluation or complaint id.
    pub id: String,
    /// Service centre.
    pub center_id: String,
    /// GB/T 2260 code.
    pub region: String,
    /// Department ("" when unknown).
    pub department: String,
    /// Window ("" when unknown).
    pub window_id: String,
    /// Staff member ("" when unknown).
    pub staff_id: String,
    /// Item ("" when unknown).
    pub item_code: String,
    /// Acceptance, rating, filing or resolution time (seconds).
    pub at: u32,
    /// The score 1–5 of an evaluation; for `complaint_resolved` 1 = substantiated (有效投诉),
    /// 0 = not; 0 otherwise.
    pub value: i32,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ingest::decode::{decode, DecodeOptions, Receipt};
    use rules::synth;
    use rules::{Engine, Policy, Reference};

    use super::*;

    /// What source health must hold of an event: its id, source, report time and whether it
    /// corrects another, read from the decoded event itself.
    type Expected = (String, String, u32, u8);

    /// The rows of the cluster tests' stream (every rule family, report times, corrections),
    /// what their health rows must say, and the alerts.
    fn stream() -> (Vec<EventRow>, Vec<Expected>, Vec<Alert>) {
        let reference = Reference::parse(&synth::reference_files()).expect("synthetic reference");
        let mut engine = Engine::new(Arc::new(reference), Policy::default());
        let (lines, end) = synth::corrected_stream(40_000);
        let (mut rows, mut expected, mut alerts) = (Vec::new(), Vec::new(), Vec::new());
        for line in &lines {
            let opts = DecodeOptions {
                receipt: Receipt::At(end),
                default_source: Some("kafka:events"),
                max_future_skew_secs: i64::MAX / 4,
            };
            let ev = decode(line.as_bytes(), &opts).expect("synthetic events decode");
            if engine.on_event(&ev, &mut alerts).is_ok() {
                rows.push(EventRow::new(&ev, line, end));
                expected.push((
                    ev.event_id.to_string(),
                    ev.source.as_deref().unwrap_or_default().to_string(),
                    seconds(ev.reported_at.unwrap_or(end)),
                    u8::from(ev.supersedes.is_some()),
                ));
            }
        }
        (rows, expected, alerts)
    }

    /// A logged event refers to its entry only when the entry is byte for byte what would be
    /// stored; a line whose unknown fields exceed the caps keeps its stored (trimmed) form, as
    /// a row made without the log does.
    #[test]
    fn a_logged_event_refers_to_its_entry_only_when_the_entry_is_what_is_stored() {
        let at = rules::Instant(1_793_000_000);
        let opts = DecodeOptions {
            receipt: Receipt::At(at),
            default_source: None,
            max_future_skew_secs: i64::MAX / 4,
        };
        let plain = r#"{"event_id":"q1","kind":"queue.ticket_issued","occurred_at":"2026-11-02T09:00:00+08:00","center_id":"PJ","region":"430626","window_id":"W1","ticket_no":"A001","备注":"x"}"#;
        let padding: String = (0..40).map(|i| format!(r#","x{i}":{i}"#)).collect();
        let padded = plain.replacen('}', &format!("{padding}}}"), 1);
        let row = |line: &str| {
            let ev = decode(line.as_bytes(), &opts).expect("decodes");
            let logged = EventRow::logged(&ev, line.as_bytes(), at, 7);
            let copied = EventRow::new(&ev, line, at);
            (logged, copied)
        };
        let (logged, copied) = row(plain);
        assert_eq!((logged.raw.as_str(), logged.log_seq), ("", Some(7)));
        assert_eq!(copied.raw, plain);
        assert_eq!(
            (&logged.event_id, &logged.case_id, logged.received_at),
            (&copied.event_id, &copied.case_id, copied.received_at)
        );
        let (logged, copied) = row(&padded);
        assert_eq!(logged.log_seq, None, "the entry is not what is stored");
        assert_eq!(logged.raw, copied.raw);
        assert!(!logged.raw.contains("x39"), "{}", logged.raw);
    }

    /// An alert row's subject and evidence are the text of the JSON the alert reads as, and
    /// every event's source-health row says what the event said.
    #[test]
    fn rows_hold_what_the_alerts_and_events_read_as() {
        let (rows, expected, alerts) = stream();
        assert!(alerts.len() > 1_000, "{} alerts", alerts.len());
        for a in &alerts {
            let row = AlertRow::from(a);
            let subject = serde_json::Value::Object(a.subject.clone()).to_string();
            assert_eq!(row.subject, subject);
            assert_eq!(row.evidence, (*a.evidence).to_string(), "{}", a.alert_id);
        }
        let health = health_rows(&rows);
        assert_eq!(health.len(), rows.len());
        for ((h, e), (id, source, reported, corrects)) in health.iter().zip(&rows).zip(&expected) {
            assert_eq!(
                (&h.event_id, &h.kind, &h.region, &h.center_id, &h.case_id),
                (id, &e.kind, &e.region, &e.center_id, &e.case_id)
            );
            assert_eq!(h.occurred_at, e.occurred_at);
            assert_eq!(
                (&h.source, h.reported_at, h.corrects),
                (source, *reported, *corrects)
            );
            assert!(!h.source.is_empty(), "{h:?}");
            assert!(h.reported_at >= h.occurred_at, "{h:?}");
        }
        assert!(
            health.iter().any(|h| h.corrects == 1),
            "the stream corrects events"
        );
        let mut bare = rows[0].clone();
        bare.health = None;
        assert!(
            health_rows(&[bare]).is_empty(),
            "a row not made from an event has none"
        );
    }
}

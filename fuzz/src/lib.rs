//! Helpers shared by the fuzz targets: a reference encoder for decoded events (so a target can
//! check that what the decoder accepted re-decodes to the same event) and the checks every
//! decode error must pass.

use ingest::decode::{DecodeError, Reason};
use rules::event::{Body, LimitOverrides};
use rules::reference::Limit;
use rules::Event;
use serde_json::{Map, Value};

/// Longest error message the decoder may produce. Messages quote at most an id-sized value
/// (`MAX_ID_LEN`, escaped) or a short serde_json sentence; a longer one means input leaks into
/// an error unbounded (and from there into dead letters and logs).
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Every reason code, as dead letters and metrics label them.
pub const REASONS: &[&str] = &[
    "not_utf8",
    "not_json",
    "not_object",
    "unknown_kind",
    "missing_field",
    "mistyped_field",
    "invalid_value",
    "bad_region",
    "bad_timestamp",
    "future_timestamp",
    "bad_id",
];

/// A decode error is one of the known codes, serialises with the same code it prints, names a
/// field in wire form, and has a bounded, non-empty message.
pub fn check_error(e: &DecodeError) {
    let code = e.code.as_str();
    assert!(REASONS.contains(&code), "unknown reason {code}");
    let json = serde_json::to_value(e).expect("a DecodeError serialises");
    assert_eq!(json["code"], code, "serialised code differs from as_str");
    if let Some(field) = e.field {
        assert!(
            !field.is_empty() && field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "field {field:?} is not a wire field name"
        );
    }
    assert!(!e.message.is_empty(), "{code}: empty message");
    assert!(
        e.message.len() <= MAX_MESSAGE_LEN,
        "{code}: message of {} bytes",
        e.message.len()
    );
    if e.code == Reason::NotUtf8 {
        assert!(e.field.is_none());
    }
}

fn put(m: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    m.insert(key.to_string(), value.into());
}

fn put_opt(m: &mut Map<String, Value>, key: &str, value: &Option<std::borrow::Cow<'_, str>>) {
    if let Some(v) = value {
        put(m, key, v.as_ref());
    }
}

fn put_limit(m: &mut Map<String, Value>, prefix: &str, limit: Option<Limit>) {
    if let Some(l) = limit {
        put(m, &format!("{prefix}_days"), l.days);
        put(m, &format!("{prefix}_unit"), l.unit.as_str());
    }
}

/// The event as `jiancha.event.v1` JSON (SPEC §3), timestamps in the canonical `+08:00` form.
/// `received_at` is not a wire field and is left out.
pub fn encode(ev: &Event<'_>) -> String {
    let mut m = Map::new();
    put(&mut m, "event_id", ev.event_id.as_ref());
    put(&mut m, "kind", ev.body.kind().as_str());
    put(&mut m, "occurred_at", ev.occurred_at.to_string());
    if let Some(t) = ev.reported_at {
        put(&mut m, "reported_at", t.to_string());
    }
    put(&mut m, "center_id", ev.center_id.as_ref());
    put(&mut m, "region", ev.region.as_ref());
    put_opt(&mut m, "department", &ev.department);
    put_opt(&mut m, "window_id", &ev.window_id);
    put_opt(&mut m, "staff_id", &ev.staff_id);
    put_opt(&mut m, "case_id", &ev.case_id);
    put_opt(&mut m, "item_code", &ev.item_code);
    put_opt(&mut m, "source", &ev.source);
    put_opt(&mut m, "supersedes", &ev.supersedes);
    match &ev.body {
        Body::CaseSubmitted { channel } => {
            if let Some(c) = channel {
                put(&mut m, "channel", c.as_str());
            }
        }
        Body::CaseAccepted {
            channel,
            overrides:
                LimitOverrides {
                    case_type,
                    promised,
                    legal,
                    source_deadline,
                },
        } => {
            put(&mut m, "channel", channel.as_str());
            if let Some(t) = case_type {
                put(&mut m, "case_type", t.as_str());
            }
            put_limit(&mut m, "promised", *promised);
            put_limit(&mut m, "legal", *legal);
            if let Some(d) = source_deadline {
                put(&mut m, "source_deadline", d.to_string());
            }
        }
        Body::CaseRejected { reason }
        | Body::SupplementRequested { reason }
        | Body::CaseSuspended { reason }
        | Body::CaseResumed { reason } => put_opt(&mut m, "reason", reason),
        Body::CaseStage { stage, result } => {
            put(&mut m, "stage", stage.as_str());
            put(&mut m, "result", result.as_str());
        }
        Body::CaseTransferred { to_department } => {
            put(&mut m, "to_department", to_department.as_ref());
        }
        Body::SpecialStarted { procedure, limit } => {
            put(&mut m, "procedure", procedure.as_str());
            put_limit(&mut m, "limit", *limit);
        }
        Body::CaseExtended { extra_days } => put(&mut m, "extra_days", *extra_days),
        Body::CaseCompleted { result } => put(&mut m, "result", result.as_str()),
        Body::FeeCharged {
            receipt_no,
            amount_fen,
            payer_id,
        } => {
            put(&mut m, "receipt_no", receipt_no.as_ref());
            put(&mut m, "amount_fen", *amount_fen);
            put(&mut m, "payer_id", payer_id.as_ref());
        }
        Body::ComplaintFiled {
            complaint_id,
            category,
        } => {
            put(&mut m, "complaint_id", complaint_id.as_ref());
            put(&mut m, "category", category.as_str());
        }
        Body::ComplaintResolved {
            complaint_id,
            substantiated,
        } => {
            put(&mut m, "complaint_id", complaint_id.as_ref());
            put(&mut m, "substantiated", *substantiated);
        }
        Body::EvaluationSubmitted {
            evaluation_id,
            score,
        } => {
            put(&mut m, "evaluation_id", evaluation_id.as_ref());
            put(&mut m, "score", *score);
        }
        Body::EvaluationRectified { evaluation_id } => {
            put(&mut m, "evaluation_id", evaluation_id.as_ref());
        }
        Body::TicketIssued { ticket_no } | Body::TicketCalled { ticket_no } => {
            put(&mut m, "ticket_no", ticket_no.as_ref());
        }
        Body::EventWithdrawn { withdraws } => {
            put(&mut m, "withdraws", withdraws.as_ref());
        }
        Body::SupplementReceived
        | Body::SpecialEnded
        | Body::CaseDelivered
        | Body::CaseArchived
        | Body::StaffSignedIn
        | Body::StaffSignedOut
        | Body::WindowOpened
        | Body::WindowPaused
        | Body::WindowClosed => {}
    }
    Value::Object(m).to_string()
}

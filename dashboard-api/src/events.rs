//! HTTP ingest, `POST /api/v1/events`: one JSON event or an NDJSON batch from a window system.
//!
//! Every line is decoded exactly as the engine will decode it (so a line accepted here is never
//! refused later for its form) and checked against the publisher's jurisdiction. Valid lines and
//! the dead letters of invalid ones go to the [`EventSink`] together; the answer, with one result
//! per line, is sent only after the sink says they are durable (the SQLite log in embedded mode,
//! the broker's acknowledgement in cluster mode). If the sink fails nothing is acknowledged and
//! the whole request can be sent again: duplicates are recognised by `event_id`.

use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ingest::decode::{decode, DecodeOptions, Receipt};
use serde::Serialize;

use crate::auth::{Principal, Role};
use crate::backend::{BackendError, BoxFuture};
use crate::error::ApiError;
use crate::{wall_now, Api};

/// Largest request body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// Most lines in one request.
pub const MAX_LINES: usize = 20_000;

/// A valid event, ready to be made durable.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its `event_id`.
    pub event_id: String,
    /// Its `center_id` (the Kafka key in cluster mode).
    pub center_id: String,
    /// Receipt time (seconds since the epoch).
    pub received_at: i64,
    /// Who sent it, `http:<publisher>`: the namespace of its `event_id` when the event names no
    /// `source` of its own (docs/RULES.md, "Jurisdiction").
    pub source: String,
    /// Its identity, [`rules::event_identity`] of (region, source, `event_id`): a sink that
    /// has already stored an event of this identity reports it as a duplicate.
    pub identity: [u8; 16],
    /// The line as received.
    pub raw: Vec<u8>,
}

/// An invalid line, for the dead-letter store.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Receipt time (seconds since the epoch).
    pub received_at: i64,
    /// Where it came from: `http:<publisher>:<line>`.
    pub source: String,
    /// Stable reason code.
    pub reason: String,
    /// The field concerned ("" when none).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The line as received.
    pub raw: Vec<u8>,
}

/// Where ingested events go.
pub trait EventSink: Send + Sync + 'static {
    /// Make `accepted` and `refused` durable; `Ok` only when both are. The answer lists, by
    /// ascending index into `accepted`, the events the sink already had (same [`Accepted::identity`],
    /// earlier or in this batch): they were not stored again. A sink that cannot tell (Kafka)
    /// lists none, and the engine drops the duplicate later.
    fn submit(
        &self,
        accepted: Vec<Accepted>,
        refused: Vec<Refused>,
    ) -> BoxFuture<'_, Result<Vec<usize>, BackendError>>;
}

/// An in-memory [`EventSink`], for tests and fuzzing: keeps what it is given, or fails while
/// told to (as `MemoryBackend` does for the store).
#[derive(Debug, Default)]
pub struct MemorySink {
    received: Mutex<(Vec<Accepted>, Vec<Refused>)>,
    seen: Mutex<std::collections::HashSet<[u8; 16]>>,
    failing: Mutex<Option<String>>,
}

impl MemorySink {
    /// Everything made "durable" so far.
    pub fn received(&self) -> (Vec<Accepted>, Vec<Refused>) {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Everything made "durable" so far, forgetting it.
    pub fn take(&self) -> (Vec<Accepted>, Vec<Refused>) {
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Fail every submission with this message from now on (`None`: work again).
    pub fn fail_with(&self, message: Option<&str>) {
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = message.map(str::to_string);
    }
}

impl EventSink for MemorySink {
    fn submit(
        &self,
        accepted: Vec<Accepted>,
        refused: Vec<Refused>,
    ) -> BoxFuture<'_, Result<Vec<usize>, BackendError>> {
        let failing = self
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Box::pin(async move {
            if let Some(message) = failing {
                return Err(BackendError(message));
            }
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut received = self.received.lock().unwrap_or_else(|p| p.into_inner());
            let mut duplicates = Vec::new();
            for (i, a) in accepted.into_iter().enumerate() {
                if seen.insert(a.identity) {
                    received.0.push(a);
                } else {
                    duplicates.push(i);
                }
            }
            received.1.extend(refused);
            Ok(duplicates)
        })
    }
}

#[derive(Debug, Serialize)]
struct LineResult {
    line: usize,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[derive(Debug, Serialize)]
struct IngestAnswer {
    accepted: usize,
    /// Lines whose event was already received (same region, source and `event_id`): not
    /// stored again, not an error.
    duplicates: usize,
    rejected: usize,
    results: Vec<LineResult>,
}

/// The lines of a request: the whole body for `application/json`, else NDJSON; blank lines
/// skipped, numbering kept. A blank body has no line in either form (so it is refused as empty,
/// not stored as a dead letter: found by fuzzing). The media type is compared without its
/// parameters and case (RFC 9110), so `Application/JSON; charset=utf-8` is one event while
/// `application/jsonl` and `application/json-seq` are read as lines.
fn lines<'a>(headers: &HeaderMap, body: &'a [u8]) -> Vec<(usize, &'a [u8])> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    let numbered: Vec<(usize, &[u8])> = if json {
        vec![(1, body)]
    } else {
        body.split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .collect()
    };
    numbered
        .into_iter()
        .map(|(n, l)| (n, l.trim_ascii()))
        .filter(|(_, l)| !l.is_empty())
        .collect()
}

/// The ids the reference binds (centre, window, staff) must be the event's jurisdiction's, as
/// the engine will check them (`rules::check_listed`); answered here so that the publisher
/// hears of a mismatch in its answer. Unlisted ids are left to the engine's policy.
fn check_ids(
    reference: Option<&std::sync::Arc<rules::Reference>>,
    ev: &rules::Event<'_>,
) -> Result<(), (String, &'static str, String)> {
    match reference.map(|r| rules::check_listed(r, true, ev)) {
        Some(Err(refusal)) => Err((
            refusal.code().to_string(),
            refusal.field(),
            refusal.to_string(),
        )),
        _ => Ok(()),
    }
}

/// The publisher's jurisdiction: the event's region within its prefix, and no `source` that
/// claims another publisher's namespace (`http:<someone else>`).
fn check_scope(
    who: &Principal,
    publisher: &str,
    ev: &rules::Event<'_>,
) -> Result<(), (String, &'static str, String)> {
    if !who.region.covers(&ev.region) {
        return Err((
            "out_of_scope".to_string(),
            "region",
            format!(
                "region {} is outside this publisher's jurisdiction ({})",
                ev.region,
                who.region.as_str()
            ),
        ));
    }
    match ev.source.as_deref() {
        Some(s) if s.starts_with("http:") && s != publisher => Err((
            "out_of_scope".to_string(),
            "source",
            format!(
                "source {s} is another publisher's; leave source out (it is {publisher} for this \
                 account) or name your own source system"
            ),
        )),
        _ => Ok(()),
    }
}

pub(crate) async fn ingest(
    State(api): State<Api>,
    who: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !matches!(who.role, Role::Publisher | Role::Admin) {
        return Err(ApiError::forbidden(
            "only publisher accounts (window systems) send events; an admin makes one with \
             `jiancha user add NAME --role publisher --region CODE`",
        ));
    }
    let Some(sink) = api.0.events.get() else {
        return Err(ApiError::not_found("this process does not ingest events"));
    };
    let lines = lines(&headers, &body);
    if lines.is_empty() {
        return Err(ApiError::bad_request(
            "empty body: send one JSON event (Content-Type: application/json) or NDJSON, one event per line",
        ));
    }
    if lines.len() > MAX_LINES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_lines",
            format!(
                "{} events in one request; send at most {MAX_LINES} per request",
                lines.len()
            ),
        ));
    }
    let now = wall_now();
    // Events that name no source are this publisher's: their ids live in its namespace.
    let publisher = format!("http:{}", who.username);
    let opts = DecodeOptions {
        receipt: Receipt::At(now),
        default_source: Some(&publisher),
        max_future_skew_secs: api.0.config.future_skew_secs,
    };
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut results = Vec::with_capacity(lines.len());
    let directory = api.directory();
    let reference = directory.reference();
    for (n, line) in lines {
        let outcome = match decode(line, &opts) {
            Ok(ev) => check_scope(&who, &publisher, &ev)
                .and_then(|()| check_ids(reference, &ev))
                .map(|()| {
                    let source = ev.source.as_deref().unwrap_or(&publisher);
                    (
                        ev.event_id.to_string(),
                        ev.center_id.to_string(),
                        rules::event_identity(&ev.region, source, &ev.event_id),
                    )
                }),
            Err(e) => Err((
                e.code.as_str().to_string(),
                e.field.unwrap_or(""),
                e.message,
            )),
        };
        match outcome {
            Ok((event_id, center_id, identity)) => {
                results.push(LineResult {
                    line: n,
                    status: "accepted",
                    event_id: Some(event_id.clone()),
                    reason: None,
                    field: None,
                    message: None,
                });
                accepted.push(Accepted {
                    event_id,
                    center_id,
                    received_at: now.0,
                    source: publisher.clone(),
                    identity,
                    raw: ingest::decode::stored_form(line).into_owned(),
                });
            }
            Err((reason, field, message)) => {
                results.push(LineResult {
                    line: n,
                    status: "rejected",
                    event_id: None,
                    reason: Some(reason.clone()),
                    field: (!field.is_empty()).then(|| field.to_string()),
                    message: Some(message.clone()),
                });
                refused.push(Refused {
                    received_at: now.0,
                    source: format!("http:{}:{n}", who.username),
                    reason,
                    field: field.to_string(),
                    message,
                    raw: line.to_vec(),
                });
            }
        }
    }
    let n_bad = refused.len();
    let n_lines = accepted.len();
    let duplicates = sink.submit(accepted, refused).await.map_err(|e| {
        ApiError::unavailable(format!(
            "events not stored ({e}); nothing from this request was accepted: send it again \
             (events already received are recognised by event_id)"
        ))
    })?;
    // The accepted lines, in order, are the results with status "accepted".
    // `duplicates` are ascending indexes into the accepted lines: one pass marks them (a
    // re-sent batch of 20,000 lines is all duplicates).
    let mut marked = duplicates.iter().peekable();
    for (k, r) in results
        .iter_mut()
        .filter(|r| r.status == "accepted")
        .enumerate()
    {
        if marked.next_if_eq(&&k).is_some() {
            r.status = "duplicate";
        }
    }
    let n_ok = n_lines - duplicates.len();
    let m = &api.0.metrics;
    m.ingested
        .with_label_values(&["accepted"])
        .inc_by(n_ok as u64);
    m.ingested
        .with_label_values(&["rejected"])
        .inc_by(n_bad as u64);
    let status = if n_bad == 0 {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let answer = IngestAnswer {
        accepted: n_ok,
        duplicates: duplicates.len(),
        rejected: n_bad,
        results,
    };
    Ok((status, Json(answer)).into_response())
}

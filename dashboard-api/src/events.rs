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

#[derive(Debug, Clone, Serialize)]
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

/// What the lines of one request (or one batch of records from another transport) became:
/// the events to make durable, the dead letters, and one result per line in order.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    /// Valid events in scope.
    pub accepted: Vec<Accepted>,
    /// Dead letters.
    pub refused: Vec<Refused>,
    results: Vec<LineResult>,
}

/// Who sends the lines: the HTTP publisher (its scope is checked, and it names the events
/// that name no `source`), or a transport of the deployment itself (Kafka change topics).
#[derive(Clone, Copy)]
pub enum Sender<'a> {
    /// A publisher account.
    Publisher(&'a Principal),
    /// A configured transport, `name` (e.g. `kafka:<topic>`): no account, no scope.
    Transport(&'a str),
}

impl Judged {
    /// Decode `line` (numbered `n`) as the engine will, check its jurisdiction, and keep it as
    /// accepted or refused. `dead_source` is where a refusal says it came from.
    #[allow(clippy::too_many_arguments)]
    pub fn judge(
        &mut self,
        reference: Option<&std::sync::Arc<rules::Reference>>,
        sender: Sender<'_>,
        opts: &DecodeOptions<'_>,
        n: usize,
        line: &[u8],
        dead_source: String,
    ) {
        let publisher = opts.default_source.unwrap_or("");
        let outcome = match decode(line, opts) {
            Ok(ev) => match sender {
                Sender::Publisher(who) => check_scope(who, publisher, &ev),
                Sender::Transport(_) => Ok(()),
            }
            .and_then(|()| check_ids(reference, &ev))
            .map(|()| {
                let source = ev.source.as_deref().unwrap_or(publisher);
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
        let received_at = match opts.receipt {
            Receipt::At(t) => t.0,
            _ => wall_now().0,
        };
        match outcome {
            Ok((event_id, center_id, identity)) => {
                self.results.push(LineResult {
                    line: n,
                    status: "accepted",
                    event_id: Some(event_id.clone()),
                    reason: None,
                    field: None,
                    message: None,
                });
                self.accepted.push(Accepted {
                    event_id,
                    center_id,
                    received_at,
                    source: publisher.to_string(),
                    identity,
                    raw: ingest::decode::stored_form(line).into_owned(),
                });
            }
            Err((reason, field, message)) => {
                self.refuse(n, reason, field, message, line, received_at, dead_source)
            }
        }
    }

    /// Keep `raw` (line `n`) as a dead letter.
    #[allow(clippy::too_many_arguments)]
    pub fn refuse(
        &mut self,
        n: usize,
        reason: String,
        field: &str,
        message: String,
        raw: &[u8],
        received_at: i64,
        source: String,
    ) {
        self.results.push(LineResult {
            line: n,
            status: "rejected",
            event_id: None,
            reason: Some(reason.clone()),
            field: (!field.is_empty()).then(|| field.to_string()),
            message: Some(message.clone()),
        });
        self.refused.push(Refused {
            received_at,
            source,
            reason,
            field: field.to_string(),
            message,
            raw: raw.to_vec(),
        });
    }

    /// Hand everything to `sink`; `Ok` only once it is durable, with the lines the sink
    /// already had marked `duplicate`.
    pub async fn commit(self, sink: &dyn EventSink) -> Result<Committed, BackendError> {
        let Judged {
            accepted,
            refused,
            mut results,
        } = self;
        let rejected = refused.len();
        let n_lines = accepted.len();
        let duplicates = sink.submit(accepted, refused).await?;
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
        Ok(Committed {
            accepted: n_lines - duplicates.len(),
            duplicates: duplicates.len(),
            rejected,
            results,
        })
    }
}

/// What a sink made durable, line by line.
#[derive(Debug, Serialize)]
pub struct Committed {
    /// New events stored.
    pub accepted: usize,
    /// Lines whose event was already received (same region, source and `event_id`): not
    /// stored again, not an error.
    pub duplicates: usize,
    /// Dead letters stored.
    pub rejected: usize,
    results: Vec<LineResult>,
}

impl Committed {
    /// The refused lines: (line, reason, field, message).
    pub fn refusals(&self) -> impl Iterator<Item = (usize, &str, &str, &str)> {
        self.results
            .iter()
            .filter(|r| r.status == "rejected")
            .map(|r| {
                (
                    r.line,
                    r.reason.as_deref().unwrap_or(""),
                    r.field.as_deref().unwrap_or(""),
                    r.message.as_deref().unwrap_or(""),
                )
            })
    }

    /// Count the outcome in `/metrics`.
    pub(crate) fn count(&self, api: &Api) {
        let m = &api.0.metrics;
        m.ingested
            .with_label_values(&["accepted"])
            .inc_by(self.accepted as u64);
        m.ingested
            .with_label_values(&["rejected"])
            .inc_by(self.rejected as u64);
    }
}

/// Only publishers (and admins) send events.
pub(crate) fn may_publish(who: &Principal) -> Result<(), ApiError> {
    if matches!(who.role, Role::Publisher | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only publisher accounts (window systems) send events; an admin makes one with \
             `jiancha user add NAME --role publisher --region CODE`",
        ))
    }
}

/// The sink's failure as the answer: nothing was acknowledged.
pub(crate) fn not_stored(e: BackendError) -> ApiError {
    ApiError::unavailable(format!(
        "events not stored ({e}); nothing from this request was accepted: send it again \
         (events already received are recognised by event_id)"
    ))
}

pub(crate) async fn ingest(
    State(api): State<Api>,
    who: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    may_publish(&who)?;
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
    let directory = api.directory();
    let reference = directory.reference();
    let mut judged = Judged::default();
    for (n, line) in lines {
        let dead_source = format!("http:{}:{n}", who.username);
        judged.judge(
            reference,
            Sender::Publisher(&who),
            &opts,
            n,
            line,
            dead_source,
        );
    }
    let answer = judged.commit(sink.as_ref()).await.map_err(not_stored)?;
    answer.count(&api);
    let status = if answer.rejected == 0 {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(answer)).into_response())
}

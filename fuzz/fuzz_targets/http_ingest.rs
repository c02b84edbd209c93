//! HTTP ingest, `POST /api/v1/events`, through the real axum router in process (no socket):
//! the content type decides between one JSON event and NDJSON, the publisher's jurisdiction
//! decides which valid events are in scope, and the sink may be down.
//!
//! Input: byte 0 picks the `Content-Type`, byte 1 the caller (bits 0–1) and whether the sink
//! fails (bit 2); the rest is the body. Checked, for any input:
//! - the answer is one of 200, 422 (some lines rejected), 400 (empty body), 403 (not a
//!   publisher), 503 (sink down), always with a JSON body — never a 500 or a panic;
//! - on 200/422, one result per non-blank line (an independent model of the splitting), line
//!   numbers increasing, `accepted + rejected` adding up, 200 exactly when nothing was rejected;
//! - the sink received exactly the accepted lines and the dead letters, in order, each as
//!   received; every accepted line re-decodes to the event id and centre reported, inside the
//!   caller's jurisdiction; every dead letter re-decodes to the same reason (or is a valid event
//!   outside the jurisdiction, `out_of_scope`).
#![no_main]

use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use dashboard_api::auth::{Region, Role, TokenKey, User, Users};
use dashboard_api::backend::MemoryBackend;
use dashboard_api::events::MemorySink;
use dashboard_api::{wall_now, Api, ApiConfig};
use ingest::decode::{decode, DecodeOptions, Receipt};
use jiancha_fuzz::REASONS;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower::ServiceExt;

/// Content types a window system might send (`None`: no header).
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/x-ndjson"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
    Some("application/jsonl"),
    Some("Application/JSON ;charset=UTF-8"),
    Some("application/json-seq"),
];

/// Callers: (username, role, jurisdiction).
const CALLERS: &[(&str, Role, &str)] = &[
    ("pj-publisher", Role::Publisher, "430626"),
    ("yy-publisher", Role::Publisher, "4306"),
    ("hn-admin", Role::Admin, "43"),
    ("pj-inspector", Role::Inspector, "430626"),
];

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    sink: Arc<MemorySink>,
    tokens: Vec<String>,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let key = TokenKey::new(&[7u8; 32]).expect("key");
    let mut users = Users::default();
    let mut tokens = Vec::new();
    let now = wall_now().0;
    for (name, role, region) in CALLERS {
        let user = User {
            username: name.to_string(),
            name: String::new(),
            role: *role,
            region: Region::try_from(region.to_string()).expect("region"),
            // Tokens are checked by signature; the password is never asked for here.
            password_hash: String::new(),
            token_epoch: 0,
        };
        tokens.push(key.issue(&user, now, 30 * 86_400).0);
        users.upsert(user);
    }
    let api = Api::new(
        ApiConfig::default(),
        users,
        key,
        Arc::new(MemoryBackend::default()),
        prometheus::Registry::new(),
    );
    let sink = Arc::new(MemorySink::default());
    api.set_event_sink(sink.clone());
    Harness {
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime"),
        router: api.router(),
        sink,
        tokens,
    }
});

/// The lines the handler should see, numbered from 1: the whole body for a JSON content type,
/// else NDJSON without blank lines.
fn model_lines(json: bool, body: &[u8]) -> Vec<(usize, &[u8])> {
    if json {
        let whole = body.trim_ascii();
        return if whole.is_empty() {
            vec![]
        } else {
            vec![(1, whole)]
        };
    }
    let mut out = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if !line.is_empty() {
            out.push((i + 1, line));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [ct, who, body @ ..] = data else {
        return;
    };
    let h = &*HARNESS;
    let content_type = CONTENT_TYPES[usize::from(*ct) % CONTENT_TYPES.len()];
    let caller = usize::from(who & 3);
    let (_, role, region) = CALLERS[caller];
    let down = who & 4 != 0;
    h.sink.fail_with(down.then_some("disk I/O error"));

    let mut req = Request::post("/api/v1/events").header(
        header::AUTHORIZATION,
        format!("Bearer {}", h.tokens[caller]),
    );
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let req = req.body(Body::from(body.to_vec())).expect("request");
    let (status, answer) = h.runtime.block_on(async {
        let resp = h.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let answer: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {bytes:?}"));
        (status, answer)
    });

    // One JSON event exactly for the media type application/json, whatever its parameters.
    let json = content_type.is_some_and(|c| {
        let essence = c.split_once(';').map_or(c, |(e, _)| e);
        essence.trim().eq_ignore_ascii_case("application/json")
    });
    let lines = model_lines(json, body);
    let (accepted, refused) = h.sink.take();
    if !matches!(role, Role::Publisher | Role::Admin) {
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        return;
    }
    if lines.is_empty() {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        return;
    }
    if down {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        assert!(accepted.is_empty() && refused.is_empty());
        return;
    }
    assert!(
        status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{status}: {answer}"
    );
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), lines.len(), "one result per line: {answer}");
    assert_eq!(answer["accepted"].as_u64(), Some(accepted.len() as u64));
    assert_eq!(answer["rejected"].as_u64(), Some(refused.len() as u64));
    assert_eq!(status == StatusCode::OK, refused.is_empty());
    let (mut ok, mut bad) = (accepted.iter(), refused.iter());
    for (r, (n, line)) in results.iter().zip(&lines) {
        assert_eq!(r["line"].as_u64(), Some(*n as u64), "{answer}");
        match r["status"].as_str() {
            Some("accepted") => {
                let a = ok.next().expect("an accepted event per accepted line");
                // As received, less unknown fields beyond the cap.
                assert_eq!(&a.raw[..], &ingest::decode::stored_form(line)[..]);
                assert_eq!(a.source, format!("http:{}", CALLERS[caller].0));
                let opts = DecodeOptions {
                    receipt: Receipt::At(rules::Instant(a.received_at)),
                    default_source: Some(&a.source),
                    max_future_skew_secs: ApiConfig::default().future_skew_secs,
                };
                let ev = decode(&a.raw, &opts).expect("an accepted line decodes");
                assert!(ev.region.starts_with(region), "accepted out of scope");
                assert_eq!(r["event_id"].as_str(), Some(ev.event_id.as_ref()));
                assert_eq!(
                    (&*a.event_id, &*a.center_id),
                    (&*ev.event_id, &*ev.center_id)
                );
            }
            Some("rejected") => {
                let d = bad.next().expect("a dead letter per rejected line");
                assert_eq!(&d.raw, line);
                assert_eq!(d.source, format!("http:{}:{n}", CALLERS[caller].0));
                assert_eq!(r["reason"].as_str(), Some(d.reason.as_str()));
                let opts = DecodeOptions {
                    receipt: Receipt::At(rules::Instant(d.received_at)),
                    default_source: None,
                    max_future_skew_secs: ApiConfig::default().future_skew_secs,
                };
                match decode(&d.raw, &opts) {
                    Err(e) => {
                        assert_eq!(d.reason, e.code.as_str());
                        assert!(REASONS.contains(&d.reason.as_str()));
                        assert_eq!(d.field, e.field.unwrap_or(""));
                    }
                    Ok(ev) => {
                        assert_eq!(d.reason, "out_of_scope");
                        let other_publisher = ev.source.as_deref().is_some_and(|s| {
                            s.starts_with("http:") && s != format!("http:{}", CALLERS[caller].0)
                        });
                        assert!(!ev.region.starts_with(region) || other_publisher);
                    }
                }
            }
            Some("duplicate") => {
                // Not stored again: an earlier line (of this request or an earlier one) had
                // the same event id.
                assert!(r["event_id"].is_string(), "{answer}");
            }
            other => panic!("status {other:?} in {answer}"),
        }
    }
    assert!(ok.next().is_none() && bad.next().is_none());
});

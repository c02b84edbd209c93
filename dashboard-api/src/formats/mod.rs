//! The source formats' own HTTP endpoints (SPEC §9 Transports (b), docs/ADAPTERS.md
//! "Endpoints"): approval systems post records the way they already do for 电子监察, and each
//! is answered in its own reply convention.
//!
//! ```text
//! POST /api/v1/ingest/gdbs/exinfo             <ExInfo> XML (UTF-8, GBK, GB18030)
//! POST /api/v1/ingest/gdbs/approve/{method}   form: xmlStr=<APPROVEDATAINFO>…, accessToken
//! POST /api/v1/ingest/sdjc/{method}           JSON, header token
//!   │ token ─ publisher account (401/403 in the format's reply; nothing read)
//!   │ bytes ─ encoding ─ XML/JSON ─ records (400 in the format's reply; nothing stored)
//!   ▼
//! adapters::Adapter (the same mapping as `jiancha adapt`) ─ §3 events │ Dead
//!   ▼                                                                  ▼
//! events::Judged (decode, publisher scope, reference ids — as POST /api/v1/events) ─ EventSink
//!   ▼ durable
//! <RESULT><STATUS>200</STATUS><DESC>…</DESC></RESULT>   |   {"code":"200","msg":…}
//! ```
//!
//! Why the choices:
//! - **One path after the records.** The records become events through the adapter and then
//!   go through exactly what `POST /api/v1/events` does (the [`crate::events::Judged`] it
//!   uses): the same decoding, jurisdiction, dead letters and durability before the answer.
//! - **The payload is judged whole before anything is stored.** A malformed document, a body
//!   that is not in the encoding it declares, or a missing token is answered with the format's
//!   error reply and nothing of it is kept: the sender's retry is the recovery, and a dead
//!   letter of unreadable bytes would help nobody. A well-formed record that maps to no event
//!   (an unmapped code, a missing column) is a dead letter like any refused line, and the
//!   reply names it.
//! - **Stateless per request.** Each request gets a fresh adapter: a record is placed from
//!   itself, `sources.csv` and `windows.csv` (SPEC §9), not from what another request (or
//!   another API process) saw, so the answer does not depend on which process took it.

mod xml;

use std::collections::HashMap;
use std::sync::Arc;

use adapters::{Adapter, Codes, Format};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use ingest::decode::{DecodeOptions, Receipt};

use crate::error::ApiError;
use crate::events::{may_publish, Judged, Sender, MAX_LINES};
use crate::server::Conn;
use crate::{wall_now, Api};

use xml::{Malformed, Record};

/// What the format endpoints map records with: each format's code tables
/// (`adapters/<format>.toml` over the defaults) and the reference directory's `sources.csv`.
#[derive(Debug, Clone, Default)]
pub struct FormatSettings {
    codes: HashMap<Format, Codes>,
    sources_csv: Option<String>,
}

impl FormatSettings {
    /// Settings from loaded code tables (a format not given uses its defaults) and the text
    /// of `sources.csv`, both already checked by the binary.
    pub fn new(codes: Vec<(Format, Codes)>, sources_csv: Option<String>) -> FormatSettings {
        FormatSettings {
            codes: codes.into_iter().collect(),
            sources_csv,
        }
    }

    /// The code tables of `format`.
    pub fn codes(&self, format: Format) -> Codes {
        self.codes
            .get(&format)
            .cloned()
            .unwrap_or_else(|| Codes::defaults(format))
    }

    /// The text of `sources.csv`, if the reference directory has one.
    pub fn sources_csv(&self) -> Option<&str> {
        self.sources_csv.as_deref()
    }
}

/// The `sdjc` interface methods and the table each carries (source-formats.md §3, §6).
const SDJC_METHODS: &[(&str, &str)] = &[
    ("receiveBasicInfo", "EA_JC_STEP_BASICINFO"),
    ("receiveProc", "EA_JC_STEP_PROC"),
    ("receiveSpecialnode", "EA_JC_STEP_SPECIALNODE"),
    ("receiveDone", "EA_JC_STEP_DONE"),
];

/// The `APPROVEDATAINFO` methods (source-formats.md §6): the blocks inside say what each
/// record is, so the method only has to be one of these.
const GDBS_METHODS: &[&str] = &[
    "receiveBusinessAccept",
    "receiveCourseInfo",
    "getSuspendInfo",
    "receiveCorrection",
    "receiveBusinessFinish",
    "receiveBusinessApproveResult",
];

/// Which reply convention answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convention {
    /// `<RESULT><STATUS>200</STATUS><DESC>…</DESC></RESULT>` (the gdbs family's).
    Result,
    /// `{"code":"200","msg":"…"}` (the Shandong interface's).
    Code,
}

/// A failure answered before anything is stored.
struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure {
            status: e.status,
            code: e.code,
            message: e.message,
        }
    }
}

impl From<Malformed> for Failure {
    fn from(m: Malformed) -> Failure {
        Failure {
            status: StatusCode::BAD_REQUEST,
            code: m.code,
            message: m.message,
        }
    }
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

impl Convention {
    fn failure(self, f: Failure) -> Response {
        let status = f.status.as_u16();
        match self {
            Convention::Result => xml_reply(
                f.status,
                format!(
                    "<RESULT><STATUS>{status}</STATUS><CODE>{}</CODE><DESC>{}</DESC></RESULT>",
                    f.code,
                    escape(&f.message)
                ),
            ),
            Convention::Code => (
                f.status,
                axum::Json(serde_json::json!({
                    "code": status.to_string(),
                    "error": f.code,
                    "msg": f.message,
                })),
            )
                .into_response(),
        }
    }
}

fn xml_reply(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}"),
    )
        .into_response()
}

/// The caller's token: the format's own place first (`accessToken` form field, `token`
/// header), then `Authorization: Bearer`, then `?access_token=`.
fn token<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Option<&'a str> {
    headers
        .get("token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .or_else(|| query.get("access_token").map(String::as_str))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// One request's records through the adapter and the ingest path, answered in `convention`.
struct Take<'a> {
    api: &'a Api,
    convention: Convention,
    format: Format,
    token: Option<&'a str>,
    conn: Option<&'a Arc<Conn>>,
    source: Option<&'a str>,
}

impl Take<'_> {
    async fn run(self, records: impl FnOnce() -> Result<Vec<Record>, Malformed>) -> Response {
        let convention = self.convention;
        match self.records(records).await {
            Ok(r) => r,
            Err(f) => convention.failure(f),
        }
    }

    async fn records(
        self,
        records: impl FnOnce() -> Result<Vec<Record>, Malformed>,
    ) -> Result<Response, Failure> {
        let api = self.api;
        let token = self.token.ok_or_else(|| {
            ApiError::unauthorized(match self.convention {
                Convention::Result => {
                    "no token: send a publisher account's token as accessToken (form) or in the \
                     token header"
                }
                Convention::Code => {
                    "no token: send a publisher account's token in the token header"
                }
            })
        })?;
        let who = api.authenticate(token)?;
        may_publish(&who)?;
        if let Some(conn) = self.conn {
            conn.authenticated();
        }
        let Some(sink) = api.0.events.get() else {
            return Err(ApiError::not_found("this process does not ingest events").into());
        };
        let records = records()?;
        if records.len() > MAX_LINES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_lines",
                format!(
                    "{} records in one request; send at most {MAX_LINES}",
                    records.len()
                ),
            )
            .into());
        }
        let directory = api.directory();
        let Some(reference) = directory.reference() else {
            return Err(ApiError::unavailable(
                "this process has no reference data to place the records with",
            )
            .into());
        };
        let settings = directory.formats();
        let mut adapter = Adapter::new(
            self.format,
            settings.codes(self.format),
            reference,
            settings.sources_csv.as_deref(),
            self.source,
        )
        .map_err(|e| {
            ApiError::unavailable(format!(
                "sources.csv is unusable ({}): fix it and restart",
                e.first().map_or(String::new(), |e| e.reason.clone())
            ))
        })?;
        let now = wall_now();
        let publisher = format!("http:{}", who.username);
        let opts = DecodeOptions {
            receipt: Receipt::At(now),
            default_source: Some(&publisher),
            max_future_skew_secs: api.0.config.future_skew_secs,
        };
        let mut judged = Judged::default();
        let mut events = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            let n = i + 1;
            // `http:<user>:<record>`, as POST /api/v1/events names its lines: the dead letters'
            // visibility and source health find the publisher in it.
            let dead_source = format!("http:{}:{n}", who.username);
            let row = serde_json::Value::Object(record).to_string();
            events.clear();
            match adapter.adapt_line(&row, &mut events) {
                Ok(()) => {
                    for ev in &events {
                        judged.judge(
                            Some(reference),
                            Sender::Publisher(&who),
                            &opts,
                            n,
                            ev.to_json().as_bytes(),
                            dead_source.clone(),
                        );
                    }
                }
                Err(dead) => judged.refuse(
                    n,
                    dead.reason.to_string(),
                    dead.column.as_deref().unwrap_or(""),
                    dead.message,
                    row.as_bytes(),
                    now.0,
                    dead_source,
                ),
            }
        }
        let answer = judged
            .commit(sink.as_ref())
            .await
            .map_err(crate::events::not_stored)?;
        answer.count(api);
        let status = if answer.rejected == 0 {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let summary = format!(
            "{} 个事件已接收，{} 个重复，{} 条拒收",
            answer.accepted, answer.duplicates, answer.rejected
        );
        Ok(match self.convention {
            Convention::Result => {
                let mut body = format!(
                    "<RESULT><STATUS>{}</STATUS><DESC>{}</DESC><ACCEPTED>{}</ACCEPTED>\
                     <DUPLICATES>{}</DUPLICATES><REJECTED>{}</REJECTED>",
                    status.as_u16(),
                    if answer.rejected == 0 {
                        format!("接收成功：{summary}")
                    } else {
                        format!("部分拒收：{summary}")
                    },
                    answer.accepted,
                    answer.duplicates,
                    answer.rejected
                );
                if answer.rejected > 0 {
                    body.push_str("<ERRORS>");
                    for (n, reason, field, message) in answer.refusals() {
                        body.push_str(&format!(
                            "<ERROR><RECORD>{n}</RECORD><REASON>{reason}</REASON>\
                             <FIELD>{}</FIELD><MESSAGE>{}</MESSAGE></ERROR>",
                            escape(field),
                            escape(message)
                        ));
                    }
                    body.push_str("</ERRORS>");
                }
                body.push_str("</RESULT>");
                xml_reply(status, body)
            }
            Convention::Code => {
                let mut reply = serde_json::to_value(&answer).unwrap_or_default();
                if let Some(map) = reply.as_object_mut() {
                    map.insert("code".into(), status.as_u16().to_string().into());
                    map.insert(
                        "msg".into(),
                        if answer.rejected == 0 {
                            format!("接收成功：{summary}")
                        } else {
                            format!("部分拒收：{summary}")
                        }
                        .into(),
                    );
                }
                (status, axum::Json(reply)).into_response()
            }
        })
    }
}

fn charset(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// `POST /api/v1/ingest/gdbs/exinfo`: an `<ExInfo>` document.
pub(crate) async fn exinfo(
    State(api): State<Api>,
    Query(query): Query<HashMap<String, String>>,
    conn: Option<Extension<Arc<Conn>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let take = Take {
        api: &api,
        convention: Convention::Result,
        format: Format::Gdbs,
        token: token(&headers, &query),
        conn: conn.as_ref().map(|c| &c.0),
        source: query.get("source").map(String::as_str),
    };
    let charset = charset(&headers);
    take.run(|| {
        let text = xml::decode(&body, charset.as_deref())?;
        xml::exinfo(&xml::parse(&text)?)
    })
    .await
}

/// `POST /api/v1/ingest/gdbs/approve/{method}`: a form with `xmlStr` (an `<APPROVEDATAINFO>`
/// document) and `accessToken`.
pub(crate) async fn approve(
    State(api): State<Api>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    conn: Option<Extension<Arc<Conn>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !GDBS_METHODS.iter().any(|m| m.eq_ignore_ascii_case(&method)) {
        return Convention::Result.failure(Failure {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!(
                "no method {method:?}; the APPROVEDATAINFO methods are {}",
                GDBS_METHODS.join(", ")
            ),
        });
    }
    let fields = xml::form_fields(&body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.as_slice() == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    };
    let form_token = field("accessToken").and_then(|t| std::str::from_utf8(t).ok());
    let take = Take {
        api: &api,
        convention: Convention::Result,
        format: Format::Gdbs,
        token: form_token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .or_else(|| token(&headers, &query)),
        conn: conn.as_ref().map(|c| &c.0),
        source: query.get("source").map(String::as_str),
    };
    take.run(|| {
        let xml_str = field("xmlStr")
            .filter(|x| !x.trim_ascii().is_empty())
            .ok_or_else(|| Malformed {
                code: "no_records",
                message: "the form has no xmlStr field (application/x-www-form-urlencoded: \
                          xmlStr=<APPROVEDATAINFO>…&accessToken=…)"
                    .into(),
            })?;
        let text = xml::decode(xml_str, None)?;
        xml::approve(&xml::parse(&text)?)
    })
    .await
}

/// `POST /api/v1/ingest/sdjc/{method}`: one record (a JSON object), several (an array), or
/// either wrapped as `{"data": …}`.
pub(crate) async fn sdjc(
    State(api): State<Api>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    conn: Option<Extension<Arc<Conn>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(&(_, table)) = SDJC_METHODS
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(&method))
    else {
        let known: Vec<&str> = SDJC_METHODS.iter().map(|(m, _)| *m).collect();
        return Convention::Code.failure(Failure {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("no method {method:?}; the methods are {}", known.join(", ")),
        });
    };
    let take = Take {
        api: &api,
        convention: Convention::Code,
        format: Format::Sdjc,
        token: token(&headers, &query),
        conn: conn.as_ref().map(|c| &c.0),
        source: query.get("source").map(String::as_str),
    };
    take.run(|| sdjc_records(&body, table)).await
}

/// The records of an `sdjc` body, each given its table.
fn sdjc_records(body: &[u8], table: &str) -> Result<Vec<Record>, Malformed> {
    let bad = |message: String| Malformed {
        code: "malformed_json",
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let value = match value {
        serde_json::Value::Object(mut o) if o.len() == 1 && o.contains_key("data") => {
            match o.remove("data").unwrap_or_default() {
                serde_json::Value::String(_) => {
                    return Err(Malformed {
                        code: "encrypted_body",
                        message: "data is a string (an SM2-encrypted body?): jiancha takes the \
                                  records as plain JSON over HTTPS; send {\"data\": {…}} or the \
                                  record itself"
                            .into(),
                    })
                }
                inner => inner,
            }
        }
        v => v,
    };
    let items = match value {
        serde_json::Value::Array(items) => items,
        v => vec![v],
    };
    if items.is_empty() {
        return Err(Malformed {
            code: "no_records",
            message: "no record: send a JSON object or an array of them".into(),
        });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            serde_json::Value::Object(mut o) => {
                o.insert("_table".into(), table.into());
                Ok(o)
            }
            other => Err(bad(format!(
                "record {} is not a JSON object but {other}",
                i + 1
            ))),
        })
        .collect()
}

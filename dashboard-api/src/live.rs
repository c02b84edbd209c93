//! `GET /api/v1/live`: the WebSocket feed.
//!
//! Protocol (server → client, JSON text messages; a snapshot may come in several frames of one
//! message, which WebSocket clients join):
//! - `{"type":"snapshot","seq":S,"reason":"connect"|"lagged","alerts":[…],"windows":[…]}` —
//!   replaces everything the client shows: the active alerts and the windows in its scope at
//!   sequence S;
//! - `{"type":"alert","seq":N,"alert":{…}}`, `{"type":"window","seq":N,"window":{…}}` — one
//!   change, N = the previous message's seq + 1. An alert whose `status` is no longer active
//!   (`resolved`, `dismissed`, `retracted`) leaves the queue;
//! - `{"type":"heartbeat","seq":N,"at":"…"}` every heartbeat interval, with a ping (N: the
//!   last message's).
//!
//! `seq` numbers *this connection's* messages. It used to be the hub's change counter, whose
//! gaps and heartbeat value told a county user how much changed in the rest of the city
//! (docs/SECURITY.md); the hub's shared text is copied once per socket to renumber it.
//!
//! A session that ends really ends: when the token expires, or the users change so that it no
//! longer verifies (user removed, role, region or password changed, sessions revoked), the
//! socket is closed with code 1008 and the reason, within the users file's reload interval.
//!
//! A client that falls behind the change buffer (it stopped reading, or reads too slowly) is not
//! dropped: it gets a fresh `snapshot` with `"reason":"lagged"` and continues from there. Only a
//! client that cannot take a single message within the send timeout, or answers nothing (not
//! even pongs) within the client timeout, is closed, with a close frame saying why and a metric.
//!
//! Each socket has a send task (this one) and a receive task (pongs, close), as the socket's
//! two directions block independently. The handshake is answered here and the socket is
//! tokio-tungstenite's (axum's `WebSocket` cannot send a message in frames); what a socket keeps
//! while idle is sized in docs/BENCHMARKS.md ("10,000 WebSocket clients").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;

use crate::auth::Principal;
use crate::error::{from_query_rejection, ApiError};
use crate::hub::Filter;
use crate::metrics::ApiMetrics;
use crate::{wall_now, Api};

/// Optional narrowing of the feed; the jurisdiction always applies.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LiveQuery {
    /// The token (browsers cannot set headers on a WebSocket).
    #[allow(dead_code)] // read by the `Principal` extractor from the raw query
    access_token: Option<String>,
    /// Only this centre.
    center: Option<String>,
    /// Only this department.
    department: Option<String>,
    /// Only alerts of these levels, comma-separated.
    level: Option<String>,
}

pub(crate) async fn upgrade(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<LiveQuery>, QueryRejection>,
    mut request: Request,
) -> Response {
    let filter = match q.map_err(from_query_rejection).and_then(|Query(q)| {
        Ok(Filter {
            levels: crate::rest::levels(q.level.as_deref())?,
            center: q.center,
            department: q.department,
            ..Filter::scope(&who)
        })
    }) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let token = Api::bearer(request.headers(), request.uri())
        .unwrap_or_default()
        .to_string();
    let Some(place) = LivePlace::take(&api, &who.username) else {
        api.0
            .metrics
            .refused
            .with_label_values(&["live_per_user"])
            .inc();
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!(
                "user {:?} already has {} live connections open, the most allowed; close one \
                 (another tab or screen) and reconnect",
                who.username, api.0.config.limits.max_live_per_user
            ),
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return resp;
    };
    let session = Session { token, who };
    let accept = match websocket_key(request.headers()) {
        Ok(key) => derive_accept_key(key.as_bytes()),
        Err(why) => return not_websocket(StatusCode::BAD_REQUEST, why),
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return not_websocket(
            StatusCode::UPGRADE_REQUIRED,
            "the connection cannot be upgraded",
        );
    };
    // Dashboards send nothing but pongs and a close (at most 131 bytes a frame): tungstenite's
    // default 128 KiB read buffer per socket would be most of a connection's memory, and it is
    // zeroed up to its capacity before each read, so even 4 KiB stays resident on every idle
    // socket. A longer frame (up to the limit) grows the buffer for itself. Writes go out as
    // they come (no batching buffer).
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    tokio::spawn(async move {
        // The client went away during the handshake: nothing to serve.
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        serve(api, filter, session, socket).await;
        drop(place);
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The client's `Sec-WebSocket-Key` if the request is a WebSocket opening handshake (RFC 6455
/// §4.2.1), or what is missing. (The upgrade is done here rather than by axum's
/// `WebSocketUpgrade` so that the socket is tungstenite's own, which can send a snapshot in
/// fragments: see `send_snapshot`.)
fn websocket_key(headers: &HeaderMap) -> Result<&HeaderValue, &'static str> {
    let lists = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !lists(header::CONNECTION, "upgrade") {
        return Err("the Connection header does not say upgrade");
    }
    if !lists(header::UPGRADE, "websocket") {
        return Err("the Upgrade header does not say websocket");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err("the Sec-WebSocket-Version header is not 13");
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("the Sec-WebSocket-Key header is missing")
}

fn not_websocket(status: StatusCode, why: &str) -> Response {
    ApiError::new(
        status,
        "bad_request",
        format!("{why}: connect with a WebSocket client"),
    )
    .into_response()
}

/// One of the WebSockets a user may hold (`max_live_per_user`), given back on drop.
struct LivePlace(Api, String);

impl LivePlace {
    fn take(api: &Api, username: &str) -> Option<LivePlace> {
        let mut open = api.0.live_sockets.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(username.to_string()).or_default();
        if *n >= api.0.config.limits.max_live_per_user {
            return None;
        }
        *n += 1;
        Some(LivePlace(api.clone(), username.to_string()))
    }
}

impl Drop for LivePlace {
    fn drop(&mut self) {
        let mut open = self
            .0
             .0
            .live_sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// Who the socket serves, and the token that let them in (checked again when users change).
struct Session {
    token: String,
    who: Principal,
}

/// A close reason fits a control frame: at most 123 bytes (RFC 6455 §5.5), cut at a character.
fn close_reason(text: &str) -> String {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// `text` (a hub message, `{"type":"…","seq":N,…`) with its seq replaced by `seq`.
fn renumber(text: &str, seq: u64) -> String {
    const KEY: &str = "\"seq\":";
    let Some(at) = text.find(KEY).map(|i| i + KEY.len()) else {
        return text.to_string();
    };
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..at]);
    out.push_str(&seq.to_string());
    out.push_str(&text[at + digits..]);
    out
}

/// Bytes read from a client at a time (see `upgrade`).
const READ_BUFFER: usize = 256;

/// The largest message a client may send (they send nothing but pongs and a close).
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

/// The largest frame of a snapshot (see `send_snapshot`).
const SNAPSHOT_FRAGMENT: usize = 4 * 1024;

/// Why the server closes on a client that talks: the feed is one-way.
fn refusal(
    msg: &Result<Message, tokio_tungstenite::tungstenite::Error>,
) -> Option<(CloseCode, &'static str)> {
    match msg {
        Ok(Message::Text(_) | Message::Binary(_)) => Some((
            CloseCode::Policy,
            "this feed is one-way: send nothing but pongs and close",
        )),
        Ok(_) => None,
        // Tungstenite refuses an oversized message (or a protocol violation) with an error.
        Err(_) => Some((
            CloseCode::Size,
            "message too large or malformed: this feed is one-way",
        )),
    }
}

/// Milliseconds since `base`, for the receive task to stamp what it heard.
fn millis(base: std::time::Instant) -> u64 {
    base.elapsed().as_millis() as u64
}

async fn serve(api: Api, filter: Filter, session: Session, socket: WebSocket) {
    let metrics = api.0.metrics.clone();
    metrics.ws_clients.inc();
    let (mut sink, mut stream) = socket.split();
    let base = std::time::Instant::now();
    let heard = Arc::new(AtomicU64::new(0));
    let heard_in = heard.clone();
    // The receive task ends when the client closes or goes, or with the reason it is refused.
    let mut receive = tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            if let Some(refused) = refusal(&msg) {
                return Some(refused);
            }
            heard_in.store(millis(base), Ordering::Relaxed);
            if let Ok(Message::Close(_)) = msg {
                break;
            }
        }
        None
    });
    tokio::select! {
        reason = send_loop(&api, &filter, &session, &mut sink, &heard, base) => {
            if let Some(reason) = reason {
                metrics.ws_dropped.with_label_values(&[reason]).inc();
            }
        }
        refused = &mut receive => {
            if let Ok(Some((code, reason))) = refused {
                metrics.ws_dropped.with_label_values(&["refused"]).inc();
                let frame = CloseFrame { code, reason: reason.into() };
                let limit = api.0.config.send_timeout;
                let _ = send_one(&mut sink, Message::Close(Some(frame)), limit, &metrics).await;
            }
        }
    }
    receive.abort();
    metrics.ws_clients.dec();
}

type WebSocket = WebSocketStream<TokioIo<Upgraded>>;
type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Send one message within `limit`. `Err(Some(reason))` when the server gives up on the client,
/// `Err(None)` when the client is already gone.
async fn send_one(
    sink: &mut Sink,
    msg: Message,
    limit: std::time::Duration,
    metrics: &crate::metrics::ApiMetrics,
) -> Result<(), Option<&'static str>> {
    send_frames(sink, std::iter::once(msg), limit, metrics).await
}

/// Send a snapshot within `limit`, as one message in frames of at most `SNAPSHOT_FRAGMENT`
/// bytes (RFC 6455 §5.4; clients and browsers join them). Tungstenite copies each frame into
/// the socket's write buffer, which keeps its largest size for the socket's life: a snapshot
/// sent whole would leave every idle socket holding its size (100 KiB for 200 open alerts).
async fn send_snapshot(
    sink: &mut Sink,
    snapshot: String,
    limit: std::time::Duration,
    metrics: &crate::metrics::ApiMetrics,
) -> Result<(), Option<&'static str>> {
    let bytes = Bytes::from(snapshot);
    let len = bytes.len();
    // At least one frame, so that an empty text would still be a message.
    let frames = (0..len.max(1)).step_by(SNAPSHOT_FRAGMENT).map(|start| {
        let end = len.min(start + SNAPSHOT_FRAGMENT);
        let opcode = if start == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        Message::Frame(Frame::message(
            bytes.slice(start..end),
            OpCode::Data(opcode),
            end == len,
        ))
    });
    send_frames(sink, frames, limit, metrics).await
}

/// Send the frames of one message, all within `limit` (see `send_one`).
async fn send_frames(
    sink: &mut Sink,
    frames: impl Iterator<Item = Message>,
    limit: std::time::Duration,
    metrics: &crate::metrics::ApiMetrics,
) -> Result<(), Option<&'static str>> {
    let all = async {
        for frame in frames {
            sink.send(frame).await?;
        }
        Ok::<(), tokio_tungstenite::tungstenite::Error>(())
    };
    match tokio::time::timeout(limit, all).await {
        Ok(Ok(())) => {
            metrics.ws_messages.inc();
            Ok(())
        }
        Ok(Err(_)) => Err(None),
        Err(_) => Err(Some("slow")),
    }
}

/// When a socket's first heartbeat is due: sockets opened together (every dashboard reconnecting
/// after a restart, or a benchmark's clients) would otherwise beat together for ever, 10,000
/// pings and heartbeats in one burst that delays the alerts sent during it. The n-th socket's
/// first beat is n times the golden ratio of an interval later, modulo the interval, which
/// spreads any number of consecutive sockets evenly over it.
fn first_beat(interval: std::time::Duration) -> std::time::Duration {
    static SOCKETS: AtomicU64 = AtomicU64::new(0);
    let n = SOCKETS.fetch_add(1, Ordering::Relaxed);
    let fraction = (n as f64 * 0.618_033_988_749_895).fract();
    interval
        .mul_f64(fraction)
        .max(std::time::Duration::from_millis(1))
}

/// Close the socket with 1008 and `why` (the session ended).
async fn end_session(sink: &mut Sink, why: &str, limit: std::time::Duration, metrics: &ApiMetrics) {
    let frame = CloseFrame {
        code: CloseCode::Policy,
        reason: close_reason(why).into(),
    };
    let _ = send_one(sink, Message::Close(Some(frame)), limit, metrics).await;
}

/// Send the snapshot, then changes and heartbeats, until the client goes or its session ends.
/// Returns why the server closed the socket, if it did.
async fn send_loop(
    api: &Api,
    filter: &Filter,
    session: &Session,
    sink: &mut Sink,
    heard: &AtomicU64,
    base: std::time::Instant,
) -> Option<&'static str> {
    let config = &api.0.config;
    let metrics = &api.0.metrics;
    let limit = config.send_timeout;
    let mut users = api.0.users_changed.subscribe();
    // When the token expires, by the wall clock (tokens carry Unix seconds): checked at the
    // expiry and at least daily (tokens may live a year; the wall clock may be set).
    let until_expiry = || {
        let secs = (session.who.expires_at - wall_now().0).clamp(0, 86_400) as u64;
        tokio::time::Instant::now() + std::time::Duration::from_secs(secs)
    };
    let expiry = tokio::time::sleep_until(until_expiry());
    tokio::pin!(expiry);
    // This socket's message numbers (see the module doc); `hub_seq` is where the hub was.
    let mut sent: u64 = 1;
    let (snapshot, mut hub_seq, mut rx) = api.0.hub.snapshot_and_subscribe(filter, "connect");
    if let Err(why) = send_snapshot(sink, renumber(&snapshot, sent), limit, metrics).await {
        return why;
    }
    let mut beat = tokio::time::interval_at(
        tokio::time::Instant::now() + first_beat(config.heartbeat),
        config.heartbeat,
    );
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(d) => {
                    if d.seq <= hub_seq {
                        continue;
                    }
                    hub_seq = d.seq;
                    if filter.admits_delta(&d) {
                        sent += 1;
                        let text = renumber(&d.text, sent);
                        if let Err(why) = send_one(sink, Message::Text(text.into()), limit, metrics).await {
                            return why;
                        }
                        metrics.push_seconds.observe(d.born.elapsed().as_secs_f64());
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    metrics.ws_resyncs.inc();
                    let (snapshot, s, fresh) = api.0.hub.snapshot_and_subscribe(filter, "lagged");
                    hub_seq = s;
                    rx = fresh;
                    sent += 1;
                    if let Err(why) = send_snapshot(sink, renumber(&snapshot, sent), limit, metrics).await {
                        return why;
                    }
                }
                Err(RecvError::Closed) => return None,
            },
            () = &mut expiry => {
                if wall_now().0 < session.who.expires_at {
                    expiry.as_mut().reset(until_expiry());
                    continue;
                }
                end_session(sink, "the token has expired; log in again", limit, metrics).await;
                return Some("expired");
            }
            changed = users.changed() => {
                if changed.is_err() {
                    return None;
                }
                if let Err(e) = api.authenticate(&session.token) {
                    end_session(sink, &e.message, limit, metrics).await;
                    return Some("revoked");
                }
            }
            _ = beat.tick() => {
                let silent_ms = millis(base).saturating_sub(heard.load(Ordering::Relaxed));
                if silent_ms > config.client_timeout.as_millis() as u64 {
                    let frame = CloseFrame {
                        code: CloseCode::Policy,
                        reason: "no answer to pings; reconnect".into(),
                    };
                    let _ = send_one(sink, Message::Close(Some(frame)), limit, metrics).await;
                    return Some("silent");
                }
                if let Err(why) = send_one(sink, Message::Ping(Default::default()), limit, metrics).await {
                    return why;
                }
                let text = format!(
                    "{{\"type\":\"heartbeat\",\"seq\":{sent},\"at\":\"{}\"}}",
                    wall_now()
                );
                if let Err(why) = send_one(sink, Message::Text(text.into()), limit, metrics).await {
                    return why;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_renumbered_and_close_reasons_fit_a_frame() {
        assert_eq!(
            renumber(r#"{"type":"alert","seq":123456,"alert":{"seq":7}}"#, 3),
            r#"{"type":"alert","seq":3,"alert":{"seq":7}}"#
        );
        let long = "用户".repeat(40);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(&cut) && !cut.is_empty());
    }
}

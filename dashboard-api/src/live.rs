//! `GET /api/v1/live`: the WebSocket feed.
//!
//! Protocol (server → client, JSON text frames):
//! - `{"type":"snapshot","seq":S,"reason":"connect"|"lagged","alerts":[…],"windows":[…]}` —
//!   replaces everything the client shows: the active alerts and the windows in its scope at
//!   sequence S;
//! - `{"type":"alert","seq":N,"alert":{…}}`, `{"type":"window","seq":N,"window":{…}}` — one
//!   change, N > S and increasing (gaps are changes outside the client's scope). An alert whose
//!   `status` is no longer active (`resolved`, `dismissed`, `retracted`) leaves the queue;
//! - `{"type":"heartbeat","seq":N,"at":"…"}` every heartbeat interval, with a ping.
//!
//! A client that falls behind the change buffer (it stopped reading, or reads too slowly) is not
//! dropped: it gets a fresh `snapshot` with `"reason":"lagged"` and continues from there. Only a
//! client that cannot take a single message within the send timeout, or answers nothing (not
//! even pongs) within the client timeout, is closed, with a close frame saying why and a metric.
//!
//! Each socket has a send task (this one) and a receive task (pongs, close), as the socket's
//! two directions block independently.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::auth::Principal;
use crate::error::{from_query_rejection, ApiError};
use crate::hub::Filter;
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
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
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
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            return ApiError::new(
                r.status(),
                "bad_request",
                format!("{}: connect with a WebSocket client", r.body_text()),
            )
            .into_response()
        }
    };
    // Dashboards send nothing but pongs and a close (at most 131 bytes a frame): tungstenite's
    // default 128 KiB read buffer per socket would be most of a connection's memory, and it is
    // zeroed up to its capacity before each read, so even 4 KiB stays resident on every idle
    // socket. A longer frame (up to the limit) grows the buffer for itself. Writes go out as
    // they come (no batching buffer).
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| serve(api, filter, socket))
}

/// Bytes read from a client at a time (see `upgrade`).
const READ_BUFFER: usize = 256;

/// The largest message a client may send (they send nothing but pongs and a close).
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

/// Why the server closes on a client that talks: the feed is one-way.
fn refusal(msg: &Result<Message, axum::Error>) -> Option<(u16, &'static str)> {
    match msg {
        Ok(Message::Text(_) | Message::Binary(_)) => Some((
            close_code::POLICY,
            "this feed is one-way: send nothing but pongs and close",
        )),
        Ok(_) => None,
        // Tungstenite refuses an oversized message (or a protocol violation) with an error.
        Err(_) => Some((
            close_code::SIZE,
            "message too large or malformed: this feed is one-way",
        )),
    }
}

/// Milliseconds since `base`, for the receive task to stamp what it heard.
fn millis(base: std::time::Instant) -> u64 {
    base.elapsed().as_millis() as u64
}

async fn serve(api: Api, filter: Filter, socket: WebSocket) {
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
        reason = send_loop(&api, &filter, &mut sink, &heard, base) => {
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

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Send one message within `limit`. `Err(Some(reason))` when the server gives up on the client,
/// `Err(None)` when the client is already gone.
async fn send_one(
    sink: &mut Sink,
    msg: Message,
    limit: std::time::Duration,
    metrics: &crate::metrics::ApiMetrics,
) -> Result<(), Option<&'static str>> {
    match tokio::time::timeout(limit, sink.send(msg)).await {
        Ok(Ok(())) => {
            metrics.ws_messages.inc();
            Ok(())
        }
        Ok(Err(_)) => Err(None),
        Err(_) => Err(Some("slow")),
    }
}

/// Send the snapshot, then changes and heartbeats, until the client goes. Returns why the server
/// closed the socket, if it did.
async fn send_loop(
    api: &Api,
    filter: &Filter,
    sink: &mut Sink,
    heard: &AtomicU64,
    base: std::time::Instant,
) -> Option<&'static str> {
    let config = &api.0.config;
    let metrics = &api.0.metrics;
    let limit = config.send_timeout;
    let (snapshot, mut seq, mut rx) = api.0.hub.snapshot_and_subscribe(filter, "connect");
    if let Err(why) = send_one(sink, Message::Text(snapshot.into()), limit, metrics).await {
        return why;
    }
    let mut beat = tokio::time::interval(config.heartbeat);
    beat.tick().await;
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(d) => {
                    if d.seq <= seq {
                        continue;
                    }
                    seq = d.seq;
                    if filter.admits_delta(&d) {
                        if let Err(why) = send_one(sink, Message::Text(d.text.clone()), limit, metrics).await {
                            return why;
                        }
                        metrics.push_seconds.observe(d.born.elapsed().as_secs_f64());
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    metrics.ws_resyncs.inc();
                    let (snapshot, s, fresh) = api.0.hub.snapshot_and_subscribe(filter, "lagged");
                    seq = s;
                    rx = fresh;
                    if let Err(why) = send_one(sink, Message::Text(snapshot.into()), limit, metrics).await {
                        return why;
                    }
                }
                Err(RecvError::Closed) => return None,
            },
            _ = beat.tick() => {
                let silent_ms = millis(base).saturating_sub(heard.load(Ordering::Relaxed));
                if silent_ms > config.client_timeout.as_millis() as u64 {
                    let frame = CloseFrame {
                        code: close_code::POLICY,
                        reason: "no answer to pings; reconnect".into(),
                    };
                    let _ = send_one(sink, Message::Close(Some(frame)), limit, metrics).await;
                    return Some("silent");
                }
                if let Err(why) = send_one(sink, Message::Ping(Default::default()), limit, metrics).await {
                    return why;
                }
                let text = format!(
                    "{{\"type\":\"heartbeat\",\"seq\":{seq},\"at\":\"{}\"}}",
                    wall_now()
                );
                if let Err(why) = send_one(sink, Message::Text(text.into()), limit, metrics).await {
                    return why;
                }
            }
        }
    }
}

//! The HTTP server every API process runs ([`serve`]): axum's router behind hyper's HTTP/1
//! connections, with the limits that keep slow, idle and silent clients from starving the
//! others (docs/SECURITY.md, "Limits").
//!
//! ```text
//! accept ─ over max_connections? ─ yes ─▶ 503 JSON, close
//!    │ no
//!    ▼ register (unauthenticated; over max_unauthenticated: the oldest idle one is closed)
//! hyper http1: head within header_read_timeout ─▶ request (+ ClientAddr, Arc<Conn>)
//!    │ body chunks within idle_timeout, answer taken by the client within idle_timeout
//!    ▼
//! router ─ a valid token marks the connection authenticated (it leaves the eviction list)
//! ```
//!
//! Why these and not others: a connection costs the server a task and a socket, nothing more,
//! so what runs out is the descriptor table or the operator's cap. A silent socket is therefore
//! bounded three ways: hyper closes it when no request head arrives within
//! `header_read_timeout` (also between keep-alive requests), the number of connections that
//! never showed a token is capped with the *oldest* idle one closed first (so a flood of silent
//! sockets cannot keep a health probe or a login out), and the overall cap answers a JSON 503
//! rather than leaving a client hanging. A body that stops arriving, or an answer the client
//! stops reading, ends the connection after `idle_timeout`. WebSockets keep their connection's
//! place in the count until they close (the guard lives in the socket's I/O).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Sleep;

use crate::Api;

/// Limits against slow, idle and flooding clients (config `[security]`, docs/SECURITY.md).
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request head (line and headers) must arrive within this, counted from the opening of
    /// the connection or the end of the previous answer; otherwise the connection is closed.
    pub header_read_timeout: Duration,
    /// A request body that delivers nothing for this long, or an answer the client does not
    /// take for this long, ends the connection.
    pub idle_timeout: Duration,
    /// Connections open at once (WebSockets included); above it a new one gets a JSON 503.
    pub max_connections: usize,
    /// Connections that have not yet shown a valid token; above it the oldest idle one is
    /// closed to make room.
    pub max_unauthenticated: usize,
    /// Open WebSockets per user; above it the handshake is refused with 429.
    pub max_live_per_user: usize,
    /// Failed logins for one username within `login_window` before it is locked.
    pub login_failures_per_user: u32,
    /// Failed logins from one address within `login_window` before it is locked.
    pub login_failures_per_address: u32,
    /// The window failures are counted in.
    pub login_window: Duration,
    /// How long a locked username or address is refused (without checking the password).
    pub login_lockout: Duration,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a reverse proxy
    /// that sets it); otherwise the peer address.
    pub trust_forwarded_for: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 16_384,
            max_unauthenticated: 512,
            max_live_per_user: 16,
            login_failures_per_user: 5,
            login_failures_per_address: 30,
            login_window: Duration::from_secs(15 * 60),
            login_lockout: Duration::from_secs(15 * 60),
            trust_forwarded_for: false,
        }
    }
}

/// The peer address of the connection a request came on (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// One connection's place in the [`Connections`] (a request extension, as `Arc<Conn>`).
#[derive(Debug)]
pub(crate) struct Conn {
    id: u64,
    registry: Arc<Connections>,
    authenticated: AtomicBool,
    /// Requests being answered (an unauthenticated connection in a request is not evicted).
    busy: AtomicUsize,
    evict: Notify,
}

impl Conn {
    /// The connection showed a valid token: it no longer counts as unauthenticated.
    pub(crate) fn authenticated(&self) {
        if !self.authenticated.swap(true, Ordering::Relaxed) {
            self.registry.lock().remove(&self.id);
        }
    }
}

/// Every open connection: a count, and the unauthenticated ones oldest first.
#[derive(Debug)]
struct Connections {
    open: AtomicUsize,
    unauthenticated: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next: std::sync::atomic::AtomicU64,
    max_unauthenticated: usize,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.unauthenticated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Register a new connection, closing the oldest idle unauthenticated one if the new one
    /// would exceed the cap.
    fn open(self: &Arc<Self>) -> ConnGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            registry: self.clone(),
            authenticated: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            evict: Notify::new(),
        });
        let mut unauth = self.lock();
        if unauth.len() >= self.max_unauthenticated {
            let idle = unauth
                .values()
                .find(|c| c.busy.load(Ordering::Relaxed) == 0)
                .map(|c| c.id);
            if let Some(old) = idle.and_then(|id| unauth.remove(&id)) {
                old.evict.notify_one();
            }
        }
        unauth.insert(conn.id, conn.clone());
        ConnGuard(conn)
    }
}

/// Holds a connection's place until the connection (or the WebSocket it became) is gone.
struct ConnGuard(Arc<Conn>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let registry = &self.0.registry;
        registry.open.fetch_sub(1, Ordering::Relaxed);
        registry.lock().remove(&self.0.id);
    }
}

/// Serve `api`'s router on `listener` until the listener fails, with `api`'s [`Limits`].
pub async fn serve(listener: TcpListener, api: Api) -> std::io::Result<()> {
    let limits = api.0.config.limits.clone();
    let router = api.router();
    let registry = Arc::new(Connections {
        open: AtomicUsize::new(0),
        unauthenticated: Mutex::new(BTreeMap::new()),
        next: std::sync::atomic::AtomicU64::new(0),
        max_unauthenticated: limits.max_unauthenticated.max(1),
    });
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors (EMFILE) or a connection reset before it was accepted:
                // the listener itself is fine; breathe and go on.
                log::warn!("API: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if registry.open.load(Ordering::Relaxed) >= limits.max_connections {
            api.0
                .metrics
                .refused
                .with_label_values(&["connections"])
                .inc();
            tokio::spawn(refuse(stream));
            continue;
        }
        let guard = registry.open();
        tokio::spawn(connection(
            stream,
            peer,
            guard,
            router.clone(),
            limits.clone(),
        ));
    }
}

/// Answer a connection over the cap with a JSON 503 and close it.
async fn refuse(mut stream: TcpStream) {
    let body = crate::error::ApiError::unavailable(
        "too many connections to this server; try again in a few seconds",
    )
    .zh("服务器连接数已满，请几秒钟后再试")
    .body()
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 5\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Read what the client already sent first: closing a socket with unread bytes resets it,
    // and the client would see the reset instead of the answer. Then wait (briefly) for the
    // client to close.
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut sink)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    guard: ConnGuard,
    router: Router,
    limits: Limits,
) {
    let _ = stream.set_nodelay(true);
    let conn = guard.0.clone();
    let io = TokioIo::new(StallIo {
        inner: stream,
        limit: limits.idle_timeout,
        stalled: None,
        _guard: guard,
    });
    let idle = limits.idle_timeout;
    let per_request = conn.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        req.extensions_mut().insert(per_request.clone());
        let busy = Busy::new(&per_request);
        let req = req.map(|body| Body::new(IdleBody::new(body, idle)));
        let mut router = router.clone();
        async move {
            let answer = tower_service::Service::call(&mut router, req).await;
            drop(busy);
            answer
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let serving = http.serve_connection(io, service).with_upgrades();
    tokio::select! {
        _ = serving => {}
        () = conn.evict.notified() => {}
    }
}

/// Marks a connection busy while one of its requests is answered.
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: &Arc<Conn>) -> Busy {
        conn.busy.fetch_add(1, Ordering::Relaxed);
        Busy(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request body whose next frame must come within `limit` of the previous one (or of the
/// handler's first read: a handler that waits before reading is not the client's fault).
struct IdleBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
    reading: bool,
}

impl IdleBody {
    fn new(inner: Incoming, limit: Duration) -> IdleBody {
        IdleBody {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
            reading: false,
        }
    }
}

impl http_body::Body for IdleBody {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if !self.reading {
            self.reading = true;
            let first = tokio::time::Instant::now() + self.limit;
            self.deadline.as_mut().reset(first);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + self.limit;
                self.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                    "the request body stalled: nothing arrived for {} s",
                    self.limit.as_secs()
                )
                .into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A client socket whose writes may wait at most `limit` for the client to read.
struct StallIo {
    inner: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    _guard: ConnGuard,
}

impl StallIo {
    /// `Pending` from a write: start (or check) the stall clock.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let limit = self.limit;
        let clock = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match clock.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for StallIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

//! jiancha's dashboard API (axum): live alerts and window status over WebSocket, REST for the
//! alert queue and the inspector workflow, auth and jurisdiction, OpenAPI, metrics and probes.
//!
//! ```text
//! engine / Kafka topics ─ Input ─▶ Hub ─ broadcast ─▶ /api/v1/live (one task pair per socket)
//!                                   ▲
//! inspector POST ─ prepare ─ Backend::record_action ─ apply ┘     REST reads the Hub
//! ```
//! The crate knows nothing of Kafka, ClickHouse or SQLite: the binary feeds [`hub::Input`]s in
//! and supplies a [`backend::Backend`]. Every response outside a user's jurisdiction is
//! indistinguishable from "does not exist"; every error is JSON ([`error::ApiError`]).

pub mod auth;
pub mod backend;
pub mod error;
pub mod events;
pub mod export;
pub mod formats;
mod history;
pub mod hub;
mod live;
pub mod metrics;
pub mod model;
mod rest;
mod server;
mod sources;
mod throttle;
mod web;

pub use server::{serve, ClientAddr, Limits};
pub use web::{Directory, SourceEntry};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use prometheus::Registry;
use rules::time::Instant;

use auth::{Principal, TokenKey, Users};
use backend::Backend;
use error::ApiError;
use hub::{Hub, Input};
use metrics::ApiMetrics;

/// Tunables of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// How long a login token is valid.
    pub token_ttl_secs: i64,
    /// Interval of WebSocket heartbeats (a JSON `heartbeat` message and a ping).
    pub heartbeat: Duration,
    /// A client that sends nothing (not even a pong) for this long is closed.
    pub client_timeout: Duration,
    /// A client that cannot take one message within this long is closed.
    pub send_timeout: Duration,
    /// Changes kept for clients that fall behind; beyond this a client is resynchronised.
    pub live_buffer: usize,
    /// Finished alerts are kept in memory (for the live queue) this long after their last change.
    pub keep_finished: Duration,
    /// Ingest refuses events whose `occurred_at` is further than this ahead of receipt
    /// (SPEC §3: 10 minutes; the policy's `future_skew_minutes`).
    pub future_skew_secs: i64,
    /// The policy whose `score_*` weights and `on_site_target` the 绩效 table uses.
    pub policy: rules::Policy,
    /// Timeouts, connection caps and login rate limits (docs/SECURITY.md).
    pub limits: Limits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            token_ttl_secs: 12 * 3600,
            heartbeat: Duration::from_secs(15),
            client_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            live_buffer: 1024,
            keep_finished: Duration::from_secs(7 * 86_400),
            future_skew_secs: 600,
            policy: rules::Policy::default(),
            limits: Limits::default(),
        }
    }
}

struct Inner {
    hub: Arc<Hub>,
    users: RwLock<Arc<Users>>,
    key: TokenKey,
    backend: Arc<dyn Backend>,
    metrics: ApiMetrics,
    registry: Registry,
    config: ApiConfig,
    /// Inspector actions are checked, stored and applied one at a time, so two inspectors
    /// acting on one alert at once cannot both pass the state check.
    action_lock: tokio::sync::Mutex<()>,
    /// Where `POST /api/v1/events` sends events (unset: the process does not ingest).
    events: std::sync::OnceLock<Arc<dyn events::EventSink>>,
    /// Names the dashboards show (empty until the binary sets the reference's).
    directory: RwLock<Arc<Directory>>,
    /// Bumped whenever the users change, so open WebSockets check their token again.
    users_changed: tokio::sync::watch::Sender<u64>,
    /// The users file revocations are written to (unset: they stay in memory).
    users_file: std::sync::OnceLock<PathBuf>,
    /// Revocations rewrite the users file one at a time.
    users_write: tokio::sync::Mutex<()>,
    /// Failed logins per username and address, and their lockouts.
    logins: throttle::LoginThrottle,
    /// Open WebSockets per username.
    live_sockets: Mutex<HashMap<String, usize>>,
    /// Password checks (Argon2, CPU-bound) running at once: one per core, so a login flood
    /// queues instead of taking every core from the probes and the live feed.
    password_checks: tokio::sync::Semaphore,
}

/// The API: cheap to clone, shared by every handler.
#[derive(Clone)]
pub struct Api(Arc<Inner>);

/// The wall clock as an engine instant.
pub fn wall_now() -> Instant {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Instant(secs)
}

impl Api {
    /// An API over `backend`, registering its metrics in `registry` (whose whole content
    /// `/metrics` serves).
    pub fn new(
        config: ApiConfig,
        users: Users,
        key: TokenKey,
        backend: Arc<dyn Backend>,
        registry: Registry,
    ) -> Api {
        Api(Arc::new(Inner {
            hub: Arc::new(Hub::new(config.live_buffer)),
            users: RwLock::new(Arc::new(users)),
            key,
            backend,
            metrics: ApiMetrics::new(&registry),
            registry,
            action_lock: tokio::sync::Mutex::new(()),
            events: std::sync::OnceLock::new(),
            directory: RwLock::new(Arc::new(Directory::default())),
            users_changed: tokio::sync::watch::Sender::new(0),
            users_file: std::sync::OnceLock::new(),
            users_write: tokio::sync::Mutex::new(()),
            logins: throttle::LoginThrottle::new(&config.limits),
            live_sockets: Mutex::new(HashMap::new()),
            password_checks: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            config,
        }))
    }

    /// Write revocations (`POST /api/v1/users/{username}/revoke`) to this users file, which the
    /// process watches, so they survive a restart and reach every process reading the file.
    pub fn set_users_file(&self, path: PathBuf) {
        let _ = self.0.users_file.set(path);
    }

    /// Accept events on `POST /api/v1/events` and hand them to `sink` (once; later calls
    /// change nothing).
    pub fn set_event_sink(&self, sink: Arc<dyn events::EventSink>) {
        let _ = self.0.events.set(sink);
    }

    /// The names of centres, windows, staff, departments and items the dashboards show.
    pub fn set_directory(&self, directory: Directory) {
        *self.0.directory.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(directory);
    }

    pub(crate) fn directory(&self) -> Arc<Directory> {
        self.0
            .directory
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The hub the binary feeds.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.0.hub
    }

    /// Feed one change.
    pub fn apply(&self, input: Input) {
        self.0.hub.apply(input);
    }

    /// Replace the users (after the file changed); tokens of removed or changed users stop
    /// working at once, and their open WebSockets are closed.
    pub fn set_users(&self, users: Users) {
        *self.0.users.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(users);
        self.0.users_changed.send_modify(|n| *n += 1);
    }

    /// Revoke every token of `username`: in the users file when there is one (written beside
    /// and renamed, as `jiancha user revoke` does), and in memory. `Ok(false)`: no such user.
    pub async fn revoke_sessions(&self, username: &str) -> Result<bool, String> {
        let _one_at_a_time = self.0.users_write.lock().await;
        let mut users = match self.0.users_file.get() {
            // The file is the truth (another process, or `jiancha user`, may have changed it).
            Some(path) => Users::load(path).map_err(|e| e.to_string())?,
            None => (*self.users()).clone(),
        };
        if !users.revoke(username) {
            return Ok(false);
        }
        if let Some(path) = self.0.users_file.get() {
            users
                .save(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        self.set_users(users);
        Ok(true)
    }

    fn users(&self) -> Arc<Users> {
        self.0
            .users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Check a bearer token.
    pub fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        self.0.key.verify(token, &self.users(), wall_now().0)
    }

    /// The token of a request: `Authorization: Bearer <token>` or, for WebSockets (browsers
    /// cannot set headers there), `?access_token=<token>`.
    fn bearer<'a>(headers: &'a axum::http::HeaderMap, uri: &'a axum::http::Uri) -> Option<&'a str> {
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let query = uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")));
        header.or(query)
    }

    /// The routes: `/api/v1/…`, the dashboards under `/ui/`, `/metrics`, `/healthz`, `/readyz`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/auth/login", post(rest::login))
            .route("/api/v1/me", get(rest::me))
            .route("/api/v1/alerts", get(rest::list_alerts))
            .route("/api/v1/alerts/{alert_id}", get(rest::alert_detail))
            .route("/api/v1/alerts/{alert_id}/actions", post(rest::act))
            .route("/api/v1/windows", get(rest::windows))
            .route("/api/v1/history/alerts", get(history::alerts))
            .route("/api/v1/history/alerts.csv", get(history::alerts_csv))
            .route("/api/v1/export/gb39046", get(history::export_gb39046))
            .route(
                "/api/v1/cases/{case_id}/timeline",
                get(history::case_timeline),
            )
            .route("/api/v1/dead-letters", get(history::dead_letters))
            .route("/api/v1/performance", get(history::performance))
            .route("/api/v1/performance/hourly", get(history::hourly))
            .route("/api/v1/sources", get(sources::health))
            .route("/api/v1/live", get(live::upgrade))
            .route(
                "/api/v1/events",
                post(events::ingest)
                    .layer(axum::extract::DefaultBodyLimit::max(events::MAX_BODY_BYTES)),
            )
            .route(
                "/api/v1/ingest/gdbs/exinfo",
                post(formats::exinfo)
                    .layer(axum::extract::DefaultBodyLimit::max(events::MAX_BODY_BYTES)),
            )
            .route(
                "/api/v1/ingest/gdbs/approve/{method}",
                post(formats::approve)
                    .layer(axum::extract::DefaultBodyLimit::max(events::MAX_BODY_BYTES)),
            )
            .route(
                "/api/v1/ingest/sdjc/{method}",
                post(formats::sdjc)
                    .layer(axum::extract::DefaultBodyLimit::max(events::MAX_BODY_BYTES)),
            )
            .route("/api/v1/directory", get(web::directory))
            .route("/api/v1/users/{username}/revoke", post(rest::revoke))
            .route("/api/v1/openapi.json", get(rest::openapi))
            .route("/metrics", get(rest::metrics))
            .route("/", get(web::index))
            .route(
                "/ui",
                get(|| async { axum::response::Redirect::permanent("/ui/") }),
            )
            .route("/ui/", get(web::login_page))
            .route("/ui/{page}", get(web::page))
            .route("/ui/assets/{name}", get(web::asset))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(rest::readyz))
            .fallback(|| async {
                ApiError::not_found(
                    "no such endpoint; the API is described at /api/v1/openapi.json",
                )
            })
            .method_not_allowed_fallback(|| async {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this endpoint does not take that method; see /api/v1/openapi.json",
                )
            })
            .layer(axum::middleware::map_response(error::json_errors))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                count_requests,
            ))
            .with_state(self.clone())
    }

    /// Background duties, run until the runtime stops: turn unanswered 督办 red when their
    /// reply deadline passes, forget finished alerts after `keep_finished`, keep gauges fresh.
    pub async fn run_timers(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            n += 1;
            let now = wall_now();
            if self.0.hub.is_ready() {
                self.escalate(now).await;
            }
            if n.is_multiple_of(3600) {
                let keep = self.0.config.keep_finished.as_secs() as i64;
                self.0.hub.forget_finished(now.plus_secs(-keep));
            }
            let (held, active) = self.0.hub.counts();
            self.0.metrics.alerts_held.set(held as i64);
            self.0.metrics.alerts_active.set(active as i64);
        }
    }

    /// Record and apply every escalation due at `now`. A store failure is retried on the next
    /// tick (the escalation stays due).
    pub async fn escalate(&self, now: Instant) {
        let _guard = self.0.action_lock.lock().await;
        for action in self.0.hub.due_escalations(now) {
            match self.0.backend.record_action(&action).await {
                Ok(()) => {
                    self.0
                        .metrics
                        .actions
                        .with_label_values(&["escalate"])
                        .inc();
                    self.0.hub.apply(Input::Action(action));
                }
                Err(e) => {
                    log::warn!(
                        "escalation of {} not stored, will retry: {e}",
                        action.alert_id
                    );
                    return;
                }
            }
        }
    }
}

/// Count every answer by route template (bounded: never the raw path) and status.
async fn count_requests(State(api): State<Api>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    api.0
        .metrics
        .requests
        .with_label_values(&[route.as_str(), resp.status().as_str()])
        .inc();
    resp
}

/// The caller, from `Authorization: Bearer <token>` or, for WebSockets (browsers cannot set
/// headers there), `?access_token=<token>`.
impl FromRequestParts<Api> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let token = Api::bearer(&parts.headers, &parts.uri).ok_or_else(|| {
            ApiError::unauthorized(
                "no token: log in at POST /api/v1/auth/login and send `Authorization: Bearer <token>` \
                 (or `?access_token=<token>` on /api/v1/live)",
            )
        })?;
        let who = api.authenticate(token)?;
        if let Some(conn) = parts.extensions.get::<Arc<server::Conn>>() {
            conn.authenticated();
        }
        let path = parts.uri.path();
        if who.role == auth::Role::Publisher && path != "/api/v1/events" && path != "/api/v1/me" {
            return Err(ApiError::forbidden(
                "a publisher account only sends events (POST /api/v1/events, or the source formats' \
                 endpoints under /api/v1/ingest/); log in as a person to see dashboards",
            ));
        }
        Ok(who)
    }
}

/// 503 until the initial state is loaded, so a load balancer sends no dashboard to an API
/// process that would show it empty.
fn readiness(api: &Api) -> Response {
    if api.0.hub.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        ApiError::unavailable("loading alerts and window status").into_response()
    }
}

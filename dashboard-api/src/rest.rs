//! REST handlers. Reads come from the hub; an action is checked, stored, then applied.

use std::net::IpAddr;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{verify_password, Principal, Role};
use crate::error::{from_json_rejection, from_query_rejection, ApiError};
use crate::hub::{parse_list, ActionRequest, AlertQuery, Filter, Input, Page};
use crate::{readiness, wall_now, Api, ClientAddr};

/// `POST /api/v1/auth/login`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    username: String,
    password: String,
}

/// The client's address: the peer's, or the last `X-Forwarded-For` entry when the deployment
/// says a reverse proxy sets it (`[security] trust_forwarded_for`).
fn client_addr(api: &Api, peer: Option<ClientAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    let forwarded = api
        .0
        .config
        .limits
        .trust_forwarded_for
        .then(|| headers.get("x-forwarded-for")?.to_str().ok())
        .flatten()
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok());
    forwarded.or(peer.map(|ClientAddr(a)| a.ip()))
}

pub(crate) async fn login(
    State(api): State<Api>,
    peer: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(from_json_rejection)?;
    let addr = client_addr(&api, peer.map(|Extension(a)| a), &headers);
    let shown = addr.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
    let throttle = &api.0.logins;
    if let Err(locked) = throttle.check(&req.username, addr, std::time::Instant::now()) {
        api.0.metrics.login_failures.inc();
        // Every refusal is counted; the log gets the first of each lock and then one in 100,
        // so a flood cannot fill the disk.
        if locked.refused == 1 || locked.refused.is_multiple_of(100) {
            log::warn!(
                "login refused: {} locked (user {:?} from {shown}); {} attempt(s) refused during this lock",
                locked.what,
                req.username,
                locked.refused
            );
        }
        let secs = locked.retry_after.as_secs().max(1);
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "too many failed logins for this {}; try again in {} minute(s) or ask an administrator",
                locked.what,
                secs.div_ceil(60)
            ),
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(resp);
    }
    let users = api.users();
    let user = users.get(&req.username).cloned();
    // Argon2 takes tens of milliseconds of CPU: off the async workers, one per core at a time.
    // An unknown user is checked against a dummy hash so both failures take as long (no user
    // enumeration).
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let permit = api.0.password_checks.acquire().await.ok();
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_password(&password, &phc),
        None => {
            let _ = verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false);
    drop(permit);
    let Some(user) = user.filter(|_| ok) else {
        api.0.metrics.login_failures.inc();
        let locked = throttle.failed(&req.username, addr, std::time::Instant::now());
        log::warn!(
            "login failed: wrong username or password for user {:?} from {shown}{}",
            req.username,
            if locked.is_empty() {
                String::new()
            } else {
                format!("; {} now locked", locked.join(" and "))
            }
        );
        return Err(ApiError::unauthorized("wrong username or password").zh("用户名或密码错误"));
    };
    throttle.succeeded(&user.username);
    let (token, claims) = api
        .0
        .key
        .issue(&user, wall_now().0, api.0.config.token_ttl_secs);
    Ok(Json(json!({
        "token": token,
        "expires_at": rules::time::Instant(claims.exp).to_string(),
        "user": {"username": user.username, "name": user.name, "role": user.role, "region": user.region},
    }))
    .into_response())
}

/// `POST /api/v1/users/{username}/revoke`: end every session of a user (their tokens stop
/// working at once and their open WebSockets close). Admins, for users inside their
/// jurisdiction; anyone, for themselves ("log out everywhere").
pub(crate) async fn revoke(
    State(api): State<Api>,
    who: Principal,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if who.username != username {
        who.require(&[Role::Admin], "revoking another user's sessions")?;
        let in_scope = api
            .users()
            .get(&username)
            .is_some_and(|u| who.region.covers(u.region.as_str()));
        if !in_scope {
            return Err(ApiError::not_found(format!(
                "no user {username:?} in your jurisdiction"
            )));
        }
    }
    match api.revoke_sessions(&username).await {
        Ok(true) => {
            log::warn!(
                "sessions of user {username:?} revoked by {:?}",
                who.username
            );
            Ok(Json(json!({"revoked": username})))
        }
        Ok(false) => Err(ApiError::not_found(format!(
            "no user {username:?} in your jurisdiction"
        ))),
        Err(e) => Err(ApiError::unavailable(format!(
            "the revocation was not written to the users file ({e}); nothing changed: run \
             `jiancha user revoke --username {username}` on the server"
        ))),
    }
}

/// An Argon2id hash of a password nobody knows, made once, for timing-equal failures.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        crate::auth::hash_password("\u{0}no user has this password").unwrap_or_default()
    })
}

/// `GET /`: where things are (no auth; names no data).
pub(crate) async fn index() -> Json<Value> {
    Json(json!({
        "service": "jiancha 电子监察",
        "openapi": "/api/v1/openapi.json",
        "login": "POST /api/v1/auth/login",
        "live": "/api/v1/live (WebSocket, ?access_token=…)",
        "alerts": "/api/v1/alerts",
        "windows": "/api/v1/windows",
        "ingest": "POST /api/v1/events (publisher accounts)",
        "health": "/healthz, /readyz, /metrics",
    }))
}

pub(crate) async fn me(who: Principal) -> Json<Principal> {
    Json(who)
}

pub(crate) async fn list_alerts(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(q) = q.map_err(from_query_rejection)?;
    if let Some(r) = q.region.as_deref() {
        if !r.starts_with(who.region.as_str()) && !who.region.as_str().starts_with(r) {
            return Err(ApiError::forbidden(format!(
                "region {r:?} is outside your jurisdiction ({})",
                who.region.as_str()
            )));
        }
    }
    api.0.hub.list(&who, q).map(Json)
}

pub(crate) async fn alert_detail(
    State(api): State<Api>,
    who: Principal,
    Path(alert_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (alert, actions) = api.0.hub.detail(&who, &alert_id).ok_or_else(|| {
        ApiError::not_found(format!("no alert {alert_id:?} in your jurisdiction"))
    })?;
    // The timeline is the case's events as received; when the store cannot answer, the alert
    // and its trail are still shown, with the reason the timeline is missing.
    let case_id = alert
        .get("case_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (timeline, timeline_error) = match case_id {
        Some(c) => match api.0.backend.case_timeline(&c).await {
            Ok(events) => (events, None),
            Err(e) => (
                Vec::new(),
                Some(format!("the case timeline is unavailable: {e}")),
            ),
        },
        None => (Vec::new(), None),
    };
    let evidence = alert.get("evidence").cloned().unwrap_or(Value::Null);
    let actions = trail(&api, &actions);
    Ok(Json(json!({
        "alert": alert,
        "evidence": evidence,
        "actions": actions,
        "timeline": timeline,
        "timeline_error": timeline_error,
    })))
}

pub(crate) async fn act(
    State(api): State<Api>,
    who: Principal,
    Path(alert_id): Path<String>,
    body: Result<Json<ActionRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    who.require(&[Role::Inspector], "acting on alerts")?;
    let Json(req) = body.map_err(from_json_rejection)?;
    let _guard = api.0.action_lock.lock().await;
    let action = api.0.hub.prepare(&who, &alert_id, &req, wall_now())?;
    api.0.backend.record_action(&action).await.map_err(|e| {
        ApiError::unavailable(format!(
            "the action was not recorded because the store is unavailable ({e}); nothing changed, try again"
        ))
    })?;
    api.0
        .metrics
        .actions
        .with_label_values(&[action.action.as_str()])
        .inc();
    api.0.hub.apply(Input::Action(action.clone()));
    let (alert, actions) = api
        .0
        .hub
        .detail(&who, &alert_id)
        .ok_or_else(|| ApiError::not_found(format!("alert {alert_id:?} vanished")))?;
    let actions = trail(&api, &actions);
    Ok(Json(
        json!({"alert": alert, "action": action, "actions": actions}),
    ))
}

/// An alert's trail as people read it: each action with who did it by display name and unit
/// (`actor_name`, `actor_unit`), not only the login. The unit is the centre serving the user's
/// region when the reference names one, else the region code; the system is 系统.
fn trail(api: &Api, actions: &[crate::model::Action]) -> Vec<Value> {
    let users = api.users();
    let directory = api.directory();
    actions
        .iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
            let (name, unit) = if a.actor == crate::model::SYSTEM {
                ("系统".to_string(), String::new())
            } else {
                match users.get(&a.actor) {
                    Some(u) => (
                        if u.name.is_empty() {
                            u.username.clone()
                        } else {
                            u.name.clone()
                        },
                        directory.unit_name(u.region.as_str()),
                    ),
                    // A user since removed from the users file: the login is all there is.
                    None => (a.actor.clone(), String::new()),
                }
            };
            if let Value::Object(m) = &mut v {
                m.insert("actor_name".into(), name.into());
                m.insert("actor_unit".into(), unit.into());
            }
            v
        })
        .collect()
}

/// `GET /api/v1/windows` filters.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowQuery {
    center: Option<String>,
    department: Option<String>,
}

pub(crate) async fn windows(
    State(api): State<Api>,
    who: Principal,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(from_query_rejection)?;
    let filter = Filter {
        center: q.center,
        department: q.department,
        ..Filter::scope(&who)
    };
    let now = wall_now();
    let mut items = api.0.hub.windows(&filter);
    for w in &mut items {
        let wait = w
            .get("oldest_ticket_at")
            .and_then(Value::as_str)
            .and_then(|t| rules::time::parse_rfc3339(t).ok())
            .map(|t| (now.0 - t.0).max(0));
        if let Value::Object(m) = w {
            m.insert("longest_wait_seconds".into(), wait.into());
        }
    }
    Ok(Json(json!({"items": items, "as_of": now.to_string()})))
}

pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// `GET /metrics`: operators' business (province-wide admins; Prometheus scrapes with such an
/// admin's token from `jiancha user token`). Counts, never records — but the figures are the
/// whole process's, every county's together, so a county or city admin may not read them
/// (docs/SECURITY.md).
pub(crate) async fn metrics(State(api): State<Api>, who: Principal) -> Result<Response, ApiError> {
    who.require(&[Role::Admin], "metrics")?;
    if who.region.as_str().len() != 2 {
        return Err(ApiError::forbidden(format!(
            "metrics count every county served by this process; they are for province-wide \
             (two-digit region) admins, and user {:?} is an admin of {}",
            who.username,
            who.region.as_str()
        )));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&api.0.registry),
    )
        .into_response())
}

pub(crate) async fn readyz(State(api): State<Api>) -> Response {
    readiness(&api)
}

/// Parse `level=red,yellow` for the live feed.
pub(crate) fn levels(text: Option<&str>) -> Result<Option<Vec<rules::Level>>, ApiError> {
    text.map(|s| parse_list("level", s, rules::Level::parse, rules::Level::expected()))
        .transpose()
}

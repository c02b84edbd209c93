//! A real API server on a loopback port, with real clients: ureq for REST, tokio-tungstenite
//! for the live feed. Two counties of one city (岳阳市 4306: 平江县 430626, 湘阴县 430624).

#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use dashboard_api::backend::MemoryBackend;
use dashboard_api::hub::Input;
use dashboard_api::model::{AlertDoc, WindowDoc};
use dashboard_api::{wall_now, Api, ApiConfig};
use futures_util::StreamExt;
use rules::alert::{AlertStatus, Level};
use rules::time::Instant;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub const PASSWORD: &str = "correct horse 电池 staple";

pub const PINGJIANG: &str = "430626";
pub const XIANGYIN: &str = "430624";

/// (username, role, region)
pub const USERS: &[(&str, Role, &str)] = &[
    ("pj-inspector", Role::Inspector, PINGJIANG),
    ("pj-leader", Role::Leader, PINGJIANG),
    ("xy-inspector", Role::Inspector, XIANGYIN),
    ("yy-leader", Role::Leader, "4306"),
    ("yy-auditor", Role::Auditor, "4306"),
    ("pj-publisher", Role::Publisher, PINGJIANG),
    ("hn-admin", Role::Admin, "43"),
    ("pj-admin", Role::Admin, PINGJIANG),
];

fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(PASSWORD).expect("hash"))
        .clone()
}

pub fn users() -> Users {
    let mut users = Users::default();
    for (name, role, region) in USERS {
        users.upsert(User {
            username: name.to_string(),
            name: format!("{name} 同志"),
            role: *role,
            region: Region::try_from(region.to_string()).expect("region"),
            password_hash: password_hash(),
            token_epoch: 0,
        });
    }
    users
}

pub struct Server {
    pub addr: SocketAddr,
    pub api: Api,
    pub backend: Arc<MemoryBackend>,
    pub key: TokenKey,
    users: Users,
}

/// A server whose initial state is loaded (ready).
pub async fn start(config: ApiConfig) -> Server {
    let s = start_loading(config).await;
    s.api.hub().set_ready();
    s
}

/// A server still loading its initial state.
pub async fn start_loading(config: ApiConfig) -> Server {
    let key = TokenKey::new(&[42u8; 32]).expect("key");
    let backend = Arc::new(MemoryBackend::default());
    let users = users();
    let api = Api::new(
        config,
        users.clone(),
        key.clone(),
        backend.clone(),
        prometheus::Registry::new(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(dashboard_api::serve(listener, api.clone()));
    tokio::spawn(api.clone().run_timers());
    Server {
        addr,
        api,
        backend,
        key,
        users,
    }
}

impl Server {
    pub fn token(&self, user: &str) -> String {
        let u = self.users.get(user).expect("known user");
        self.key.issue(u, wall_now().0, 3600).0
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A REST call: (status, JSON body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = self.url(path);
        let method = method.to_string();
        let auth = token.map(|t| format!("Bearer {t}"));
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut resp = match (method.as_str(), body) {
                ("GET", _) => {
                    let mut req = agent.get(&url);
                    if let Some(a) = &auth {
                        req = req.header("Authorization", a);
                    }
                    req.call()
                }
                (_, body) => {
                    let mut req = agent.post(&url);
                    if let Some(a) = &auth {
                        req = req.header("Authorization", a);
                    }
                    req.send_json(body.unwrap_or(Value::Null))
                }
            }
            .expect("HTTP round trip");
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().expect("body");
            let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, json)
        })
        .await
        .expect("client thread")
    }

    /// POST a raw body with a content type: (status, JSON body).
    pub async fn post_raw(
        &self,
        path: &str,
        user: &str,
        content_type: &str,
        body: String,
    ) -> (u16, Value) {
        let url = self.url(path);
        let auth = format!("Bearer {}", self.token(user));
        let content_type = content_type.to_string();
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut resp = agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", &content_type)
                .send(body.as_bytes())
                .expect("HTTP round trip");
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().expect("body");
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
        .await
        .expect("client thread")
    }

    pub async fn get(&self, path: &str, user: &str) -> (u16, Value) {
        let t = self.token(user);
        self.call("GET", path, Some(&t), None).await
    }

    pub async fn post(&self, path: &str, user: &str, body: Value) -> (u16, Value) {
        let t = self.token(user);
        self.call("POST", path, Some(&t), Some(body)).await
    }

    pub async fn live(&self, user: &str, query: &str) -> Live {
        self.live_with(&self.token(user), query).await
    }

    /// A live feed opened with this token.
    pub async fn live_with(&self, token: &str, query: &str) -> Live {
        let url = format!("ws://{}/api/v1/live?access_token={token}{query}", self.addr);
        // Snapshots of many alerts exceed tungstenite's default 16 MiB frame limit.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(256 << 20))
            .max_frame_size(Some(256 << 20));
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .expect("WebSocket handshake");
        Live { ws }
    }

    pub fn feed(&self, input: Input) {
        self.api.apply(input);
    }
}

pub struct Live {
    pub ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Live {
    /// The next JSON message, heartbeats included; panics after `secs`.
    pub async fn next_any(&mut self, secs: u64) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(secs), self.ws.next())
                .await
                .expect("a message in time")
                .expect("socket open")
                .expect("frame");
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).expect("JSON message");
            }
        }
    }

    /// The next message that is not a heartbeat.
    pub async fn next(&mut self) -> Value {
        loop {
            let v = self.next_any(10).await;
            if v["type"] != "heartbeat" {
                return v;
            }
        }
    }

    /// Whether a non-heartbeat message arrives within `ms`.
    pub async fn quiet_for(&mut self, ms: u64) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).expect("JSON");
                    if v["type"] != "heartbeat" {
                        return Some(v);
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("socket ended: {other:?}"),
            }
        }
    }
}

/// An alert of the catalogue's shape.
pub fn alert(id: &str, region: &str, level: Level, window: &str) -> AlertDoc {
    let center = format!("C-{region}");
    serde_json::from_value(json!({
        "alert_id": id,
        "rule": "case.overdue",
        "level": level.as_str(),
        "status": "open",
        "fired_at": Instant(1_790_000_000 + id.len() as i64).to_string(),
        "center_id": center,
        "region": region,
        "department": "D-市场监管",
        "window_id": window,
        "staff_id": format!("S-{window}"),
        "case_id": format!("K-{id}"),
        "item_code": "P5",
        "subject": {"case_id": format!("K-{id}")},
        "message": "办件超过承诺时限",
        "evidence": {"deadline": "2026-10-13T00:00:00+08:00", "start": "2026-10-08"},
    }))
    .expect("alert")
}

pub fn retracted(mut a: AlertDoc) -> AlertDoc {
    a.status = AlertStatus::Retracted;
    a.revision = 2;
    a
}

pub fn window(id: &str, region: &str, state: &str) -> WindowDoc {
    serde_json::from_value(json!({
        "window_id": id,
        "center_id": format!("C-{region}"),
        "region": region,
        "department": "D-市场监管",
        "state": state,
        "staff": ["S-1"],
        "waiting": 2,
        "oldest_ticket_at": "2026-11-20T09:00:00+08:00",
        "day": "2026-11-20",
        "accepted_today": 3,
        "completed_today": 1,
        "on_site_today": 1,
        "overdue_cases": 0,
        "updated_at": "2026-11-20T09:30:00+08:00",
    }))
    .expect("window")
}

pub fn ids(items: &Value) -> Vec<String> {
    let mut v: Vec<String> = items
        .as_array()
        .expect("array")
        .iter()
        .map(|a| {
            a.get("alert_id")
                .or_else(|| a.get("window_id"))
                .and_then(Value::as_str)
                .expect("id")
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// A WebSocket client that has not read anything yet.
pub async fn connect(s: &Server, user: &str) -> Live {
    s.live(user, "").await
}

/// The close frame that ends the socket (skipping data frames), within 5 s.
pub async fn close_of(
    live: &mut Live,
) -> (
    tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode,
    String,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, live.ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return (f.code, f.reason.to_string()),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

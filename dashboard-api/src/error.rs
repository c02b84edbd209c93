//! API errors: every failure is a JSON body a person can act on.
//!
//! `{"error": "<stable code>", "message": "<what happened and what to do>", "message_zh":
//! "<the same for the people in the hall>"}` with the matching HTTP status. Codes are stable, for
//! programs to branch on; `message` is English, for programs and their logs; `message_zh` is
//! what the dashboards show. Where a site gives no Chinese sentence of its own
//! ([`ApiError::zh`]), `message_zh` is the code's general sentence ([`zh_of_code`]), never the
//! English words.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation (English).
    pub message: String,
    /// The same in Chinese, when the site that refused says it more precisely than the code's
    /// general sentence.
    pub message_zh: Option<String>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            message_zh: None,
        }
    }

    /// The Chinese sentence the dashboards show for this error.
    pub fn zh(mut self, message: impl Into<String>) -> ApiError {
        self.message_zh = Some(message.into());
        self
    }

    /// What `message_zh` answers: the site's sentence, else the code's.
    pub fn chinese(&self) -> String {
        self.message_zh
            .clone()
            .unwrap_or_else(|| zh_of_code(self.code).to_string())
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: authenticated, but the role may not do this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: nothing of that id within the caller's jurisdiction.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the request conflicts with the alert's current state.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 503: a store the request needs is unavailable; retrying later may work.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// The JSON body every error answers with.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.code,
            "message": self.message,
            "message_zh": self.chinese(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        (self.status, Json(body)).into_response()
    }
}

/// The general Chinese sentence of each stable code (docs/API.md, "Errors").
pub fn zh_of_code(code: &str) -> &'static str {
    match code {
        "bad_request" => "请求参数有误，请检查后重试",
        "unauthorized" => "未登录或登录已失效，请重新登录",
        "forbidden" => "无权进行此操作：超出本账号的角色或管辖范围",
        "not_found" => "未找到，或不在本账号的管辖范围内",
        "conflict" => "该告警的状态已经改变，不能进行此操作，请刷新后重试",
        "unavailable" => "数据服务暂时不可用，请稍后重试",
        "too_large" => "提交的内容过大",
        "too_many_requests" => "请求过于频繁，请稍后再试",
        "method_not_allowed" => "不支持此请求方法",
        "too_many_attempts" => "登录失败次数过多，请稍后再试",
        "too_many_connections" => "连接数已达上限，请关闭其他页面后重试",
        "too_many_lines" => "一次提交的行数过多，请分批提交",
        "internal" => "服务器内部错误，请联系管理员",
        _ => "请求失败，请稍后重试",
    }
}

/// Malformed JSON bodies and query strings answer in the same JSON shape as every other error
/// (axum's own rejections are plain text).
pub fn from_json_rejection(r: axum::extract::rejection::JsonRejection) -> ApiError {
    let text = r.body_text();
    // A body over the limit (2 MiB for JSON requests) surfaces as a buffering failure.
    if text.contains("length limit") {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "request body too large: JSON requests are at most 2 MiB",
        );
    }
    ApiError::new(r.status(), "bad_request", text)
}

/// The same for query strings.
pub fn from_query_rejection(r: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(r.status(), "bad_request", r.body_text())
}

/// Every error answer is JSON: what axum or a body extractor answered in plain text (a body
/// over the limit, a path that does not parse, …) is rewritten into `{"error","message"}` with
/// the code of its status, keeping its words as the message.
pub(crate) async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            // JSON, and the XML replies of the format endpoints (their own convention).
            v.as_bytes().starts_with(b"application/json")
                || v.as_bytes().starts_with(b"application/xml")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            "request body too large: JSON requests are at most 2 MiB, POST /api/v1/events at \
             most 16 MiB"
                .to_string(),
        ),
        StatusCode::UNAUTHORIZED => ("unauthorized", text),
        StatusCode::FORBIDDEN => ("forbidden", text),
        StatusCode::NOT_FOUND => ("not_found", text),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", text),
        StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", text),
        s if s.is_server_error() => ("internal", text),
        _ => ("bad_request", text),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    let mut answer = ApiError::new(status, code, message).into_response();
    // Keep what the original said besides its body (Retry-After, Allow, …).
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

//! API errors: every failure is a JSON body a person can act on.
//!
//! `{"error": "<stable code>", "message": "<what happened and what to do>"}` with the matching HTTP
//! status. Codes are for programs (dashboards branch on them), messages for people.

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
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.code, "message": self.message});
        (self.status, Json(body)).into_response()
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
            "bad_request",
            "request body too large: JSON requests are at most 2 MiB",
        );
    }
    ApiError::new(r.status(), "bad_request", text)
}

/// The same for query strings.
pub fn from_query_rejection(r: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(r.status(), "bad_request", r.body_text())
}

//! The one error type of the HTTP surface: every failure becomes a status and `{"error": "..."}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_engine::ScoreError;

/// A failed request: the status and a message fit for the client (no internals).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the client.
    pub message: String,
}

impl ApiError {
    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    /// 400: the body or its tensors do not fit.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 404: no such model or version.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 415: the content type is not one this endpoint reads.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }
    /// 503: not ready, shutting down or at capacity.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl From<ScoreError> for ApiError {
    fn from(error: ScoreError) -> Self {
        let status = match &error {
            ScoreError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            ScoreError::Model(_) | ScoreError::Trap(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ScoreError::DeadlineExceeded(_) => StatusCode::GATEWAY_TIMEOUT,
            // Load shedding: a full queue is the client's cue to back off (429); waiting out
            // the deadline for an instance, or failing to start one, is the server's (503).
            ScoreError::QueueFull => StatusCode::TOO_MANY_REQUESTS,
            ScoreError::QueueTimeout | ScoreError::InstanceStart(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

//! The control plane's one error type, and how each becomes an HTTP status with a JSON body.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// Why a control plane operation failed. The message is written for the client; internal
/// details are logged, never returned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ControlError {
    /// 401: no token, or not a valid one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, visible, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: does not exist, or not for you.
    #[error("{0}")]
    NotFound(String),
    /// 409: already exists, or still in use.
    #[error("{0}")]
    Conflict(String),
    /// 400: malformed or invalid input.
    #[error("{0}")]
    Invalid(String),
    /// 413: body over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 429: over a limit on how much one caller or work group may hold at once.
    #[error("{0}")]
    TooMany(String),
    /// 415: not a content type this route reads.
    #[error("{0}")]
    UnsupportedMedia(String),
    /// 503: a dependency (database, registry, store) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ControlError {
    /// What a client is told: the error's text, but for an internal error, which is logged
    /// here and told only that it was.
    pub fn public_message(&self) -> String {
        match self {
            ControlError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                "internal error (logged on the server)".to_string()
            }
            other => other.to_string(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ControlError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ControlError::Forbidden(_) => StatusCode::FORBIDDEN,
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
            ControlError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ControlError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ControlError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ControlError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ControlError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Maps a unique-key violation to 409 "KIND 'NAME' already exists"; other errors as usual.
    pub fn exists(kind: &'static str, name: &str) -> impl FnOnce(sqlx::Error) -> ControlError {
        let name = name.to_string();
        move |e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                ControlError::Conflict(format!("{kind} '{name}' already exists"))
            }
            _ => ControlError::from(e),
        }
    }
}

impl From<sqlx::Error> for ControlError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => ControlError::NotFound("not found".into()),
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                ControlError::Conflict("already exists".into())
            }
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                ControlError::Conflict("still in use by another resource".into())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
                ControlError::Unavailable(format!("database unavailable: {e}"))
            }
            _ => ControlError::Internal(format!("database: {e}")),
        }
    }
}

impl From<JsonRejection> for ControlError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ControlError::UnsupportedMedia(
                "send JSON with Content-Type: application/json".into(),
            ),
            JsonRejection::BytesRejection(b) => ControlError::from(b),
            other => ControlError::Invalid(other.body_text()),
        }
    }
}

impl From<BytesRejection> for ControlError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ControlError::TooLarge(format!("request body too large: {}", r.body_text()))
        } else {
            ControlError::Invalid(r.body_text())
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.public_message();
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

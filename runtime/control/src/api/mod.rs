//! The REST handlers, one module per resource. Handlers only translate between HTTP and the
//! store: authorization already happened in [`crate::access::authorize`].

pub mod deployments;
pub mod endpoints;
pub mod environments;
pub mod experiments;
pub mod images;
pub mod keys;
pub mod manifests;
pub mod mlflow;
pub mod models;
pub mod monitoring;
pub mod projects;
pub mod quotas;
pub mod runs;
pub mod runtime;
pub mod teams;
pub mod tracking;
pub mod users;
pub mod workgroups;

pub use crate::domain::time;

use crate::ControlError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body whose problems (wrong content type, bad JSON, unknown or missing fields, too
/// large) become the control plane's JSON errors.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ControlError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(JsonBody(value))
    }
}

/// A query string whose problems (unknown or missing parameters, values of the wrong type)
/// become the control plane's JSON errors, like [`JsonBody`]'s.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ControlError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| ControlError::Invalid(rejection.body_text()))?;
        Ok(Query(value))
    }
}

pub use crate::domain::listings::Page;

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339() {
        assert_eq!(super::time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::time(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }
}

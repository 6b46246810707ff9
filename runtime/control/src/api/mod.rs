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

use crate::ControlError;
use axum::extract::{FromRequest, Request};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

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

/// `?limit=&after=`: pages of at most `limit` items (default 100, at most 1000) after the name
/// `after`, in name order.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Items per page.
    pub limit: Option<u32>,
    /// The last name of the previous page.
    pub after: Option<String>,
}

impl Page {
    /// The row limit to query: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit.unwrap_or(100).clamp(1, 1000)) + 1
    }
    /// The lower bound (exclusive) of names.
    pub fn after(&self) -> &str {
        self.after.as_deref().unwrap_or("")
    }
    /// `{"items": [...], "next": cursor}` from rows fetched with [`Page::fetch`].
    pub fn respond(&self, mut items: Vec<Value>, key: &str) -> Value {
        let limit = self.limit.unwrap_or(100).clamp(1, 1000) as usize;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().and_then(|i| i.get(key)).cloned()
        } else {
            None
        };
        json!({ "items": items, "next": next })
    }
}

/// Milliseconds since the epoch as RFC 3339 text, for responses.
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339() {
        assert_eq!(super::time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::time(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }
}

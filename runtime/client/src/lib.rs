//! A typed client of Kiln's REST API: one [`Client`] (base URL, bearer token, HTTP client) with
//! typed errors ([`Error`]), listings read page by page ([`Client::all`]), the runtime
//! contract of [`kiln_api`] (what a runtime node reads and reports), and the management API
//! in [`kiln_api::manage`]'s types, a module per noun (users and tokens so far).
//!
//! ```no_run
//! # async fn f() -> Result<(), kiln_client::Error> {
//! let client = kiln_client::Client::new("http://127.0.0.1:8070", "kiln_...");
//! for deployment in client.desired_deployments().await? {
//!     println!("{} at generation {}", deployment.name, deployment.generation);
//! }
//! # Ok(()) }
//! ```

use kiln_api::{
    DesiredDeployment, DesiredEndpoint, DriftUpload, Page, RollbackReport, StatusReport,
};
use reqwest::{Method, RequestBuilder, StatusCode};

pub use experiments::ProjectPath;
pub use runs::WorkgroupPath;

mod deployments;
mod endpoints;
mod experiments;
mod images;
mod models;
mod monitoring;
mod projects;
mod quotas;
mod runs;
mod targets;
mod teams;
mod users;
mod workgroups;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What a call can end in besides its answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API could not be reached (or its answer did not arrive).
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The API's base URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The API answered with an error status; `message` is its `error` field (or the body).
    #[error("{method} {path}: {status}: {message}")]
    Api {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// The answer's status.
        status: StatusCode,
        /// What the API said.
        message: String,
    },
    /// The API answered with a body that is not the expected type.
    #[error("{method} {path}: unexpected answer: {reason}")]
    Unexpected {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// What did not fit.
        reason: String,
    },
    /// A listing's `next` cursor repeated: the listing would never end.
    #[error("GET {path}: the listing's cursor repeated ({cursor})")]
    Loop {
        /// The listing's path.
        path: String,
        /// The cursor seen twice.
        cursor: String,
    },
}

impl Error {
    /// The answer's status, when the API answered with one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client of one Kiln API with one token.
#[derive(Clone, Debug)]
pub struct Client {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of the API at `url` (a trailing slash is dropped) with `token`.
    pub fn new(url: &str, token: &str) -> Client {
        Client::with_http(url, token, reqwest::Client::new())
    }

    /// The same, through `http` (for its TLS roots, timeouts or proxy).
    pub fn with_http(url: &str, token: &str, http: reqwest::Client) -> Client {
        Client {
            url: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
        }
    }

    /// The API's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A request to `path` (from the root, `/api/v1/...`), with the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
    }

    /// Sends `request` and returns the response once its status is a success.
    pub async fn send(
        &self,
        request: RequestBuilder,
        method: &Method,
        path: &str,
    ) -> Result<reqwest::Response, Error> {
        let response = request.send().await.map_err(|source| Error::Unreachable {
            url: self.url.clone(),
            source,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        Err(Error::Api {
            method: method.clone(),
            path: path.to_string(),
            status,
            message,
        })
    }

    /// Sends `request` and reads its JSON answer as `T`.
    pub async fn json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        method: &Method,
        path: &str,
    ) -> Result<T, Error> {
        let response = self.send(request, method, path).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|source| Error::Unreachable {
                url: self.url.clone(),
                source,
            })?;
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|e| Error::Unexpected {
            method: method.clone(),
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// `method path` with an optional JSON body; the answer as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, Error> {
        let mut request = self.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.json(request, &method, path).await
    }

    /// `GET path`, as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `POST path` with `body`, the answer as `T`.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, Error> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with `body`, the answer as `T`.
    pub async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, Error> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`, the answer as `T`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.call(Method::DELETE, path, None::<&()>).await
    }

    /// One page of a listing: `path` with `after` as its cursor (and any query already in it).
    pub async fn page<T: DeserializeOwned>(
        &self,
        path: &str,
        after: Option<&str>,
    ) -> Result<Page<T>, Error> {
        let mut request = self.request(Method::GET, path);
        if let Some(cursor) = after {
            request = request.query(&[("after", cursor)]);
        }
        self.json(request, &Method::GET, path).await
    }

    /// Every item of a listing, following `next` from page to page.
    pub async fn all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, Error> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let page: Page<T> = self.page(path, after.as_deref()).await?;
            items.extend(page.items);
            match page.next {
                Some(cursor) if !cursor.is_empty() => {
                    if !seen.insert(cursor.clone()) {
                        return Err(Error::Loop {
                            path: path.to_string(),
                            cursor,
                        });
                    }
                    after = Some(cursor);
                }
                _ => return Ok(items),
            }
        }
    }

    /// Every deployment, as runtime nodes should serve it (a runtime token).
    pub async fn desired_deployments(&self) -> Result<Vec<DesiredDeployment>, Error> {
        self.all("/api/v1/runtime/deployments").await
    }

    /// Every endpoint, as runtime nodes should route it (a runtime token).
    pub async fn desired_endpoints(&self) -> Result<Vec<DesiredEndpoint>, Error> {
        self.all("/api/v1/runtime/endpoints").await
    }

    /// A node's status report on one deployment.
    pub async fn report_status(
        &self,
        deployment: &str,
        report: &StatusReport,
    ) -> Result<(), Error> {
        let path = format!("/api/v1/runtime/deployments/{}/status", segment(deployment));
        self.post::<Value>(&path, report).await.map(drop)
    }

    /// A node's finding that a watched deployment of `endpoint` breached its rollback policy.
    pub async fn report_rollback(
        &self,
        endpoint: &str,
        report: &RollbackReport,
    ) -> Result<(), Error> {
        let path = format!("/api/v1/runtime/endpoints/{}/rollback", segment(endpoint));
        self.post::<Value>(&path, report).await.map(drop)
    }

    /// A node's drift report on one deployment.
    pub async fn report_drift(&self, deployment: &str, upload: &DriftUpload) -> Result<(), Error> {
        let path = format!("/api/v1/runtime/deployments/{}/drift", segment(deployment));
        self.post::<Value>(&path, upload).await.map(drop)
    }
}

/// `base`, or the path of `name` under it.
fn under(base: String, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{base}/{}", segment(name)),
        None => base,
    }
}

/// The path of a team's work groups, or of one of them.
fn workgroups_path(team: &str, workgroup: Option<&str>) -> String {
    under(
        format!("/api/v1/teams/{}/workgroups", segment(team)),
        workgroup,
    )
}

/// A name as one path segment: characters outside the URL-safe set percent-encoded (and the
/// dots of `.` and `..`), so a name can never reach another route.
pub fn segment(name: &str) -> String {
    if name == "." || name == ".." {
        return name.replace('.', "%2E");
    }
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_cannot_reach_another_route() {
        assert_eq!(segment("iris-v2_1.0"), "iris-v2_1.0");
        assert_eq!(segment("../admin"), "..%2Fadmin");
        assert_eq!(segment("a b?c#d"), "a%20b%3Fc%23d");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("."), "%2E");
    }

    #[test]
    fn errors_say_what_was_asked_and_what_came_back() {
        let error = Error::Api {
            method: Method::GET,
            path: "/api/v1/teams".into(),
            status: StatusCode::FORBIDDEN,
            message: "not a member".into(),
        };
        assert_eq!(
            error.to_string(),
            "GET /api/v1/teams: 403 Forbidden: not a member"
        );
        assert_eq!(error.status(), Some(StatusCode::FORBIDDEN));
    }
}

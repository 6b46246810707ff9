//! Kiln's control plane: teams, work groups (the security boundary), projects, models and their
//! versions, images and deployments, behind an authenticated REST API with an OpenAPI document.
//!
//! State lives in SQLite or PostgreSQL ([`db`]), files in the artifact store ([`artifacts`]),
//! images in the local OCI store. Runtimes learn what to serve from [`ControlPlane::desired`]
//! (in process under `kiln up`, or over `GET /api/v1/runtime/deployments`) and report back.

pub mod access;
pub mod api;
pub mod artifacts;
pub mod auth;
pub mod db;
mod error;
pub mod git;
pub mod names;
pub mod routes;
pub mod runs;
pub mod secrets;

pub use api::deployments::DeploymentLimits;
pub use api::endpoints::{
    DesiredEndpoint, MirrorSettings, RollbackPolicy, RollbackReport, Weighted,
};
pub use api::monitoring::{DriftUpload, MonitoringSettings};
pub use api::runtime::{DesiredDeployment, ServingState, StatusReport};
pub use artifacts::ArtifactStore;
pub use db::{Backend, Db};
pub use error::ControlError;
pub use routes::{openapi, router};
pub use secrets::SecretBox;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kiln_executor::Executor;
use kiln_registry::RegistryOptions;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;

/// How the control plane is configured.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Largest model upload, bytes.
    pub max_upload_bytes: usize,
    /// The local OCI image store shared with the runtime.
    pub store_dir: PathBuf,
    /// Where the projects' bare git repositories live.
    pub projects_dir: PathBuf,
    /// How registries are reached when an image names one.
    pub registry: RegistryOptions,
    /// Base URL of the prediction endpoints, for responses.
    pub prediction_url: String,
    /// `Host` values the API answers to (`host` or `host:port`); empty for any.
    pub allowed_hosts: Vec<String>,
    /// Base URL of this API as runs reach it (their tracking URL), unless a target says.
    pub api_url: String,
    /// Where runs get their working directories.
    pub runs_dir: PathBuf,
    /// What runs share (virtual environments).
    pub cache_dir: PathBuf,
}

struct Inner {
    db: Db,
    artifacts: ArtifactStore,
    secrets: SecretBox,
    settings: Settings,
    changed: Notify,
    executors: Vec<Arc<dyn Executor>>,
    runs_changed: Notify,
    log_written: Notify,
}

/// The control plane: cheap to clone, shared by every handler.
#[derive(Clone)]
pub struct ControlPlane {
    inner: Arc<Inner>,
}

impl ControlPlane {
    /// A control plane over an open database and artifact store.
    pub fn new(
        db: Db,
        artifacts: ArtifactStore,
        secrets: SecretBox,
        settings: Settings,
        executors: Vec<Arc<dyn Executor>>,
    ) -> ControlPlane {
        ControlPlane {
            inner: Arc::new(Inner {
                db,
                artifacts,
                secrets,
                settings,
                changed: Notify::new(),
                executors,
                runs_changed: Notify::new(),
                log_written: Notify::new(),
            }),
        }
    }

    /// The executor plugged in for a target kind.
    pub fn executor(&self, kind: &str) -> Option<Arc<dyn Executor>> {
        self.inner
            .executors
            .iter()
            .find(|e| e.kind() == kind)
            .cloned()
    }

    /// Wakes the runner: a run was submitted or asked to stop.
    pub fn notify_runs(&self) {
        self.inner.runs_changed.notify_one();
    }

    /// Waits until [`ControlPlane::notify_runs`] is called.
    pub async fn runs_changed(&self) {
        self.inner.runs_changed.notified().await;
    }

    /// Wakes log followers: a run's log grew or its run ended.
    pub fn log_written(&self) {
        self.inner.log_written.notify_waiters();
    }

    /// Waits until [`ControlPlane::log_written`] is called.
    pub async fn log_written_notified(&self) {
        self.inner.log_written.notified().await;
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The artifact store.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.inner.artifacts
    }

    /// The key that seals secrets at rest.
    pub fn secrets(&self) -> &SecretBox {
        &self.inner.secrets
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Wakes an in-process runtime: the desired deployments changed.
    pub fn notify_runtime(&self) {
        self.inner.changed.notify_one();
    }

    /// Waits until [`ControlPlane::notify_runtime`] is called.
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    /// The management API: [`router`] behind the `Host`/`Origin` check.
    pub fn app(&self) -> axum::Router {
        router(self.clone()).layer(axum::middleware::from_fn_with_state(
            self.clone(),
            check_host,
        ))
    }
}

/// Refuses requests whose `Host` is not one the API is configured for, and cross-site requests
/// whose `Origin` is not that host: a browser page elsewhere cannot drive the API.
async fn check_host(State(control): State<ControlPlane>, request: Request, next: Next) -> Response {
    let allowed = &control.settings().allowed_hosts;
    if allowed.is_empty() {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        return ControlError::Forbidden(format!("host '{host}' is not served here"))
            .into_response();
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'))
            .unwrap_or("");
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin_host)) {
            return ControlError::Forbidden(format!("origin '{origin}' may not call this API"))
                .into_response();
        }
    }
    next.run(request).await
}

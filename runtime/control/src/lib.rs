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
pub mod domain;
mod error;
pub mod git;
pub mod names;
pub mod routes;
pub mod runs;
pub mod secrets;
pub mod store;
pub mod ui;
pub mod uploads;

pub use artifacts::ArtifactStore;
pub use db::{Backend, Db};
pub use error::ControlError;
pub use kiln_api::{
    DesiredDeployment, DesiredEndpoint, DriftUpload, Limits, MirrorSettings, MonitoringSettings,
    RollbackPolicy, RollbackReport, ScaleSettings, ServingState, StatusReport, Weighted,
};
pub use routes::{openapi, router};
pub use secrets::SecretBox;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kiln_executor::Executor;
use kiln_registry::RegistryOptions;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
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
    /// Where targets may reach, set by the installation admin.
    pub targets: TargetLimits,
    /// The quota of a work group an admin set none for.
    pub quota: kiln_api::manage::quotas::Quota,
    /// The sandbox that compiles Python scorers for image builds, when the host has one.
    pub build_sandbox: Option<kiln_executor::sandbox::Sandbox>,
}

/// The limits an installation admin sets on the execution targets work group owners create.
#[derive(Clone, Debug, Default)]
pub struct TargetLimits {
    /// Internal networks (loopback, private, link-local) registries, Docker hosts and Spark
    /// masters may be on; public addresses are always reachable.
    pub addresses: Arc<kiln_registry::AddressPolicy>,
    /// Docker hosts named by a Unix socket (or any URL) that targets may use besides the
    /// installation's own (`DOCKER_HOST`, else `unix:///var/run/docker.sock`).
    pub docker_hosts: Vec<String>,
    /// Docker network modes targets may use besides `bridge`, `none` and `default` (`host`,
    /// `container:NAME` and named networks need to be listed).
    pub docker_networks: Vec<String>,
}

struct Inner {
    db: Db,
    artifacts: ArtifactStore,
    secrets: SecretBox,
    settings: Settings,
    changed: Notify,
    executors: Vec<Arc<dyn Executor>>,
    runs_changed: Notify,
    /// Log followers waiting on each run's log (dropped with their last follower).
    log_watchers: Mutex<HashMap<String, Weak<Notify>>>,
    /// Log followers open per user.
    followers: Arc<Mutex<HashMap<String, usize>>>,
}

/// Log followers one user may hold open at once.
pub const MAX_FOLLOWERS_PER_USER: usize = 64;

/// One open log follower of a user's; dropping it frees the place.
pub struct FollowPermit {
    followers: Arc<Mutex<HashMap<String, usize>>>,
    user_id: String,
}

impl Drop for FollowPermit {
    fn drop(&mut self) {
        let mut followers = self
            .followers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = followers.get_mut(&self.user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                followers.remove(&self.user_id);
            }
        }
    }
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
                log_watchers: Mutex::new(HashMap::new()),
                followers: Arc::default(),
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

    /// Wakes the followers of one run's log: it grew, or the run ended.
    pub fn log_written(&self, run_id: &str) {
        let watchers = self
            .inner
            .log_watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(notify) = watchers.get(run_id).and_then(Weak::upgrade) {
            notify.notify_waiters();
        }
    }

    /// What a follower of `run_id`'s log waits on ([`ControlPlane::log_written`] wakes it).
    pub fn log_watch(&self, run_id: &str) -> Arc<Notify> {
        let mut watchers = self
            .inner
            .log_watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(notify) = watchers.get(run_id).and_then(Weak::upgrade) {
            return notify;
        }
        if watchers.len() >= 256 {
            watchers.retain(|_, w| w.strong_count() > 0);
        }
        let notify = Arc::new(Notify::new());
        watchers.insert(run_id.to_string(), Arc::downgrade(&notify));
        notify
    }

    /// A place for one more log follower of `user_id`'s, or 429 past
    /// [`MAX_FOLLOWERS_PER_USER`].
    pub fn follow_permit(&self, user_id: &str) -> Result<FollowPermit, ControlError> {
        let mut followers = self
            .inner
            .followers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = followers.entry(user_id.to_string()).or_insert(0);
        if *count >= MAX_FOLLOWERS_PER_USER {
            return Err(ControlError::TooMany(format!(
                "at most {MAX_FOLLOWERS_PER_USER} log followers per user are open at once: close one"
            )));
        }
        *count += 1;
        Ok(FollowPermit {
            followers: self.inner.followers.clone(),
            user_id: user_id.to_string(),
        })
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

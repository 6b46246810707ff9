//! Where a node's desired state comes from, and where its reports go.

use anyhow::Result;
use kiln_api::{DesiredDeployment, DesiredEndpoint, DriftUpload, RollbackReport, StatusReport};
use std::future::Future;
use std::sync::Mutex;
use tokio::sync::Notify;

/// The desired deployments and endpoints of a node, and the reports it sends back. Three
/// implementations: the control plane in the same process (`kiln up`, in the `kiln` binary),
/// [`Http`] (`kiln serve --control`), and [`InMemory`] (tests).
pub trait DesiredState: Send + Sync + 'static {
    /// Every deployment, as the node should serve it.
    fn deployments(&self) -> impl Future<Output = Result<Vec<DesiredDeployment>>> + Send;

    /// Every endpoint, as the node should route it.
    fn endpoints(&self) -> impl Future<Output = Result<Vec<DesiredEndpoint>>> + Send;

    /// What the node did with one deployment's generation.
    fn report_status(
        &self,
        deployment: &str,
        report: &StatusReport,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A watched deployment of an endpoint breached its rollback policy.
    fn report_rollback(
        &self,
        endpoint: &str,
        report: &RollbackReport,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A drift window of one deployment closed.
    fn report_drift(
        &self,
        deployment: &str,
        upload: &DriftUpload,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Returns when the desired state may have changed; the node also looks every half second,
    /// so a source that cannot tell never returns.
    fn changed(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// A control plane over HTTP, with a runtime (node) user's token, through [`kiln_client`].
pub struct Http {
    client: kiln_client::Client,
}

impl Http {
    /// The control plane at `url` (no trailing slash needed), through `http`.
    pub fn new(url: &str, token: &str, http: reqwest::Client) -> Self {
        Http {
            client: kiln_client::Client::with_http(url, token, http),
        }
    }

    /// The control plane's base URL.
    pub fn url(&self) -> &str {
        self.client.url()
    }
}

impl DesiredState for Http {
    async fn deployments(&self) -> Result<Vec<DesiredDeployment>> {
        Ok(self.client.desired_deployments().await?)
    }

    async fn endpoints(&self) -> Result<Vec<DesiredEndpoint>> {
        Ok(self.client.desired_endpoints().await?)
    }

    async fn report_status(&self, deployment: &str, report: &StatusReport) -> Result<()> {
        Ok(self.client.report_status(deployment, report).await?)
    }

    async fn report_rollback(&self, endpoint: &str, report: &RollbackReport) -> Result<()> {
        Ok(self.client.report_rollback(endpoint, report).await?)
    }

    async fn report_drift(&self, deployment: &str, upload: &DriftUpload) -> Result<()> {
        Ok(self.client.report_drift(deployment, upload).await?)
    }
}

/// Desired state held in memory, with every report kept: for tests of the node, and for a node
/// driven by code rather than a control plane.
#[derive(Default)]
pub struct InMemory {
    state: Mutex<Memory>,
    notify: Notify,
}

/// What an [`InMemory`] source holds.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    /// The desired deployments.
    pub deployments: Vec<DesiredDeployment>,
    /// The desired endpoints.
    pub endpoints: Vec<DesiredEndpoint>,
    /// Status reports, in the order they came.
    pub statuses: Vec<(String, StatusReport)>,
    /// Rollback reports, in the order they came.
    pub rollbacks: Vec<(String, RollbackReport)>,
    /// Drift reports, in the order they came.
    pub drift: Vec<(String, DriftUpload)>,
    /// When set, reading the desired state fails with this (a control plane that is down).
    pub unavailable: Option<String>,
}

impl InMemory {
    /// Changes what it holds, and wakes the node.
    pub fn update(&self, change: impl FnOnce(&mut Memory)) {
        change(&mut self.lock());
        self.notify.notify_waiters();
    }

    /// A copy of what it holds.
    pub fn snapshot(&self) -> Memory {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn available(&self) -> Result<std::sync::MutexGuard<'_, Memory>> {
        let state = self.lock();
        if let Some(why) = &state.unavailable {
            anyhow::bail!("{why}");
        }
        Ok(state)
    }
}

impl DesiredState for InMemory {
    async fn deployments(&self) -> Result<Vec<DesiredDeployment>> {
        Ok(self.available()?.deployments.clone())
    }

    async fn endpoints(&self) -> Result<Vec<DesiredEndpoint>> {
        Ok(self.available()?.endpoints.clone())
    }

    async fn report_status(&self, deployment: &str, report: &StatusReport) -> Result<()> {
        self.lock()
            .statuses
            .push((deployment.to_string(), report.clone()));
        Ok(())
    }

    async fn report_rollback(&self, endpoint: &str, report: &RollbackReport) -> Result<()> {
        self.lock()
            .rollbacks
            .push((endpoint.to_string(), report.clone()));
        Ok(())
    }

    async fn report_drift(&self, deployment: &str, upload: &DriftUpload) -> Result<()> {
        self.lock()
            .drift
            .push((deployment.to_string(), upload.clone()));
        Ok(())
    }

    async fn changed(&self) {
        self.notify.notified().await;
    }
}

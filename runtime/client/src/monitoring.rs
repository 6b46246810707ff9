//! Drift monitoring of a work group's deployments: monitor settings, drift reports, events.

use crate::deployments::path;
use crate::runs::WorkgroupPath;
use crate::{Client, Error};
use kiln_api::Page;
use kiln_api::manage::monitoring::{
    DeploymentEvent, DriftReport, Monitored, MonitoringUpdate, WindowQuery,
};
use reqwest::Method;

impl Client {
    /// Sets a deployment's drift monitor, window and retraining policy.
    pub async fn set_monitoring(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
        update: &MonitoringUpdate,
    ) -> Result<Monitored, Error> {
        let path = format!("{}/monitoring", path(workgroup, Some(name)));
        self.call(Method::PUT, &path, Some(update)).await
    }

    /// A deployment's drift report of a window: `latest`, `cumulative`, or how many windows
    /// back (0 = latest).
    pub async fn drift(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
        window: &str,
    ) -> Result<DriftReport, Error> {
        let path = format!("{}/drift", path(workgroup, Some(name)));
        let query = WindowQuery {
            window: Some(window.to_string()),
        };
        let request = self.request(Method::GET, &path).query(&query);
        self.json(request, &Method::GET, &path).await
    }

    /// A deployment's latest events, newest first: drift state changes, retraining runs.
    pub async fn deployment_events(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Page<DeploymentEvent>, Error> {
        self.get(&format!("{}/events", path(workgroup, Some(name))))
            .await
    }
}

//! Endpoints of a work group, their keys and events.

use crate::runs::WorkgroupPath;
use crate::{Client, Error, under, workgroups_path};
use kiln_api::Page;
use kiln_api::manage::Deleted;
use kiln_api::manage::deployments::{KeyName, NewKey, Regenerate};
use kiln_api::manage::endpoints::{
    Endpoint, EndpointCreated, EndpointEvent, EndpointUpdate, NewEndpoint,
};

/// The path of a work group's endpoints, or of one of them.
fn path((team, workgroup): WorkgroupPath<'_>, endpoint: Option<&str>) -> String {
    under(
        format!("{}/endpoints", workgroups_path(team, Some(workgroup))),
        endpoint,
    )
}

impl Client {
    /// Creates an endpoint; the answer holds its two keys, shown this once.
    pub async fn create_endpoint(
        &self,
        workgroup: WorkgroupPath<'_>,
        endpoint: &NewEndpoint,
    ) -> Result<EndpointCreated, Error> {
        self.post(&path(workgroup, None), endpoint).await
    }

    /// Every endpoint of a work group, page after page.
    pub async fn endpoints(&self, workgroup: WorkgroupPath<'_>) -> Result<Vec<Endpoint>, Error> {
        self.all(&path(workgroup, None)).await
    }

    /// One endpoint, with the state of each deployment it routes to.
    pub async fn endpoint(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Endpoint, Error> {
        self.get(&path(workgroup, Some(name))).await
    }

    /// Changes an endpoint's weights, mirror, rollback policy or openness.
    pub async fn update_endpoint(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
        change: &EndpointUpdate,
    ) -> Result<Endpoint, Error> {
        self.patch(&path(workgroup, Some(name)), change).await
    }

    /// Deletes an endpoint (its deployments stay).
    pub async fn delete_endpoint(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Deleted, Error> {
        self.delete(&path(workgroup, Some(name))).await
    }

    /// Regenerates one of an endpoint's keys; the answer shows it this once.
    pub async fn regenerate_endpoint_key(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
        key: KeyName,
    ) -> Result<NewKey, Error> {
        let path = format!("{}/keys", path(workgroup, Some(name)));
        self.post(&path, &Regenerate { key }).await
    }

    /// An endpoint's latest events, newest first.
    pub async fn endpoint_events(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Page<EndpointEvent>, Error> {
        self.get(&format!("{}/events", path(workgroup, Some(name))))
            .await
    }
}

//! Deployments of a work group and their keys.

use crate::runs::WorkgroupPath;
use crate::{Client, Error, under, workgroups_path};
use kiln_api::manage::Deleted;
use kiln_api::manage::deployments::{
    Deployment, DeploymentCreated, DeploymentUpdate, KeyName, NewDeployment, NewKey, Regenerate,
};

/// The path of a work group's deployments, or of one of them.
pub(crate) fn path((team, workgroup): WorkgroupPath<'_>, deployment: Option<&str>) -> String {
    under(
        format!("{}/deployments", workgroups_path(team, Some(workgroup))),
        deployment,
    )
}

impl Client {
    /// Deploys an image of the work group; the answer holds its two keys, shown this once.
    pub async fn create_deployment(
        &self,
        workgroup: WorkgroupPath<'_>,
        deployment: &NewDeployment,
    ) -> Result<DeploymentCreated, Error> {
        self.post(&path(workgroup, None), deployment).await
    }

    /// Every deployment of a work group, page after page.
    pub async fn deployments(
        &self,
        workgroup: WorkgroupPath<'_>,
    ) -> Result<Vec<Deployment>, Error> {
        self.all(&path(workgroup, None)).await
    }

    /// One deployment.
    pub async fn deployment(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Deployment, Error> {
        self.get(&path(workgroup, Some(name))).await
    }

    /// Changes a deployment's image, limits, scale or openness.
    pub async fn update_deployment(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
        change: &DeploymentUpdate,
    ) -> Result<Deployment, Error> {
        self.patch(&path(workgroup, Some(name)), change).await
    }

    /// Deletes a deployment no endpoint routes traffic to.
    pub async fn delete_deployment(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Deleted, Error> {
        self.delete(&path(workgroup, Some(name))).await
    }

    /// Regenerates one of a deployment's keys; the answer shows it this once.
    pub async fn regenerate_deployment_key(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
        key: KeyName,
    ) -> Result<NewKey, Error> {
        let path = format!("{}/keys", path(workgroup, Some(name)));
        self.post(&path, &Regenerate { key }).await
    }
}

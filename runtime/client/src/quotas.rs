//! Work groups' quotas.

use crate::{Client, Error, workgroups_path};
use kiln_api::manage::quotas::{Quota, QuotaChange};

fn path(team: &str, workgroup: &str) -> String {
    format!("{}/quota", workgroups_path(team, Some(workgroup)))
}

impl Client {
    /// The quota that applies to a work group.
    pub async fn quota(&self, team: &str, workgroup: &str) -> Result<Quota, Error> {
        self.get(&path(team, workgroup)).await
    }

    /// Changes a work group's quota (an installation admin's call); the quota that then applies.
    pub async fn set_quota(
        &self,
        team: &str,
        workgroup: &str,
        change: &QuotaChange,
    ) -> Result<Quota, Error> {
        self.call(reqwest::Method::PUT, &path(team, workgroup), Some(change))
            .await
    }
}

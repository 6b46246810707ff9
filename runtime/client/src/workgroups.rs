//! Work groups and their members.

use crate::{Client, Error, segment, workgroups_path};
use kiln_api::manage::workgroups::{NewWorkgroup, Workgroup, WorkgroupMember, WorkgroupMembership};
use kiln_api::manage::{Deleted, Removed, WorkgroupRole};

impl Client {
    /// Creates a work group in a team (a team admin's call).
    pub async fn create_workgroup(
        &self,
        team: &str,
        workgroup: &NewWorkgroup,
    ) -> Result<Workgroup, Error> {
        self.post(&workgroups_path(team, None), workgroup).await
    }

    /// The team's work groups the caller has a role in, page after page.
    pub async fn workgroups(&self, team: &str) -> Result<Vec<Workgroup>, Error> {
        self.all(&workgroups_path(team, None)).await
    }

    /// One work group, with the caller's role in it.
    pub async fn workgroup(&self, team: &str, name: &str) -> Result<Workgroup, Error> {
        self.get(&workgroups_path(team, Some(name))).await
    }

    /// Deletes a work group with everything in it (refused while it has deployments).
    pub async fn delete_workgroup(&self, team: &str, name: &str) -> Result<Deleted, Error> {
        self.delete(&workgroups_path(team, Some(name))).await
    }

    /// Every member of a work group, page after page.
    pub async fn workgroup_members(
        &self,
        team: &str,
        workgroup: &str,
    ) -> Result<Vec<WorkgroupMember>, Error> {
        self.all(&format!(
            "{}/members",
            workgroups_path(team, Some(workgroup))
        ))
        .await
    }

    /// Gives a team member a role in a work group.
    pub async fn put_workgroup_member(
        &self,
        team: &str,
        workgroup: &str,
        user: &str,
        role: WorkgroupRole,
    ) -> Result<WorkgroupMember, Error> {
        let path = format!(
            "{}/members/{}",
            workgroups_path(team, Some(workgroup)),
            segment(user)
        );
        self.call(
            reqwest::Method::PUT,
            &path,
            Some(&WorkgroupMembership { role }),
        )
        .await
    }

    /// Removes a member from a work group.
    pub async fn remove_workgroup_member(
        &self,
        team: &str,
        workgroup: &str,
        user: &str,
    ) -> Result<Removed, Error> {
        self.delete(&format!(
            "{}/members/{}",
            workgroups_path(team, Some(workgroup)),
            segment(user)
        ))
        .await
    }
}

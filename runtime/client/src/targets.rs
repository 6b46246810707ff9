//! Execution targets and environments of a work group.

use crate::{Client, Error, under, workgroups_path};
use kiln_api::manage::Deleted;
use kiln_api::manage::targets::{Environment, NewEnvironment, NewTarget, Target, TargetCheck};

/// The path of a work group's `kind` (`targets`, `environments`), or of one of them.
fn path(team: &str, workgroup: &str, kind: &str, name: Option<&str>) -> String {
    under(
        format!("{}/{kind}", workgroups_path(team, Some(workgroup))),
        name,
    )
}

impl Client {
    /// Adds an execution target to a work group.
    pub async fn create_target(
        &self,
        (team, workgroup): (&str, &str),
        target: &NewTarget,
    ) -> Result<Target, Error> {
        self.post(&path(team, workgroup, "targets", None), target)
            .await
    }

    /// Every execution target of a work group, page after page.
    pub async fn targets(&self, team: &str, workgroup: &str) -> Result<Vec<Target>, Error> {
        self.all(&path(team, workgroup, "targets", None)).await
    }

    /// One execution target.
    pub async fn target(
        &self,
        (team, workgroup): (&str, &str),
        name: &str,
    ) -> Result<Target, Error> {
        self.get(&path(team, workgroup, "targets", Some(name)))
            .await
    }

    /// Deletes an execution target.
    pub async fn delete_target(
        &self,
        (team, workgroup): (&str, &str),
        name: &str,
    ) -> Result<Deleted, Error> {
        self.delete(&path(team, workgroup, "targets", Some(name)))
            .await
    }

    /// Asks a target's executor whether it can run anything (a built-in target needs no adding).
    pub async fn test_target(
        &self,
        (team, workgroup): (&str, &str),
        name: &str,
    ) -> Result<TargetCheck, Error> {
        let path = format!("{}/test", path(team, workgroup, "targets", Some(name)));
        self.post(&path, &serde_json::json!({})).await
    }

    /// Adds an environment to a work group.
    pub async fn create_environment(
        &self,
        (team, workgroup): (&str, &str),
        environment: &NewEnvironment,
    ) -> Result<Environment, Error> {
        self.post(&path(team, workgroup, "environments", None), environment)
            .await
    }

    /// Every environment of a work group, page after page.
    pub async fn environments(
        &self,
        team: &str,
        workgroup: &str,
    ) -> Result<Vec<Environment>, Error> {
        self.all(&path(team, workgroup, "environments", None)).await
    }

    /// One environment (never its password).
    pub async fn environment(
        &self,
        (team, workgroup): (&str, &str),
        name: &str,
    ) -> Result<Environment, Error> {
        self.get(&path(team, workgroup, "environments", Some(name)))
            .await
    }

    /// Deletes an environment.
    pub async fn delete_environment(
        &self,
        (team, workgroup): (&str, &str),
        name: &str,
    ) -> Result<Deleted, Error> {
        self.delete(&path(team, workgroup, "environments", Some(name)))
            .await
    }
}

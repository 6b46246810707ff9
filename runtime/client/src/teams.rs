//! Teams and their members.

use crate::{Client, Error, segment};
use kiln_api::manage::teams::{NewTeam, Team, TeamMember, TeamMembership};
use kiln_api::manage::{Deleted, Removed, TeamRole};

impl Client {
    /// Creates a team; the caller becomes its owner.
    pub async fn create_team(&self, team: &NewTeam) -> Result<Team, Error> {
        self.post("/api/v1/teams", team).await
    }

    /// The caller's teams (every team for an administrator), page after page.
    pub async fn teams(&self) -> Result<Vec<Team>, Error> {
        self.all("/api/v1/teams").await
    }

    /// One team, with the caller's role in it.
    pub async fn team(&self, name: &str) -> Result<Team, Error> {
        self.get(&format!("/api/v1/teams/{}", segment(name))).await
    }

    /// Deletes a team with its work groups (refused while they have deployments).
    pub async fn delete_team(&self, name: &str) -> Result<Deleted, Error> {
        self.delete(&format!("/api/v1/teams/{}", segment(name)))
            .await
    }

    /// Every member of a team, page after page.
    pub async fn team_members(&self, team: &str) -> Result<Vec<TeamMember>, Error> {
        self.all(&format!("/api/v1/teams/{}/members", segment(team)))
            .await
    }

    /// Adds a member to a team or changes their role.
    pub async fn put_team_member(
        &self,
        team: &str,
        user: &str,
        role: TeamRole,
    ) -> Result<TeamMember, Error> {
        let path = format!("/api/v1/teams/{}/members/{}", segment(team), segment(user));
        self.call(reqwest::Method::PUT, &path, Some(&TeamMembership { role }))
            .await
    }

    /// Removes a member from a team and from every work group of it.
    pub async fn remove_team_member(&self, team: &str, user: &str) -> Result<Removed, Error> {
        self.delete(&format!(
            "/api/v1/teams/{}/members/{}",
            segment(team),
            segment(user)
        ))
        .await
    }
}

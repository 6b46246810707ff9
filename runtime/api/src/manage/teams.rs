//! Teams, the top-level tenant, and their members.

use super::TeamRole;
use serde::{Deserialize, Serialize};

/// `POST /api/v1/teams`: a new team; the caller becomes its owner.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    /// The team's name.
    pub name: String,
    /// What the team is for.
    #[serde(default)]
    pub description: String,
}

/// A team, with the caller's role in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Team {
    /// The team's name.
    pub name: String,
    /// What the team is for.
    pub description: String,
    /// The caller's role (administrators are owners of every team).
    pub role: TeamRole,
    /// When the team was created (RFC 3339).
    pub created: String,
}

/// A member of a team.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TeamMember {
    /// The user's name.
    pub user: String,
    /// Their role.
    pub role: TeamRole,
}

/// `PUT /api/v1/teams/{team}/members/{user}`: a member's role (only owners make owners).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamMembership {
    /// The role.
    pub role: TeamRole,
}

//! Work groups, the unit of sharing and the security boundary, and their members.

use super::WorkgroupRole;
use serde::{Deserialize, Serialize};

/// `POST /api/v1/teams/{team}/workgroups`: a new work group of the team.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWorkgroup {
    /// The work group's name, unique in its team.
    pub name: String,
    /// What the work group is for.
    #[serde(default)]
    pub description: String,
}

/// A work group, with the caller's role in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Workgroup {
    /// The team it belongs to.
    pub team: String,
    /// The work group's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The caller's role (team admins and owners are owners of every work group of the team).
    pub role: WorkgroupRole,
    /// When it was created (RFC 3339).
    pub created: String,
}

/// A member of a work group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkgroupMember {
    /// The user's name.
    pub user: String,
    /// Their role.
    pub role: WorkgroupRole,
}

/// `PUT .../workgroups/{workgroup}/members/{user}`: a member's role; the user must be a member
/// of the team.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkgroupMembership {
    /// The role.
    pub role: WorkgroupRole,
}

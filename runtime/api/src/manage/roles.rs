//! Roles: in a team, and in a work group (the security boundary). Each is ordered, so that a
//! role includes every lower one.

use serde::{Deserialize, Serialize};

/// A role in a team.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TeamRole {
    /// Sees the team and the work groups it has a role in.
    Member,
    /// Manages members and work groups; owner of every work group of the team.
    Admin,
    /// Admin, and may delete the team and name other owners.
    Owner,
}

/// A role in a work group, the security boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum WorkgroupRole {
    /// Reads everything in the work group.
    Reader,
    /// Reads and writes projects, models, images and deployments.
    Contributor,
    /// Contributor, and manages members and deletes the work group.
    Owner,
}

impl TeamRole {
    /// Parses a stored role.
    pub fn parse(text: &str) -> Option<TeamRole> {
        match text {
            "member" => Some(TeamRole::Member),
            "admin" => Some(TeamRole::Admin),
            "owner" => Some(TeamRole::Owner),
            _ => None,
        }
    }
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Member => "member",
            TeamRole::Admin => "admin",
            TeamRole::Owner => "owner",
        }
    }
}

impl WorkgroupRole {
    /// Parses a stored role.
    pub fn parse(text: &str) -> Option<WorkgroupRole> {
        match text {
            "reader" => Some(WorkgroupRole::Reader),
            "contributor" => Some(WorkgroupRole::Contributor),
            "owner" => Some(WorkgroupRole::Owner),
            _ => None,
        }
    }
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkgroupRole::Reader => "reader",
            WorkgroupRole::Contributor => "contributor",
            WorkgroupRole::Owner => "owner",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_parse_and_read_as_their_stored_form() {
        assert!(TeamRole::Owner > TeamRole::Admin && TeamRole::Admin > TeamRole::Member);
        assert!(WorkgroupRole::Owner > WorkgroupRole::Contributor);
        for role in [TeamRole::Member, TeamRole::Admin, TeamRole::Owner] {
            assert_eq!(TeamRole::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        for role in [
            WorkgroupRole::Reader,
            WorkgroupRole::Contributor,
            WorkgroupRole::Owner,
        ] {
            assert_eq!(WorkgroupRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(TeamRole::parse("root"), None);
        assert_eq!(WorkgroupRole::parse("Owner"), None);
    }
}

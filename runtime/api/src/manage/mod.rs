//! The management API's wire types: what `/api/v1/...` takes and answers, one module per noun.
//! The control plane's handlers return these, [`kiln-client`](https://docs.rs/kiln-client)
//! reads them, and the CLI prints them; the field names are the JSON the API has always spoken.
//!
//! Requests refuse unknown fields (a typo is a 400 naming the field, not a silent default);
//! answers accept them, so an older client keeps reading a newer server.

pub mod deployments;
pub mod endpoints;
pub mod experiments;
pub mod images;
pub mod models;
pub mod monitoring;
pub mod projects;
pub mod quotas;
mod roles;
pub mod runs;
pub mod targets;
pub mod teams;
pub mod users;
pub mod workgroups;

pub use roles::{TeamRole, WorkgroupRole};

use serde::{Deserialize, Serialize};

/// A secret the API shows once (a token, a deployment key): store it when it is shown.
pub const SHOWN_ONCE: &str = "shown once: store it now";

/// The answer to a delete: what was deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Deleted {
    /// The name (or id) of what was deleted.
    pub name: String,
    /// Always true.
    pub deleted: bool,
}

/// The answer to removing a member (from a team, or a work group).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Removed {
    /// The user's name.
    pub user: String,
    /// Always true.
    pub removed: bool,
}

//! What the control plane keeps in its database, typed: a row's JSON columns are parsed here,
//! in one place, and a value that does not parse is a clear error, never a silent default.

pub mod endpoints;
pub mod experiments;
pub mod images;
pub mod projects;
pub mod quotas;
pub mod settings;
pub mod targets;
pub mod teams;
pub mod users;
pub mod workgroups;

pub use settings::DeploymentSettings;

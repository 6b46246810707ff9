//! Execution targets (`local`, `docker`, `spark`, each with its own settings) and
//! environments: a named bundle of an OCI registry with its credentials (the password sealed
//! at rest and never returned), an artifact store, execution targets, runtime nodes and the
//! image of its runs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST .../targets`: a new execution target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    /// The target's name in the work group.
    pub name: String,
    /// `local`, `docker` or `spark`.
    pub kind: String,
    /// The kind's settings (a Docker host, a Spark master, an interpreter, a concurrency...).
    #[serde(default)]
    pub config: Map<String, Value>,
}

/// An execution target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Target {
    /// The target's name.
    pub name: String,
    /// `local`, `docker` or `spark`.
    pub kind: String,
    /// Its settings.
    pub config: Map<String, Value>,
    /// When it was created (RFC 3339).
    pub created: String,
}

/// The answer to `POST .../targets/{target}/test`: whether its executor can run anything.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TargetCheck {
    /// The target's name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Whether the executor reached it.
    pub reachable: bool,
    /// What the executor found (its version, or why it could not).
    pub message: String,
}

/// An environment's registry, as given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// `host[:port]`: the one host its credentials are sent to.
    pub host: String,
    /// The user name.
    #[serde(default)]
    pub username: Option<String>,
    /// The password: sealed at rest, never returned.
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST .../environments`: a new environment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    /// The environment's name in the work group.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Its registry, with credentials.
    #[serde(default)]
    pub registry: Option<RegistrySettings>,
    /// An artifact store URL for its runs (default: the installation's).
    #[serde(default)]
    pub artifact_store: Option<String>,
    /// Execution targets of the work group its runs may use (none listed: any).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Runtime node URLs.
    #[serde(default)]
    pub runtime_nodes: Vec<String>,
    /// The container image of its runs on docker targets (pulled with the registry's
    /// credentials when it is on that registry).
    #[serde(default)]
    pub run_image: Option<String>,
}

/// An environment's registry, as shown: never its password.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EnvironmentRegistry {
    /// `host[:port]`.
    pub host: String,
    /// The user name.
    pub username: Option<String>,
    /// `set` or `none`: whether a password is stored.
    pub password: String,
}

/// An environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Environment {
    /// The environment's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its registry.
    pub registry: Option<EnvironmentRegistry>,
    /// The artifact store of its runs.
    pub artifact_store: Option<String>,
    /// The execution targets its runs may use.
    pub targets: Vec<String>,
    /// Runtime node URLs.
    pub runtime_nodes: Vec<String>,
    /// The container image of its runs on docker targets.
    pub run_image: Option<String>,
    /// When it was created (RFC 3339).
    pub created: String,
}

//! Experiments: named entry points of a project (a script, its arguments, a default target).
//! An experiment made by a tracking client (the mlflow package) has no script: its runs are
//! logged to, not executed.

use serde::{Deserialize, Serialize};

/// `POST .../projects/{project}/experiments`: a new experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewExperiment {
    /// The experiment's name, unique in its project.
    pub name: String,
    /// The entry point, a path in the project (`train.py`); empty for tracking only.
    #[serde(default)]
    pub script: String,
    /// Its default arguments (at most 256 of at most 4096 bytes, no NUL).
    #[serde(default)]
    pub args: Vec<String>,
    /// Its default target (a built-in kind, or one the work group configured).
    #[serde(default = "local")]
    pub target: String,
}

fn local() -> String {
    "local".into()
}

/// An experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Experiment {
    /// The project it belongs to.
    pub project: String,
    /// The experiment's name.
    pub name: String,
    /// The entry point; empty for tracking only.
    pub script: String,
    /// Its default arguments.
    pub args: Vec<String>,
    /// Its default target.
    pub target: String,
    /// When it was created (RFC 3339).
    pub created: String,
}

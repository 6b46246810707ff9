//! Projects: the logical container for the work of a solution, inside a work group, each with
//! a Git repository whose `main` branch a push commits to.

use serde::{Deserialize, Serialize};

/// `POST .../workgroups/{workgroup}/projects`: a new project.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// The project's name, unique in its work group.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// A project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Project {
    /// The project's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// When it was created (RFC 3339).
    pub created: String,
}

/// The answer to a push (`POST .../projects/{project}/commits`, a tar of the working tree):
/// the commit it made on `main`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Pushed {
    /// The project.
    pub project: String,
    /// The commit's full SHA-1.
    pub commit: String,
    /// The files it holds.
    pub files: usize,
}

/// A commit of `main`, as its history lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Commit {
    /// The commit's full SHA-1.
    pub commit: String,
    /// Who pushed it.
    pub author: String,
    /// When (RFC 3339).
    pub time: String,
    /// Its message.
    pub message: String,
}

/// The files of one commit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CommitFiles {
    /// The project.
    pub project: String,
    /// The commit's full SHA-1.
    pub commit: String,
    /// The paths of its files.
    pub files: Vec<String>,
}

//! Models: named in a work group, each a series of numbered versions (files with their
//! digests, and lineage to the run and commit they came from), and aliases such as
//! `production` that point at a version.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST .../workgroups/{workgroup}/models`: a new model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    /// The model's name, unique in its work group.
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
}

/// A model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Model {
    /// The model's name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Its newest version's number, once it has one.
    #[serde(default)]
    pub latest_version: Option<i64>,
    /// When it was created (RFC 3339).
    pub created: String,
}

/// A model with its aliases (`GET .../models/{model}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModelDetail {
    /// The model.
    #[serde(flatten)]
    pub model: Model,
    /// Each alias with the version number it points at.
    pub aliases: BTreeMap<String, i64>,
}

/// `?description=&run=&commit=`: the notes and lineage of a version registered from a tar of
/// its files (`POST .../models/{model}/versions`, `Content-Type: application/x-tar`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// What the version is.
    #[serde(default)]
    pub description: String,
    /// The id of the run it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The commit it came from (7 to 64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// `POST .../models/{model}/versions/from-run`: the next version from a run's artifacts; its
/// lineage names the run and the run's commit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct VersionFromRun {
    /// The run's id.
    pub run: String,
    /// A directory (or file) of the run's artifacts; what it holds becomes the version's files.
    pub path: String,
    /// What the version is.
    #[serde(default)]
    pub description: String,
}

/// A file of a version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModelFile {
    /// Its path in the version.
    pub path: String,
    /// Its size in bytes.
    pub size: i64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

/// A version as a listing shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VersionSummary {
    /// Its number, from 1.
    pub version: i64,
    /// What it is.
    pub description: String,
    /// The run it came from.
    pub run: Option<String>,
    /// The commit it came from.
    pub commit: Option<String>,
    /// When it was registered (RFC 3339).
    pub created: String,
}

/// A version with its files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModelVersion {
    /// The model.
    pub model: String,
    /// The version.
    #[serde(flatten)]
    pub version: VersionSummary,
    /// Its files, by path.
    pub files: Vec<ModelFile>,
}

/// `PUT .../models/{model}/aliases/{alias}`: the version an alias points at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AliasTarget {
    /// The version's number.
    pub version: i64,
}

/// An alias and the version it points at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Alias {
    /// The model.
    pub model: String,
    /// The alias.
    pub alias: String,
    /// The version's number.
    pub version: i64,
}

/// The answer to deleting an alias.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AliasDeleted {
    /// The model.
    pub model: String,
    /// The alias.
    pub alias: String,
    /// Always true.
    pub deleted: bool,
}

//! Kiln's wire types, with serde and nothing else: what the control plane and a runtime node
//! say to each other over `GET /api/v1/runtime/*` (or in process, under `kiln up`), and the
//! settings both sides read and check by the same rules.
//!
//! - [`Limits`]: one set of instance limits and one layering rule, deployment over image over
//!   node defaults, used by `kiln serve`, image manifests, the REST API and the node.
//! - [`deployment`]: a deployment as a node should serve it, its scale and monitoring
//!   settings, and what the node reports back (status, drift).
//! - [`endpoint`]: an endpoint as a node should route it, its mirror and rollback policy, and
//!   the node's rollback finding.
//! - [`manage`]: the management API's requests and answers (users and tokens so far), which
//!   the control plane returns, `kiln-client` reads and the CLI prints.
//!
//! A crate that links this one links no database, no HTTP stack and no WebAssembly engine, so
//! a runtime node, the control plane and clients agree on the contract without sharing code
//! beyond it.

pub mod deployment;
pub mod endpoint;
mod limits;
pub mod manage;

pub use deployment::{
    Accepted, DesiredDeployment, DriftUpload, MonitoringSettings, ScaleSettings, ServingState,
    StatusReport,
};
pub use endpoint::{
    DesiredEndpoint, MirrorSettings, RollbackPolicy, RollbackReport, RolledBack, Weighted,
};
pub use limits::{Limits, LimitsError};

/// One page of a listing: `{"items": [...], "next": cursor}`; `next` is absent or null on the
/// last page.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "{T}Page"))]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// The cursor of the next page (`?after=`), when there is one.
    #[serde(default)]
    pub next: Option<String>,
}

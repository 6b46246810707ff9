//! Kiln's runtime node: what turns desired state into served predictions.
//!
//! - [`source`]: where desired deployments and endpoints come from, behind the
//!   [`DesiredState`] trait: the control plane in the same process (`kiln up`), one over HTTP
//!   (`kiln serve --control`, [`source::Http`]), or memory ([`source::InMemory`], for tests).
//! - [`reconcile`]: the loop that keeps the dataplane serving what the source wants, and its
//!   pure planning step.
//! - [`loader`]: a [`loader::ModelSource`] (a `.wasm` file or an image) compiled, loaded and
//!   checked into a dataplane deployment, with the limits layered by one rule.
//! - [`images`]: the one image-resolution policy (see [`images::open`]).
//! - [`routing`]: endpoint routing tables and the rollback verdict.
//! - [`monitoring`]: drift monitors per deployment version and the task that closes windows.
//! - [`serve`]: `kiln serve` as a library call, from a [`serve::ServeConfig`].
//!
//! A new version takes traffic only once its instances loaded and its image's sample rows went
//! through it with outputs that fit the schema ([`kiln_dataplane::Dataplane::check_sample`],
//! the same gate image builds run); until then, and for good when that fails, the version it
//! replaces keeps serving.

pub mod images;
pub mod loader;
pub mod monitoring;
pub mod reconcile;
pub mod routing;
mod scale;
pub mod serve;
pub mod source;

pub use monitoring::{Monitoring, MonitoringConfig};
pub use source::DesiredState;

use kiln_api::Limits;
use kiln_dataplane::Dataplane;
use kiln_engine::ScoringEngine;
use kiln_metrics::Metrics;
use kiln_registry::RegistryOptions;
use std::path::PathBuf;
use std::sync::Arc;

/// What serves deployments in this process.
#[derive(Clone)]
pub struct Node {
    /// The engine.
    pub engine: Arc<ScoringEngine>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The dataplane whose registry is kept in line with the desired state.
    pub dataplane: Arc<Dataplane>,
    /// The local image store, where images are looked for and pulled into.
    pub store_dir: Option<PathBuf>,
    /// How registries are reached for images that name one.
    pub registry: RegistryOptions,
    /// Drift monitoring of the deployments served.
    pub monitoring: Monitoring,
    /// The node's default limits: under a deployment's and its image's.
    pub defaults: Limits,
}

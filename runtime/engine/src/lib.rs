//! Kiln's WebAssembly engine: the one crate that owns wasmtime and runs `bindgen!` on the WIT.
//!
//! [`ScoringEngine`] holds the wasmtime engine (component model, pooling allocator when the host
//! allows it, copy-on-write memory images, epoch interruption with one ticker thread) and the
//! on-disk cache of compiled components. [`Model`] is one deployment version: its compiled
//! component, artifacts, limits and a pool of loaded instances. [`CompiledMonitor`] is a drift
//! monitor component, run by [`ScoringEngine::analyze`] in a fresh, bounded instance per call. The data plane above asks a
//! `Model` for metadata and predictions and never sees wasmtime.

mod artifacts;
mod cache;
mod config;
mod engine;
mod error;
mod host;
mod model;
mod monitor;

pub use artifacts::Artifacts;
pub use config::{Allocation, EngineConfig, InstanceLimits, default_cache_dir};
pub use engine::{CompiledScorer, ScoringEngine};
pub use error::{EngineError, ScoreError};
pub use host::HostState;
pub use model::{Model, ModelSpec};
pub use monitor::{CompiledMonitor, MonitorError, MonitorLimits, MonitorState};

/// Host bindings of the `kiln:scoring/scorer` world (`sdk/wit/scoring.wit`).
#[allow(missing_docs)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "kiln:scoring/scorer",
        exports: { default: async },
        additional_derives: [PartialEq],
    });
}

/// Host bindings of the `kiln:monitor/monitor` world (`sdk/wit/monitor/monitor.wit`).
#[allow(missing_docs)]
pub mod monitor_bindings {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/monitor",
        world: "kiln:monitor/monitor",
        exports: { default: async },
        additional_derives: [PartialEq],
    });
}

pub use monitor_bindings::kiln::monitor::types::{
    Feature as MonitorFeature, FeatureKind, FeatureReport, Role, Severity, Statistic,
};

pub use bindings::kiln::scoring::types::{
    Datatype, ModelMetadata, PredictError, Tensor, TensorData, TensorSpec,
};

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
mod nn;

/// The most elements a guest's table may grow to (each a function reference).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

pub use artifacts::Artifacts;
pub use config::{Allocation, EngineConfig, InstanceLimits, default_cache_dir};
pub use engine::{Capabilities, CompiledScorer, ScoringEngine};
pub use error::{EngineError, ScoreError};
pub use host::{HostState, empty_wasi};
pub use kiln_nn::{BackendChoice, NnConfig};
pub use model::{Model, ModelSpec};
pub use monitor::{CompiledMonitor, MonitorError, MonitorLimits, MonitorState};
pub use nn::{GraphSet, LoadedGraph};

/// Host bindings of the `kiln:scoring/scorer-nn` world (`sdk/wit/scoring.wit`): the `scorer`
/// world plus `wasi:nn` and Kiln's `graphs`, linked only for components granted `nn`.
#[allow(missing_docs)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "kiln:scoring/scorer-nn",
        imports: { default: trappable },
        exports: { default: async },
        additional_derives: [PartialEq],
        with: {
            "wasi:nn/graph.graph": crate::nn::GraphHandle,
            "wasi:nn/tensor.tensor": crate::nn::TensorResource,
            "wasi:nn/inference.graph-execution-context": crate::nn::ExecutionContext,
            "wasi:nn/errors.error": crate::nn::NnErrorResource,
        },
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

//! Errors of compiling, instantiating and calling scoring components.

use thiserror::Error;

/// Why the engine could not load or call a component.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine could not be configured.
    #[error("cannot configure the WebAssembly engine: {0}")]
    Config(String),
    /// The bytes are not a valid component, or it does not fit the `kiln:scoring/scorer` world.
    #[error("invalid scoring component: {0}")]
    InvalidComponent(String),
    /// The model's `load` failed or trapped.
    #[error("model failed to load: {0}")]
    Load(String),
    /// Reading artifacts failed.
    #[error("artifacts: {0}")]
    Artifacts(String),
}

/// Why one prediction failed. Each maps to one HTTP status in the data plane.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// The model rejected the input (its own `invalid-input` error).
    #[error("{0}")]
    InvalidInput(String),
    /// The model reported an internal error; the instance is kept.
    #[error("model error: {0}")]
    Model(String),
    /// The guest trapped; the instance was discarded.
    #[error("model trapped: {0}")]
    Trap(String),
    /// The prediction ran past its deadline; the instance was discarded.
    #[error("prediction exceeded its deadline of {0} ms")]
    DeadlineExceeded(u128),
    /// The deployment's queue is full.
    #[error("deployment is at capacity, retry later")]
    QueueFull,
    /// Waiting for an instance took the whole deadline.
    #[error("timed out waiting for a free instance")]
    QueueTimeout,
    /// A new instance could not be started.
    #[error("could not start an instance: {0}")]
    InstanceStart(String),
}

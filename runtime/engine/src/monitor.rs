//! Monitor components (`kiln:monitor/monitor`): drift statistics computed in a fresh instance per
//! call, off the request path, with a deadline and a memory limit. A monitor imports nothing.

use crate::ScoringEngine;
use crate::monitor_bindings::MonitorPre;
use crate::monitor_bindings::kiln::monitor::types::{Feature, FeatureReport};
use sha2::{Digest, Sha256};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};
use thiserror::Error;
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

/// A compiled monitor component. Clones share the code.
#[derive(Clone)]
pub struct CompiledMonitor {
    /// Shared by every deployment that uses the same component.
    pre: Arc<MonitorPre<MonitorState>>,
    /// sha256 of the component bytes, hex.
    pub digest: String,
}

/// The data of a monitor instance's store.
pub struct MonitorState {
    limits: StoreLimits,
    deadline: Instant,
}

/// How one monitor call is bounded.
#[derive(Clone, Copy, Debug)]
pub struct MonitorLimits {
    /// Linear memory, bytes.
    pub memory: usize,
    /// Wall-clock time of the call.
    pub deadline: Duration,
}

impl Default for MonitorLimits {
    fn default() -> Self {
        MonitorLimits {
            memory: 64 << 20,
            deadline: Duration::from_secs(2),
        }
    }
}

/// Why a monitor call gave no statistics.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum MonitorError {
    /// The component is not a `kiln:monitor/monitor`.
    #[error("invalid monitor component: {0}")]
    Invalid(String),
    /// The call ran past its deadline and was stopped.
    #[error("monitor exceeded its deadline of {0} ms")]
    Deadline(u128),
    /// The guest trapped (a panic, or memory past its limit).
    #[error("monitor trapped: {0}")]
    Trap(String),
    /// The monitor returned an error.
    #[error("monitor failed: {0}")]
    Failed(String),
}

impl MonitorError {
    /// A short label for metrics: `deadline`, `trap`, `error` or `invalid`.
    pub fn kind(&self) -> &'static str {
        match self {
            MonitorError::Invalid(_) => "invalid",
            MonitorError::Deadline(_) => "deadline",
            MonitorError::Trap(_) => "trap",
            MonitorError::Failed(_) => "error",
        }
    }
}

impl ScoringEngine {
    /// Compiles a monitor component (or loads it from the compile cache) and checks that it is a
    /// `kiln:monitor/monitor` that imports nothing.
    pub fn compile_monitor(&self, bytes: &[u8]) -> Result<CompiledMonitor, MonitorError> {
        let digest = hex::encode(Sha256::digest(bytes));
        {
            let mut loaded = self.monitors.lock().unwrap_or_else(PoisonError::into_inner);
            loaded.retain(|_, pre| Arc::strong_count(pre) > 1);
            if let Some(pre) = loaded.get(&digest) {
                return Ok(CompiledMonitor {
                    pre: pre.clone(),
                    digest,
                });
            }
        }
        let (component, _cached) = self
            .cache
            .load(&self.engine, bytes, &digest)
            .map_err(|e| MonitorError::Invalid(format!("{e:#}")))?;
        let pre = self
            .monitor_linker
            .instantiate_pre(&component)
            .map_err(|e| MonitorError::Invalid(format!("a monitor may import nothing: {e:#}")))?;
        let pre = MonitorPre::new(pre).map_err(|e| {
            MonitorError::Invalid(format!(
                "it does not export kiln:monitor/analyzer@0.1.0: {e:#}"
            ))
        })?;
        let pre = Arc::new(pre);
        self.monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest.clone(), pre.clone());
        Ok(CompiledMonitor { pre, digest })
    }

    /// Runs `analyze` in a fresh instance of `monitor` within `limits`.
    pub async fn analyze(
        &self,
        monitor: &CompiledMonitor,
        features: &[Feature],
        config: &str,
        limits: MonitorLimits,
    ) -> Result<Vec<FeatureReport>, MonitorError> {
        let state = MonitorState {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory)
                .instances(16)
                .tables(16)
                // A table's growth is bounded as memory's is (the pooling allocator bounds it
                // by its slots; on-demand allocation would not).
                .table_elements(crate::MAX_TABLE_ELEMENTS)
                .memories(4)
                .build(),
            deadline: Instant::now() + limits.deadline,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        let classify = |e: wasmtime::Error| match crate::model::classify(e) {
            crate::model::CallError::Deadline => {
                MonitorError::Deadline(limits.deadline.as_millis())
            }
            crate::model::CallError::Trap(message) => MonitorError::Trap(message),
        };
        let instance = monitor
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(classify)?;
        instance
            .kiln_monitor_analyzer()
            .call_analyze(&mut store, features, config)
            .await
            .map_err(classify)?
            .map_err(MonitorError::Failed)
    }
}

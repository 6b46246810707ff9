//! What the host gives a scoring instance: its store data and the imports of the `scorer` world.

use crate::Artifacts;
use crate::bindings::kiln::scoring::{artifacts, logging, types};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::{StoreLimits, StoreLimitsBuilder};

/// Longest log line a guest may write; longer lines are cut.
const MAX_LOG_LINE: usize = 4096;

/// The data of one instance's store.
pub struct HostState {
    pub(crate) limits: StoreLimits,
    pub(crate) artifacts: Artifacts,
    pub(crate) deployment: Arc<str>,
    /// When the current call must stop; checked on every epoch tick.
    pub(crate) deadline: Instant,
}

impl HostState {
    pub(crate) fn new(artifacts: Artifacts, deployment: Arc<str>, memory: usize) -> Self {
        HostState {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                .instances(64)
                .tables(64)
                .memories(16)
                .build(),
            artifacts,
            deployment,
            deadline: Instant::now(),
        }
    }
}

impl types::Host for HostState {}

impl artifacts::Host for HostState {
    fn list_files(&mut self) -> Vec<String> {
        self.artifacts.names()
    }

    fn read_file(&mut self, path: String) -> Result<Vec<u8>, String> {
        self.artifacts
            .get(&path)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("no artifact named '{path}'"))
    }
}

impl logging::Host for HostState {
    fn log(&mut self, level: logging::Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let deployment = &*self.deployment;
        match level {
            logging::Level::Trace => tracing::trace!(deployment, "{message}"),
            logging::Level::Debug => tracing::debug!(deployment, "{message}"),
            logging::Level::Info => tracing::info!(deployment, "{message}"),
            logging::Level::Warn => tracing::warn!(deployment, "{message}"),
            logging::Level::Error => tracing::error!(deployment, "{message}"),
        }
    }
}

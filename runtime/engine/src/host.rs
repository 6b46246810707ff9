//! What the host gives a scoring instance: its store data and the imports of the `scorer` world.

use crate::Artifacts;
use crate::bindings::kiln::scoring::{artifacts, logging, types};
use crate::nn::GraphSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

/// Longest log line a guest may write; longer lines are cut.
const MAX_LOG_LINE: usize = 4096;

/// The data of one instance's store.
pub struct HostState {
    pub(crate) limits: StoreLimits,
    pub(crate) artifacts: Artifacts,
    pub(crate) deployment: Arc<str>,
    /// When the current call must stop; checked on every epoch tick and by graph calls.
    pub(crate) deadline: Instant,
    /// The deployment's graphs, for a component granted `nn`.
    pub(crate) graphs: Option<Arc<GraphSet>>,
    /// The guest's `wasi:nn` resources.
    pub(crate) table: ResourceTable,
    /// Time spent in graphs during the current call.
    pub(crate) graph_time: Duration,
    /// The empty WASI context of a component that imports WASI, made on its first WASI call.
    wasi: Option<WasiCtx>,
}

impl HostState {
    pub(crate) fn new(
        artifacts: Artifacts,
        deployment: Arc<str>,
        memory: usize,
        graphs: Option<Arc<GraphSet>>,
    ) -> Self {
        HostState {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                // CPython's component has about forty core instances.
                .instances(128)
                .tables(128)
                // A table's growth is bounded as memory's is (the pooling allocator bounds it
                // by its slots; on-demand allocation would not).
                .table_elements(crate::MAX_TABLE_ELEMENTS)
                .memories(16)
                .build(),
            artifacts,
            deployment,
            deadline: Instant::now(),
            graphs,
            table: ResourceTable::new(),
            graph_time: Duration::ZERO,
            wasi: None,
        }
    }
}

/// WASI as a scorer sees it: nothing. No preopened directories, so every path is refused; no
/// network (every socket address is refused, and name lookups); no arguments or environment;
/// stdin empty and stdout and stderr discarded (the Python SDK sends `print` to the log); and
/// clocks that stand still at the Unix epoch. Only randomness is real, which reaches nothing.
/// A component built for WASI (CPython's, from componentize-py) gets an error it can handle
/// (`OSError` in Python) where a trapping stub would kill the instance and lose the reason.
pub fn empty_wasi() -> WasiCtx {
    WasiCtxBuilder::new()
        .wall_clock(StoppedClock)
        .monotonic_clock(StoppedClock)
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .build()
}

/// A clock that never moves: scorers get no time (no timing side channel, the same answer on
/// every call).
struct StoppedClock;

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(empty_wasi),
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl artifacts::Host for HostState {
    fn list_files(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.artifacts.names())
    }

    fn read_file(&mut self, path: String) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self
            .artifacts
            .get(&path)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("no artifact named '{path}'")))
    }
}

impl logging::Host for HostState {
    fn log(&mut self, level: logging::Level, message: String) -> wasmtime::Result<()> {
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
        Ok(())
    }
}

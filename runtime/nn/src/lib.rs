//! Kiln's inference backends: model graphs run natively on the host, behind `wasi:nn`.
//!
//! A scoring component granted `nn` loads a graph by file name; the engine (`kiln-engine`, which
//! implements the `wasi:nn` WIT) asks [`Backends`] to parse it once per deployment version and
//! shares the [`Graph`] between every instance. Calls run concurrently, with no lock, on one of:
//!
//! - [`onnxruntime`]: ONNX Runtime, loaded at run time from the shared library of its PyPI wheel
//!   (`ort` with `load-dynamic`): the reference implementation of every ONNX operator set,
//!   ai.onnx.ml included, and the backend for tree ensembles, SVMs and k-nearest neighbours.
//! - [`tract`]: tract, compiled into the binary: the dependency-free fallback for what it runs
//!   well (linear models, MLPs, convolutions). Graphs it cannot run, or runs far slower than ONNX
//!   Runtime (tree ensembles), are refused at load with the reason, naming ONNX Runtime.
//!
//! Sits below `kiln-engine`, beside nothing: it knows neither wasmtime nor HTTP.

mod config;
pub mod onnxruntime;
mod tensor;
pub mod tract;
mod watchdog;

pub use config::{BackendChoice, NnConfig, find_onnxruntime};
pub use tensor::{NnData, NnSpec, NnTensor, NnType, order_inputs};

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;
use thiserror::Error;

/// Why loading or running a graph failed.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum NnError {
    /// The request's tensors do not fit the graph (the caller's fault).
    #[error("{0}")]
    InvalidInput(String),
    /// The bytes are not a graph the backend can parse.
    #[error("{0}")]
    InvalidGraph(String),
    /// The graph uses something the backend cannot run.
    #[error("{0}")]
    Unsupported(String),
    /// The graph is over the size cap.
    #[error("the graph is {size} bytes, over the cap of {cap} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// No graph of that name.
    #[error("{0}")]
    NotFound(String),
    /// The call ran past its deadline and was stopped.
    #[error("the graph ran past the request's deadline")]
    Deadline,
    /// The backend failed while running the graph.
    #[error("{0}")]
    Runtime(String),
}

/// Which inference backend runs a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// ONNX Runtime.
    OnnxRuntime,
    /// tract, native.
    Tract,
}

impl BackendKind {
    /// The name used in metadata, logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::OnnxRuntime => "onnxruntime",
            BackendKind::Tract => "tract",
        }
    }
}

/// A parsed graph, shared by every instance of a deployment version. `run` takes `&self`: calls
/// run at once from many threads.
pub trait Graph: Send + Sync {
    /// The backend that runs it.
    fn backend(&self) -> BackendKind;
    /// Its inputs, in the graph's order.
    fn inputs(&self) -> &[NnSpec];
    /// Its outputs, in the graph's order.
    fn outputs(&self) -> &[NnSpec];
    /// Runs the graph on named inputs (any order; each checked against its spec) and returns
    /// every output in the graph's order. Stops with [`NnError::Deadline`] past `deadline` where
    /// the backend can interrupt itself.
    fn run(&self, inputs: Vec<NnTensor>, deadline: Instant) -> Result<Vec<NnTensor>, NnError>;
    /// Native memory the parsed graph holds, in bytes (an estimate: the process's resident
    /// memory growth while it loaded, and at least the graph's size).
    fn memory_bytes(&self) -> u64;
}

/// The backends of one process, as configured: ONNX Runtime when its library loads, and tract.
pub struct Backends {
    config: NnConfig,
    onnxruntime: Result<Arc<onnxruntime::OnnxRuntime>, String>,
}

impl Backends {
    /// Opens the configured backends. ONNX Runtime is loaded from the configured library, else
    /// the one [`find_onnxruntime`] finds; when none loads, graphs go to tract and the reason is
    /// kept for the errors that name ONNX Runtime as the fix.
    pub fn new(config: NnConfig) -> Self {
        let onnxruntime = match config.onnxruntime.clone().or_else(find_onnxruntime) {
            Some(path) => onnxruntime::OnnxRuntime::open(&path),
            None => Err(
                "no ONNX Runtime library found (install it with sdk/install-onnxruntime, or set \
                 KILN_ONNXRUNTIME to a libonnxruntime.so)"
                    .to_string(),
            ),
        };
        match &onnxruntime {
            Ok(runtime) => tracing::info!(
                library = %runtime.library().display(),
                version = runtime.version(),
                "ONNX Runtime loaded: model graphs run on it"
            ),
            Err(reason) if config.backend != BackendChoice::Tract => {
                tracing::warn!("ONNX Runtime unavailable, model graphs run on tract: {reason}")
            }
            Err(_) => {}
        }
        Backends {
            config,
            onnxruntime,
        }
    }

    /// The process-wide backends, opened once from `config` (later configs are ignored: ONNX
    /// Runtime can be loaded only once per process).
    pub fn shared(config: &NnConfig) -> Arc<Backends> {
        static SHARED: OnceLock<Mutex<Option<Arc<Backends>>>> = OnceLock::new();
        let slot = SHARED.get_or_init(|| Mutex::new(None));
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert_with(|| Arc::new(Backends::new(config.clone())))
            .clone()
    }

    /// The settings in force.
    pub fn config(&self) -> &NnConfig {
        &self.config
    }

    /// ONNX Runtime, or why it is not available.
    pub fn onnxruntime(&self) -> Result<&onnxruntime::OnnxRuntime, &str> {
        self.onnxruntime.as_deref().map_err(String::as_str)
    }

    /// Parses an ONNX graph on the backend that should run it: the forced one, else ONNX Runtime
    /// when loaded, else tract (which refuses graphs it cannot run, or runs far too slowly).
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<dyn Graph>, NnError> {
        let cap = self.config.max_graph_bytes;
        if bytes.len() as u64 > cap {
            return Err(NnError::TooLarge {
                size: bytes.len() as u64,
                cap,
            });
        }
        let threads = self.config.intra_threads.max(1);
        match (self.config.backend, &self.onnxruntime) {
            (BackendChoice::Tract, _) => {
                tract_graph(bytes, true, "use the auto or onnxruntime backend")
            }
            (_, Ok(runtime)) => Ok(Arc::new(runtime.load(bytes, threads)?)),
            (BackendChoice::OnnxRuntime, Err(reason)) => Err(NnError::Unsupported(format!(
                "the backend is set to onnxruntime, which is not available: {reason}"
            ))),
            (BackendChoice::Auto, Err(reason)) => tract_graph(
                bytes,
                false,
                &format!("but it is not available here: {reason}"),
            ),
        }
    }
}

/// A graph on tract; what tract cannot run is named with ONNX Runtime as the fix (`hint`).
fn tract_graph(bytes: &[u8], allow_slow: bool, hint: &str) -> Result<Arc<dyn Graph>, NnError> {
    match tract::TractGraph::load(bytes, allow_slow) {
        Ok(graph) => Ok(Arc::new(graph)),
        Err(NnError::Unsupported(m)) => Err(NnError::Unsupported(format!(
            "{m}; ONNX Runtime runs it ({hint})"
        ))),
        Err(other) => Err(other),
    }
}

/// The process's resident memory in bytes, where the OS tells it.
pub(crate) fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Loads one graph at a time, so the resident-memory growth measured belongs to it.
pub(crate) fn measured<T>(
    size: usize,
    load: impl FnOnce() -> Result<T, NnError>,
) -> Result<(T, u64), NnError> {
    static LOADING: Mutex<()> = Mutex::new(());
    let _one = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
    let before = resident_bytes();
    let loaded = load()?;
    let grown = resident_bytes().saturating_sub(before);
    Ok((loaded, grown.max(size as u64)))
}

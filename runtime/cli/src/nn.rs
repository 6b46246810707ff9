//! Flags of the inference backends that run model graphs for scorers granted `nn`.

use clap::Args;
use kiln_engine::{BackendChoice, NnConfig};
use std::path::PathBuf;

/// Where graphs run: ONNX Runtime's library, the backend, threads and the graph size cap.
#[derive(Args, Clone, Debug)]
pub struct NnArgs {
    /// ONNX Runtime's shared library (libonnxruntime.so, as the onnxruntime PyPI wheel ships it);
    /// default: one beside the binary or installed by sdk/install-onnxruntime.
    #[arg(long, env = "KILN_ONNXRUNTIME", value_name = "PATH")]
    onnxruntime: Option<PathBuf>,
    /// The backend that runs model graphs: auto (ONNX Runtime when present, else tract),
    /// onnxruntime or tract.
    #[arg(long, env = "KILN_NN_BACKEND", default_value = "auto", value_parser = parse_backend)]
    nn_backend: BackendChoice,
    /// Threads one graph call may use; concurrency comes from instances.
    #[arg(long, env = "KILN_NN_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    nn_threads: u32,
    /// The largest model graph accepted, in MiB.
    #[arg(long, env = "KILN_MAX_GRAPH_MB", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..))]
    max_graph_mb: u64,
}

fn parse_backend(text: &str) -> Result<BackendChoice, String> {
    text.parse()
}

impl NnArgs {
    /// The settings these flags give.
    pub fn config(&self) -> NnConfig {
        NnConfig {
            onnxruntime: self.onnxruntime.clone(),
            backend: self.nn_backend,
            intra_threads: self.nn_threads as usize,
            max_graph_bytes: self.max_graph_mb << 20,
        }
    }
}

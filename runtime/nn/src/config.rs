//! Inference settings of a process, and where ONNX Runtime's library is found.

use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Which backend runs graphs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// ONNX Runtime when it is available, else tract.
    #[default]
    Auto,
    /// Always ONNX Runtime: loading a graph fails when it is not available.
    OnnxRuntime,
    /// Always tract, including graphs it runs slowly (tree ensembles).
    Tract,
}

impl FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "onnxruntime" => Ok(BackendChoice::OnnxRuntime),
            "tract" => Ok(BackendChoice::Tract),
            other => Err(format!(
                "unknown inference backend '{other}': choose auto, onnxruntime or tract"
            )),
        }
    }
}

/// Settings shared by every graph of a process.
#[derive(Clone, Debug)]
pub struct NnConfig {
    /// ONNX Runtime's shared library; `None` searches with [`find_onnxruntime`].
    pub onnxruntime: Option<PathBuf>,
    /// The backend to use.
    pub backend: BackendChoice,
    /// Threads one graph call may use (ONNX Runtime's intra-op threads). Concurrency comes
    /// from instances, so the default is 1.
    pub intra_threads: usize,
    /// The largest graph file accepted, in bytes.
    pub max_graph_bytes: u64,
}

impl Default for NnConfig {
    fn default() -> Self {
        NnConfig {
            onnxruntime: None,
            backend: BackendChoice::Auto,
            intra_threads: 1,
            max_graph_bytes: 512 << 20,
        }
    }
}

impl NnConfig {
    /// The defaults, with what the environment sets: `KILN_ONNXRUNTIME` (the library),
    /// `KILN_NN_BACKEND` (auto, onnxruntime, tract), `KILN_NN_THREADS` and `KILN_MAX_GRAPH_MB`.
    /// A value that does not parse is reported and left at its default.
    pub fn from_env() -> NnConfig {
        let mut config = NnConfig::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        config.onnxruntime = var("KILN_ONNXRUNTIME").map(PathBuf::from);
        if let Some(text) = var("KILN_NN_BACKEND") {
            match text.parse() {
                Ok(choice) => config.backend = choice,
                Err(e) => tracing::warn!("KILN_NN_BACKEND: {e}"),
            }
        }
        if let Some(text) = var("KILN_NN_THREADS") {
            match text.parse::<usize>() {
                Ok(n) if n > 0 => config.intra_threads = n,
                _ => tracing::warn!("KILN_NN_THREADS must be a positive number, not '{text}'"),
            }
        }
        if let Some(text) = var("KILN_MAX_GRAPH_MB") {
            match text.parse::<u64>() {
                Ok(mb) if mb > 0 => config.max_graph_bytes = mb << 20,
                _ => tracing::warn!("KILN_MAX_GRAPH_MB must be a positive number, not '{text}'"),
            }
        }
        config
    }
}

/// ONNX Runtime's library: `$KILN_ONNXRUNTIME`, else `$ORT_DYLIB_PATH`, else a
/// `libonnxruntime.so*` beside the binary, in `lib/` next to it, or in the `onnxruntime/` wheel
/// directory that `sdk/install-onnxruntime` fills (`target/onnxruntime` for `target/*/kiln`).
pub fn find_onnxruntime() -> Option<PathBuf> {
    for var in ["KILN_ONNXRUNTIME", "ORT_DYLIB_PATH"] {
        if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(path));
        }
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let wheel = Path::new("onnxruntime/onnxruntime/capi");
    let candidates = [
        dir.to_path_buf(),
        dir.join("lib"),
        dir.join("../lib"),
        dir.join("..").join(wheel),
        dir.join("../..").join(wheel),
    ];
    candidates.iter().find_map(|d| library_in(d))
}

/// The ONNX Runtime library in `dir`: `libonnxruntime.so` or `libonnxruntime.so.VERSION`.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("libonnxruntime.so"))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
        .collect();
    found.sort();
    found.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse_and_unknown_ones_are_refused() {
        assert_eq!("auto".parse(), Ok(BackendChoice::Auto));
        assert_eq!("tract".parse(), Ok(BackendChoice::Tract));
        assert_eq!("onnxruntime".parse(), Ok(BackendChoice::OnnxRuntime));
        let err = "cuda".parse::<BackendChoice>().expect_err("unknown");
        assert!(err.contains("auto, onnxruntime or tract"), "{err}");
    }

    #[test]
    fn the_library_is_found_by_its_versioned_name_only() {
        let dir = std::env::temp_dir().join(format!("kiln-nn-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("libonnxruntime_providers_shared.so"), b"").expect("write");
        assert_eq!(library_in(&dir), None);
        std::fs::write(dir.join("libonnxruntime.so.1.32.0"), b"").expect("write");
        assert_eq!(library_in(&dir), Some(dir.join("libonnxruntime.so.1.32.0")));
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}

//! The on-disk cache of compiled components, keyed by component sha256 and engine configuration.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled components on disk, `<sha256>-<engine hash>.cwasm`.
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CompileCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        // The compatibility hash covers wasmtime's version, target and every setting that
        // changes compiled code: an artifact is only reused by an engine that can run it.
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// Loads `bytes` as a component: from the cache when it holds it, else compiles and stores.
    /// Returns the component and whether it came from the cache; `digest` is the bytes' sha256.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> wasmtime::Result<(Component, bool)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, false));
        };
        let path = dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "compile cache entry unusable, recompiling: {e}")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store(&path, &component) {
            tracing::warn!(path = %path.display(), "cannot write compile cache: {e}");
        }
        Ok((component, false))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was written by `store` below from `Component::serialize` of an engine
    // with the same compatibility hash (it is in the file name), into a directory Kiln owns, and
    // was renamed into place only when complete. wasmtime still checks its header and version.
    unsafe { Component::deserialize_file(engine, path) }
}

fn store(path: &Path, component: &Component) -> std::io::Result<()> {
    let serialized = component.serialize().map_err(std::io::Error::other)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serialized)?;
    std::fs::rename(&tmp, path)
}

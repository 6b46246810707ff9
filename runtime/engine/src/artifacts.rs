//! The read-only files a scorer sees through the `kiln:scoring/artifacts` import.
//!
//! Files are read into memory when a deployment is created: the guest can only name keys of
//! this map, so no path it sends can reach anything else on the host.

use crate::EngineError;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Total bytes of artifacts one deployment may hold.
pub const MAX_ARTIFACT_BYTES: u64 = 2 << 30;

/// An immutable set of named files.
#[derive(Clone, Debug, Default)]
pub struct Artifacts {
    files: Arc<BTreeMap<String, Arc<[u8]>>>,
}

impl Artifacts {
    /// No files.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every regular file below `dir`, keyed by its `/`-separated relative path.
    /// Symbolic links are not followed.
    pub fn from_dir(dir: &Path) -> Result<Self, EngineError> {
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            let entries = std::fs::read_dir(&current).map_err(|e| {
                EngineError::Artifacts(format!("cannot read directory {}: {e}", current.display()))
            })?;
            for entry in entries {
                let entry = entry.map_err(|e| EngineError::Artifacts(e.to_string()))?;
                let kind = entry
                    .file_type()
                    .map_err(|e| EngineError::Artifacts(e.to_string()))?;
                let path = entry.path();
                if kind.is_dir() {
                    pending.push(path);
                } else if kind.is_file() {
                    let bytes = std::fs::read(&path).map_err(|e| {
                        EngineError::Artifacts(format!("cannot read {}: {e}", path.display()))
                    })?;
                    total += bytes.len() as u64;
                    if total > MAX_ARTIFACT_BYTES {
                        return Err(EngineError::Artifacts(format!(
                            "{} holds more than {MAX_ARTIFACT_BYTES} bytes",
                            dir.display()
                        )));
                    }
                    let relative = path.strip_prefix(dir).unwrap_or(&path);
                    let key = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    files.insert(key, Arc::from(bytes));
                }
            }
        }
        Ok(Artifacts {
            files: Arc::new(files),
        })
    }

    /// Files given by name (images from a registry, tests).
    pub fn from_files(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        let files = files.into_iter().map(|(k, v)| (k, Arc::from(v))).collect();
        Artifacts {
            files: Arc::new(files),
        }
    }

    /// Relative paths of every file.
    pub fn names(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// One file's bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .get(name.trim_start_matches("./"))
            .map(|b| &b[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_files_and_nothing_outside() {
        let dir = std::env::temp_dir().join(format!("kiln-artifacts-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        std::fs::write(dir.join("weights.json"), b"{}").expect("write");
        std::fs::write(dir.join("sub/vocab.txt"), b"a\nb").expect("write");
        let artifacts = Artifacts::from_dir(&dir).expect("load");
        assert_eq!(artifacts.names(), vec!["sub/vocab.txt", "weights.json"]);
        assert_eq!(artifacts.get("./weights.json"), Some(&b"{}"[..]));
        assert_eq!(artifacts.get("../etc/passwd"), None);
        assert_eq!(artifacts.get("/etc/passwd"), None);
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}

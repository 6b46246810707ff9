//! Scorers that Kiln ships, named in a manifest instead of a component: `scorer = "onnx"` (or
//! `"onnx@0.1.0"`). Each is a WebAssembly component built with Kiln (`sdk/build-components`
//! writes it beside the binary's `components/` directory), and is installed into the local store
//! as a CNCF Wasm OCI artifact tagged `kiln/scorers/NAME:VERSION` the first time an image uses
//! it. An image built from it holds that component's layer like any other, so a deployment pins
//! its digest; `kiln push kiln/scorers/onnx:0.1.0 REGISTRY/...` publishes it.

use crate::BuildError;
use kiln_image::{Digest, OciStore};
use std::path::PathBuf;

/// A scorer Kiln ships.
#[derive(Debug)]
pub struct BuiltinScorer {
    /// The name a manifest gives.
    pub name: &'static str,
    /// Its version (Kiln's).
    pub version: &'static str,
    /// The component's file name beside the binary.
    pub file: &'static str,
    /// What it serves.
    pub summary: &'static str,
    /// What its manifest grants it without being asked.
    pub capabilities: &'static [&'static str],
}

/// Every built-in scorer.
pub const BUILTIN_SCORERS: &[BuiltinScorer] = &[BuiltinScorer {
    name: "onnx",
    version: env!("CARGO_PKG_VERSION"),
    file: "onnx.wasm",
    summary: "ONNX models (scikit-learn via skl2onnx, PyTorch, XGBoost), their graphs run on the host by ONNX Runtime or tract",
    capabilities: &["nn"],
}];

/// A built-in scorer in the local store.
#[derive(Debug)]
pub struct Installed {
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// The store tag and manifest digest: `kiln/scorers/NAME:VERSION@sha256:...`.
    pub reference: String,
    /// The component layer's digest.
    pub component_digest: Digest,
}

impl BuiltinScorer {
    /// Its tag in the local store.
    pub fn tag(&self) -> String {
        format!("kiln/scorers/{}:{}", self.name, self.version)
    }

    /// Where its component file is, if it is installed beside the binary.
    pub fn path(&self) -> Option<PathBuf> {
        shipped_component(self.file)
    }

    /// Puts the component into `store` as a Wasm OCI artifact under [`BuiltinScorer::tag`].
    pub fn install(&self, store: &OciStore) -> Result<Installed, BuildError> {
        let path = self.path().ok_or_else(|| {
            BuildError::Component(format!(
                "Kiln's built-in scorer '{}' ({}) is not installed beside the kiln binary: \
                 build it with sdk/build-components",
                self.name, self.file
            ))
        })?;
        let bytes = std::fs::read(&path)
            .map_err(|e| BuildError::Component(format!("cannot read {}: {e}", path.display())))?;
        let tag = self.tag();
        let descriptor = kiln_image::build_component_image(store, &bytes, &tag)?;
        Ok(Installed {
            component_digest: Digest::of(&bytes),
            reference: format!("{tag}@{}", descriptor.digest),
            bytes,
        })
    }
}

/// The built-in scorer a manifest's component names (`NAME` or `NAME@VERSION`): `None` when it
/// names none, an error when it names a version Kiln does not ship.
pub fn builtin_scorer(text: &str) -> Option<Result<&'static BuiltinScorer, String>> {
    let (name, version) = match text.split_once('@') {
        Some((name, version)) if !version.starts_with("sha256:") => (name, Some(version)),
        Some(_) => return None,
        None => (text, None),
    };
    let scorer = BUILTIN_SCORERS.iter().find(|s| s.name == name)?;
    Some(match version {
        Some(v) if v != scorer.version => Err(format!(
            "this Kiln ships the built-in scorer {name}@{}, not {name}@{v}",
            scorer.version
        )),
        _ => Ok(scorer),
    })
}

/// A component file Kiln ships: in `$KILN_COMPONENTS`, beside the binary, or in `components/`
/// of the binary's target directory (where `sdk/build-components` writes for `target/*/kiln`).
pub fn shipped_component(file: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("KILN_COMPONENTS")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        dirs.push(dir.clone());
        dirs.push(dir.join("../components"));
        dirs.push(dir.join("../../components"));
    }
    dirs.into_iter().map(|d| d.join(file)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_resolve() {
        let onnx = builtin_scorer("onnx").expect("built in").expect("ok");
        assert_eq!(onnx.tag(), format!("kiln/scorers/onnx:{}", onnx.version));
        let pinned = format!("onnx@{}", onnx.version);
        assert!(builtin_scorer(&pinned).expect("built in").is_ok());
        let err = builtin_scorer("onnx@9.9.9")
            .expect("built in")
            .expect_err("unknown version");
        assert!(err.contains("not onnx@9.9.9"), "{err}");
        assert!(builtin_scorer("iris:1").is_none());
        assert!(builtin_scorer("onnx@sha256:00").is_none());
        assert!(builtin_scorer("model.wasm").is_none());
    }
}

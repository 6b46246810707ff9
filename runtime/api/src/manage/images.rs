//! Images and manifests. An image is an OCI artifact a work group may deploy, recorded with
//! the digest it resolved to when registered: an existing one (a local store tag or digest, or
//! a registry reference, pulled and verified), or one the control plane built from a manifest.
//! A manifest is an image's recipe (scoring component, model files, schema, sample, baseline,
//! limits) over the files of a registered model version.

use serde::{Deserialize, Serialize};

/// `POST .../workgroups/{workgroup}/images`: a new image, by `reference` or built from
/// `manifest` (one of the two).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewImage {
    /// The image's name, unique in its work group.
    pub name: String,
    /// A local store tag or digest, or a registry reference (`host/repo:tag`, `oci://...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A manifest of the work group, built into the local store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// An environment of the work group whose registry credentials the pull uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// An image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Image {
    /// The image's name.
    pub name: String,
    /// Its store reference, pinned by digest (`repo@sha256:...`).
    pub reference: String,
    /// Its manifest digest.
    pub digest: String,
    /// The registry it was pulled from, if it was.
    pub registry: Option<String>,
    /// What it is.
    pub kind: ImageKind,
    /// The manifest it was built from, if it was.
    #[serde(default)]
    pub manifest: Option<String>,
    /// When it was registered (RFC 3339).
    pub created: String,
}

/// What an image holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    /// A Kiln model image: a scoring component with model files, schema, sample and baseline.
    KilnModel,
    /// A Wasm OCI artifact: one component, nothing else.
    WasmComponent,
}

impl ImageKind {
    /// The kind as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::KilnModel => "kiln-model",
            ImageKind::WasmComponent => "wasm-component",
        }
    }
}

impl std::str::FromStr for ImageKind {
    type Err = String;

    fn from_str(text: &str) -> Result<ImageKind, String> {
        [ImageKind::KilnModel, ImageKind::WasmComponent]
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| format!("unknown image kind '{text}'"))
    }
}

/// `POST .../workgroups/{workgroup}/manifests`: a new manifest over a model version's files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewManifest {
    /// The manifest's name, unique in its work group.
    pub name: String,
    /// The model, by name.
    pub model: String,
    /// Its version: a number or an alias (pinned to the number it means now).
    pub version: String,
    /// The manifest, in the manifest file format (TOML, at most 256 KiB); its paths name files
    /// of the version.
    pub manifest: String,
}

/// A manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Manifest {
    /// The manifest's name.
    pub name: String,
    /// The model whose version's files it is over.
    pub model: String,
    /// The version's number.
    pub version: i64,
    /// The manifest, in the manifest file format.
    pub manifest: String,
    /// When it was registered (RFC 3339).
    pub created: String,
}

/// The answer to registering a manifest: what was checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ManifestChecked {
    /// The manifest's name.
    pub name: String,
    /// The model.
    pub model: String,
    /// The version's number.
    pub version: i64,
    /// The name of the image it builds.
    pub image_name: String,
    /// The version of the image it builds.
    pub image_version: String,
    /// When it was registered (RFC 3339).
    pub created: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_as_they_are_written() {
        for kind in [ImageKind::KilnModel, ImageKind::WasmComponent] {
            let written = serde_json::to_string(&kind).unwrap();
            assert_eq!(written, format!("\"{}\"", kind.as_str()));
            assert_eq!(kind.as_str().parse::<ImageKind>(), Ok(kind));
        }
        assert!("model".parse::<ImageKind>().is_err());
    }
}

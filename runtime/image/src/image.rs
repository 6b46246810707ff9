//! Kiln model images and plain component images: how they are built and how a deployable image
//! is read back from the store, with every layer checked.

use crate::media::{
    COMPONENT_OS, KILN_ARTIFACT, KILN_CONFIG, MODEL_FILE, OCI_MANIFEST, SAMPLE, TITLE,
    WASM_ARCHITECTURE, WASM_CONFIG, WASM_LAYER,
};
use crate::{Baseline, Descriptor, Digest, ImageError, ImageManifest, OciStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A tensor in the image's schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSchema {
    /// Tensor name.
    pub name: String,
    /// Open Inference Protocol datatype (`FP32`, `INT64`, ...).
    pub datatype: String,
    /// Shape, -1 for a variable dimension.
    pub shape: Vec<i64>,
}

/// Inputs and outputs of a model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Input tensors.
    pub inputs: Vec<TensorSchema>,
    /// Output tensors.
    pub outputs: Vec<TensorSchema>,
}

/// The config blob of a Kiln model image: the resolved manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KilnConfig {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// What the model is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The string passed to the scorer's `load`.
    #[serde(default)]
    pub scorer_config: String,
    /// The image the scorer component came from, pinned by digest (`kiln/scorers/onnx:0.1.0@sha256:...`
    /// for a built-in scorer); absent for a `.wasm` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer_source: Option<String>,
    /// Inputs and outputs, as the component declares them.
    pub schema: Schema,
    /// Default limits.
    #[serde(default)]
    pub limits: kiln_api::Limits,
    /// Capabilities granted to the scorer (none by default).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The drift baseline, when the manifest asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// Drift monitoring defaults of deployments, from the manifest's `[monitoring]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<kiln_api::MonitoringSettings>,
    /// How the component was built, when it is a Python script's (`scorer = "python"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonBuild>,
}

/// What a Python scorer's component was built from: the script, its modules and the compiler.
/// The same `source_digest` gives the same component from the build cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonBuild {
    /// The script, as the manifest names it.
    pub script: String,
    /// sha256 of the script's bytes (`sha256:...`).
    pub script_digest: String,
    /// sha256 over the bundled modules' paths and bytes, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules_digest: Option<String>,
    /// sha256 over everything componentize-py compiled (script, modules, the SDK, the WIT and
    /// the app module Kiln wrote): the key of Kiln's build cache.
    pub source_digest: String,
    /// The componentize-py version that compiled it.
    pub componentize_py: String,
}

/// What kind of image a manifest describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    /// A Kiln model image (`artifactType` `application/vnd.kiln.model.v1`).
    KilnModel,
    /// A CNCF Wasm OCI artifact: one component, nothing else.
    WasmComponent,
}

/// An image read from the store and checked: everything a deployment needs.
pub struct DeployableImage {
    /// Kiln model or plain component.
    pub kind: ImageKind,
    /// Digest of the image manifest (what a deployment pins).
    pub manifest_digest: Digest,
    /// The component's bytes.
    pub component: Vec<u8>,
    /// The component layer's digest (the compile cache key).
    pub component_digest: Digest,
    /// Model files by title.
    pub files: Vec<(String, Vec<u8>)>,
    /// The Kiln config (model images only).
    pub config: Option<KilnConfig>,
    /// The sample rows (MLflow `dataframe_split` JSON), when a model image has them.
    pub sample: Option<Vec<u8>>,
}

/// Checks a layer title names a file inside the image: relative, no `..`, no backslash.
pub fn check_title(title: &str) -> Result<(), ImageError> {
    let bad = title.is_empty()
        || title.starts_with('/')
        || title.contains('\\')
        || title.contains('\0')
        || title
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(ImageError::Invalid(format!(
            "layer title '{title}' is not a safe relative file name"
        )));
    }
    Ok(())
}

/// Which layers a Kiln model image is built from.
pub struct ModelImageParts<'a> {
    /// The resolved manifest.
    pub config: &'a KilnConfig,
    /// The scoring component.
    pub component: &'a [u8],
    /// Model files, by relative name.
    pub files: &'a [(String, Vec<u8>)],
    /// Sample rows as JSON, if any.
    pub sample: Option<&'a [u8]>,
}

/// Writes a Kiln model image into the store and tags it.
pub fn build_model_image(
    store: &OciStore,
    parts: &ModelImageParts<'_>,
    tag: &str,
) -> Result<Descriptor, ImageError> {
    let config_bytes = serde_json::to_vec(parts.config).unwrap_or_default();
    let mut layers = vec![
        store
            .put_blob(WASM_LAYER, parts.component)?
            .annotated(TITLE, "scorer.wasm"),
    ];
    for (name, bytes) in parts.files {
        check_title(name)?;
        layers.push(store.put_blob(MODEL_FILE, bytes)?.annotated(TITLE, name));
    }
    if let Some(sample) = parts.sample {
        layers.push(
            store
                .put_blob(SAMPLE, sample)?
                .annotated(TITLE, "sample.json"),
        );
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.title".to_string(),
        parts.config.name.clone(),
    );
    annotations.insert(
        "org.opencontainers.image.version".to_string(),
        parts.config.version.clone(),
    );
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(KILN_ARTIFACT.into()),
        config: store.put_blob(KILN_CONFIG, &config_bytes)?,
        layers,
        annotations,
    };
    store.put_manifest(&manifest, tag)
}

/// Writes a plain component image (CNCF Wasm OCI layout) into the store and tags it.
pub fn build_component_image(
    store: &OciStore,
    component: &[u8],
    tag: &str,
) -> Result<Descriptor, ImageError> {
    let layer = store.put_blob(WASM_LAYER, component)?;
    let config = serde_json::json!({
        "architecture": WASM_ARCHITECTURE,
        "os": COMPONENT_OS,
        "layerDigests": [layer.digest.as_str()],
        "component": { "exports": ["kiln:scoring/model@0.1.0"], "imports": ["kiln:scoring/artifacts@0.1.0", "kiln:scoring/logging@0.1.0"] },
    });
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: None,
        config: store.put_blob(
            WASM_CONFIG,
            &serde_json::to_vec(&config).unwrap_or_default(),
        )?,
        layers: vec![layer],
        annotations: BTreeMap::new(),
    };
    store.put_manifest(&manifest, tag)
}

/// Checks that a manifest describes an image Kiln can deploy, before any blob is read: its kind
/// from the artifact type and config media type, exactly one component layer, only known layer
/// media types, and safe file titles. Returns the kind and the component layer.
pub fn deployable_kind<'m>(
    digest: &Digest,
    manifest: &'m ImageManifest,
) -> Result<(ImageKind, &'m Descriptor), ImageError> {
    let components: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == WASM_LAYER)
        .collect();
    let component_layer = match components.as_slice() {
        [one] => *one,
        [] => {
            return Err(ImageError::Invalid(format!(
                "image {digest} has no {WASM_LAYER} layer"
            )));
        }
        many => {
            return Err(ImageError::Invalid(format!(
                "image {digest} has {} components where one is expected",
                many.len()
            )));
        }
    };
    let kind = match (
        manifest.artifact_type.as_deref(),
        manifest.config.media_type.as_str(),
    ) {
        (Some(KILN_ARTIFACT), KILN_CONFIG) => ImageKind::KilnModel,
        (Some(KILN_ARTIFACT), other) => {
            return Err(ImageError::Invalid(format!(
                "image {digest}: Kiln model image with config media type '{other}', expected '{KILN_CONFIG}'"
            )));
        }
        (_, WASM_CONFIG) => ImageKind::WasmComponent,
        (artifact, config) => {
            return Err(ImageError::Invalid(format!(
                "unsupported image {digest}: artifact type {}, config media type '{config}' (Kiln deploys '{KILN_ARTIFACT}' images and '{WASM_CONFIG}' components)",
                artifact.unwrap_or("none"),
            )));
        }
    };
    match kind {
        ImageKind::KilnModel => {
            for layer in &manifest.layers {
                match layer.media_type.as_str() {
                    WASM_LAYER | SAMPLE => {}
                    MODEL_FILE => {
                        let title = layer.title().ok_or_else(|| {
                            ImageError::Invalid(format!(
                                "model file layer {} has no {TITLE} annotation",
                                layer.digest
                            ))
                        })?;
                        check_title(title)?;
                    }
                    other => {
                        return Err(ImageError::Invalid(format!(
                            "image {digest}: layer {} has unknown media type '{other}'",
                            layer.digest
                        )));
                    }
                }
            }
        }
        ImageKind::WasmComponent => {
            if manifest.layers.len() != 1 {
                return Err(ImageError::Invalid(format!(
                    "component image {digest} must have exactly one layer, it has {}",
                    manifest.layers.len()
                )));
            }
        }
    }
    Ok((kind, component_layer))
}

/// Reads an image from the store and checks it is deployable ([`deployable_kind`]), with every
/// blob it reads verified.
pub fn open_image(store: &OciStore, reference: &str) -> Result<DeployableImage, ImageError> {
    let (descriptor, manifest) = store.resolve(reference)?;
    let (kind, component_layer) = deployable_kind(&descriptor.digest, &manifest)?;
    let config_bytes = store.read_blob(&manifest.config)?;
    let mut files = Vec::new();
    let mut sample = None;
    let config = match kind {
        ImageKind::KilnModel => {
            let config: KilnConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
                ImageError::Invalid(format!(
                    "config {} is not a Kiln model config: {e}",
                    manifest.config.digest
                ))
            })?;
            for layer in &manifest.layers {
                if layer.media_type == MODEL_FILE {
                    // deployable_kind checked every model file has a safe title.
                    let title = layer.title().unwrap_or_default();
                    files.push((title.to_string(), store.read_blob(layer)?));
                } else if layer.media_type == SAMPLE {
                    sample = Some(store.read_blob(layer)?);
                }
            }
            Some(config)
        }
        ImageKind::WasmComponent => None,
    };
    let component = store.read_blob(component_layer)?;
    Ok(DeployableImage {
        kind,
        manifest_digest: descriptor.digest,
        component,
        component_digest: component_layer.digest.clone(),
        files,
        config,
        sample,
    })
}

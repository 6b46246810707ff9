//! Media types and annotations of Kiln images.
//!
//! A Kiln model image is an OCI image manifest with `artifactType` [`KILN_ARTIFACT`]: a config
//! blob ([`KILN_CONFIG`]) holding the resolved manifest, schema and drift baseline; one
//! [`WASM_LAYER`] layer with the scoring component; one [`MODEL_FILE`] layer per model file,
//! titled with [`TITLE`]; and the sample data ([`SAMPLE`]). A plain component image follows the
//! CNCF Wasm OCI artifact layout: config [`WASM_CONFIG`], one [`WASM_LAYER`] layer. The Wasm
//! values are those of the `oci-wasm` crate.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `artifactType` of a Kiln model image.
pub const KILN_ARTIFACT: &str = "application/vnd.kiln.model.v1";
/// Config blob of a Kiln model image.
pub const KILN_CONFIG: &str = "application/vnd.kiln.model.config.v1+json";
/// A model file layer.
pub const MODEL_FILE: &str = "application/vnd.kiln.model.file.v1";
/// The sample data layer (JSON rows).
pub const SAMPLE: &str = "application/vnd.kiln.sample.v1+json";
/// Config of a CNCF Wasm OCI artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// A WebAssembly component layer.
pub const WASM_LAYER: &str = "application/wasm";
/// `architecture` of a Wasm artifact config.
pub const WASM_ARCHITECTURE: &str = "wasm";
/// `os` of a component artifact config.
pub const COMPONENT_OS: &str = "wasip2";
/// Layer annotation naming the file a layer holds.
pub const TITLE: &str = "org.opencontainers.image.title";
/// Index annotation naming a tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

//! Kiln images: the model manifest a user writes, the OCI image it becomes, and the local store.
//!
//! A manifest ([`ModelManifest`], TOML) names the scoring component, model files, schema, sample
//! data, drift baseline, limits and capabilities. `kiln image build` resolves it into a Kiln model
//! image ([`media`] documents the media types) in the [`OciStore`], an OCI image-layout directory
//! shared by build, push, pull and serve. [`open_image`] reads a deployable image back, checking
//! every blob against its digest. This crate knows formats and files, not wasmtime.

mod baseline;
mod error;
mod image;
pub mod media;
mod oci;
mod recipe;
mod store;

pub use baseline::{
    Baseline, FeatureBaseline, FeatureKind, MAX_CATEGORIES, OTHER, bin_of, category_of,
};
pub use error::ImageError;
pub use image::{
    DeployableImage, ImageKind, KilnConfig, ModelImageParts, PythonBuild, Schema, TensorSchema,
    build_component_image, build_model_image, check_title, deployable_kind, open_image,
};
pub use oci::{Descriptor, Digest, ImageIndex, ImageManifest, MAX_MANIFEST_BYTES};
pub use recipe::{
    BaselineSection, ModelManifest, ModelSection, PYTHON_SCORER, SampleSection, SampleTable,
    ScorerSection,
};
pub use store::{GcReport, OciStore, StoredImage};

//! Manifests: the recipe of an image (scoring component, model files, schema, sample, baseline,
//! limits), written in the manifest file format over the files of a registered model version.
//! Paths in it name files of that version; the component is a file of the version, an image in
//! the local store, or a registry reference. A manifest is checked when registered and built
//! into the local store when an image is registered from it.

use super::models::version_of;
use super::oci::{digest_in_store, pull_for};
use super::time;
use crate::names::{check_artifact_path, check_name};
use crate::store::images::{claim, may_use};
use crate::store::manifests::{self as store, ManifestRow};
use crate::store::models as models_store;
use crate::{ControlError, ControlPlane};
use kiln_api::manage::images::{Manifest, ManifestChecked, NewManifest};
use kiln_image::ModelManifest;
use std::path::PathBuf;

/// The largest manifest: 256 KiB.
const MAX_MANIFEST_BYTES: usize = 256 << 10;

/// A manifest as the API shows it.
pub fn manifest(row: ManifestRow) -> Manifest {
    Manifest {
        name: row.name,
        model: row.model,
        version: row.version,
        manifest: row.body,
        created: time(row.created_at),
    }
}

/// A scratch directory holding a model version's files and `kiln.toml`; removed on drop.
pub struct Workspace {
    /// The directory.
    pub dir: PathBuf,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes a version's files and a manifest into a fresh scratch directory.
pub async fn workspace(
    control: &ControlPlane,
    model_id: &str,
    version_id: &str,
    manifest: &str,
) -> Result<Workspace, ControlError> {
    let dir = control
        .settings()
        .projects_dir
        .join(".scratch")
        .join(crate::db::new_id());
    let workspace = Workspace { dir: dir.clone() };
    for file in models_store::files(control.db(), version_id).await? {
        let bytes = control
            .artifacts()
            .get(&["models", model_id, version_id], &file.path)
            .await?;
        let target = dir.join(&file.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ControlError::Internal(e.to_string()))?;
        }
        std::fs::write(&target, &bytes).map_err(|e| ControlError::Internal(e.to_string()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| ControlError::Internal(e.to_string()))?;
    std::fs::write(dir.join("kiln.toml"), manifest)
        .map_err(|e| ControlError::Internal(e.to_string()))?;
    Ok(workspace)
}

/// Every path a manifest names that must stay inside its version: model files, sample,
/// baseline, a component file, a script and its modules.
pub fn version_paths<'a>(parsed: &'a ModelManifest, dir: &std::path::Path) -> Vec<&'a str> {
    let mut paths: Vec<&str> = parsed.model.files.iter().map(String::as_str).collect();
    paths.extend(parsed.sample.as_ref().map(|s| s.file.as_str()));
    paths.extend(parsed.baseline.as_ref().and_then(|b| b.file.as_deref()));
    if kiln_build::is_component_path(&parsed.scorer.component, dir) {
        paths.push(&parsed.scorer.component);
    }
    paths.extend(parsed.scorer.script.as_deref());
    paths.extend(parsed.scorer.modules.iter().map(String::as_str));
    paths
}

/// Registers a manifest in the work group `workgroup_id`, checked against its version's files.
pub async fn create(
    control: &ControlPlane,
    workgroup_id: &str,
    new: NewManifest,
) -> Result<ManifestChecked, ControlError> {
    check_name("manifest", &new.name)?;
    if new.manifest.len() > MAX_MANIFEST_BYTES {
        return Err(ControlError::Invalid(
            "a manifest is at most 256 KiB".into(),
        ));
    }
    let model_id = models_store::model_id(control.db(), workgroup_id, &new.model).await?;
    let version = version_of(control, &model_id, &new.version).await?;
    let space = workspace(control, &model_id, &version.id, &new.manifest).await?;
    let (parsed, _) = ModelManifest::read(&space.dir.join("kiln.toml"))
        .map_err(|e| ControlError::Invalid(format!("manifest: {e}")))?;
    // Paths must stay inside the version: the store's own check, on every path-like field.
    for path in version_paths(&parsed, &space.dir) {
        check_artifact_path(path)?;
    }
    drop(space);
    let created_at = crate::db::now_ms();
    let id = crate::db::new_id();
    store::insert(
        control.db(),
        (&id, workgroup_id),
        &new.name,
        &version.id,
        &new.manifest,
        created_at,
    )
    .await?;
    Ok(ManifestChecked {
        name: new.name,
        model: new.model,
        version: version.version,
        image_name: parsed.name,
        image_version: parsed.version,
        created: time(created_at),
    })
}

/// Deletes a work group's manifest; refused while an image records it as its recipe.
pub async fn delete(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<(), ControlError> {
    let images = store::images_of(control.db(), workgroup_id, name).await?;
    if !images.is_empty() {
        return Err(ControlError::Conflict(format!(
            "manifest '{name}' is the recipe of image(s) {}",
            images.join(", ")
        )));
    }
    if !store::delete(control.db(), workgroup_id, name).await? {
        return Err(ControlError::NotFound(format!(
            "manifest '{name}' not found"
        )));
    }
    Ok(())
}

/// The answer for a scorer component that is no file, no built-in scorer and no image this work
/// group may use: one answer, so that nothing about other work groups' images can be probed.
fn not_usable(component: &str) -> ControlError {
    ControlError::Invalid(format!(
        "image build: scorer component '{component}' is neither a .wasm file, nor a built-in \
         scorer, nor an image of this work group"
    ))
}

/// An image built from a manifest.
pub struct Built {
    /// Its store reference, pinned by digest.
    pub pinned: String,
    /// Its manifest digest.
    pub digest: String,
    /// The id of the manifest it was built from.
    pub manifest_id: String,
}

/// Builds the image of a work group's manifest into the local store, tagged for the work group.
pub async fn build(
    control: &ControlPlane,
    workgroup_id: &str,
    manifest: &str,
    image: &str,
) -> Result<Built, ControlError> {
    let recipe = store::recipe(control.db(), workgroup_id, manifest)
        .await?
        .ok_or_else(|| ControlError::Invalid(format!("no manifest '{manifest}'")))?;
    let space = workspace(control, &recipe.model_id, &recipe.version_id, &recipe.body).await?;
    let store_dir = control.settings().store_dir.clone();
    let open = || kiln_image::OciStore::open(&store_dir);
    // A registry component is pulled with this work group's access first (and claimed when the
    // pull brings it in); the build then finds it in the store. A store component must be one
    // this work group may use before the build reads it, and one it may not use answers as a
    // missing one does, whatever its digest names.
    if let Ok((parsed, _)) = ModelManifest::read(&space.dir.join("kiln.toml")) {
        let python = parsed.scorer.is_python();
        let component = parsed.scorer.component;
        let store =
            open().map_err(|e| ControlError::Unavailable(format!("local image store: {e}")))?;
        if kiln_registry::is_registry_reference(&component) {
            let text = component.strip_prefix("oci://").unwrap_or(&component);
            pull_for(
                control,
                workgroup_id,
                &store,
                text,
                &control.settings().registry,
            )
            .await?;
        } else if !python
            && !kiln_build::is_component_path(&component, &space.dir)
            && kiln_build::builtin_scorer(&component).is_none()
        {
            let usable = match digest_in_store(&store, &component).await? {
                Ok(digest) => may_use(control.db(), workgroup_id, &digest).await?,
                Err(_) => false,
            };
            if !usable {
                return Err(not_usable(&component));
            }
        }
    }
    let sources = kiln_build::Sources {
        store: &open,
        registry: &control.settings().registry,
        store_fallback: false,
        sandbox: control.settings().build_sandbox.as_ref(),
    };
    let (parsed, checked, baseline) =
        kiln_build::check_manifest(&space.dir.join("kiln.toml"), &sources, &())
            .await
            .map_err(|e| match e {
                kiln_build::BuildError::Image(kiln_image::ImageError::Io { .. }) => {
                    ControlError::Unavailable(format!("image build: {e}"))
                }
                other => ControlError::Invalid(format!("image build: {other}")),
            })?;
    // The component comes from an image this work group may use: a built-in scorer, one it
    // built or pulled, or one the installation put in the store.
    let component = parsed.scorer.component.clone();
    if let Some(source) = &checked.source
        && let Some((_, digest)) = source.rsplit_once('@')
        && kiln_build::builtin_scorer(&component).is_none()
        && !may_use(control.db(), workgroup_id, digest).await?
    {
        return Err(not_usable(&component));
    }
    let store = open().map_err(|e| ControlError::Unavailable(format!("local image store: {e}")))?;
    // One tag per work group and image name, so work groups never overwrite each other's tags.
    let tag = format!("wg-{workgroup_id}/{image}:{}", parsed.version);
    let (tag, descriptor) = tokio::task::spawn_blocking(move || {
        kiln_build::build_image(&store, &parsed, &checked, baseline, Some(tag))
    })
    .await
    .map_err(|e| ControlError::Internal(e.to_string()))?
    .map_err(|e| ControlError::Unavailable(format!("image build: {e}")))?;
    let repository = tag
        .rsplit_once(':')
        .map_or(tag.as_str(), |(r, _)| r)
        .to_string();
    claim(control.db(), workgroup_id, descriptor.digest.as_str()).await?;
    Ok(Built {
        pinned: format!("{repository}@{}", descriptor.digest),
        digest: descriptor.digest.to_string(),
        manifest_id: recipe.id,
    })
}

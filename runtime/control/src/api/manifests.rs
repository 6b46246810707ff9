//! Manifests: the recipe of an image (scoring component, model files, schema, sample, baseline,
//! limits), written in the manifest file format over the files of a registered model version.
//! Paths in it name files of that version; the component is a file of the version, an image in
//! the local store, or a registry reference.

use super::models::model_id;
use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::domain::models::version_of;
use crate::names::check_name;
use crate::store::images;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_image::ModelManifest;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// A new manifest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewManifest {
    name: String,
    /// The model, by name.
    model: String,
    /// Its version: a number or an alias (pinned to the number it means now).
    version: String,
    /// The manifest, in the manifest file format (TOML).
    manifest: String,
}

/// A scratch directory holding a model version's files and `kiln.toml`; removed on drop.
pub(crate) struct Workspace {
    /// The directory.
    pub dir: PathBuf,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes a version's files and a manifest into a fresh scratch directory.
pub(crate) async fn workspace(
    control: &ControlPlane,
    model_id: &str,
    version_id: &str,
    manifest: &str,
) -> Result<Workspace, ControlError> {
    let dir = control
        .settings()
        .projects_dir
        .join(".scratch")
        .join(new_id());
    let workspace = Workspace { dir: dir.clone() };
    let files: Vec<String> =
        sqlx::query_scalar("SELECT path FROM model_files WHERE version_id = $1 ORDER BY path")
            .bind(version_id)
            .fetch_all(control.db().pool())
            .await?;
    for path in files {
        let bytes = control
            .artifacts()
            .get(&["models", model_id, version_id], &path)
            .await?;
        let target = dir.join(&path);
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

/// `POST .../workgroups/{workgroup}/manifests`: checked against the version's files.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewManifest>,
) -> Reply {
    check_name("manifest", &body.name)?;
    if body.manifest.len() > 256 << 10 {
        return Err(ControlError::Invalid(
            "a manifest is at most 256 KiB".into(),
        ));
    }
    let model_id = model_id(&control, &scope, &body.model).await?;
    let found = version_of(&control, &model_id, &body.version).await?;
    let (version_id, number) = (found.id, found.version);
    let space = workspace(&control, &model_id, &version_id, &body.manifest).await?;
    let (parsed, _) = ModelManifest::read(&space.dir.join("kiln.toml"))
        .map_err(|e| ControlError::Invalid(format!("manifest: {e}")))?;
    // Paths must stay inside the version: the store's own check, on every path-like field.
    let mut paths: Vec<&str> = parsed.model.files.iter().map(String::as_str).collect();
    paths.extend(parsed.sample.as_ref().map(|s| s.file.as_str()));
    paths.extend(parsed.baseline.as_ref().and_then(|b| b.file.as_deref()));
    if kiln_build::is_component_path(&parsed.scorer.component, &space.dir) {
        paths.push(&parsed.scorer.component);
    }
    paths.extend(parsed.scorer.script.as_deref());
    paths.extend(parsed.scorer.modules.iter().map(String::as_str));
    for path in paths {
        crate::names::check_artifact_path(path)?;
    }
    drop(space);
    let created = now_ms();
    sqlx::query(
        "INSERT INTO manifests (id, workgroup_id, name, model_version_id, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(&scope.workgroup()?.id)
    .bind(&body.name)
    .bind(&version_id)
    .bind(&body.manifest)
    .bind(created)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("manifest", &body.name))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": body.name,
            "model": body.model,
            "version": number,
            "image_name": parsed.name,
            "image_version": parsed.version,
            "created": time(created),
        })),
    ))
}

type ManifestRow = (String, String, i64, String, i64);

const SELECT: &str = "SELECT f.name, m.name, v.version, f.body, f.created_at FROM manifests f \
    JOIN model_versions v ON v.id = f.model_version_id JOIN models m ON m.id = v.model_id";

fn manifest_json(row: ManifestRow) -> Value {
    let (name, model, version, body, created) = row;
    json!({ "name": name, "model": model, "version": version, "manifest": body, "created": time(created) })
}

/// `GET .../manifests`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let rows: Vec<ManifestRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE f.workgroup_id = $1 AND f.name > $2 ORDER BY f.name LIMIT $3"
    )))
    .bind(&scope.workgroup()?.id)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows.into_iter().map(manifest_json).collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `GET .../manifests/{manifest}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, manifest)): Path<(String, String, String)>,
) -> Reply {
    let row: Option<ManifestRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE f.workgroup_id = $1 AND f.name = $2"
    )))
    .bind(&scope.workgroup()?.id)
    .bind(&manifest)
    .fetch_optional(control.db().pool())
    .await?;
    let row =
        row.ok_or_else(|| ControlError::NotFound(format!("manifest '{manifest}' not found")))?;
    Ok((StatusCode::OK, Json(manifest_json(row))))
}

/// `DELETE .../manifests/{manifest}`: refused while an image records it.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, manifest)): Path<(String, String, String)>,
) -> Reply {
    let wg = scope.workgroup()?;
    let images: Vec<String> = sqlx::query_scalar(
        "SELECT i.name FROM images i JOIN manifests f ON f.id = i.manifest_id \
         WHERE f.workgroup_id = $1 AND f.name = $2 ORDER BY i.name",
    )
    .bind(&wg.id)
    .bind(&manifest)
    .fetch_all(control.db().pool())
    .await?;
    if !images.is_empty() {
        return Err(ControlError::Conflict(format!(
            "manifest '{manifest}' is the recipe of image(s) {}",
            images.join(", ")
        )));
    }
    let done = sqlx::query("DELETE FROM manifests WHERE workgroup_id = $1 AND name = $2")
        .bind(&wg.id)
        .bind(&manifest)
        .execute(control.db().pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!(
            "manifest '{manifest}' not found"
        )));
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "name": manifest, "deleted": true })),
    ))
}

/// The answer for a scorer component that is no file, no built-in scorer and no image this work
/// group may use: one answer, so that nothing about other work groups' images can be probed.
fn not_usable(component: &str) -> ControlError {
    ControlError::Invalid(format!(
        "image build: scorer component '{component}' is neither a .wasm file, nor a built-in \
         scorer, nor an image of this work group"
    ))
}

/// Builds the image of a manifest into the local store; returns `(pinned reference, digest,
/// manifest id)`.
pub(crate) async fn build(
    control: &ControlPlane,
    scope: &Scope,
    manifest: &str,
    image: &str,
) -> Result<(String, String, String), ControlError> {
    let wg = scope.workgroup()?;
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT f.id, f.body, v.id, v.model_id FROM manifests f \
         JOIN model_versions v ON v.id = f.model_version_id WHERE f.workgroup_id = $1 AND f.name = $2",
    )
    .bind(&wg.id)
    .bind(manifest)
    .fetch_optional(control.db().pool())
    .await?;
    let (manifest_id, body, version_id, model_id) =
        row.ok_or_else(|| ControlError::Invalid(format!("no manifest '{manifest}'")))?;
    let space = workspace(control, &model_id, &version_id, &body).await?;
    let store_dir = control.settings().store_dir.clone();
    let open = || kiln_image::OciStore::open(&store_dir);
    // A registry component is pulled with this work group's access first (and claimed when the
    // pull brings it in); the build then finds it in the store. A store component must be one
    // this work group may use before the build reads it, and one it may not use answers as a
    // missing one does, whatever its digest names.
    if let Ok((recipe, _)) = ModelManifest::read(&space.dir.join("kiln.toml")) {
        let python = recipe.scorer.is_python();
        let component = recipe.scorer.component;
        let store =
            open().map_err(|e| ControlError::Unavailable(format!("local image store: {e}")))?;
        if kiln_registry::is_registry_reference(&component) {
            let text = component.strip_prefix("oci://").unwrap_or(&component);
            images::pull_for(control, &wg.id, &store, text, &control.settings().registry).await?;
        } else if !python
            && !kiln_build::is_component_path(&component, &space.dir)
            && kiln_build::builtin_scorer(&component).is_none()
        {
            let usable = match images::digest_in_store(&store, &component).await? {
                Ok(digest) => images::may_use(control, &wg.id, &digest).await?,
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
        && !images::may_use(control, &wg.id, digest).await?
    {
        return Err(not_usable(&component));
    }
    let store = open().map_err(|e| ControlError::Unavailable(format!("local image store: {e}")))?;
    // One tag per work group and image name, so work groups never overwrite each other's tags.
    let tag = format!("wg-{}/{image}:{}", wg.id, parsed.version);
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
    images::claim(control, &wg.id, descriptor.digest.as_str()).await?;
    Ok((
        format!("{repository}@{}", descriptor.digest),
        descriptor.digest.to_string(),
        manifest_id,
    ))
}

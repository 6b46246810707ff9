//! Images: OCI artifacts a work group may deploy, recorded with the digest they resolved to
//! when registered. A reference names the local store (`iris:1`, `iris@sha256:...`) or a
//! registry (`host/repo:tag`, `oci://...`), which is pulled into the local store and verified.
//!
//! The local store is shared by the installation, so what a work group brings into it (an image
//! built from its manifest, an image pulled with its registry access) is claimed by that work
//! group: its digest, and every tag that points at it, resolve for no other work group. An image
//! no work group claimed was put in the store by the installation (`kiln image build --store`)
//! and is shared, as built-in scorers are. A registry's credentials go only to that registry's
//! host.

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::store::images::{digest_in_store, may_use, pull_for};
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_image::{ImageKind, OciStore, open_image};
use serde::Deserialize;
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// A new image: an existing one by reference, or one built here from a manifest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewImage {
    name: String,
    /// A local store tag or digest, or a registry reference.
    reference: Option<String>,
    /// A manifest of the work group, built into the local store.
    manifest: Option<String>,
    /// An environment of the work group whose registry credentials the pull uses.
    environment: Option<String>,
}

/// The message for a local reference that does not resolve in the work group: the same whether
/// the store lacks it or another work group holds it, so that nothing can be probed.
fn not_in_store(text: &str) -> ControlError {
    ControlError::Invalid(format!(
        "no image '{text}' in the local store (build it with `kiln image build`, or name a registry)"
    ))
}

/// Resolves a reference to `(store reference pinned by digest, digest, registry, kind)`,
/// pulling registry images into the local store first. The image must be deployable.
async fn resolve(
    control: &ControlPlane,
    workgroup_id: &str,
    reference: &str,
    registry_options: &kiln_registry::RegistryOptions,
) -> Result<(String, String, Option<String>, ImageKind), ControlError> {
    if reference.is_empty() || reference.len() > 512 || reference.chars().any(char::is_control) {
        return Err(ControlError::Invalid("invalid image reference".into()));
    }
    let store = OciStore::open(&control.settings().store_dir)
        .map_err(|e| ControlError::Unavailable(format!("local image store: {e}")))?;
    let text = reference.strip_prefix("oci://").unwrap_or(reference);
    let (name, registry) = if kiln_registry::is_registry_reference(text) {
        let parsed = kiln_registry::parse_reference(text)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let pulled = pull_for(control, workgroup_id, &store, text, registry_options).await?;
        (
            format!(
                "{}@{}",
                text.split('@').next().unwrap_or(text),
                pulled.digest
            ),
            Some(parsed.resolve_registry().to_string()),
        )
    } else {
        (text.to_string(), None)
    };
    // Which image the name means is settled first, then whether this work group may use it,
    // and only then is the image read: a digest or tag the work group may not use gets the
    // missing-image answer whatever it names (another work group's image, a layer, a config).
    let not_deployable = |e: kiln_image::ImageError| match e {
        kiln_image::ImageError::NotFound(_) => not_in_store(text),
        other => ControlError::Invalid(format!("image '{text}' cannot be deployed: {other}")),
    };
    let digest = digest_in_store(&store, &name)
        .await?
        .map_err(not_deployable)?;
    // A registry image was claimed by its pull; a local one must be this work group's or the
    // installation's.
    if registry.is_none() && !may_use(control, workgroup_id, &digest).await? {
        return Err(not_in_store(text));
    }
    let opened = tokio::task::spawn_blocking({
        let pinned = format!("{}@{digest}", name.split('@').next().unwrap_or(&name));
        move || open_image(&store, &pinned)
    })
    .await
    .map_err(|e| ControlError::Internal(e.to_string()))?;
    let image = opened.map_err(not_deployable)?;
    let digest = image.manifest_digest.to_string();
    let repository = name.split('@').next().unwrap_or(&name).to_string();
    Ok((
        format!("{repository}@{digest}"),
        digest,
        registry,
        image.kind,
    ))
}

/// `POST .../workgroups/{workgroup}/images`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewImage>,
) -> Reply {
    check_name("image", &body.name)?;
    let (pinned, digest, registry, kind, manifest_id) = match (&body.reference, &body.manifest) {
        (Some(reference), None) => {
            let mut options = control.settings().registry.clone();
            if let Some(environment) = &body.environment {
                let credentials = crate::runs::targets::registry_credentials(
                    &control,
                    &scope.workgroup()?.id,
                    environment,
                )
                .await?
                .ok_or_else(|| {
                    ControlError::Invalid(format!(
                        "environment '{environment}' has no registry credentials"
                    ))
                })?;
                // The password goes to the environment's registry and nowhere else: a
                // reference to another registry is refused rather than pulled anonymously.
                let text = reference.strip_prefix("oci://").unwrap_or(reference);
                let host = kiln_registry::is_registry_reference(text)
                    .then(|| kiln_registry::parse_reference(text).ok())
                    .flatten()
                    .map(|r| r.resolve_registry().to_string());
                if host.as_deref().is_none_or(|h| !credentials.are_for(h)) {
                    return Err(ControlError::Invalid(format!(
                        "environment '{environment}' holds credentials for the registry {}, and \
                         '{reference}' is not an image of that registry",
                        credentials.host
                    )));
                }
                options.credentials = Some(credentials);
            }
            let (pinned, digest, registry, kind) =
                resolve(&control, &scope.workgroup()?.id, reference, &options).await?;
            (pinned, digest, registry, kind, None)
        }
        (None, Some(manifest)) => {
            let (pinned, digest, manifest_id) =
                super::manifests::build(&control, &scope, manifest, &body.name).await?;
            (
                pinned,
                digest,
                None,
                ImageKind::KilnModel,
                Some(manifest_id),
            )
        }
        _ => {
            return Err(ControlError::Invalid(
                "give either reference (an existing image) or manifest (to build one)".into(),
            ));
        }
    };
    let kind = serde_json::to_value(kind).unwrap_or_default();
    let created = now_ms();
    sqlx::query(
        "INSERT INTO images (id, workgroup_id, name, reference, digest, registry, kind, created_at, manifest_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id())
    .bind(&scope.workgroup()?.id)
    .bind(&body.name)
    .bind(&pinned)
    .bind(&digest)
    .bind(&registry)
    .bind(kind.as_str().unwrap_or_default())
    .bind(created)
    .bind(&manifest_id)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("image", &body.name))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": body.name,
            "reference": pinned,
            "digest": digest,
            "registry": registry,
            "kind": kind,
            "manifest": body.manifest,
            "created": time(created),
        })),
    ))
}

fn image_json(row: (String, String, String, Option<String>, String, i64)) -> Value {
    let (name, reference, digest, registry, kind, created) = row;
    json!({
        "name": name,
        "reference": reference,
        "digest": digest,
        "registry": registry,
        "kind": kind,
        "created": time(created),
    })
}

/// `GET .../images`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let rows: Vec<(String, String, String, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT name, reference, digest, registry, kind, created_at FROM images \
         WHERE workgroup_id = $1 AND name > $2 ORDER BY name LIMIT $3",
    )
    .bind(&scope.workgroup()?.id)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows.into_iter().map(image_json).collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `GET .../images/{image}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, image)): Path<(String, String, String)>,
) -> Reply {
    let row: Option<(String, String, String, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT name, reference, digest, registry, kind, created_at FROM images \
         WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(&scope.workgroup()?.id)
    .bind(&image)
    .fetch_optional(control.db().pool())
    .await?;
    let row = row.ok_or_else(|| ControlError::NotFound(format!("image '{image}' not found")))?;
    Ok((StatusCode::OK, Json(image_json(row))))
}

/// `DELETE .../images/{image}`: refused while a deployment uses it.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, image)): Path<(String, String, String)>,
) -> Reply {
    let wg = scope.workgroup()?;
    let users: Vec<String> = sqlx::query_scalar(
        "SELECT d.name FROM deployments d JOIN images i ON i.id = d.image_id \
         WHERE i.workgroup_id = $1 AND i.name = $2 ORDER BY d.name",
    )
    .bind(&wg.id)
    .bind(&image)
    .fetch_all(control.db().pool())
    .await?;
    if !users.is_empty() {
        return Err(ControlError::Conflict(format!(
            "image '{image}' is deployed by {}",
            users.join(", ")
        )));
    }
    let done = sqlx::query("DELETE FROM images WHERE workgroup_id = $1 AND name = $2")
        .bind(&wg.id)
        .bind(&image)
        .execute(control.db().pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!("image '{image}' not found")));
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "name": image, "deleted": true })),
    ))
}

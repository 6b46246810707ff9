//! Deployments: an image served as a web service, with limits, keys and a status the runtime
//! reports. Names are unique in the installation: they are the `{model}` of prediction URLs.

use super::keys::{KeyName, rotate_key};
use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::auth::{KEY_PREFIX, digest, new_secret};
use crate::db::{new_id, now_ms};
use crate::domain::quotas;
use crate::names::check_name;
use crate::store::DeploymentSettings;
use crate::store::endpoints::{self, urls};
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

pub use kiln_api::{Limits, ScaleSettings};

/// The limits and scale of a deployment's stored settings (defaults where they are missing).
/// A new deployment.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    name: String,
    /// An image of the work group, by name.
    image: String,
    /// Open to anyone, without keys. Off by default.
    #[serde(default)]
    public: bool,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    scale: ScaleSettings,
    /// An endpoint of the work group to join: at 100% when it routes nothing yet, else at 0%.
    #[serde(default)]
    endpoint: Option<String>,
}

/// `PATCH .../deployments/{deployment}`: what is given changes. A new image (or new limits)
/// loads next to the old version, which serves until the new one passed its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentUpdate {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    scale: Option<ScaleSettings>,
    #[serde(default)]
    public: Option<bool>,
}

async fn image_of(
    control: &ControlPlane,
    workgroup: &crate::access::WorkgroupScope,
    image: &str,
) -> Result<(String, String, String), ControlError> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT id, digest, reference FROM images WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(&workgroup.id)
    .bind(image)
    .fetch_optional(control.db().pool())
    .await?;
    row.ok_or_else(|| {
        ControlError::Invalid(format!(
            "no image '{image}' in work group '{}'",
            workgroup.name
        ))
    })
}

/// `POST .../workgroups/{workgroup}/deployments`: returns its two keys, once.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewDeployment>,
) -> Reply {
    check_name("deployment", &body.name)?;
    body.limits
        .check()
        .map_err(|e| ControlError::Invalid(e.0))?;
    body.scale.check().map_err(ControlError::Invalid)?;
    let wg = scope.workgroup()?;
    let (image_id, image_digest, reference) = image_of(&control, wg, &body.image).await?;
    if let Some(endpoint) = &body.endpoint {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM endpoints WHERE workgroup_id = $1 AND name = $2")
                .bind(&wg.id)
                .bind(endpoint)
                .fetch_optional(control.db().pool())
                .await?;
        if found.is_none() {
            return Err(ControlError::Invalid(format!(
                "no endpoint '{endpoint}' in work group '{}'",
                wg.name
            )));
        }
    }
    endpoints::check_free(&control, "endpoints", &body.name).await?;
    quotas::check(
        control.db(),
        &control.settings().quota,
        (&wg.id, &wg.name),
        &body.name,
        &body.limits,
        &body.scale,
    )
    .await?;
    let (primary, secondary) = (new_secret(KEY_PREFIX), new_secret(KEY_PREFIX));
    let now = now_ms();
    let settings = DeploymentSettings {
        limits: body.limits.clone(),
        scale: body.scale.clone(),
        ..Default::default()
    }
    .to_column()?;
    sqlx::query(
        "INSERT INTO deployments (id, workgroup_id, name, image_id, image_digest, image_reference, \
         settings, public, primary_key_digest, secondary_key_digest, generation, status, reason, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, 'pending', '', $11, $11)",
    )
    .bind(new_id())
    .bind(&wg.id)
    .bind(&body.name)
    .bind(&image_id)
    .bind(&image_digest)
    .bind(&reference)
    .bind(&settings)
    .bind(i64::from(body.public))
    .bind(digest(&primary))
    .bind(digest(&secondary))
    .bind(now)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("deployment", &body.name))?;
    let weight = match &body.endpoint {
        Some(endpoint) => {
            Some(endpoints::attach_deployment(&control, &wg.id, endpoint, &body.name).await?)
        }
        None => None,
    };
    control.notify_runtime();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": body.name,
            "image": body.image,
            "digest": image_digest,
            "public": body.public,
            "limits": body.limits,
            "scale": body.scale,
            "status": "pending",
            "endpoint": body.endpoint.as_ref().map(|e| json!({ "name": e, "weight": weight })),
            "urls": urls(&control, &body.name),
            "keys": { "primary": primary, "secondary": secondary, "note": "shown once: store them now" },
        })),
    ))
}

type Row = (
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
);

const SELECT: &str = "SELECT d.name, i.name, d.image_digest, d.settings, d.public, d.status, d.reason, \
    d.generation, d.status_generation, d.updated_at FROM deployments d JOIN images i ON i.id = d.image_id";

fn deployment_json(control: &ControlPlane, row: Row) -> Result<Value, ControlError> {
    let (name, image, digest, settings, public, status, reason, generation, reported, updated) =
        row;
    let settings = DeploymentSettings::parse(&name, &settings)?;
    let limits = json!(settings.limits);
    let scale = json!(settings.scale);
    let monitoring = settings.monitoring.map_or_else(|| json!({}), |m| json!(m));
    let retrain = json!(settings.retrain);
    // A status reported for an older generation says nothing about the current one.
    let status = if reported < generation && status != "pending" {
        "pending".to_string()
    } else {
        status
    };
    Ok(json!({
        "name": name,
        "image": image,
        "digest": digest,
        "public": public != 0,
        "limits": limits,
        "scale": scale,
        "monitoring": monitoring,
        "retrain": retrain,
        "status": status,
        "reason": if reason.is_empty() { Value::Null } else { json!(reason) },
        "generation": generation,
        "updated": time(updated),
        "urls": urls(control, &name),
    }))
}

/// `GET .../deployments`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE d.workgroup_id = $1 AND d.name > $2 ORDER BY d.name LIMIT $3"
    )))
    .bind(&scope.workgroup()?.id)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|r| deployment_json(&control, r))
        .collect::<Result<_, _>>()?;
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `GET .../deployments/{deployment}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
) -> Reply {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE d.workgroup_id = $1 AND d.name = $2"
    )))
    .bind(&scope.workgroup()?.id)
    .bind(&deployment)
    .fetch_optional(control.db().pool())
    .await?;
    let row =
        row.ok_or_else(|| ControlError::NotFound(format!("deployment '{deployment}' not found")))?;
    Ok((StatusCode::OK, Json(deployment_json(&control, row)?)))
}

/// `DELETE .../deployments/{deployment}`: the runtime stops serving it.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
) -> Reply {
    endpoints::release_deployment(&control, &scope.workgroup()?.id, &deployment).await?;
    let done = sqlx::query("DELETE FROM deployments WHERE workgroup_id = $1 AND name = $2")
        .bind(&scope.workgroup()?.id)
        .bind(&deployment)
        .execute(control.db().pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!(
            "deployment '{deployment}' not found"
        )));
    }
    control.notify_runtime();
    Ok((
        StatusCode::OK,
        Json(json!({ "name": deployment, "deleted": true })),
    ))
}

/// `PATCH .../deployments/{deployment}`.
pub async fn update(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<DeploymentUpdate>,
) -> Reply {
    let wg = scope.workgroup()?;
    let row: Option<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, image_id, settings, public FROM deployments WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(&wg.id)
    .bind(&deployment)
    .fetch_optional(control.db().pool())
    .await?;
    let (id, image_id, settings, public) =
        row.ok_or_else(|| ControlError::NotFound(format!("deployment '{deployment}' not found")))?;
    let mut settings = DeploymentSettings::parse(&deployment, &settings)?;
    // Given fields replace the stored ones; the others stay.
    let merged = |mut stored: Value, given: Value| {
        if let (Some(stored), Value::Object(given)) = (stored.as_object_mut(), given) {
            stored.extend(given);
        }
        stored
    };
    if let Some(limits) = &body.limits {
        let limits: Limits = serde_json::from_value(merged(json!(settings.limits), json!(limits)))
            .map_err(|e| ControlError::Invalid(format!("limits: {e}")))?;
        limits.check().map_err(|e| ControlError::Invalid(e.0))?;
        settings.limits = limits;
    }
    if let Some(scale) = &body.scale {
        let scale: ScaleSettings =
            serde_json::from_value(merged(json!(settings.scale), json!(scale)))
                .map_err(|e| ControlError::Invalid(format!("scale: {e}")))?;
        scale.check().map_err(ControlError::Invalid)?;
        settings.scale = scale;
    }
    if body.limits.is_some() || body.scale.is_some() {
        quotas::check(
            control.db(),
            &control.settings().quota,
            (&wg.id, &wg.name),
            &deployment,
            &settings.limits,
            &settings.scale,
        )
        .await?;
    }
    let (image_id, digest, reference) = match &body.image {
        Some(image) => image_of(&control, wg, image).await?,
        None => {
            let row: (String, String) =
                sqlx::query_as("SELECT digest, reference FROM images WHERE id = $1")
                    .bind(&image_id)
                    .fetch_one(control.db().pool())
                    .await?;
            (image_id, row.0, row.1)
        }
    };
    sqlx::query(
        "UPDATE deployments SET image_id = $1, image_digest = $2, image_reference = $3, settings = $4, \
         public = $5, generation = generation + 1, updated_at = $6 WHERE id = $7",
    )
    .bind(&image_id)
    .bind(&digest)
    .bind(&reference)
    .bind(settings.to_column()?)
    .bind(body.public.map_or(public, i64::from))
    .bind(now_ms())
    .bind(&id)
    .execute(control.db().pool())
    .await?;
    control.notify_runtime();
    get(
        State(control),
        Extension(scope),
        Path((String::new(), String::new(), deployment)),
    )
    .await
}

/// Which key to regenerate.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regenerate {
    key: KeyName,
}

/// `POST .../deployments/{deployment}/keys`: a new primary or secondary key (shown once); the
/// other keeps working, so clients can move over without a failed request.
pub async fn regenerate_key(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Regenerate>,
) -> Reply {
    rotate_key(&control, &scope, "deployment", &deployment, body.key).await
}

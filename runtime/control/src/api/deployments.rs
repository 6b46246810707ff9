//! Deployments: an image served as a web service, with limits, keys and a status the runtime
//! reports. Names are unique in the installation: they are the `{model}` of prediction URLs.

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::auth::{KEY_PREFIX, digest, new_secret};
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// Per-deployment limits; unset ones come from the image's manifest, then the runtime.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentLimits {
    /// Linear memory per instance, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<usize>,
    /// Deadline of one prediction, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Instances (concurrent predictions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
}

impl DeploymentLimits {
    fn check(&self) -> Result<(), ControlError> {
        let bad = |m: &str| Err(ControlError::Invalid(m.to_string()));
        match (self.memory_mb, self.deadline_ms, self.concurrency) {
            (Some(m), _, _) if !(1..=65_536).contains(&m) => bad("memory_mb must be 1 to 65536"),
            (_, Some(d), _) if !(1..=600_000).contains(&d) => {
                bad("deadline_ms must be 1 to 600000")
            }
            (_, _, Some(c)) if !(1..=1024).contains(&c) => bad("concurrency must be 1 to 1024"),
            _ => Ok(()),
        }
    }
}

/// How a deployment scales: with an idle timeout, instances above `min_instances` (default 0)
/// are released once no prediction ran for that long; the next request starts one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleSettings {
    /// Instances kept warm; 0 lets an idle deployment release them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_instances: Option<usize>,
    /// Most instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<usize>,
    /// Seconds without requests before instances above the minimum go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_s: Option<u64>,
}

impl ScaleSettings {
    fn check(&self) -> Result<(), ControlError> {
        let bad = |m: &str| Err(ControlError::Invalid(m.to_string()));
        if self.max_instances.is_some_and(|m| !(1..=1024).contains(&m)) {
            return bad("max_instances must be 1 to 1024");
        }
        if self.min_instances.is_some_and(|m| m > 1024) {
            return bad("min_instances must be 0 to 1024");
        }
        if let (Some(min), Some(max)) = (self.min_instances, self.max_instances)
            && min > max
        {
            return bad("min_instances must not exceed max_instances");
        }
        if self
            .idle_timeout_s
            .is_some_and(|t| !(1..=86_400).contains(&t))
        {
            return bad("idle_timeout_s must be 1 to 86400");
        }
        Ok(())
    }
}

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
    limits: DeploymentLimits,
    #[serde(default)]
    scale: ScaleSettings,
}

fn urls(control: &ControlPlane, name: &str) -> Value {
    let base = control.settings().prediction_url.trim_end_matches('/');
    json!({
        "infer": format!("{base}/v2/models/{name}/infer"),
        "ready": format!("{base}/v2/models/{name}/ready"),
        "score": format!("{base}/deployments/{name}/score"),
        "invocations": format!("{base}/deployments/{name}/invocations"),
    })
}

/// `POST .../workgroups/{workgroup}/deployments`: returns its two keys, once.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewDeployment>,
) -> Reply {
    check_name("deployment", &body.name)?;
    body.limits.check()?;
    body.scale.check()?;
    let wg = scope.workgroup()?;
    let image: Option<(String, String, String)> = sqlx::query_as(
        "SELECT id, digest, reference FROM images WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(&wg.id)
    .bind(&body.image)
    .fetch_optional(control.db().pool())
    .await?;
    let (image_id, image_digest, reference) = image.ok_or_else(|| {
        ControlError::Invalid(format!(
            "no image '{}' in work group '{}'",
            body.image, wg.name
        ))
    })?;
    let (primary, secondary) = (new_secret(KEY_PREFIX), new_secret(KEY_PREFIX));
    let now = now_ms();
    let settings = serde_json::to_string(&json!({ "limits": body.limits, "scale": body.scale }))
        .map_err(|e| ControlError::Internal(e.to_string()))?;
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

fn deployment_json(control: &ControlPlane, row: Row) -> Value {
    let (name, image, digest, settings, public, status, reason, generation, reported, updated) =
        row;
    let settings = serde_json::from_str::<Value>(&settings).unwrap_or_else(|_| json!({}));
    let limits = settings.get("limits").cloned().unwrap_or_else(|| json!({}));
    let scale = settings.get("scale").cloned().unwrap_or_else(|| json!({}));
    let monitoring = settings
        .get("monitoring")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let retrain = settings.get("retrain").cloned().unwrap_or(Value::Null);
    // A status reported for an older generation says nothing about the current one.
    let status = if reported < generation && status != "pending" {
        "pending".to_string()
    } else {
        status
    };
    json!({
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
    })
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
        .collect();
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
    Ok((StatusCode::OK, Json(deployment_json(&control, row))))
}

/// `DELETE .../deployments/{deployment}`: the runtime stops serving it.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
) -> Reply {
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

/// Which key to regenerate.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regenerate {
    key: KeyName,
}

/// A deployment key.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KeyName {
    Primary,
    Secondary,
}

/// `POST .../deployments/{deployment}/keys`: a new primary or secondary key (shown once); the
/// other keeps working, so clients can move over without a failed request.
pub async fn regenerate_key(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Regenerate>,
) -> Reply {
    let key = new_secret(KEY_PREFIX);
    let sql = match body.key {
        KeyName::Primary => {
            "UPDATE deployments SET primary_key_digest = $1, generation = generation + 1, updated_at = $2 \
             WHERE workgroup_id = $3 AND name = $4"
        }
        KeyName::Secondary => {
            "UPDATE deployments SET secondary_key_digest = $1, generation = generation + 1, updated_at = $2 \
             WHERE workgroup_id = $3 AND name = $4"
        }
    };
    let done = sqlx::query(sql)
        .bind(digest(&key))
        .bind(now_ms())
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
    let which = match body.key {
        KeyName::Primary => "primary",
        KeyName::Secondary => "secondary",
    };
    Ok((
        StatusCode::OK,
        Json(
            json!({ "name": deployment, "key": which, "value": key, "note": "shown once: store it now" }),
        ),
    ))
}

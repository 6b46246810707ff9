//! Endpoints: a stable prediction URL (`/v2/models/{endpoint}/infer` and the other protocols)
//! with its own keys, routing to deployments of its work group by integer weights that sum to
//! 100. `kiln-deployment: NAME` targets one of its deployments directly; up to 50% of requests
//! can be mirrored to one deployment, whose answers are discarded. An optional rollback policy
//! returns a rolled-out deployment's weight to 0 when its error rate or p99 breaches a threshold.
//!
//! Endpoint and deployment names share the prediction URLs, so neither may take the other's.

use super::keys::{KeyReply, rotate_key};
use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::auth::{KEY_PREFIX, digest, new_secret};
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::store::deployments::Keyed;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::deployments::Regenerate;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

pub use kiln_api::endpoint::{MAX_MIRROR_PERCENT, Traffic};
pub use kiln_api::{DesiredEndpoint, MirrorSettings, RollbackPolicy, RollbackReport, Weighted};

pub use crate::store::endpoints::EndpointSettings;
use crate::store::endpoints::{
    check_free, endpoint_row, event, parse, store_settings, urls, workgroup_deployments,
};
pub use runtime::{desired, rollback};

mod runtime;

fn describe(traffic: &Traffic) -> String {
    if traffic.is_empty() {
        return "none".into();
    }
    traffic
        .iter()
        .map(|(n, w)| format!("{n} {w}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Absent stays `None`; `null` becomes `Some(None)`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A new endpoint.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    name: String,
    /// Open to anyone, without keys. Off by default.
    #[serde(default)]
    public: bool,
    #[serde(default)]
    traffic: Traffic,
    #[serde(default)]
    mirror: Option<MirrorSettings>,
    #[serde(default)]
    rollback: Option<RollbackPolicy>,
}

/// `PATCH .../endpoints/{endpoint}`: what is given changes; `null` removes a mirror or policy.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointUpdate {
    #[serde(default)]
    traffic: Option<Traffic>,
    #[serde(default, deserialize_with = "present")]
    mirror: Option<Option<MirrorSettings>>,
    #[serde(default, deserialize_with = "present")]
    rollback: Option<Option<RollbackPolicy>>,
    #[serde(default)]
    public: Option<bool>,
}

/// `POST .../workgroups/{workgroup}/endpoints`: returns its two keys, once.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewEndpoint>,
) -> Reply {
    check_name("endpoint", &body.name)?;
    let wg = scope.workgroup()?;
    let mut settings = EndpointSettings {
        mirror: body.mirror,
        rollback: body.rollback,
        ..Default::default()
    };
    settings.set_traffic(body.traffic);
    settings.previous = None;
    settings.check(&workgroup_deployments(&control, &wg.id).await?)?;
    check_free(&control, "deployments", &body.name).await?;
    let (primary, secondary) = (new_secret(KEY_PREFIX), new_secret(KEY_PREFIX));
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO endpoints (id, workgroup_id, name, public, primary_key_digest, secondary_key_digest, \
         settings, generation, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
    )
    .bind(&id)
    .bind(&wg.id)
    .bind(&body.name)
    .bind(i64::from(body.public))
    .bind(digest(&primary))
    .bind(digest(&secondary))
    .bind(json!(settings).to_string())
    .bind(now)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("endpoint", &body.name))?;
    event(
        &control,
        &id,
        "created",
        &format!("traffic: {}", describe(&settings.traffic)),
    )
    .await?;
    control.notify_runtime();
    let mut view = endpoint_json(&control, &wg.id, &body.name).await?;
    view["keys"] =
        json!({ "primary": primary, "secondary": secondary, "note": "shown once: store them now" });
    Ok((StatusCode::CREATED, Json(view)))
}

/// The endpoint with its split and each deployment's state.
async fn endpoint_json(
    control: &ControlPlane,
    workgroup: &str,
    name: &str,
) -> Result<Value, ControlError> {
    let (_, name, public, settings, generation, updated) =
        endpoint_row(control, workgroup, name).await?;
    let settings = parse(&name, &settings)?;
    let rows: Vec<(String, String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT d.name, i.name, d.status, d.reason, d.generation, d.status_generation \
         FROM deployments d JOIN images i ON i.id = d.image_id WHERE d.workgroup_id = $1",
    )
    .bind(workgroup)
    .fetch_all(control.db().pool())
    .await?;
    let deployments: Vec<Value> = settings
        .traffic
        .iter()
        .map(|(deployment, weight)| {
            let row = rows.iter().find(|r| &r.0 == deployment);
            let (image, status, reason) = match row {
                Some((_, image, status, reason, generation, reported)) => {
                    let status = if reported < generation && status != "pending" {
                        "pending"
                    } else {
                        status.as_str()
                    };
                    (json!(image), json!(status), json!(reason))
                }
                None => (Value::Null, json!("missing"), Value::Null),
            };
            let mirrored = settings
                .mirror
                .as_ref()
                .filter(|m| &m.deployment == deployment)
                .map(|m| m.percent);
            json!({
                "name": deployment,
                "weight": weight,
                "mirror_percent": mirrored,
                "image": image,
                "status": status,
                "reason": if reason == json!("") { Value::Null } else { reason },
            })
        })
        .collect();
    Ok(json!({
        "name": name,
        "public": public != 0,
        "traffic": settings.traffic,
        "mirror": settings.mirror,
        "rollback": settings.rollback,
        "watching": settings.watch,
        "deployments": deployments,
        "generation": generation,
        "updated": time(updated),
        "urls": urls(control, &name),
    }))
}

/// `GET .../endpoints`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let wg = &scope.workgroup()?.id;
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM endpoints WHERE workgroup_id = $1 AND name > $2 ORDER BY name LIMIT $3",
    )
    .bind(wg)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let mut items = Vec::with_capacity(names.len());
    for (name,) in names {
        items.push(endpoint_json(&control, wg, &name).await?);
    }
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `GET .../endpoints/{endpoint}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
) -> Reply {
    let view = endpoint_json(&control, &scope.workgroup()?.id, &endpoint).await?;
    Ok((StatusCode::OK, Json(view)))
}

/// `PATCH .../endpoints/{endpoint}`: weights, mirror, rollback policy, public flag. The change
/// is recorded as an event; runtimes apply it without dropping a request.
pub async fn update(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<EndpointUpdate>,
) -> Reply {
    let wg = scope.workgroup()?.id.clone();
    let known = workgroup_deployments(&control, &wg).await?;
    // Optimistic: a concurrent change makes the generation move, and this one is retried.
    for _ in 0..5 {
        let (id, _, public, stored, generation, _) = endpoint_row(&control, &wg, &endpoint).await?;
        let mut settings = parse(&endpoint, &stored)?;
        let before = settings.clone();
        if let Some(traffic) = body.traffic.clone() {
            settings.set_traffic(traffic);
        }
        if let Some(mirror) = body.mirror.clone() {
            settings.mirror = mirror;
        }
        if let Some(rollback) = body.rollback.clone() {
            settings.rollback = rollback;
        }
        // A mirror of a deployment taken out of the traffic goes with it.
        if body.mirror.is_none()
            && settings
                .mirror
                .as_ref()
                .is_some_and(|m| !settings.traffic.contains_key(&m.deployment))
        {
            settings.mirror = None;
        }
        settings.check(&known)?;
        let public = body.public.map_or(public, i64::from);
        if !store_settings(&control, &id, generation, &settings, Some(public)).await? {
            continue;
        }
        if settings.traffic != before.traffic {
            event(
                &control,
                &id,
                "traffic",
                &format!(
                    "traffic: {} (was {})",
                    describe(&settings.traffic),
                    describe(&before.traffic)
                ),
            )
            .await?;
        }
        if settings.mirror != before.mirror {
            let message = match &settings.mirror {
                Some(m) => format!("mirroring {}% to {}", m.percent, m.deployment),
                None => "mirroring off".to_string(),
            };
            event(&control, &id, "mirror", &message).await?;
        }
        if settings.rollback != before.rollback {
            event(
                &control,
                &id,
                "policy",
                &format!("rollback policy: {}", json!(settings.rollback)),
            )
            .await?;
        }
        control.notify_runtime();
        let view = endpoint_json(&control, &wg, &endpoint).await?;
        return Ok((StatusCode::OK, Json(view)));
    }
    Err(ControlError::Conflict(format!(
        "endpoint '{endpoint}' kept changing: try again"
    )))
}

/// `DELETE .../endpoints/{endpoint}`: its URL stops answering; its deployments stay.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
) -> Reply {
    let done = sqlx::query("DELETE FROM endpoints WHERE workgroup_id = $1 AND name = $2")
        .bind(&scope.workgroup()?.id)
        .bind(&endpoint)
        .execute(control.db().pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!(
            "endpoint '{endpoint}' not found"
        )));
    }
    control.notify_runtime();
    Ok((
        StatusCode::OK,
        Json(json!({ "name": endpoint, "deleted": true })),
    ))
}

/// `POST .../endpoints/{endpoint}/keys`: a new primary or secondary key (shown once); the other
/// keeps working, so clients move over without a failed request.
pub async fn regenerate_key(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Regenerate>,
) -> KeyReply {
    rotate_key(&control, &scope, Keyed::Endpoint, &endpoint, body.key).await
}

/// `GET .../endpoints/{endpoint}/events`: newest first, at most 100.
pub async fn events(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
) -> Reply {
    let (id, ..) = endpoint_row(&control, &scope.workgroup()?.id, &endpoint).await?;
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, message, created_at FROM endpoint_events WHERE endpoint_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 100",
    )
    .bind(&id)
    .fetch_all(control.db().pool())
    .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(kind, message, at)| json!({ "kind": kind, "message": message, "time": time(at) }))
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({ "items": items, "next": null })),
    ))
}

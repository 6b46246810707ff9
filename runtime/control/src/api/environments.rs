//! Execution targets (`local`, `docker`, `spark`, each with its own settings) and environments:
//! a named bundle of an OCI registry with its credentials (the password sealed at rest and never
//! returned), an artifact store, execution targets and runtime nodes.

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::runs::targets::{self, check_reach};
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// A new execution target.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    name: String,
    kind: String,
    #[serde(default)]
    config: Map<String, Value>,
}

/// Checks a target's settings: only known keys, each of the right type.
fn check_target(kind: &str, config: &Map<String, Value>) -> Result<(), ControlError> {
    let known: &[(&str, &str)] = match kind {
        "local" => &[
            ("interpreter", "string"),
            ("requirements", "string"),
            ("concurrency", "number"),
            ("tracking_url", "string"),
        ],
        "docker" => &[
            ("host", "string"),
            ("image", "string"),
            ("memory_mb", "number"),
            ("cpus", "number"),
            ("network", "string"),
            ("interpreter", "string"),
            ("concurrency", "number"),
            ("tracking_url", "string"),
        ],
        "spark" => &[
            ("master", "string"),
            ("spark_submit", "string"),
            ("python", "string"),
            ("conf", "object"),
            ("concurrency", "number"),
            ("tracking_url", "string"),
        ],
        other => {
            return Err(ControlError::Invalid(format!(
                "unknown target kind '{other}': local, docker or spark"
            )));
        }
    };
    for (key, value) in config {
        let Some((_, expected)) = known.iter().find(|(k, _)| k == key) else {
            return Err(ControlError::Invalid(format!(
                "unknown {kind} target setting '{key}' (known: {})",
                known.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            )));
        };
        let fits = match *expected {
            "string" => value
                .as_str()
                .is_some_and(|s| !s.is_empty() && s.len() <= 1024),
            "number" => value.as_u64().is_some_and(|n| n > 0),
            _ => value.is_object(),
        };
        if !fits {
            return Err(ControlError::Invalid(format!(
                "{kind} target setting '{key}' must be a {expected}"
            )));
        }
    }
    if kind == "spark" && !config.contains_key("master") {
        return Err(ControlError::Invalid(
            "a spark target needs a master".into(),
        ));
    }
    Ok(())
}

/// `POST .../targets`.
pub async fn create_target(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewTarget>,
) -> Reply {
    check_name("target", &body.name)?;
    check_target(&body.kind, &body.config)?;
    check_reach(&control, &body.kind, &body.config).await?;
    let created = now_ms();
    sqlx::query(
        "INSERT INTO targets (id, workgroup_id, name, kind, config, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(&scope.workgroup()?.id)
    .bind(&body.name)
    .bind(&body.kind)
    .bind(Value::Object(body.config.clone()).to_string())
    .bind(created)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("target", &body.name))?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "name": body.name, "kind": body.kind, "config": body.config, "created": time(created) }),
        ),
    ))
}

fn target_json((name, kind, config, created): (String, String, String, i64)) -> Value {
    json!({
        "name": name,
        "kind": kind,
        "config": serde_json::from_str::<Value>(&config).unwrap_or_else(|_| json!({})),
        "created": time(created),
    })
}

/// `GET .../targets`.
pub async fn list_targets(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT name, kind, config, created_at FROM targets WHERE workgroup_id = $1 AND name > $2 \
         ORDER BY name LIMIT $3",
    )
    .bind(&scope.workgroup()?.id)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows.into_iter().map(target_json).collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `POST .../targets/{target}/test`: asks the target's executor whether it can run anything.
/// A built-in target (`local`, `docker`, `spark`) can be tested without being added.
pub async fn test_target(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, target)): Path<(String, String, String)>,
) -> Reply {
    let target = targets::resolve_target(&control, &scope.workgroup()?.id, &target)
        .await
        .map_err(|e| match e {
            ControlError::Invalid(m) => ControlError::NotFound(m),
            other => other,
        })?;
    let executor = targets::executor_for(&control, &target)?;
    // A target made before the installation's limits changed is checked again: the test is no
    // port probe. The executor is handed the checked address.
    let config = check_reach(&control, &target.kind, &target.config).await?;
    let checked = executor
        .check(&kiln_executor::Target {
            config,
            ..target.clone()
        })
        .await;
    let (reachable, message) = match checked {
        Ok(message) => (true, message),
        Err(e) => (false, e.to_string()),
    };
    Ok((
        StatusCode::OK,
        Json(json!({
            "name": target.name,
            "kind": target.kind,
            "reachable": reachable,
            "message": message,
        })),
    ))
}

/// `GET .../targets/{target}`.
pub async fn get_target(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, target)): Path<(String, String, String)>,
) -> Reply {
    let row: Option<(String, String, String, i64)> = sqlx::query_as(
        "SELECT name, kind, config, created_at FROM targets WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(&scope.workgroup()?.id)
    .bind(&target)
    .fetch_optional(control.db().pool())
    .await?;
    let row = row.ok_or_else(|| ControlError::NotFound(format!("target '{target}' not found")))?;
    Ok((StatusCode::OK, Json(target_json(row))))
}

/// `DELETE .../targets/{target}`.
pub async fn delete_target(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, target)): Path<(String, String, String)>,
) -> Reply {
    let done = sqlx::query("DELETE FROM targets WHERE workgroup_id = $1 AND name = $2")
        .bind(&scope.workgroup()?.id)
        .bind(&target)
        .execute(control.db().pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!(
            "target '{target}' not found"
        )));
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "name": target, "deleted": true })),
    ))
}

/// An environment's registry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// `host[:port]`.
    host: String,
    username: Option<String>,
    /// Sealed at rest; never returned.
    password: Option<String>,
}

/// A new environment.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    name: String,
    #[serde(default)]
    description: String,
    registry: Option<RegistrySettings>,
    /// An artifact store URL for its runs (default: the installation's).
    artifact_store: Option<String>,
    /// Execution targets of the work group, by name.
    #[serde(default)]
    targets: Vec<String>,
    /// Runtime node URLs.
    #[serde(default)]
    runtime_nodes: Vec<String>,
    /// The container image of its runs on docker targets (pulled with the registry's
    /// credentials when it is on that registry).
    run_image: Option<String>,
}

/// `POST .../environments`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewEnvironment>,
) -> Reply {
    check_name("environment", &body.name)?;
    let wg = scope.workgroup()?;
    if let Some(registry) = &body.registry {
        let valid = !registry.host.is_empty()
            && registry.host.len() <= 255
            && registry
                .host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
        if !valid {
            return Err(ControlError::Invalid(format!(
                "invalid registry host '{}': host[:port]",
                registry.host
            )));
        }
        if registry.password.is_some() && registry.username.is_none() {
            return Err(ControlError::Invalid(
                "a registry password needs a username".into(),
            ));
        }
    }
    if let Some(store) = &body.artifact_store {
        url::Url::parse(store)
            .ok()
            .filter(|u| ["file", "s3", "az", "azure", "gs", "abfs"].contains(&u.scheme()))
            .ok_or_else(|| {
                ControlError::Invalid(format!(
                    "invalid artifact store '{store}': a file://, s3://, az:// or gs:// URL"
                ))
            })?;
    }
    if let Some(image) = &body.run_image
        && (image.is_empty() || image.len() > 512 || !image.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(ControlError::Invalid(format!(
            "invalid run image '{image}'"
        )));
    }
    for node in &body.runtime_nodes {
        url::Url::parse(node)
            .ok()
            .filter(|u| u.scheme() == "http" || u.scheme() == "https")
            .ok_or_else(|| ControlError::Invalid(format!("invalid runtime node URL '{node}'")))?;
    }
    for target in &body.targets {
        let known: Option<String> =
            sqlx::query_scalar("SELECT id FROM targets WHERE workgroup_id = $1 AND name = $2")
                .bind(&wg.id)
                .bind(target)
                .fetch_optional(control.db().pool())
                .await?;
        if known.is_none() {
            return Err(ControlError::Invalid(format!(
                "no execution target '{target}' in work group '{}'",
                wg.name
            )));
        }
    }
    let id = new_id();
    let sealed = match body.registry.as_ref().and_then(|r| r.password.as_deref()) {
        Some(password) => Some(
            control
                .secrets()
                .seal(password, &format!("environment:{id}:registry_password"))?,
        ),
        None => None,
    };
    let created = now_ms();
    sqlx::query(
        "INSERT INTO environments (id, workgroup_id, name, description, registry, registry_username, \
         registry_password_sealed, artifact_store, targets, runtime_nodes, created_at, run_image) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(&wg.id)
    .bind(&body.name)
    .bind(&body.description)
    .bind(body.registry.as_ref().map(|r| r.host.clone()))
    .bind(body.registry.as_ref().and_then(|r| r.username.clone()))
    .bind(&sealed)
    .bind(&body.artifact_store)
    .bind(json!(body.targets).to_string())
    .bind(json!(body.runtime_nodes).to_string())
    .bind(created)
    .bind(&body.run_image)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("environment", &body.name))?;
    let row = environment_row(&control, &wg.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(environment_json(row))))
}

type EnvironmentRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    Option<String>,
);

async fn environment_row(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<EnvironmentRow, ControlError> {
    let row: Option<EnvironmentRow> = sqlx::query_as(
        "SELECT name, description, registry, registry_username, registry_password_sealed, \
         artifact_store, targets, runtime_nodes, created_at, run_image FROM environments \
         WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(control.db().pool())
    .await?;
    row.ok_or_else(|| ControlError::NotFound(format!("environment '{name}' not found")))
}

fn environment_json(row: EnvironmentRow) -> Value {
    let (name, description, registry, username, sealed, store, targets, nodes, created, image) =
        row;
    json!({
        "name": name,
        "description": description,
        "registry": registry.map(|host| json!({
            "host": host,
            "username": username,
            // Whether a password is set; never the password.
            "password": if sealed.is_some() { "set" } else { "none" },
        })),
        "artifact_store": store,
        "targets": serde_json::from_str::<Value>(&targets).unwrap_or_else(|_| json!([])),
        "runtime_nodes": serde_json::from_str::<Value>(&nodes).unwrap_or_else(|_| json!([])),
        "run_image": image,
        "created": time(created),
    })
}

/// `GET .../environments`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let rows: Vec<EnvironmentRow> = sqlx::query_as(
        "SELECT name, description, registry, registry_username, registry_password_sealed, \
         artifact_store, targets, runtime_nodes, created_at, run_image FROM environments \
         WHERE workgroup_id = $1 AND name > $2 ORDER BY name LIMIT $3",
    )
    .bind(&scope.workgroup()?.id)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows.into_iter().map(environment_json).collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `GET .../environments/{environment}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, environment)): Path<(String, String, String)>,
) -> Reply {
    let row = environment_row(&control, &scope.workgroup()?.id, &environment).await?;
    Ok((StatusCode::OK, Json(environment_json(row))))
}

/// `DELETE .../environments/{environment}`.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, environment)): Path<(String, String, String)>,
) -> Reply {
    let done = sqlx::query("DELETE FROM environments WHERE workgroup_id = $1 AND name = $2")
        .bind(&scope.workgroup()?.id)
        .bind(&environment)
        .execute(control.db().pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!(
            "environment '{environment}' not found"
        )));
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "name": environment, "deleted": true })),
    ))
}

//! Experiments: named entry points of a project (a script, its arguments, a default target).
//! An experiment made by a tracking client (the mlflow package) has no script: its runs are
//! logged to, not executed. Runs are in [`super::runs`].

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::names::{check_artifact_path, check_name};
use crate::store::projects::project_id;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// Checks the name of a target a run or an experiment names.
pub(crate) fn check_target(target: &str) -> Result<(), ControlError> {
    if crate::runs::targets::BUILT_IN_TARGETS.contains(&target)
        || check_name("target", target).is_ok()
    {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!("invalid target '{target}'")))
    }
}

pub(crate) fn check_args(args: &[String]) -> Result<(), ControlError> {
    if args.len() > 256 || args.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
        return Err(ControlError::Invalid(
            "args: at most 256 arguments of at most 4096 bytes, no NUL".into(),
        ));
    }
    Ok(())
}

/// A new experiment.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewExperiment {
    name: String,
    /// The entry point, a path in the project (`train.py`); none for tracking only.
    #[serde(default)]
    script: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default = "local")]
    target: String,
}

fn local() -> String {
    "local".into()
}

pub(crate) async fn experiment_id(
    control: &ControlPlane,
    project_id: &str,
    name: &str,
) -> Result<String, ControlError> {
    sqlx::query_scalar("SELECT id FROM experiments WHERE project_id = $1 AND name = $2")
        .bind(project_id)
        .bind(name)
        .fetch_optional(control.db().pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("experiment '{name}' not found")))
}

/// `POST .../projects/{project}/experiments`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<NewExperiment>,
) -> Reply {
    check_name("experiment", &body.name)?;
    if !body.script.is_empty() {
        check_artifact_path(&body.script)?;
    }
    check_args(&body.args)?;
    check_target(&body.target)?;
    let project_id = project_id(&control, &scope, &project).await?;
    let created = now_ms();
    sqlx::query(
        "INSERT INTO experiments (id, project_id, name, script, args, target, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(&project_id)
    .bind(&body.name)
    .bind(&body.script)
    .bind(json!(body.args).to_string())
    .bind(&body.target)
    .bind(created)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("experiment", &body.name))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "project": project,
            "name": body.name,
            "script": body.script,
            "args": body.args,
            "target": body.target,
            "created": time(created),
        })),
    ))
}

fn experiment_json(project: &str, row: (String, String, String, String, i64)) -> Value {
    let (name, script, args, target, created) = row;
    json!({
        "project": project,
        "name": name,
        "script": script,
        "args": serde_json::from_str::<Value>(&args).unwrap_or_else(|_| json!([])),
        "target": target,
        "created": time(created),
    })
}

/// `GET .../projects/{project}/experiments`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
    Query(page): Query<Page>,
) -> Reply {
    let project_id = project_id(&control, &scope, &project).await?;
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT name, script, args, target, created_at FROM experiments WHERE project_id = $1 \
         AND name > $2 ORDER BY name LIMIT $3",
    )
    .bind(&project_id)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|r| experiment_json(&project, r))
        .collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `GET .../experiments/{experiment}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
) -> Reply {
    let project_id = project_id(&control, &scope, &project).await?;
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT name, script, args, target, created_at FROM experiments WHERE project_id = $1 AND name = $2",
    )
    .bind(&project_id)
    .bind(&experiment)
    .fetch_optional(control.db().pool())
    .await?;
    let row =
        row.ok_or_else(|| ControlError::NotFound(format!("experiment '{experiment}' not found")))?;
    Ok((StatusCode::OK, Json(experiment_json(&project, row))))
}

/// `DELETE .../experiments/{experiment}`: with its runs.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
) -> Reply {
    let project_id = project_id(&control, &scope, &project).await?;
    let id = experiment_id(&control, &project_id, &experiment).await?;
    sqlx::query("DELETE FROM experiments WHERE id = $1")
        .bind(&id)
        .execute(control.db().pool())
        .await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "name": experiment, "deleted": true })),
    ))
}

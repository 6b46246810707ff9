//! Experiments (named entry points of a project: a script, its arguments, a default target) and
//! runs (one execution each, pinned to a commit of the project). Runs are records here; the
//! executor plugins will move them through their states.

use super::projects::{project_id, repository};
use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::names::{check_artifact_path, check_name};
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// Execution targets a run may name.
const TARGETS: &[&str] = &["local", "docker", "spark"];

fn check_target(target: &str) -> Result<(), ControlError> {
    if TARGETS.contains(&target) || check_name("target", target).is_ok() {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!("invalid target '{target}'")))
    }
}

fn check_args(args: &[String]) -> Result<(), ControlError> {
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
    /// The entry point, a path in the project (`train.py`).
    script: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default = "local")]
    target: String,
}

fn local() -> String {
    "local".into()
}

async fn experiment_id(
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
    check_artifact_path(&body.script)?;
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

/// A new run.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    /// A commit of the project (default: the head of `main`).
    commit: Option<String>,
    /// Default: the experiment's.
    target: Option<String>,
    /// Default: the experiment's.
    args: Option<Vec<String>>,
}

type RunRow = (
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    String,
    i64,
);

const RUN_SELECT: &str = "SELECT r.id, r.number, r.commit_sha, r.target, r.args, r.status, r.reason, \
    r.exit_code, u.name, r.created_at FROM runs r JOIN users u ON u.id = r.created_by";

fn run_json(experiment: &str, row: RunRow) -> Value {
    let (id, number, commit, target, args, status, reason, exit_code, by, created) = row;
    json!({
        "id": id,
        "experiment": experiment,
        "number": number,
        "commit": commit,
        "target": target,
        "args": serde_json::from_str::<Value>(&args).unwrap_or_else(|_| json!([])),
        "status": status,
        "reason": if reason.is_empty() { Value::Null } else { json!(reason) },
        "exit_code": exit_code,
        "created_by": by,
        "created": time(created),
    })
}

/// `POST .../experiments/{experiment}/runs`: a queued run pinned to a commit.
pub async fn submit(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<NewRun>,
) -> Reply {
    let project_id = project_id(&control, &scope, &project).await?;
    let experiment_id = experiment_id(&control, &project_id, &experiment).await?;
    let (default_args, default_target): (String, String) =
        sqlx::query_as("SELECT args, target FROM experiments WHERE id = $1")
            .bind(&experiment_id)
            .fetch_one(control.db().pool())
            .await?;
    let target = body.target.unwrap_or(default_target);
    check_target(&target)?;
    let args = match body.args {
        Some(args) => {
            check_args(&args)?;
            json!(args).to_string()
        }
        None => default_args,
    };
    let repository = repository(&control, &project_id);
    let wanted = body.commit.unwrap_or_else(|| "main".into());
    let commit = tokio::task::spawn_blocking(move || repository.resolve(&wanted))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))?
        .map_err(|e| match e {
            ControlError::NotFound(m) => {
                ControlError::Invalid(format!("{m}: push the project first (`kiln project push`)"))
            }
            other => other,
        })?;
    let id = new_id();
    let mut tx = control.db().begin().await?;
    if control.db().backend() == crate::Backend::Postgres {
        sqlx::query("SELECT id FROM experiments WHERE id = $1 FOR UPDATE")
            .bind(&experiment_id)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO runs (id, experiment_id, number, commit_sha, target, args, status, created_by, created_at) \
         SELECT $1, $2, COALESCE(MAX(number), 0) + 1, $3, $4, $5, 'queued', $6, $7 FROM runs WHERE experiment_id = $2",
    )
    .bind(&id)
    .bind(&experiment_id)
    .bind(&commit)
    .bind(&target)
    .bind(&args)
    .bind(&scope.principal()?.user_id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let row: RunRow = sqlx::query_as(sqlx::AssertSqlSafe(format!("{RUN_SELECT} WHERE r.id = $1")))
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(run_json(&experiment, row))))
}

/// `GET .../experiments/{experiment}/runs`.
pub async fn runs(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
) -> Reply {
    let project_id = project_id(&control, &scope, &project).await?;
    let experiment_id = experiment_id(&control, &project_id, &experiment).await?;
    let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.experiment_id = $1 ORDER BY r.number"
    )))
    .bind(&experiment_id)
    .fetch_all(control.db().pool())
    .await?;
    let items: Vec<Value> = rows.into_iter().map(|r| run_json(&experiment, r)).collect();
    Ok((
        StatusCode::OK,
        Json(json!({ "items": items, "next": null })),
    ))
}

/// `GET .../experiments/{experiment}/runs/{run}`: by number.
pub async fn run(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment, run)): Path<(String, String, String, String, String)>,
) -> Reply {
    let number: i64 = run
        .parse()
        .map_err(|_| ControlError::NotFound(format!("run '{run}' not found")))?;
    let project_id = project_id(&control, &scope, &project).await?;
    let experiment_id = experiment_id(&control, &project_id, &experiment).await?;
    let row: Option<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.experiment_id = $1 AND r.number = $2"
    )))
    .bind(&experiment_id)
    .bind(number)
    .fetch_optional(control.db().pool())
    .await?;
    let row = row.ok_or_else(|| ControlError::NotFound(format!("run '{run}' not found")))?;
    Ok((StatusCode::OK, Json(run_json(&experiment, row))))
}

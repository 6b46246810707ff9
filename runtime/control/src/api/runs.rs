//! Runs: submitted to an experiment (queued, pinned to a commit, executed by the runner in
//! [`crate::runs`]), listed, shown with what they logged, canceled, and their logs read or
//! followed live.

use super::{JsonBody, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::domain::experiments::{check_args, check_target};
use crate::names::{check_artifact_path, check_name};
use crate::runs::{is_final, log, targets, tracking};
use crate::store::experiments::experiment_id;
use crate::store::projects::{project_id, repository};
use crate::{ControlError, ControlPlane};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// Longest timeout a run may ask for: 30 days.
const MAX_TIMEOUT_S: u64 = 30 * 24 * 3600;

/// The columns of [`RunView`], joined with their experiment, project and creator.
pub(crate) const RUN_SELECT: &str = "SELECT r.id, r.number, r.name, r.script, r.commit_sha, \
    r.target, r.args, r.status, r.reason, r.exit_code, r.executed, r.log_bytes, r.environment, \
    u.name AS created_by, \
    r.created_at, r.started_at, r.finished_at, e.id AS experiment_id, e.name AS experiment, \
    p.name AS project FROM runs r JOIN users u ON u.id = r.created_by \
    JOIN experiments e ON e.id = r.experiment_id JOIN projects p ON p.id = e.project_id";

/// A run as the API shows it.
#[derive(Clone, Debug)]
pub(crate) struct RunView {
    pub id: String,
    pub number: i64,
    pub name: String,
    pub script: String,
    pub commit: String,
    pub target: String,
    pub args: Value,
    pub status: String,
    pub reason: String,
    pub exit_code: Option<i64>,
    pub executed: bool,
    pub log_bytes: i64,
    pub environment: String,
    pub created_by: String,
    pub created: i64,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    pub experiment_id: String,
    pub experiment: String,
    pub project: String,
}

impl RunView {
    pub(crate) fn from_row(row: &AnyRow) -> Result<RunView, ControlError> {
        let text = |name: &str| row.try_get::<String, _>(name);
        Ok(RunView {
            id: text("id")?,
            number: row.try_get("number")?,
            name: text("name")?,
            script: text("script")?,
            commit: text("commit_sha")?,
            target: text("target")?,
            args: serde_json::from_str(&text("args")?).unwrap_or_else(|_| json!([])),
            status: text("status")?,
            reason: text("reason")?,
            exit_code: row.try_get("exit_code")?,
            executed: row.try_get::<i64, _>("executed")? != 0,
            log_bytes: row.try_get("log_bytes")?,
            environment: text("environment")?,
            created_by: text("created_by")?,
            created: row.try_get("created_at")?,
            started: row.try_get("started_at")?,
            finished: row.try_get("finished_at")?,
            experiment_id: text("experiment_id")?,
            experiment: text("experiment")?,
            project: text("project")?,
        })
    }

    /// The run's name: the one it was given, else `<experiment>-<number>`.
    pub(crate) fn display_name(&self) -> String {
        if self.name.is_empty() {
            format!("{}-{}", self.experiment, self.number)
        } else {
            self.name.clone()
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "project": self.project,
            "experiment": self.experiment,
            "number": self.number,
            "name": self.display_name(),
            "script": if self.script.is_empty() { Value::Null } else { json!(self.script) },
            "commit": if self.commit.is_empty() { Value::Null } else { json!(self.commit) },
            "target": self.target,
            "args": self.args,
            "status": self.status,
            "reason": if self.reason.is_empty() { Value::Null } else { json!(self.reason) },
            "exit_code": self.exit_code,
            "executed": self.executed,
            "log_bytes": self.log_bytes,
            "environment": if self.environment.is_empty() { Value::Null } else { json!(self.environment) },
            "created_by": self.created_by,
            "created": time(self.created),
            "started": self.started.map(time),
            "finished": self.finished.map(time),
        })
    }
}

/// The run `run` (its id) if it is in the scope's work group.
pub(crate) async fn run_in_scope(
    control: &ControlPlane,
    scope: &Scope,
    run: &str,
) -> Result<RunView, ControlError> {
    let not_found = || ControlError::NotFound(format!("run '{run}' not found"));
    if run.len() != 32 || !run.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.id = $1 AND p.workgroup_id = $2"
    )))
    .bind(run)
    .bind(&scope.workgroup()?.id)
    .fetch_optional(control.db().pool())
    .await?
    .ok_or_else(not_found)?;
    RunView::from_row(&row)
}

/// A new run.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    /// A commit of the project (default: the head of `main`).
    commit: Option<String>,
    /// Default: the experiment's.
    script: Option<String>,
    /// Default: the experiment's.
    target: Option<String>,
    /// Default: the experiment's.
    args: Option<Vec<String>>,
    /// A name (default `<experiment>-<number>`).
    name: Option<String>,
    /// Seconds the run may take (default seven days).
    timeout: Option<u64>,
    /// An environment of the work group: its run image and registry credentials (docker
    /// targets); the run's target must be one it lists, if it lists any.
    environment: Option<String>,
}

/// `POST .../experiments/{experiment}/runs`: a queued run pinned to a commit.
pub async fn submit(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<NewRun>,
) -> Reply {
    let project_id = project_id(&control, &scope, &project).await?;
    let experiment_id = experiment_id(control.db(), &project_id, &experiment).await?;
    let (default_script, default_args, default_target): (String, String, String) =
        sqlx::query_as("SELECT script, args, target FROM experiments WHERE id = $1")
            .bind(&experiment_id)
            .fetch_one(control.db().pool())
            .await?;
    let target = body.target.unwrap_or(default_target);
    check_target(&target)?;
    targets::resolve_target(&control, &scope.workgroup()?.id, &target).await?;
    if let Some(environment) = &body.environment {
        let found = targets::run_environment(&control, &scope.workgroup()?.id, environment).await?;
        if !found.targets.is_empty() && !found.targets.contains(&target) {
            return Err(ControlError::Invalid(format!(
                "target '{target}' is not one of environment '{environment}' ({})",
                found.targets.join(", ")
            )));
        }
    }
    let script = body.script.unwrap_or(default_script);
    if script.is_empty() {
        return Err(ControlError::Invalid(format!(
            "the run needs a script: experiment '{experiment}' names none"
        )));
    }
    check_artifact_path(&script)?;
    let args = match body.args {
        Some(args) => {
            check_args(&args)?;
            json!(args).to_string()
        }
        None => default_args,
    };
    if let Some(name) = &body.name {
        check_name("run", name)?;
    }
    if body.timeout.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_S) {
        return Err(ControlError::Invalid(format!(
            "timeout: 1 to {MAX_TIMEOUT_S} seconds"
        )));
    }
    let repository = repository(&control, &project_id);
    let wanted = body.commit.unwrap_or_else(|| "main".into());
    let (commit, files) = tokio::task::spawn_blocking(move || repository.files(&wanted))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))?
        .map_err(|e| match e {
            ControlError::NotFound(m) => {
                ControlError::Invalid(format!("{m}: push the project first (`kiln project push`)"))
            }
            other => other,
        })?;
    if !files.contains(&script) {
        return Err(ControlError::Invalid(format!(
            "script '{script}' is not in commit {}: push it first",
            &commit[..12]
        )));
    }
    let view = insert_run(
        &control,
        &RunInsert {
            experiment_id: &experiment_id,
            commit: &commit,
            target: &target,
            args: &args,
            status: "queued",
            created_by: &scope.principal()?.user_id,
            created_at: now_ms(),
            started_at: None,
            script: &script,
            name: body.name.as_deref().unwrap_or_default(),
            timeout_s: body.timeout.map(|t| t as i64),
            environment: body.environment.as_deref().unwrap_or_default(),
            executed: true,
        },
    )
    .await?;
    control.notify_runs();
    Ok((StatusCode::CREATED, Json(view.json())))
}

/// A run to record.
pub(crate) struct RunInsert<'a> {
    pub experiment_id: &'a str,
    pub commit: &'a str,
    pub target: &'a str,
    /// The arguments as JSON text.
    pub args: &'a str,
    pub status: &'a str,
    pub created_by: &'a str,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub script: &'a str,
    pub name: &'a str,
    pub timeout_s: Option<i64>,
    pub environment: &'a str,
    /// Whether Kiln executes it (not a run a tracking client logs to).
    pub executed: bool,
}

/// Records a run under the experiment's next number; writers of one experiment take turns
/// (SQLite's write transactions are exclusive, PostgreSQL locks the experiment's row).
pub(crate) async fn insert_run(
    control: &ControlPlane,
    run: &RunInsert<'_>,
) -> Result<RunView, ControlError> {
    let id = new_id();
    let mut tx = control.db().begin().await?;
    if control.db().backend() == crate::Backend::Postgres {
        sqlx::query("SELECT id FROM experiments WHERE id = $1 FOR UPDATE")
            .bind(run.experiment_id)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO runs (id, experiment_id, number, commit_sha, target, args, status, created_by, \
         created_at, started_at, script, name, timeout_s, environment, executed) \
         SELECT $1, $2, COALESCE(MAX(number), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
         FROM runs WHERE experiment_id = $2",
    )
    .bind(&id)
    .bind(run.experiment_id)
    .bind(run.commit)
    .bind(run.target)
    .bind(run.args)
    .bind(run.status)
    .bind(run.created_by)
    .bind(run.created_at)
    .bind(run.started_at)
    .bind(run.script)
    .bind(run.name)
    .bind(run.timeout_s)
    .bind(run.environment)
    .bind(i64::from(run.executed))
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{RUN_SELECT} WHERE r.id = $1")))
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    RunView::from_row(&row)
}

/// `?limit=`: the newest runs first.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    /// Runs per page (default 100, at most 1000).
    limit: Option<u32>,
    /// Only runs in this status.
    status: Option<String>,
    /// Only runs of this project.
    project: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
}

impl RunFilter {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1000) as usize
    }
}

/// `{"items": [...], "next": cursor}` from `limit + 1` rows: the cursor (made by `cursor` from
/// the last run shown) when another page follows.
fn page(
    rows: &[sqlx::any::AnyRow],
    limit: usize,
    cursor: impl Fn(&RunView) -> String,
) -> Result<Value, ControlError> {
    let mut views = rows
        .iter()
        .map(RunView::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if views.len() > limit {
        views.truncate(limit);
        views.last().map(&cursor)
    } else {
        None
    };
    let items: Vec<Value> = views.iter().map(RunView::json).collect();
    Ok(json!({ "items": items, "next": next }))
}

/// `GET .../experiments/{experiment}/runs`.
pub async fn list_for_experiment(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
    Query(filter): Query<RunFilter>,
) -> Reply {
    let project_id = project_id(&control, &scope, &project).await?;
    let experiment_id = experiment_id(control.db(), &project_id, &experiment).await?;
    // Newest first: the cursor is the number of the last run shown.
    let before: i64 = match &filter.after {
        Some(after) => after
            .parse()
            .map_err(|_| ControlError::Invalid(format!("invalid cursor '{after}'")))?,
        None => i64::MAX,
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.experiment_id = $1 AND ($2 = '' OR r.status = $2) AND r.number < $3 \
         ORDER BY r.number DESC LIMIT $4"
    )))
    .bind(&experiment_id)
    .bind(filter.status.clone().unwrap_or_default())
    .bind(before)
    .bind(filter.limit() as i64 + 1)
    .fetch_all(control.db().pool())
    .await?;
    let body = page(&rows, filter.limit(), |v| v.number.to_string())?;
    Ok((StatusCode::OK, Json(body)))
}

/// `GET .../workgroups/{workgroup}/runs`: the work group's runs, newest first.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(filter): Query<RunFilter>,
) -> Reply {
    // Newest first, then by id: the cursor is `CREATED_MS.ID` of the last run shown.
    let (created, id) = match &filter.after {
        Some(after) => after
            .split_once('.')
            .and_then(|(c, i)| Some((c.parse::<i64>().ok()?, i.to_string())))
            .ok_or_else(|| ControlError::Invalid(format!("invalid cursor '{after}'")))?,
        None => (i64::MAX, String::new()),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE p.workgroup_id = $1 AND ($2 = '' OR r.status = $2) \
         AND ($3 = '' OR p.name = $3) AND (r.created_at < $4 OR (r.created_at = $4 AND r.id > $5)) \
         ORDER BY r.created_at DESC, r.id LIMIT $6"
    )))
    .bind(&scope.workgroup()?.id)
    .bind(filter.status.clone().unwrap_or_default())
    .bind(filter.project.clone().unwrap_or_default())
    .bind(created)
    .bind(&id)
    .bind(filter.limit() as i64 + 1)
    .fetch_all(control.db().pool())
    .await?;
    let body = page(&rows, filter.limit(), |v| format!("{}.{}", v.created, v.id))?;
    Ok((StatusCode::OK, Json(body)))
}

/// `GET .../experiments/{experiment}/runs/{run}`: by number.
pub async fn get_by_number(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment, run)): Path<(String, String, String, String, String)>,
) -> Reply {
    let number: i64 = run
        .parse()
        .map_err(|_| ControlError::NotFound(format!("run '{run}' not found")))?;
    let project_id = project_id(&control, &scope, &project).await?;
    let experiment_id = experiment_id(control.db(), &project_id, &experiment).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.experiment_id = $1 AND r.number = $2"
    )))
    .bind(&experiment_id)
    .bind(number)
    .fetch_optional(control.db().pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("run '{run}' not found")))?;
    let view = RunView::from_row(&row)?;
    with_data(&control, view).await
}

async fn with_data(control: &ControlPlane, view: RunView) -> Reply {
    let data = tracking::run_data(control, &view.id).await?;
    let mut body = view.json();
    body["data"] = data.json();
    Ok((StatusCode::OK, Json(body)))
}

/// `GET .../workgroups/{workgroup}/runs/{run}`: a run by id, with what it logged.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
) -> Reply {
    let view = run_in_scope(&control, &scope, &run).await?;
    with_data(&control, view).await
}

/// `POST .../runs/{run}/cancel`: a queued run is canceled at once; a preparing or running one
/// is stopped by its executor (the answer says `cancel_requested` until it has).
pub async fn cancel(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
) -> Reply {
    let view = run_in_scope(&control, &scope, &run).await?;
    let by = scope.principal()?.name.clone();
    if is_final(&view.status) {
        return Err(ControlError::Conflict(format!(
            "run {} already ended ({})",
            view.id, view.status
        )));
    }
    // Queued, or logged by a tracking client: nothing executes it, so it ends now.
    let ended = sqlx::query(
        "UPDATE runs SET status = 'canceled', reason = $1, finished_at = $2, cancel_requested_by = $3 \
         WHERE id = $4 AND (status = 'queued' OR executed = 0) AND status NOT IN ('completed', 'failed', 'canceled')",
    )
    .bind(format!("canceled by {by}"))
    .bind(now_ms())
    .bind(&by)
    .bind(&view.id)
    .execute(control.db().pool())
    .await?;
    if ended.rows_affected() == 0 {
        sqlx::query(
            "UPDATE runs SET cancel_requested_by = $1 WHERE id = $2 AND cancel_requested_by IS NULL",
        )
        .bind(&by)
        .bind(&view.id)
        .execute(control.db().pool())
        .await?;
    }
    control.notify_runs();
    control.log_written(&view.id);
    let view = run_in_scope(&control, &scope, &run).await?;
    let mut body = view.json();
    body["cancel_requested"] = json!(!is_final(&view.status));
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// `?offset=&follow=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Start at this byte.
    #[serde(default)]
    offset: u64,
    /// Keep the response open and send output as it arrives, until the run ends.
    #[serde(default)]
    follow: bool,
}

/// `GET .../runs/{run}/logs`: the run's output as text, streamed; with `follow=true`, live
/// until the run ends.
pub async fn logs(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ControlError> {
    let view = run_in_scope(&control, &scope, &run).await?;
    let permit = query
        .follow
        .then(|| control.follow_permit(&scope.principal()?.user_id))
        .transpose()?;
    let stream = log::read(control.clone(), view.id, query.offset, permit)
        .map(|item| item.map_err(|e| std::io::Error::other(e.to_string())));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

//! Runs as stored: a row per run, numbered in its experiment, read joined with its experiment,
//! project and creator.

use crate::db::{Backend, Db, new_id};
use crate::{ControlError, db};

/// The columns of [`RunRow`], joined with the run's experiment, project and creator.
pub const RUN_SELECT: &str = "SELECT r.id, r.number, r.name, r.script, r.commit_sha, \
    r.target, r.args, r.status, r.reason, r.exit_code, r.executed, r.log_bytes, r.environment, \
    u.name AS created_by, \
    r.created_at, r.started_at, r.finished_at, e.id AS experiment_id, e.name AS experiment, \
    p.name AS project FROM runs r JOIN users u ON u.id = r.created_by \
    JOIN experiments e ON e.id = r.experiment_id JOIN projects p ON p.id = e.project_id";

/// A run's row, with the names of its experiment, project and creator.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunRow {
    /// The run's id.
    pub id: String,
    /// Its number in its experiment.
    pub number: i64,
    /// The name it was given, or empty.
    pub name: String,
    /// Its script, or empty (a tracking client's run).
    pub script: String,
    /// Its commit, or empty.
    pub commit_sha: String,
    /// Its target.
    pub target: String,
    /// Its arguments, a JSON array of strings.
    pub args: String,
    /// Its status.
    pub status: String,
    /// Why it failed or was canceled, or empty.
    pub reason: String,
    /// The script's exit code.
    pub exit_code: Option<i64>,
    /// 1 when Kiln executes it, 0 for a tracking client's run.
    pub executed: i64,
    /// Bytes of log written.
    pub log_bytes: i64,
    /// Its environment, or empty.
    pub environment: String,
    /// The name of the user who submitted it.
    pub created_by: String,
    /// Submitted, in ms since the epoch.
    pub created_at: i64,
    /// Started.
    pub started_at: Option<i64>,
    /// Ended.
    pub finished_at: Option<i64>,
    /// Its experiment's id.
    pub experiment_id: String,
    /// Its experiment's name.
    pub experiment: String,
    /// Its project's name.
    pub project: String,
}

impl RunRow {
    /// The run's name: the one it was given, else `<experiment>-<number>`.
    pub fn display_name(&self) -> String {
        if self.name.is_empty() {
            format!("{}-{}", self.experiment, self.number)
        } else {
            self.name.clone()
        }
    }

    /// Whether Kiln executes it.
    pub fn executed(&self) -> bool {
        self.executed != 0
    }
}

/// A run to record.
pub struct RunInsert<'a> {
    /// Its experiment.
    pub experiment_id: &'a str,
    /// Its commit, or empty.
    pub commit: &'a str,
    /// Its target.
    pub target: &'a str,
    /// The arguments as JSON text.
    pub args: &'a str,
    /// Its first status.
    pub status: &'a str,
    /// The id of the user who submits it.
    pub created_by: &'a str,
    /// When, in ms since the epoch.
    pub created_at: i64,
    /// When it started, if it starts at once (a tracking client's run).
    pub started_at: Option<i64>,
    /// Its script, or empty.
    pub script: &'a str,
    /// Its name, or empty.
    pub name: &'a str,
    /// Seconds it may take.
    pub timeout_s: Option<i64>,
    /// Its environment, or empty.
    pub environment: &'a str,
    /// Whether Kiln executes it (not a run a tracking client logs to).
    pub executed: bool,
}

/// Records a run under the experiment's next number; writers of one experiment take turns
/// (SQLite's write transactions are exclusive, PostgreSQL locks the experiment's row).
pub async fn insert(db: &Db, run: &RunInsert<'_>) -> Result<RunRow, ControlError> {
    let id = new_id();
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
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
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!("{RUN_SELECT} WHERE r.id = $1")))
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// The run `id` if its project is in the work group `workgroup_id`.
pub async fn in_workgroup(
    db: &Db,
    id: &str,
    workgroup_id: &str,
) -> Result<Option<RunRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.id = $1 AND p.workgroup_id = $2"
    )))
    .bind(id)
    .bind(workgroup_id)
    .fetch_optional(db.pool())
    .await?)
}

/// The run `id` if it is in the project `project_id`.
pub async fn in_project(
    db: &Db,
    id: &str,
    project_id: &str,
) -> Result<Option<RunRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.id = $1 AND e.project_id = $2"
    )))
    .bind(id)
    .bind(project_id)
    .fetch_optional(db.pool())
    .await?)
}

/// The run numbered `number` in the experiment `experiment_id`.
pub async fn by_number(
    db: &Db,
    experiment_id: &str,
    number: i64,
) -> Result<Option<RunRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.experiment_id = $1 AND r.number = $2"
    )))
    .bind(experiment_id)
    .bind(number)
    .fetch_optional(db.pool())
    .await?)
}

/// Up to `fetch` runs of an experiment numbered below `before`, newest first; only those in
/// `status` unless it is empty.
pub async fn list_for_experiment(
    db: &Db,
    experiment_id: &str,
    status: &str,
    before: i64,
    fetch: i64,
) -> Result<Vec<RunRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.experiment_id = $1 AND ($2 = '' OR r.status = $2) AND r.number < $3 \
         ORDER BY r.number DESC LIMIT $4"
    )))
    .bind(experiment_id)
    .bind(status)
    .bind(before)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// Which of a work group's runs [`list_in_workgroup`] reads; empty texts match every run.
pub struct WorkgroupRuns<'a> {
    /// The work group.
    pub workgroup_id: &'a str,
    /// Only runs in this status.
    pub status: &'a str,
    /// Only runs of the project of this name.
    pub project: &'a str,
    /// Only runs after this one in the order (created first, then by id): its creation time
    /// and id.
    pub after: (i64, &'a str),
}

/// Up to `fetch` of a work group's runs, newest first, then by id.
pub async fn list_in_workgroup(
    db: &Db,
    which: &WorkgroupRuns<'_>,
    fetch: i64,
) -> Result<Vec<RunRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE p.workgroup_id = $1 AND ($2 = '' OR r.status = $2) \
         AND ($3 = '' OR p.name = $3) AND (r.created_at < $4 OR (r.created_at = $4 AND r.id > $5)) \
         ORDER BY r.created_at DESC, r.id LIMIT $6"
    )))
    .bind(which.workgroup_id)
    .bind(which.status)
    .bind(which.project)
    .bind(which.after.0)
    .bind(which.after.1)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The runs of the experiment `experiment_id` if it is in the project `project_id`.
pub async fn of_experiment(
    db: &Db,
    experiment_id: &str,
    project_id: &str,
) -> Result<Vec<RunRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} WHERE r.experiment_id = $1 AND e.project_id = $2"
    )))
    .bind(experiment_id)
    .bind(project_id)
    .fetch_all(db.pool())
    .await?)
}

/// Whether the run `id` is of the experiment `experiment_id` of the project `project_id`.
pub async fn is_of_experiment(
    db: &Db,
    id: &str,
    (experiment_id, project_id): (&str, &str),
) -> Result<bool, ControlError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT r.id FROM runs r JOIN experiments e ON e.id = r.experiment_id \
         WHERE r.id = $1 AND e.id = $2 AND e.project_id = $3",
    )
    .bind(id)
    .bind(experiment_id)
    .bind(project_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(found.is_some())
}

/// Renames the run `id`.
pub async fn set_name(db: &Db, id: &str, name: &str) -> Result<(), ControlError> {
    sqlx::query("UPDATE runs SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Sets the status of the run `id` (a tracking client's), with when it ended if it did.
pub async fn set_status(
    db: &Db,
    id: &str,
    status: &str,
    finished_at: Option<i64>,
) -> Result<(), ControlError> {
    sqlx::query("UPDATE runs SET status = $1, finished_at = $2 WHERE id = $3")
        .bind(status)
        .bind(finished_at)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Cancels the run `id` for `by` (a user's name): a queued run, or one a tracking client logs
/// to, ends now (true); one that executes is marked for its executor to stop (false).
pub async fn cancel(db: &Db, id: &str, by: &str) -> Result<bool, ControlError> {
    let ended = sqlx::query(
        "UPDATE runs SET status = 'canceled', reason = $1, finished_at = $2, cancel_requested_by = $3 \
         WHERE id = $4 AND (status = 'queued' OR executed = 0) AND status NOT IN ('completed', 'failed', 'canceled')",
    )
    .bind(format!("canceled by {by}"))
    .bind(db::now_ms())
    .bind(by)
    .bind(id)
    .execute(db.pool())
    .await?;
    if ended.rows_affected() > 0 {
        return Ok(true);
    }
    sqlx::query(
        "UPDATE runs SET cancel_requested_by = $1 WHERE id = $2 AND cancel_requested_by IS NULL",
    )
    .bind(by)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(false)
}

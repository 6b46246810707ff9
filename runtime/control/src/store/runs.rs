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

/// What the runner reads of a run: its row, and where it belongs.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunnerRow {
    /// The run's id.
    pub id: String,
    /// Its script.
    pub script: String,
    /// Its arguments, a JSON array of strings.
    pub args: String,
    /// Its commit.
    pub commit_sha: String,
    /// Its target's name.
    pub target: String,
    /// Seconds it may take, if it says.
    pub timeout_s: Option<i64>,
    /// The id of the user who submitted it.
    pub created_by: String,
    /// The executor's handle, once it started.
    pub handle: Option<String>,
    /// Bytes of log written.
    pub log_bytes: i64,
    /// Bytes of log written before the executor's output began.
    pub log_base: i64,
    /// When it started.
    pub started_at: Option<i64>,
    /// The id of its token, once issued.
    pub token_id: Option<String>,
    /// Its environment, or empty.
    pub environment: String,
    /// Its experiment's id.
    pub experiment_id: String,
    /// Its project's id.
    pub project_id: String,
    /// Its project's name.
    pub project: String,
    /// Its work group's id.
    pub workgroup_id: String,
    /// Its work group's name.
    pub workgroup: String,
    /// Its team's name.
    pub team: String,
}

/// The run `id` as the runner reads it.
pub async fn for_runner(db: &Db, id: &str) -> Result<RunnerRow, ControlError> {
    sqlx::query_as(
        "SELECT r.id, r.script, r.args, r.commit_sha, r.target, r.timeout_s, r.created_by, \
         r.handle, r.log_bytes, r.log_base, r.started_at, r.token_id, r.environment, \
         r.experiment_id, p.id AS project_id, p.name AS project, w.id AS workgroup_id, \
         w.name AS workgroup, t.name AS team FROM runs r \
         JOIN experiments e ON e.id = r.experiment_id JOIN projects p ON p.id = e.project_id \
         JOIN workgroups w ON w.id = p.workgroup_id JOIN teams t ON t.id = w.team_id \
         WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("run '{id}' not found")))
}

/// Says that `owner` is alive for the runs it executes.
pub async fn heartbeat(db: &Db, owner: &str) -> Result<(), ControlError> {
    sqlx::query(
        "UPDATE runs SET heartbeat_at = $1 WHERE owner = $2 AND status IN ('preparing', 'running')",
    )
    .bind(db::now_ms())
    .bind(owner)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A run in progress, by id and status.
#[derive(Debug, sqlx::FromRow)]
pub struct Orphan {
    /// The run's id.
    pub id: String,
    /// `preparing` or `running`.
    pub status: String,
}

/// The executed runs in progress that belong to another owner than `owner` whose heartbeat is
/// older than `stale` (ms since the epoch).
pub async fn orphans(db: &Db, owner: &str, stale: i64) -> Result<Vec<Orphan>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT id, status FROM runs WHERE status IN ('preparing', 'running') AND executed = 1 \
         AND (owner IS NULL OR owner <> $1) AND (heartbeat_at IS NULL OR heartbeat_at < $2)",
    )
    .bind(owner)
    .bind(stale)
    .fetch_all(db.pool())
    .await?)
}

/// Claims an orphan for `owner` unless another process did first (or its owner beat again).
pub async fn claim_orphan(
    db: &Db,
    owner: &str,
    orphan: &Orphan,
    stale: i64,
) -> Result<bool, ControlError> {
    let claimed = sqlx::query(
        "UPDATE runs SET owner = $1, heartbeat_at = $2 WHERE id = $3 AND status = $4 \
         AND (heartbeat_at IS NULL OR heartbeat_at < $5)",
    )
    .bind(owner)
    .bind(db::now_ms())
    .bind(&orphan.id)
    .bind(&orphan.status)
    .bind(stale)
    .execute(db.pool())
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// The runs `owner` executes that someone asked to cancel: each id with who asked.
pub async fn cancels_asked(db: &Db, owner: &str) -> Result<Vec<(String, String)>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT id, cancel_requested_by FROM runs WHERE owner = $1 \
         AND cancel_requested_by IS NOT NULL AND status IN ('preparing', 'running')",
    )
    .bind(owner)
    .fetch_all(db.pool())
    .await?)
}

/// A queued run: where it goes.
#[derive(Debug, sqlx::FromRow)]
pub struct Queued {
    /// The run's id.
    pub id: String,
    /// Its target's name.
    pub target: String,
    /// Its work group's id.
    pub workgroup_id: String,
}

/// Up to `limit` queued executed runs, oldest first.
pub async fn queued(db: &Db, limit: i64) -> Result<Vec<Queued>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT r.id, r.target, p.workgroup_id FROM runs r \
         JOIN experiments e ON e.id = r.experiment_id JOIN projects p ON p.id = e.project_id \
         WHERE r.status = 'queued' AND r.executed = 1 ORDER BY r.created_at, r.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// What a claim on a queued run came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The run is `owner`'s, and preparing.
    Claimed,
    /// Its target in its work group runs `concurrency` runs already.
    Full,
    /// Another process claimed it first (or it was canceled).
    Taken,
}

/// An advisory lock key serializing run claims on PostgreSQL ("runs" in ASCII).
const RUNS_LOCK: i64 = 0x7275_6e73;

/// Claims a queued run for `owner` if its target, in its work group, runs fewer than
/// `concurrency` runs: counted and claimed in one transaction, which claims serialize on.
pub async fn claim_queued(
    db: &Db,
    owner: &str,
    run: &Queued,
    concurrency: u64,
) -> Result<Claim, ControlError> {
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(RUNS_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    let busy: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id \
         JOIN projects p ON p.id = e.project_id \
         WHERE p.workgroup_id = $1 AND r.target = $2 AND r.status IN ('preparing', 'running')",
    )
    .bind(&run.workgroup_id)
    .bind(&run.target)
    .fetch_one(&mut *tx)
    .await?;
    if busy as u64 >= concurrency {
        return Ok(Claim::Full);
    }
    let claimed = sqlx::query(
        "UPDATE runs SET status = 'preparing', owner = $1, heartbeat_at = $2 \
         WHERE id = $3 AND status = 'queued'",
    )
    .bind(owner)
    .bind(db::now_ms())
    .bind(&run.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(if claimed.rows_affected() == 1 {
        Claim::Claimed
    } else {
        Claim::Taken
    })
}

/// Records the token issued to the run `id`.
pub async fn set_token(db: &Db, id: &str, token_id: &str) -> Result<(), ControlError> {
    sqlx::query("UPDATE runs SET token_id = $1 WHERE id = $2")
        .bind(token_id)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The id of the token issued to the run `id`, if one was.
pub async fn token_of(db: &Db, id: &str) -> Result<Option<String>, ControlError> {
    let token: Option<Option<String>> =
        sqlx::query_scalar("SELECT token_id FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    Ok(token.flatten())
}

/// Records that the run `id` is running: its executor's handle, when it started, and how much
/// of its log came before its output.
pub async fn record_start(
    db: &Db,
    id: &str,
    handle: &str,
    started_at: i64,
    log_base: i64,
) -> Result<(), ControlError> {
    sqlx::query(
        "UPDATE runs SET status = 'running', handle = $1, started_at = $2, log_base = $3 \
         WHERE id = $4",
    )
    .bind(handle)
    .bind(started_at)
    .bind(log_base)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records the end of the run `id`: its status, why, its exit code; it has no owner any more.
pub async fn record_end(
    db: &Db,
    id: &str,
    status: &str,
    reason: &str,
    exit_code: Option<i64>,
) -> Result<(), ControlError> {
    sqlx::query(
        "UPDATE runs SET status = $1, reason = $2, exit_code = $3, finished_at = $4, owner = NULL \
         WHERE id = $5",
    )
    .bind(status)
    .bind(reason)
    .bind(exit_code)
    .bind(db::now_ms())
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records how many bytes of the run `id`'s log are written.
pub async fn set_log_bytes(db: &Db, id: &str, bytes: i64) -> Result<(), ControlError> {
    sqlx::query("UPDATE runs SET log_bytes = $1 WHERE id = $2")
        .bind(bytes)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The status of the run `id` and how many bytes of its log are written (404 when it was
/// deleted).
pub async fn progress(db: &Db, id: &str) -> Result<(String, i64), ControlError> {
    sqlx::query_as("SELECT status, log_bytes FROM runs WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ControlError::NotFound("the run was deleted".into()))
}

//! What the runner keeps of runs: who executes each (an owner that beats), claims of queued
//! runs under their target's concurrency, adoption of runs whose owner stopped, and each run's
//! start, token, end and log length.

use crate::ControlError;
use crate::db::{self, Backend, Db};

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

//! Drift monitoring as stored: each deployment's last windows and its cumulative report (the
//! monitor's own JSON, with its state and times), and the deployment's events.

use crate::ControlError;
use crate::db::{Db, new_id, now_ms};

/// A deployment as monitoring reads it.
#[derive(Debug, sqlx::FromRow)]
pub struct Monitored {
    /// Its id.
    pub id: String,
    /// Its work group's id.
    pub workgroup_id: String,
    /// Its settings column.
    pub settings: String,
}

/// The deployment `name` of a work group (404 when there is none).
pub async fn deployment(
    db: &Db,
    workgroup_id: &str,
    name: &str,
) -> Result<Monitored, ControlError> {
    sqlx::query_as(
        "SELECT id, workgroup_id, settings FROM deployments WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("deployment '{name}' not found")))
}

/// The deployment `name`, whichever work group has it (404 when there is none).
pub async fn deployment_anywhere(db: &Db, name: &str) -> Result<Monitored, ControlError> {
    sqlx::query_as("SELECT id, workgroup_id, settings FROM deployments WHERE name = $1")
        .bind(name)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("deployment '{name}' not found")))
}

/// Writes the settings of the deployment `id` as its next generation.
pub async fn set_settings(db: &Db, id: &str, settings: &str) -> Result<(), ControlError> {
    sqlx::query(
        "UPDATE deployments SET settings = $1, generation = generation + 1, updated_at = $2 WHERE id = $3",
    )
    .bind(settings)
    .bind(now_ms())
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// An experiment a retraining policy names: its project's id, its id, script, arguments and
/// target.
#[derive(Debug, sqlx::FromRow)]
pub struct PolicyExperiment {
    /// Its project's id.
    pub project_id: String,
    /// Its id.
    pub id: String,
    /// Its script.
    pub script: String,
    /// Its arguments, a JSON array of strings.
    pub args: String,
    /// Its target.
    pub target: String,
}

/// The experiment `experiment` of the project `project` of a work group.
pub async fn experiment(
    db: &Db,
    workgroup_id: &str,
    (project, experiment): (&str, &str),
) -> Result<Option<PolicyExperiment>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT p.id AS project_id, e.id, e.script, e.args, e.target FROM experiments e \
         JOIN projects p ON p.id = e.project_id \
         WHERE p.workgroup_id = $1 AND p.name = $2 AND e.name = $3",
    )
    .bind(workgroup_id)
    .bind(project)
    .bind(experiment)
    .fetch_optional(db.pool())
    .await?)
}

/// A closed window of a deployment.
#[derive(Debug, sqlx::FromRow)]
pub struct WindowRow {
    /// When it opened, in ms since the epoch.
    pub start_ms: i64,
    /// When it closed.
    pub end_ms: i64,
    /// What the monitor found.
    pub state: String,
}

/// A deployment's closed windows, newest first.
pub async fn windows(db: &Db, deployment_id: &str) -> Result<Vec<WindowRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT start_ms, end_ms, state FROM deployment_drift WHERE deployment_id = $1 \
         AND kind = 'window' ORDER BY seq DESC",
    )
    .bind(deployment_id)
    .fetch_all(db.pool())
    .await?)
}

/// The states of a deployment's latest `limit` windows, newest first.
pub async fn window_states(
    db: &Db,
    deployment_id: &str,
    limit: i64,
) -> Result<Vec<String>, ControlError> {
    Ok(sqlx::query_scalar(
        "SELECT state FROM deployment_drift WHERE deployment_id = $1 AND kind = 'window' \
         ORDER BY seq DESC LIMIT $2",
    )
    .bind(deployment_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// The stored report of kind `kind` (`window` or `cumulative`), `back` reports from the latest.
pub async fn report(
    db: &Db,
    deployment_id: &str,
    kind: &str,
    back: i64,
) -> Result<Option<String>, ControlError> {
    Ok(sqlx::query_scalar(
        "SELECT report FROM deployment_drift WHERE deployment_id = $1 AND kind = $2 \
         ORDER BY seq DESC LIMIT 1 OFFSET $3",
    )
    .bind(deployment_id)
    .bind(kind)
    .bind(back)
    .fetch_optional(db.pool())
    .await?)
}

/// A report to store: its state, its times, and the monitor's JSON.
pub struct StoredReport<'a> {
    /// What the monitor found.
    pub state: &'a str,
    /// When the window opened, in ms since the epoch.
    pub start_ms: i64,
    /// When it closed.
    pub end_ms: i64,
    /// The monitor's report.
    pub report: &'a str,
}

/// Stores the report of a closed window and the cumulative one (which replaces the last),
/// keeping the latest `keep` windows, in one transaction.
pub async fn record(
    db: &Db,
    deployment_id: &str,
    (window, cumulative): (&StoredReport<'_>, &StoredReport<'_>),
    keep: i64,
) -> Result<(), ControlError> {
    let mut tx = db.begin().await?;
    let next: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM deployment_drift WHERE deployment_id = $1",
    )
    .bind(deployment_id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM deployment_drift WHERE deployment_id = $1 AND kind = 'cumulative'")
        .bind(deployment_id)
        .execute(&mut *tx)
        .await?;
    for (offset, kind, report) in [(0, "window", window), (1, "cumulative", cumulative)] {
        sqlx::query(
            "INSERT INTO deployment_drift (deployment_id, seq, kind, state, start_ms, end_ms, report) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(deployment_id)
        .bind(next + offset)
        .bind(kind)
        .bind(report.state)
        .bind(report.start_ms)
        .bind(report.end_ms)
        .bind(report.report)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "DELETE FROM deployment_drift WHERE deployment_id = $1 AND kind = 'window' AND seq <= \
         (SELECT MAX(seq) FROM deployment_drift WHERE deployment_id = $1) - $2",
    )
    .bind(deployment_id)
    // Each report takes two sequence numbers: its window's and the cumulative one's.
    .bind(2 * keep)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records an event of a deployment.
pub async fn event(
    db: &Db,
    deployment_id: &str,
    (kind, message): (&str, &str),
    run: Option<&str>,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO deployment_events (id, deployment_id, kind, message, run_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(deployment_id)
    .bind(kind)
    .bind(message)
    .bind(run)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A deployment's event.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    /// Its kind.
    pub kind: String,
    /// What happened.
    pub message: String,
    /// The run it submitted.
    pub run_id: Option<String>,
    /// When, in ms since the epoch.
    pub created_at: i64,
}

/// A deployment's latest `limit` events, newest first.
pub async fn events(
    db: &Db,
    deployment_id: &str,
    limit: i64,
) -> Result<Vec<EventRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT kind, message, run_id, created_at FROM deployment_events WHERE deployment_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(deployment_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Whether the deployment had an event of `kind` after `since` (ms since the epoch).
pub async fn had_event_since(
    db: &Db,
    deployment_id: &str,
    kind: &str,
    since: i64,
) -> Result<bool, ControlError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM deployment_events WHERE deployment_id = $1 AND kind = $2 \
         AND created_at > $3 LIMIT 1",
    )
    .bind(deployment_id)
    .bind(kind)
    .bind(since)
    .fetch_optional(db.pool())
    .await?;
    Ok(found.is_some())
}

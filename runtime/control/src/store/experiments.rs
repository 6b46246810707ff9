//! Experiments as stored: a row per experiment of a project, its arguments a JSON array.

use crate::ControlError;
use crate::db::Db;

/// An experiment's row.
#[derive(Debug, sqlx::FromRow)]
pub struct ExperimentRow {
    /// The experiment's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its entry point.
    pub script: String,
    /// Its default arguments, a JSON array of strings.
    pub args: String,
    /// Its default target.
    pub target: String,
    /// Created, in ms since the epoch.
    pub created_at: i64,
}

const EXPERIMENT: &str = "SELECT id, name, script, args, target, created_at FROM experiments";

/// Adds an experiment to a project; a name the project already has is a conflict naming it.
pub async fn insert(db: &Db, project_id: &str, row: &ExperimentRow) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO experiments (id, project_id, name, script, args, target, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.id)
    .bind(project_id)
    .bind(&row.name)
    .bind(&row.script)
    .bind(&row.args)
    .bind(&row.target)
    .bind(row.created_at)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("experiment", &row.name))?;
    Ok(())
}

/// Up to `fetch` experiments of a project named after `after`, in name order.
pub async fn list(
    db: &Db,
    project_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<ExperimentRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{EXPERIMENT} WHERE project_id = $1 AND name > $2 ORDER BY name LIMIT $3"
    )))
    .bind(project_id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The experiment `name` of a project (404 when there is none).
pub async fn named(db: &Db, project_id: &str, name: &str) -> Result<ExperimentRow, ControlError> {
    find(db, project_id, name)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("experiment '{name}' not found")))
}

/// The id of the experiment `name` of a project (404 when there is none).
pub async fn experiment_id(db: &Db, project_id: &str, name: &str) -> Result<String, ControlError> {
    Ok(named(db, project_id, name).await?.id)
}

/// Deletes the experiment `id` with its runs.
pub async fn delete(db: &Db, id: &str) -> Result<(), ControlError> {
    sqlx::query("DELETE FROM experiments WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The experiment `name` of a project, if it has one.
pub async fn find(
    db: &Db,
    project_id: &str,
    name: &str,
) -> Result<Option<ExperimentRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{EXPERIMENT} WHERE project_id = $1 AND name = $2"
    )))
    .bind(project_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?)
}

/// The experiment `id` of a project, if it has one.
pub async fn by_id(
    db: &Db,
    project_id: &str,
    id: &str,
) -> Result<Option<ExperimentRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{EXPERIMENT} WHERE project_id = $1 AND id = $2"
    )))
    .bind(project_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

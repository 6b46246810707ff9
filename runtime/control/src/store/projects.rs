//! Projects as stored: a row in the work group, a bare Git repository under the data directory.

use crate::access::Scope;
use crate::db::Db;
use crate::git::Repository;
use crate::{ControlError, ControlPlane};
use std::path::PathBuf;

pub(crate) fn repository_dir(control: &ControlPlane, project_id: &str) -> PathBuf {
    control
        .settings()
        .projects_dir
        .join(format!("{project_id}.git"))
}

/// The id of project `name` in the scope's work group.
pub(crate) async fn project_id(
    control: &ControlPlane,
    scope: &Scope,
    name: &str,
) -> Result<String, ControlError> {
    sqlx::query_scalar("SELECT id FROM projects WHERE workgroup_id = $1 AND name = $2")
        .bind(&scope.workgroup()?.id)
        .bind(name)
        .fetch_optional(control.db().pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("project '{name}' not found")))
}

/// The repository of a project.
pub(crate) fn repository(control: &ControlPlane, project_id: &str) -> Repository {
    Repository::open(repository_dir(control, project_id))
}

/// A project's row.
#[derive(Debug, sqlx::FromRow)]
pub struct ProjectRow {
    /// The project's id (its repository is `{id}.git`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Created, in ms since the epoch.
    pub created_at: i64,
}

const PROJECT: &str = "SELECT id, name, description, created_at FROM projects";

/// Adds a project to a work group; a name the work group already has is a conflict naming it.
pub async fn insert(db: &Db, workgroup_id: &str, row: &ProjectRow) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO projects (id, workgroup_id, name, description, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&row.id)
    .bind(workgroup_id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(row.created_at)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("project", &row.name))?;
    Ok(())
}

/// Up to `fetch` projects of a work group named after `after`, in name order.
pub async fn list(
    db: &Db,
    workgroup_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<ProjectRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PROJECT} WHERE workgroup_id = $1 AND name > $2 ORDER BY name LIMIT $3"
    )))
    .bind(workgroup_id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The project `name` of a work group (404 when there is none).
pub async fn named(db: &Db, workgroup_id: &str, name: &str) -> Result<ProjectRow, ControlError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PROJECT} WHERE workgroup_id = $1 AND name = $2"
    )))
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("project '{name}' not found")))
}

/// Deletes the project `id`'s row.
pub async fn delete(db: &Db, id: &str) -> Result<(), ControlError> {
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

//! Execution targets and environments as stored: settings and lists as JSON text, an
//! environment's registry password sealed ([`crate::secrets`]).

use crate::ControlError;
use crate::db::Db;

/// A target's row.
#[derive(Debug, sqlx::FromRow)]
pub struct TargetRow {
    /// The target's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `local`, `docker` or `spark`.
    pub kind: String,
    /// Its settings, a JSON object.
    pub config: String,
    /// Created, in ms since the epoch.
    pub created_at: i64,
}

const TARGET: &str = "SELECT id, name, kind, config, created_at FROM targets";

/// Adds a target to a work group; a name the work group already has is a conflict naming it.
pub async fn insert_target(
    db: &Db,
    workgroup_id: &str,
    row: &TargetRow,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO targets (id, workgroup_id, name, kind, config, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&row.id)
    .bind(workgroup_id)
    .bind(&row.name)
    .bind(&row.kind)
    .bind(&row.config)
    .bind(row.created_at)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("target", &row.name))?;
    Ok(())
}

/// Up to `fetch` targets of a work group named after `after`, in name order.
pub async fn list_targets(
    db: &Db,
    workgroup_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<TargetRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TARGET} WHERE workgroup_id = $1 AND name > $2 ORDER BY name LIMIT $3"
    )))
    .bind(workgroup_id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The target `name` a work group configured, if it did.
pub async fn find_target(
    db: &Db,
    workgroup_id: &str,
    name: &str,
) -> Result<Option<TargetRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TARGET} WHERE workgroup_id = $1 AND name = $2"
    )))
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?)
}

/// Deletes the target `name` of a work group; false when there was none.
pub async fn delete_target(db: &Db, workgroup_id: &str, name: &str) -> Result<bool, ControlError> {
    let done = sqlx::query("DELETE FROM targets WHERE workgroup_id = $1 AND name = $2")
        .bind(workgroup_id)
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// An environment's row.
#[derive(Debug, sqlx::FromRow)]
pub struct EnvironmentRow {
    /// The environment's id (bound into its sealed password).
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its registry's `host[:port]`.
    pub registry: Option<String>,
    /// The registry user name.
    pub registry_username: Option<String>,
    /// The registry password, sealed.
    pub registry_password_sealed: Option<String>,
    /// The artifact store URL of its runs.
    pub artifact_store: Option<String>,
    /// The targets its runs may use, a JSON array.
    pub targets: String,
    /// Runtime node URLs, a JSON array.
    pub runtime_nodes: String,
    /// Created, in ms since the epoch.
    pub created_at: i64,
    /// The container image of its runs.
    pub run_image: Option<String>,
}

const ENVIRONMENT: &str = "SELECT id, name, description, registry, registry_username, \
     registry_password_sealed, artifact_store, targets, runtime_nodes, created_at, run_image \
     FROM environments";

/// Adds an environment to a work group; a name the work group already has is a conflict.
pub async fn insert_environment(
    db: &Db,
    workgroup_id: &str,
    row: &EnvironmentRow,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO environments (id, workgroup_id, name, description, registry, \
         registry_username, registry_password_sealed, artifact_store, targets, runtime_nodes, \
         created_at, run_image) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&row.id)
    .bind(workgroup_id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.registry)
    .bind(&row.registry_username)
    .bind(&row.registry_password_sealed)
    .bind(&row.artifact_store)
    .bind(&row.targets)
    .bind(&row.runtime_nodes)
    .bind(row.created_at)
    .bind(&row.run_image)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("environment", &row.name))?;
    Ok(())
}

/// Up to `fetch` environments of a work group named after `after`, in name order.
pub async fn list_environments(
    db: &Db,
    workgroup_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<EnvironmentRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ENVIRONMENT} WHERE workgroup_id = $1 AND name > $2 ORDER BY name LIMIT $3"
    )))
    .bind(workgroup_id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The environment `name` of a work group, if there is one.
pub async fn find_environment(
    db: &Db,
    workgroup_id: &str,
    name: &str,
) -> Result<Option<EnvironmentRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ENVIRONMENT} WHERE workgroup_id = $1 AND name = $2"
    )))
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?)
}

/// Deletes the environment `name` of a work group; false when there was none.
pub async fn delete_environment(
    db: &Db,
    workgroup_id: &str,
    name: &str,
) -> Result<bool, ControlError> {
    let done = sqlx::query("DELETE FROM environments WHERE workgroup_id = $1 AND name = $2")
        .bind(workgroup_id)
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

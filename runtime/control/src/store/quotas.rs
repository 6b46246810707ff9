//! Work groups' own quota settings as stored: a row per work group that has any, a column
//! per limit, `NULL` for the installation's default.

use crate::ControlError;
use crate::db::{Db, now_ms};

/// A work group's own settings; `None` takes the installation's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct QuotaRow {
    /// Deployments it holds.
    pub deployments: Option<i64>,
    /// Instances of all its deployments together.
    pub instances: Option<i64>,
    /// Memory of all its deployments' instances together, MiB.
    pub memory_mb: Option<i64>,
    /// The longest prediction deadline, ms.
    pub deadline_ms: Option<i64>,
}

/// The work group's own settings (all default when it has none).
pub async fn get(db: &Db, workgroup_id: &str) -> Result<QuotaRow, ControlError> {
    let row: Option<QuotaRow> = sqlx::query_as(
        "SELECT deployments, instances, memory_mb, deadline_ms FROM workgroup_quotas \
         WHERE workgroup_id = $1",
    )
    .bind(workgroup_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.unwrap_or_default())
}

/// Writes the work group's own settings.
pub async fn put(db: &Db, workgroup_id: &str, row: &QuotaRow) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO workgroup_quotas \
         (workgroup_id, deployments, instances, memory_mb, deadline_ms, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workgroup_id) DO UPDATE SET \
         deployments = $2, instances = $3, memory_mb = $4, deadline_ms = $5, updated_at = $6",
    )
    .bind(workgroup_id)
    .bind(row.deployments)
    .bind(row.instances)
    .bind(row.memory_mb)
    .bind(row.deadline_ms)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The name and stored settings of every deployment of the work group: what its quota is
/// charged with.
pub async fn deployment_settings(
    db: &Db,
    workgroup_id: &str,
) -> Result<Vec<(String, String)>, ControlError> {
    Ok(
        sqlx::query_as("SELECT name, settings FROM deployments WHERE workgroup_id = $1")
            .bind(workgroup_id)
            .fetch_all(db.pool())
            .await?,
    )
}

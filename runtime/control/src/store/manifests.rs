//! Manifests as stored: a row per manifest of a work group, over one model version, its body
//! in the manifest file format.

use crate::ControlError;
use crate::db::Db;

/// A manifest's row, with its model's name and version's number.
#[derive(Debug, sqlx::FromRow)]
pub struct ManifestRow {
    /// Its name.
    pub name: String,
    /// Its model's name.
    pub model: String,
    /// Its version's number.
    pub version: i64,
    /// The manifest.
    pub body: String,
    /// Registered, in ms since the epoch.
    pub created_at: i64,
}

const MANIFEST: &str = "SELECT f.name, m.name AS model, v.version, f.body, f.created_at \
    FROM manifests f JOIN model_versions v ON v.id = f.model_version_id \
    JOIN models m ON m.id = v.model_id";

/// Records a manifest over the version `version_id`; a name the work group already has is a
/// conflict naming it.
pub async fn insert(
    db: &Db,
    (id, workgroup_id): (&str, &str),
    name: &str,
    version_id: &str,
    body: &str,
    created_at: i64,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO manifests (id, workgroup_id, name, model_version_id, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(workgroup_id)
    .bind(name)
    .bind(version_id)
    .bind(body)
    .bind(created_at)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("manifest", name))?;
    Ok(())
}

/// Up to `fetch` manifests of a work group named after `after`, in name order.
pub async fn list(
    db: &Db,
    workgroup_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<ManifestRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MANIFEST} WHERE f.workgroup_id = $1 AND f.name > $2 ORDER BY f.name LIMIT $3"
    )))
    .bind(workgroup_id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The manifest `name` of a work group (404 when there is none).
pub async fn named(db: &Db, workgroup_id: &str, name: &str) -> Result<ManifestRow, ControlError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MANIFEST} WHERE f.workgroup_id = $1 AND f.name = $2"
    )))
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("manifest '{name}' not found")))
}

/// What a build reads of a manifest: its id, its body, and its version and model.
#[derive(Debug, sqlx::FromRow)]
pub struct Recipe {
    /// The manifest's id.
    pub id: String,
    /// The manifest.
    pub body: String,
    /// The version's id.
    pub version_id: String,
    /// The model's id.
    pub model_id: String,
}

/// The recipe of a work group's manifest `name`, if it has one.
pub async fn recipe(
    db: &Db,
    workgroup_id: &str,
    name: &str,
) -> Result<Option<Recipe>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT f.id, f.body, v.id AS version_id, v.model_id FROM manifests f \
         JOIN model_versions v ON v.id = f.model_version_id WHERE f.workgroup_id = $1 AND f.name = $2",
    )
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?)
}

/// The names of the images built from a work group's manifest `name`, in name order.
pub async fn images_of(
    db: &Db,
    workgroup_id: &str,
    name: &str,
) -> Result<Vec<String>, ControlError> {
    Ok(sqlx::query_scalar(
        "SELECT i.name FROM images i JOIN manifests f ON f.id = i.manifest_id \
         WHERE f.workgroup_id = $1 AND f.name = $2 ORDER BY i.name",
    )
    .bind(workgroup_id)
    .bind(name)
    .fetch_all(db.pool())
    .await?)
}

/// Deletes a work group's manifest `name`; false when it has none of that name.
pub async fn delete(db: &Db, workgroup_id: &str, name: &str) -> Result<bool, ControlError> {
    let done = sqlx::query("DELETE FROM manifests WHERE workgroup_id = $1 AND name = $2")
        .bind(workgroup_id)
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

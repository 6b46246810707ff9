//! Images as stored: a row per image of a work group (pinned reference, digest, registry, kind,
//! the manifest it was built from), and the claims on the local OCI store: the work groups that
//! brought an image in (built or pulled it) claim its digest; an image nobody claimed is the
//! installation's, shared.

use crate::ControlError;
use crate::db::{Db, now_ms};

/// An image's row, with the name of the manifest it was built from.
#[derive(Debug, sqlx::FromRow)]
pub struct ImageRow {
    /// Its name.
    pub name: String,
    /// Its store reference, pinned by digest.
    pub reference: String,
    /// Its manifest digest.
    pub digest: String,
    /// The registry it was pulled from.
    pub registry: Option<String>,
    /// Its kind, as the API writes it.
    pub kind: String,
    /// Registered, in ms since the epoch.
    pub created_at: i64,
    /// The manifest it was built from.
    pub manifest: Option<String>,
}

const IMAGE: &str = "SELECT i.name, i.reference, i.digest, i.registry, i.kind, i.created_at, \
    f.name AS manifest FROM images i LEFT JOIN manifests f ON f.id = i.manifest_id";

/// An image to record.
pub struct ImageInsert<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its work group.
    pub workgroup_id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its store reference, pinned by digest.
    pub reference: &'a str,
    /// Its manifest digest.
    pub digest: &'a str,
    /// The registry it was pulled from.
    pub registry: Option<&'a str>,
    /// Its kind, as the API writes it.
    pub kind: &'a str,
    /// When, in ms since the epoch.
    pub created_at: i64,
    /// The id of the manifest it was built from.
    pub manifest_id: Option<&'a str>,
}

/// Records an image; a name the work group already has is a conflict naming it.
pub async fn insert(db: &Db, image: &ImageInsert<'_>) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO images (id, workgroup_id, name, reference, digest, registry, kind, created_at, manifest_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(image.id)
    .bind(image.workgroup_id)
    .bind(image.name)
    .bind(image.reference)
    .bind(image.digest)
    .bind(image.registry)
    .bind(image.kind)
    .bind(image.created_at)
    .bind(image.manifest_id)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("image", image.name))?;
    Ok(())
}

/// Up to `fetch` images of a work group named after `after`, in name order.
pub async fn list(
    db: &Db,
    workgroup_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<ImageRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{IMAGE} WHERE i.workgroup_id = $1 AND i.name > $2 ORDER BY i.name LIMIT $3"
    )))
    .bind(workgroup_id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The image `name` of a work group (404 when there is none).
pub async fn named(db: &Db, workgroup_id: &str, name: &str) -> Result<ImageRow, ControlError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{IMAGE} WHERE i.workgroup_id = $1 AND i.name = $2"
    )))
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("image '{name}' not found")))
}

/// The names of the deployments that use a work group's image `name`, in name order.
pub async fn deployed_by(
    db: &Db,
    workgroup_id: &str,
    name: &str,
) -> Result<Vec<String>, ControlError> {
    Ok(sqlx::query_scalar(
        "SELECT d.name FROM deployments d JOIN images i ON i.id = d.image_id \
         WHERE i.workgroup_id = $1 AND i.name = $2 ORDER BY d.name",
    )
    .bind(workgroup_id)
    .bind(name)
    .fetch_all(db.pool())
    .await?)
}

/// Deletes a work group's image `name`; false when it has none of that name.
pub async fn delete(db: &Db, workgroup_id: &str, name: &str) -> Result<bool, ControlError> {
    let done = sqlx::query("DELETE FROM images WHERE workgroup_id = $1 AND name = $2")
        .bind(workgroup_id)
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Records that a work group brought `digest` into the local store (built or pulled it).
pub async fn claim(db: &Db, workgroup_id: &str, digest: &str) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO store_claims (digest, workgroup_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (digest, workgroup_id) DO NOTHING",
    )
    .bind(digest)
    .bind(workgroup_id)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The work groups that claimed the local store's `digest`.
pub async fn claimants(db: &Db, digest: &str) -> Result<Vec<String>, ControlError> {
    Ok(
        sqlx::query_scalar("SELECT workgroup_id FROM store_claims WHERE digest = $1")
            .bind(digest)
            .fetch_all(db.pool())
            .await?,
    )
}

/// Whether a work group may use the local store's image `digest`: one it claimed, or one no
/// work group claimed (the installation's).
pub async fn may_use(db: &Db, workgroup_id: &str, digest: &str) -> Result<bool, ControlError> {
    let owners = claimants(db, digest).await?;
    Ok(owners.is_empty() || owners.iter().any(|o| o == workgroup_id))
}

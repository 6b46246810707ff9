//! Deployments as stored: a row per deployment (unique in the installation), its image pinned
//! by digest, its settings column, key digests, generation and the status nodes reported.

use crate::ControlError;
use crate::db::Db;

/// A deployment's row as the API shows it, with its image's name.
#[derive(Debug, sqlx::FromRow)]
pub struct DeploymentRow {
    /// Its name.
    pub name: String,
    /// Its image's name.
    pub image: String,
    /// The image's digest.
    pub image_digest: String,
    /// Its settings column.
    pub settings: String,
    /// 1 when open to anyone.
    pub public: i64,
    /// The status last reported.
    pub status: String,
    /// Why it failed, or empty.
    pub reason: String,
    /// Its generation.
    pub generation: i64,
    /// The generation the status is about.
    pub status_generation: i64,
    /// Last changed, in ms since the epoch.
    pub updated_at: i64,
}

const DEPLOYMENT: &str = "SELECT d.name, i.name AS image, d.image_digest, d.settings, d.public, \
    d.status, d.reason, d.generation, d.status_generation, d.updated_at \
    FROM deployments d JOIN images i ON i.id = d.image_id";

/// An image as a deployment pins it.
#[derive(Debug, sqlx::FromRow)]
pub struct PinnedImage {
    /// The image's id.
    pub id: String,
    /// Its digest.
    pub digest: String,
    /// Its store reference, pinned by digest.
    pub reference: String,
}

/// The image `name` of a work group.
pub async fn image(
    db: &Db,
    workgroup_id: &str,
    name: &str,
) -> Result<Option<PinnedImage>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT id, digest, reference FROM images WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?)
}

/// The image `id`.
pub async fn image_by_id(db: &Db, id: &str) -> Result<PinnedImage, ControlError> {
    Ok(
        sqlx::query_as("SELECT id, digest, reference FROM images WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await?,
    )
}

/// Whether a work group has an endpoint `name`.
pub async fn has_endpoint(db: &Db, workgroup_id: &str, name: &str) -> Result<bool, ControlError> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT id FROM endpoints WHERE workgroup_id = $1 AND name = $2")
            .bind(workgroup_id)
            .bind(name)
            .fetch_optional(db.pool())
            .await?;
    Ok(found.is_some())
}

/// A deployment to record, pending at generation 1.
pub struct DeploymentInsert<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its work group.
    pub workgroup_id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its image.
    pub image: &'a PinnedImage,
    /// Its settings column.
    pub settings: &'a str,
    /// Open to anyone.
    pub public: bool,
    /// The digests of its two keys.
    pub key_digests: (&'a str, &'a str),
    /// When, in ms since the epoch.
    pub created_at: i64,
}

/// Records a deployment; a name any deployment has is a conflict naming it.
pub async fn insert(db: &Db, new: &DeploymentInsert<'_>) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO deployments (id, workgroup_id, name, image_id, image_digest, image_reference, \
         settings, public, primary_key_digest, secondary_key_digest, generation, status, reason, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, 'pending', '', $11, $11)",
    )
    .bind(new.id)
    .bind(new.workgroup_id)
    .bind(new.name)
    .bind(&new.image.id)
    .bind(&new.image.digest)
    .bind(&new.image.reference)
    .bind(new.settings)
    .bind(i64::from(new.public))
    .bind(new.key_digests.0)
    .bind(new.key_digests.1)
    .bind(new.created_at)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("deployment", new.name))?;
    Ok(())
}

/// Up to `fetch` deployments of a work group named after `after`, in name order.
pub async fn list(
    db: &Db,
    workgroup_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<DeploymentRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{DEPLOYMENT} WHERE d.workgroup_id = $1 AND d.name > $2 ORDER BY d.name LIMIT $3"
    )))
    .bind(workgroup_id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The deployment `name` of a work group (404 when there is none).
pub async fn named(db: &Db, workgroup_id: &str, name: &str) -> Result<DeploymentRow, ControlError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{DEPLOYMENT} WHERE d.workgroup_id = $1 AND d.name = $2"
    )))
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("deployment '{name}' not found")))
}

/// What a change of a deployment starts from.
#[derive(Debug, sqlx::FromRow)]
pub struct Changeable {
    /// Its id.
    pub id: String,
    /// Its image's id.
    pub image_id: String,
    /// Its settings column.
    pub settings: String,
    /// 1 when open to anyone.
    pub public: i64,
}

/// What a change of the deployment `name` of a work group starts from (404 when there is none).
pub async fn changeable(
    db: &Db,
    workgroup_id: &str,
    name: &str,
) -> Result<Changeable, ControlError> {
    sqlx::query_as(
        "SELECT id, image_id, settings, public FROM deployments WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("deployment '{name}' not found")))
}

/// Records a change of the deployment `id` as its next generation.
pub async fn change(
    db: &Db,
    id: &str,
    image: &PinnedImage,
    settings: &str,
    public: bool,
) -> Result<(), ControlError> {
    sqlx::query(
        "UPDATE deployments SET image_id = $1, image_digest = $2, image_reference = $3, settings = $4, \
         public = $5, generation = generation + 1, updated_at = $6 WHERE id = $7",
    )
    .bind(&image.id)
    .bind(&image.digest)
    .bind(&image.reference)
    .bind(settings)
    .bind(i64::from(public))
    .bind(crate::db::now_ms())
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Deletes the deployment `name` of a work group; false when it has none of that name.
pub async fn delete(db: &Db, workgroup_id: &str, name: &str) -> Result<bool, ControlError> {
    let done = sqlx::query("DELETE FROM deployments WHERE workgroup_id = $1 AND name = $2")
        .bind(workgroup_id)
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// What has keys: a deployment or an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyed {
    /// A deployment.
    Deployment,
    /// An endpoint.
    Endpoint,
}

impl Keyed {
    /// Its name, as messages say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyed::Deployment => "deployment",
            Keyed::Endpoint => "endpoint",
        }
    }
}

/// Replaces the digest of one key of a work group's deployment or endpoint `name`, as its next
/// generation; false when it has none of that name.
pub async fn set_key(
    db: &Db,
    (kind, workgroup_id, name): (Keyed, &str, &str),
    key: kiln_api::manage::deployments::KeyName,
    digest: &str,
) -> Result<bool, ControlError> {
    use kiln_api::manage::deployments::KeyName;
    let table = match kind {
        Keyed::Deployment => "deployments",
        Keyed::Endpoint => "endpoints",
    };
    let column = match key {
        KeyName::Primary => "primary_key_digest",
        KeyName::Secondary => "secondary_key_digest",
    };
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET {column} = $1, generation = generation + 1, updated_at = $2 \
         WHERE workgroup_id = $3 AND name = $4"
    )))
    .bind(digest)
    .bind(crate::db::now_ms())
    .bind(workgroup_id)
    .bind(name)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A deployment as runtimes serve it.
#[derive(Debug, sqlx::FromRow)]
pub struct DesiredRow {
    /// Its name.
    pub name: String,
    /// Its generation.
    pub generation: i64,
    /// Its image's store reference, pinned by digest.
    pub image_reference: String,
    /// The image's digest.
    pub image_digest: String,
    /// Its settings column.
    pub settings: String,
    /// 1 when open to anyone.
    pub public: i64,
    /// Its primary key's digest.
    pub primary_key_digest: String,
    /// Its secondary key's digest.
    pub secondary_key_digest: String,
    /// The status last reported.
    pub status: String,
    /// The generation the status is about.
    pub status_generation: i64,
}

/// Every deployment, as runtimes serve it, by name.
pub async fn desired(db: &Db) -> Result<Vec<DesiredRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT name, generation, image_reference, image_digest, settings, public, \
         primary_key_digest, secondary_key_digest, status, status_generation \
         FROM deployments ORDER BY name",
    )
    .fetch_all(db.pool())
    .await?)
}

/// Records a node's status of the deployment `name` at `generation`; false when the deployment
/// is at another generation (the report is stale) or gone.
pub async fn report_status(
    db: &Db,
    (name, generation): (&str, i64),
    status: &str,
    reason: &str,
) -> Result<bool, ControlError> {
    let done = sqlx::query(
        "UPDATE deployments SET status = $1, reason = $2, status_generation = $3, updated_at = $4 \
         WHERE name = $5 AND generation = $3",
    )
    .bind(status)
    .bind(reason)
    .bind(generation)
    .bind(crate::db::now_ms())
    .bind(name)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

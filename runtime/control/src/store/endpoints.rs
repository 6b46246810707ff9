//! Endpoints as stored: a row per endpoint (unique in the installation) with its key digests,
//! its `settings` column (traffic split, mirror, rollback policy, and what a rollback returns
//! to), a generation every change moves, and its events.

use crate::ControlError;
use crate::db::{Db, new_id, now_ms};
use kiln_api::endpoint::Traffic;
use kiln_api::{MirrorSettings, RollbackPolicy};
use serde::{Deserialize, Serialize};

/// What an endpoint stores besides its name and keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointSettings {
    /// Weights of its deployments.
    #[serde(default)]
    pub traffic: Traffic,
    /// The mirrored deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorSettings>,
    /// The automatic rollback policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackPolicy>,
    /// The traffic before the last change: where a rollback returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Traffic>,
    /// Deployments whose weight the last change raised: what the rollback policy watches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<String>,
}

impl EndpointSettings {
    /// Parses the stored column of `endpoint`; text that does not parse is the store's
    /// corruption, reported as such, and nothing is written over it.
    pub fn parse(endpoint: &str, stored: &str) -> Result<Self, ControlError> {
        super::settings::parse_column("endpoint", endpoint, stored)
    }

    /// The column's text.
    pub fn to_column(&self) -> Result<String, ControlError> {
        serde_json::to_string(self).map_err(|e| ControlError::Internal(e.to_string()))
    }
}

/// An endpoint's row.
#[derive(Debug, sqlx::FromRow)]
pub struct EndpointRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// 1 when open to anyone.
    pub public: i64,
    /// Its settings column.
    pub settings: String,
    /// Its generation.
    pub generation: i64,
    /// Last changed, in ms since the epoch.
    pub updated_at: i64,
}

const ENDPOINT: &str = "SELECT id, name, public, settings, generation, updated_at FROM endpoints";

/// The endpoint `name` of a work group (404 when there is none).
pub async fn named(db: &Db, workgroup_id: &str, name: &str) -> Result<EndpointRow, ControlError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ENDPOINT} WHERE workgroup_id = $1 AND name = $2"
    )))
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("endpoint '{name}' not found")))
}

/// The endpoint `name`, whichever work group has it (404 when there is none).
pub async fn anywhere(db: &Db, name: &str) -> Result<EndpointRow, ControlError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{ENDPOINT} WHERE name = $1")))
        .bind(name)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("endpoint '{name}' not found")))
}

/// Up to `fetch` endpoints of a work group named after `after`, in name order.
pub async fn list(
    db: &Db,
    workgroup_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<EndpointRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ENDPOINT} WHERE workgroup_id = $1 AND name > $2 ORDER BY name LIMIT $3"
    )))
    .bind(workgroup_id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// Every endpoint of a work group.
pub async fn of_workgroup(db: &Db, workgroup_id: &str) -> Result<Vec<EndpointRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ENDPOINT} WHERE workgroup_id = $1 ORDER BY name"
    )))
    .bind(workgroup_id)
    .fetch_all(db.pool())
    .await?)
}

/// An endpoint to record, at generation 1.
pub struct EndpointInsert<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its work group.
    pub workgroup_id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Open to anyone.
    pub public: bool,
    /// The digests of its two keys.
    pub key_digests: (&'a str, &'a str),
    /// Its settings column.
    pub settings: &'a str,
    /// When, in ms since the epoch.
    pub created_at: i64,
}

/// Records an endpoint; a name any endpoint has is a conflict naming it.
pub async fn insert(db: &Db, new: &EndpointInsert<'_>) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO endpoints (id, workgroup_id, name, public, primary_key_digest, secondary_key_digest, \
         settings, generation, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
    )
    .bind(new.id)
    .bind(new.workgroup_id)
    .bind(new.name)
    .bind(i64::from(new.public))
    .bind(new.key_digests.0)
    .bind(new.key_digests.1)
    .bind(new.settings)
    .bind(new.created_at)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("endpoint", new.name))?;
    Ok(())
}

/// Deletes a work group's endpoint `name` with its events; false when it has none of that name.
pub async fn delete(db: &Db, workgroup_id: &str, name: &str) -> Result<bool, ControlError> {
    let done = sqlx::query("DELETE FROM endpoints WHERE workgroup_id = $1 AND name = $2")
        .bind(workgroup_id)
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Writes an endpoint's settings (and its public flag, when given) as a new generation, provided
/// nobody changed it since `generation` was read: optimistic concurrency, where `false` means
/// somebody did and the caller reads again or gives up.
pub async fn store_settings(
    db: &Db,
    (id, generation): (&str, i64),
    settings: &EndpointSettings,
    public: Option<bool>,
) -> Result<bool, ControlError> {
    let sql = if public.is_some() {
        "UPDATE endpoints SET settings = $1, updated_at = $2, public = $3, \
         generation = generation + 1 WHERE id = $4 AND generation = $5"
    } else {
        "UPDATE endpoints SET settings = $1, updated_at = $2, \
         generation = generation + 1 WHERE id = $3 AND generation = $4"
    };
    let mut query = sqlx::query(sql).bind(settings.to_column()?).bind(now_ms());
    if let Some(public) = public {
        query = query.bind(i64::from(public));
    }
    let done = query.bind(id).bind(generation).execute(db.pool()).await?;
    Ok(done.rows_affected() == 1)
}

/// Writes an endpoint's settings in the same generation (what its runtimes watch changed, not
/// how they route), provided it is still at `generation`.
pub async fn store_watch(
    db: &Db,
    (id, generation): (&str, i64),
    settings: &EndpointSettings,
) -> Result<(), ControlError> {
    sqlx::query("UPDATE endpoints SET settings = $1 WHERE id = $2 AND generation = $3")
        .bind(settings.to_column()?)
        .bind(id)
        .bind(generation)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Records an event of an endpoint.
pub async fn event(
    db: &Db,
    endpoint_id: &str,
    kind: &str,
    message: &str,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO endpoint_events (id, endpoint_id, kind, message, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(endpoint_id)
    .bind(kind)
    .bind(message)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// An endpoint's event.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    /// Its kind.
    pub kind: String,
    /// What happened.
    pub message: String,
    /// When, in ms since the epoch.
    pub created_at: i64,
}

/// An endpoint's latest `limit` events, newest first.
pub async fn events(db: &Db, endpoint_id: &str, limit: i64) -> Result<Vec<EventRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT kind, message, created_at FROM endpoint_events WHERE endpoint_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// The names of a work group's deployments.
pub async fn workgroup_deployments(
    db: &Db,
    workgroup_id: &str,
) -> Result<Vec<String>, ControlError> {
    Ok(
        sqlx::query_scalar("SELECT name FROM deployments WHERE workgroup_id = $1")
            .bind(workgroup_id)
            .fetch_all(db.pool())
            .await?,
    )
}

/// A deployment as an endpoint shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct DeploymentState {
    /// Its name.
    pub name: String,
    /// Its image's name.
    pub image: String,
    /// The status last reported.
    pub status: String,
    /// Why it failed, or empty.
    pub reason: String,
    /// Its generation.
    pub generation: i64,
    /// The generation the status is about.
    pub status_generation: i64,
}

/// The state of every deployment of a work group.
pub async fn deployment_states(
    db: &Db,
    workgroup_id: &str,
) -> Result<Vec<DeploymentState>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT d.name, i.name AS image, d.status, d.reason, d.generation, d.status_generation \
         FROM deployments d JOIN images i ON i.id = d.image_id WHERE d.workgroup_id = $1",
    )
    .bind(workgroup_id)
    .fetch_all(db.pool())
    .await?)
}

/// What names prediction URLs: deployments and endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// Deployments.
    Deployments,
    /// Endpoints.
    Endpoints,
}

/// Whether a deployment (or an endpoint) of any work group is called `name`.
pub async fn name_taken(db: &Db, among: Named, name: &str) -> Result<bool, ControlError> {
    let sql = match among {
        Named::Deployments => "SELECT name FROM deployments WHERE name = $1",
        Named::Endpoints => "SELECT name FROM endpoints WHERE name = $1",
    };
    let taken: Option<String> = sqlx::query_scalar(sql)
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    Ok(taken.is_some())
}

/// An endpoint as runtimes route it.
#[derive(Debug, sqlx::FromRow)]
pub struct DesiredRow {
    /// Its name.
    pub name: String,
    /// Its generation.
    pub generation: i64,
    /// 1 when open to anyone.
    pub public: i64,
    /// Its primary key's digest.
    pub primary_key_digest: String,
    /// Its secondary key's digest.
    pub secondary_key_digest: String,
    /// Its settings column.
    pub settings: String,
}

/// Every endpoint, as runtimes route it, by name.
pub async fn desired(db: &Db) -> Result<Vec<DesiredRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT name, generation, public, primary_key_digest, secondary_key_digest, settings \
         FROM endpoints ORDER BY name",
    )
    .fetch_all(db.pool())
    .await?)
}

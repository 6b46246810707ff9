//! Work groups and their members as stored.

use crate::ControlError;
use crate::db::{Db, Tx};

pub use super::teams::MemberRow;

/// A work group as listed for a user: with the user's role, when they have one.
#[derive(Debug, sqlx::FromRow)]
pub struct WorkgroupRow {
    /// The work group's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Created, in ms since the epoch.
    pub created_at: i64,
    /// The user's stored role; none when the user sees it as a team admin.
    pub role: Option<String>,
}

/// Adds a work group to team `team_id`; a name the team already has is a conflict naming it.
pub async fn insert(
    db: &Db,
    id: &str,
    team_id: &str,
    name: &str,
    description: &str,
    created_at: i64,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO workgroups (id, team_id, name, description, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(team_id)
    .bind(name)
    .bind(description)
    .bind(created_at)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("work group", name))?;
    Ok(())
}

/// Up to `fetch` work groups of team `team_id` named after `after` that `user_id` has a role
/// in (every one when `everything`), in name order.
pub async fn list_for(
    db: &Db,
    team_id: &str,
    user_id: &str,
    everything: bool,
    after: &str,
    fetch: i64,
) -> Result<Vec<WorkgroupRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT w.name, w.description, w.created_at, m.role FROM workgroups w \
         LEFT JOIN workgroup_members m ON m.workgroup_id = w.id AND m.user_id = $2 \
         WHERE w.team_id = $1 AND (m.role IS NOT NULL OR $3 = 1) AND w.name > $4 \
         ORDER BY w.name LIMIT $5",
    )
    .bind(team_id)
    .bind(user_id)
    .bind(i64::from(everything))
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The description and creation time of the work group `id`.
pub async fn details(db: &Db, id: &str) -> Result<(String, i64), ControlError> {
    Ok(
        sqlx::query_as("SELECT description, created_at FROM workgroups WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await?,
    )
}

/// How many deployments the work group `id` has.
pub async fn deployments(db: &Db, id: &str) -> Result<i64, ControlError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM deployments WHERE workgroup_id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await?,
    )
}

/// The ids of the models of the work group `id` (their files are in the artifact store).
pub async fn models(db: &Db, id: &str) -> Result<Vec<String>, ControlError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM models WHERE workgroup_id = $1")
            .bind(id)
            .fetch_all(db.pool())
            .await?,
    )
}

/// Deletes the work group `id` with everything in it.
pub async fn delete(db: &Db, id: &str) -> Result<(), ControlError> {
    sqlx::query("DELETE FROM workgroups WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Up to `fetch` members of the work group `id` named after `after`, in name order.
pub async fn members(
    db: &Db,
    id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<MemberRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT u.name, m.role FROM workgroup_members m JOIN users u ON u.id = m.user_id \
         WHERE m.workgroup_id = $1 AND u.name > $2 ORDER BY u.name LIMIT $3",
    )
    .bind(id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The stored role of `user_id` in the work group `id`, if they are a member.
pub async fn role_of(tx: &mut Tx, id: &str, user_id: &str) -> Result<Option<String>, ControlError> {
    Ok(sqlx::query_scalar(
        "SELECT role FROM workgroup_members WHERE workgroup_id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Sets the role of `user_id` in the work group `id`: adds them when `member` is false.
pub async fn set_role(
    tx: &mut Tx,
    id: &str,
    user_id: &str,
    role: &str,
    member: bool,
) -> Result<(), ControlError> {
    if member {
        sqlx::query(
            "UPDATE workgroup_members SET role = $3 WHERE workgroup_id = $1 AND user_id = $2",
        )
    } else {
        sqlx::query(
            "INSERT INTO workgroup_members (workgroup_id, user_id, role) VALUES ($1, $2, $3)",
        )
    }
    .bind(id)
    .bind(user_id)
    .bind(role)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes `user_id` from the work group `id`; false when they were not a member.
pub async fn remove_member(db: &Db, id: &str, user_id: &str) -> Result<bool, ControlError> {
    let done =
        sqlx::query("DELETE FROM workgroup_members WHERE workgroup_id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(db.pool())
            .await?;
    Ok(done.rows_affected() > 0)
}

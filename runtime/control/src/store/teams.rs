//! Teams and their members as stored. Roles are stored in their text form
//! ([`kiln_api::manage::TeamRole::as_str`]).

use crate::ControlError;
use crate::db::{Db, Tx};

/// A team as listed for a user: with the user's role, when they have one.
#[derive(Debug, sqlx::FromRow)]
pub struct TeamRow {
    /// The team's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Created, in ms since the epoch.
    pub created_at: i64,
    /// The user's stored role; none for an administrator who is not a member.
    pub role: Option<String>,
}

/// A member of a team.
#[derive(Debug, sqlx::FromRow)]
pub struct MemberRow {
    /// The user's name.
    pub name: String,
    /// The stored role.
    pub role: String,
}

/// Adds a team with `owner` as its owner, in one transaction; a name already taken is a
/// conflict naming it.
pub async fn insert(
    db: &Db,
    id: &str,
    name: &str,
    description: &str,
    created_at: i64,
    owner: &str,
) -> Result<(), ControlError> {
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO teams (id, name, description, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(name)
        .bind(description)
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .map_err(ControlError::exists("team", name))?;
    sqlx::query("INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Up to `fetch` teams named after `after` that `user_id` is a member of (every team for an
/// administrator), in name order.
pub async fn list_for(
    db: &Db,
    user_id: &str,
    admin: bool,
    after: &str,
    fetch: i64,
) -> Result<Vec<TeamRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT t.name, t.description, t.created_at, m.role FROM teams t \
         LEFT JOIN team_members m ON m.team_id = t.id AND m.user_id = $1 \
         WHERE (m.role IS NOT NULL OR $2 = 1) AND t.name > $3 ORDER BY t.name LIMIT $4",
    )
    .bind(user_id)
    .bind(i64::from(admin))
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The description and creation time of the team `id`.
pub async fn details(db: &Db, id: &str) -> Result<(String, i64), ControlError> {
    Ok(
        sqlx::query_as("SELECT description, created_at FROM teams WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await?,
    )
}

/// How many deployments the work groups of team `id` have.
pub async fn deployments(db: &Db, id: &str) -> Result<i64, ControlError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM deployments d JOIN workgroups w ON w.id = d.workgroup_id \
         WHERE w.team_id = $1",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await?)
}

/// Deletes the team `id`, with its work groups and everything in them.
pub async fn delete(db: &Db, id: &str) -> Result<(), ControlError> {
    sqlx::query("DELETE FROM teams WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Up to `fetch` members of team `id` named after `after`, in name order.
pub async fn members(
    db: &Db,
    id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<MemberRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT u.name, m.role FROM team_members m JOIN users u ON u.id = m.user_id \
         WHERE m.team_id = $1 AND u.name > $2 ORDER BY u.name LIMIT $3",
    )
    .bind(id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The stored role of `user_id` in team `id`, if they are a member.
pub async fn role_of(tx: &mut Tx, id: &str, user_id: &str) -> Result<Option<String>, ControlError> {
    Ok(
        sqlx::query_scalar("SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Sets the role of `user_id` in team `id`: adds them when `member` is false.
pub async fn set_role(
    tx: &mut Tx,
    id: &str,
    user_id: &str,
    role: &str,
    member: bool,
) -> Result<(), ControlError> {
    if member {
        sqlx::query("UPDATE team_members SET role = $3 WHERE team_id = $1 AND user_id = $2")
    } else {
        sqlx::query("INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, $3)")
    }
    .bind(id)
    .bind(user_id)
    .bind(role)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes `user_id` from team `id` and from every work group of the team.
pub async fn remove_member(tx: &mut Tx, id: &str, user_id: &str) -> Result<(), ControlError> {
    sqlx::query(
        "DELETE FROM workgroup_members WHERE user_id = $2 AND workgroup_id IN \
         (SELECT id FROM workgroups WHERE team_id = $1)",
    )
    .bind(id)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How many owners team `id` has.
pub async fn owners(tx: &mut Tx, id: &str) -> Result<i64, ControlError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM team_members WHERE team_id = $1 AND role = 'owner'",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?)
}

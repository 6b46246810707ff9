//! Teams, the top-level tenant, and their members.

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::auth::TeamRole;
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// A new team.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /api/v1/teams`: the caller becomes its owner.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewTeam>,
) -> Reply {
    check_name("team", &body.name)?;
    let user = &scope.principal()?.user_id;
    let id = new_id();
    let created = now_ms();
    let mut tx = control.db().begin().await?;
    sqlx::query("INSERT INTO teams (id, name, description, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(&body.name)
        .bind(&body.description)
        .bind(created)
        .execute(&mut *tx)
        .await
        .map_err(ControlError::exists("team", &body.name))?;
    sqlx::query("INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(&id)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": body.name,
            "description": body.description,
            "role": "owner",
            "created": time(created),
        })),
    ))
}

/// `GET /api/v1/teams`: the teams the caller belongs to (all of them for administrators).
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let p = scope.principal()?;
    let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT t.name, t.description, t.created_at, m.role FROM teams t \
         LEFT JOIN team_members m ON m.team_id = t.id AND m.user_id = $1 \
         WHERE (m.role IS NOT NULL OR $2 = 1) AND t.name > $3 ORDER BY t.name LIMIT $4",
    )
    .bind(&p.user_id)
    .bind(i64::from(p.admin))
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(name, description, created, role)| {
            json!({
                "name": name,
                "description": description,
                "role": role.unwrap_or_else(|| "owner".into()),
                "created": time(created),
            })
        })
        .collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `GET /api/v1/teams/{team}`.
pub async fn get(State(control): State<ControlPlane>, Extension(scope): Extension<Scope>) -> Reply {
    let team = scope.team()?;
    let (description, created): (String, i64) =
        sqlx::query_as("SELECT description, created_at FROM teams WHERE id = $1")
            .bind(&team.id)
            .fetch_one(control.db().pool())
            .await?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "name": team.name,
            "description": description,
            "role": team.role,
            "created": time(created),
        })),
    ))
}

/// `DELETE /api/v1/teams/{team}`: with its work groups and everything in them.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
) -> Reply {
    let team = scope.team()?;
    let deployments: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM deployments d JOIN workgroups w ON w.id = d.workgroup_id WHERE w.team_id = $1",
    )
    .bind(&team.id)
    .fetch_one(control.db().pool())
    .await?;
    if deployments > 0 {
        return Err(ControlError::Conflict(format!(
            "team '{}' still has {deployments} deployment(s): delete them first",
            team.name
        )));
    }
    sqlx::query("DELETE FROM teams WHERE id = $1")
        .bind(&team.id)
        .execute(control.db().pool())
        .await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "name": team.name, "deleted": true })),
    ))
}

/// `GET /api/v1/teams/{team}/members`.
pub async fn members(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let team = scope.team()?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.name, m.role FROM team_members m JOIN users u ON u.id = m.user_id \
         WHERE m.team_id = $1 AND u.name > $2 ORDER BY u.name LIMIT $3",
    )
    .bind(&team.id)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(user, role)| json!({ "user": user, "role": role }))
        .collect();
    Ok((StatusCode::OK, Json(page.respond(items, "user"))))
}

/// A member's role.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    role: TeamRole,
}

/// `PUT /api/v1/teams/{team}/members/{user}`: adds a member or changes a role. Only owners
/// make owners.
pub async fn put_member(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<Membership>,
) -> Reply {
    let team = scope.team()?;
    if body.role == TeamRole::Owner && team.role < TeamRole::Owner {
        return Err(ControlError::Forbidden(
            "only team owners may make owners".into(),
        ));
    }
    let user_id = user_id(&control, &user).await?;
    let mut tx = control.db().begin().await?;
    let current: Option<String> =
        sqlx::query_scalar("SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2")
            .bind(&team.id)
            .bind(&user_id)
            .fetch_optional(&mut *tx)
            .await?;
    if current.as_deref() == Some("owner") && team.role < TeamRole::Owner {
        return Err(ControlError::Forbidden(
            "only team owners may change an owner".into(),
        ));
    }
    if current.is_some() {
        sqlx::query("UPDATE team_members SET role = $3 WHERE team_id = $1 AND user_id = $2")
    } else {
        sqlx::query("INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, $3)")
    }
    .bind(&team.id)
    .bind(&user_id)
    .bind(body.role.as_str())
    .execute(&mut *tx)
    .await?;
    if current.as_deref() == Some("owner") && body.role != TeamRole::Owner {
        ensure_an_owner(&mut tx, &team.id).await?;
    }
    tx.commit().await?;
    Ok((
        if current.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(json!({ "user": user, "role": body.role })),
    ))
}

/// `DELETE /api/v1/teams/{team}/members/{user}`: also from every work group of the team.
pub async fn delete_member(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, user)): Path<(String, String)>,
) -> Reply {
    let team = scope.team()?;
    let user_id = user_id(&control, &user).await?;
    let mut tx = control.db().begin().await?;
    let current: Option<String> =
        sqlx::query_scalar("SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2")
            .bind(&team.id)
            .bind(&user_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(current) = current else {
        return Err(ControlError::NotFound(format!(
            "'{user}' is not a member of team '{}'",
            team.name
        )));
    };
    if current == "owner" && team.role < TeamRole::Owner {
        return Err(ControlError::Forbidden(
            "only team owners may remove an owner".into(),
        ));
    }
    sqlx::query(
        "DELETE FROM workgroup_members WHERE user_id = $2 AND workgroup_id IN \
         (SELECT id FROM workgroups WHERE team_id = $1)",
    )
    .bind(&team.id)
    .bind(&user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
        .bind(&team.id)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    ensure_an_owner(&mut tx, &team.id).await?;
    tx.commit().await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "user": user, "removed": true })),
    ))
}

async fn ensure_an_owner(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    team_id: &str,
) -> Result<(), ControlError> {
    let owners: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM team_members WHERE team_id = $1 AND role = 'owner'",
    )
    .bind(team_id)
    .fetch_one(&mut **tx)
    .await?;
    if owners == 0 {
        return Err(ControlError::Conflict(
            "a team keeps at least one owner".into(),
        ));
    }
    Ok(())
}

/// The id of a user by name (404 when there is none).
pub async fn user_id(control: &ControlPlane, name: &str) -> Result<String, ControlError> {
    sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(control.db().pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("user '{name}' not found")))
}

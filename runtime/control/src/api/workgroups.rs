//! Work groups, the unit of sharing and the security boundary, and their members.

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::auth::{TeamRole, WorkgroupRole};
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// A new work group.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkgroup {
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /api/v1/teams/{team}/workgroups`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewWorkgroup>,
) -> Reply {
    check_name("work group", &body.name)?;
    let team = scope.team()?;
    let created = now_ms();
    sqlx::query(
        "INSERT INTO workgroups (id, team_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(&team.id)
    .bind(&body.name)
    .bind(&body.description)
    .bind(created)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("work group", &body.name))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "team": team.name,
            "name": body.name,
            "description": body.description,
            "role": "owner",
            "created": time(created),
        })),
    ))
}

/// `GET /api/v1/teams/{team}/workgroups`: those the caller has a role in (all of them for
/// team admins and owners).
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let team = scope.team()?;
    let everything = team.role >= TeamRole::Admin;
    let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT w.name, w.description, w.created_at, m.role FROM workgroups w \
         LEFT JOIN workgroup_members m ON m.workgroup_id = w.id AND m.user_id = $2 \
         WHERE w.team_id = $1 AND (m.role IS NOT NULL OR $3 = 1) AND w.name > $4 \
         ORDER BY w.name LIMIT $5",
    )
    .bind(&team.id)
    .bind(&scope.principal()?.user_id)
    .bind(i64::from(everything))
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(name, description, created, role)| {
            json!({
                "team": team.name,
                "name": name,
                "description": description,
                "role": if everything { "owner".to_string() } else { role.unwrap_or_default() },
                "created": time(created),
            })
        })
        .collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `GET /api/v1/teams/{team}/workgroups/{workgroup}`.
pub async fn get(State(control): State<ControlPlane>, Extension(scope): Extension<Scope>) -> Reply {
    let (team, wg) = (scope.team()?, scope.workgroup()?);
    let (description, created): (String, i64) =
        sqlx::query_as("SELECT description, created_at FROM workgroups WHERE id = $1")
            .bind(&wg.id)
            .fetch_one(control.db().pool())
            .await?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "team": team.name,
            "name": wg.name,
            "description": description,
            "role": wg.role,
            "created": time(created),
        })),
    ))
}

/// `DELETE /api/v1/teams/{team}/workgroups/{workgroup}`: refused while deployments remain.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
) -> Reply {
    let wg = scope.workgroup()?;
    let deployments: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM deployments WHERE workgroup_id = $1")
            .bind(&wg.id)
            .fetch_one(control.db().pool())
            .await?;
    if deployments > 0 {
        return Err(ControlError::Conflict(format!(
            "work group '{}' still has {deployments} deployment(s): delete them first",
            wg.name
        )));
    }
    let models: Vec<String> = sqlx::query_scalar("SELECT id FROM models WHERE workgroup_id = $1")
        .bind(&wg.id)
        .fetch_all(control.db().pool())
        .await?;
    sqlx::query("DELETE FROM workgroups WHERE id = $1")
        .bind(&wg.id)
        .execute(control.db().pool())
        .await?;
    for model in models {
        control.artifacts().delete_area(&["models", &model]).await;
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "name": wg.name, "deleted": true })),
    ))
}

/// `GET .../workgroups/{workgroup}/members`.
pub async fn members(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let wg = scope.workgroup()?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.name, m.role FROM workgroup_members m JOIN users u ON u.id = m.user_id \
         WHERE m.workgroup_id = $1 AND u.name > $2 ORDER BY u.name LIMIT $3",
    )
    .bind(&wg.id)
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

/// A member's role in a work group.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    role: WorkgroupRole,
}

/// `PUT .../workgroups/{workgroup}/members/{user}`: the user must be a member of the team.
pub async fn put_member(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, user)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Membership>,
) -> Reply {
    let (team, wg) = (scope.team()?, scope.workgroup()?);
    let user_id = crate::store::users::user_id(control.db(), &user).await?;
    let in_team: Option<String> =
        sqlx::query_scalar("SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2")
            .bind(&team.id)
            .bind(&user_id)
            .fetch_optional(control.db().pool())
            .await?;
    if in_team.is_none() {
        return Err(ControlError::Invalid(format!(
            "'{user}' is not a member of team '{}': add them to the team first",
            team.name
        )));
    }
    let mut tx = control.db().begin().await?;
    let existed: Option<String> = sqlx::query_scalar(
        "SELECT role FROM workgroup_members WHERE workgroup_id = $1 AND user_id = $2",
    )
    .bind(&wg.id)
    .bind(&user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if existed.is_some() {
        sqlx::query(
            "UPDATE workgroup_members SET role = $3 WHERE workgroup_id = $1 AND user_id = $2",
        )
    } else {
        sqlx::query(
            "INSERT INTO workgroup_members (workgroup_id, user_id, role) VALUES ($1, $2, $3)",
        )
    }
    .bind(&wg.id)
    .bind(&user_id)
    .bind(body.role.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((
        if existed.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(json!({ "user": user, "role": body.role })),
    ))
}

/// `DELETE .../workgroups/{workgroup}/members/{user}`.
pub async fn delete_member(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, user)): Path<(String, String, String)>,
) -> Reply {
    let wg = scope.workgroup()?;
    let user_id = crate::store::users::user_id(control.db(), &user).await?;
    let done =
        sqlx::query("DELETE FROM workgroup_members WHERE workgroup_id = $1 AND user_id = $2")
            .bind(&wg.id)
            .bind(&user_id)
            .execute(control.db().pool())
            .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!(
            "'{user}' is not a member of work group '{}'",
            wg.name
        )));
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "user": user, "removed": true })),
    ))
}

//! Teams, the top-level tenant, and their members.

use super::Query;
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::listings;
use crate::domain::teams as domain;
use crate::store::teams as store;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::teams::{NewTeam, Team, TeamMember, TeamMembership};
use kiln_api::manage::{Deleted, Removed};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `POST /api/v1/teams`: the caller becomes its owner.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewTeam>,
) -> Reply<Team> {
    let team = domain::create(control.db(), body, &scope.principal()?.user_id).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// `GET /api/v1/teams`: the teams the caller belongs to (all of them for administrators).
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Team>> {
    let teams = listings::teams(&control, scope.principal()?, &page).await?;
    Ok((StatusCode::OK, Json(teams)))
}

/// `GET /api/v1/teams/{team}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
) -> Reply<Team> {
    Ok((
        StatusCode::OK,
        Json(domain::show(control.db(), scope.team()?).await?),
    ))
}

/// `DELETE /api/v1/teams/{team}`: with its work groups and everything in them.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
) -> Reply<Deleted> {
    let team = scope.team()?;
    domain::delete(control.db(), team).await?;
    Ok((
        StatusCode::OK,
        Json(Deleted {
            name: team.name.clone(),
            deleted: true,
        }),
    ))
}

/// `GET /api/v1/teams/{team}/members`.
pub async fn members(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<TeamMember>> {
    let team = scope.team()?;
    let rows = store::members(control.db(), &team.id, page.after(), page.fetch()).await?;
    let members = rows
        .into_iter()
        .map(domain::member)
        .collect::<Result<_, _>>()?;
    Ok((
        StatusCode::OK,
        Json(page.page(members, |m: &TeamMember| &m.user)),
    ))
}

/// `PUT /api/v1/teams/{team}/members/{user}`: adds a member (201) or changes a role. Only
/// owners make owners.
pub async fn put_member(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<TeamMembership>,
) -> Reply<TeamMember> {
    let added = domain::put_member(control.db(), scope.team()?, &user, body.role).await?;
    Ok((
        if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(TeamMember {
            user,
            role: body.role,
        }),
    ))
}

/// `DELETE /api/v1/teams/{team}/members/{user}`: also from every work group of the team.
pub async fn delete_member(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, user)): Path<(String, String)>,
) -> Reply<Removed> {
    domain::remove_member(control.db(), scope.team()?, &user).await?;
    Ok((
        StatusCode::OK,
        Json(Removed {
            user,
            removed: true,
        }),
    ))
}

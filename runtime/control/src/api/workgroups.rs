//! Work groups, the unit of sharing and the security boundary, and their members.

use super::Query;
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::listings;
use crate::domain::workgroups as domain;
use crate::store::workgroups as store;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::workgroups::{NewWorkgroup, Workgroup, WorkgroupMember, WorkgroupMembership};
use kiln_api::manage::{Deleted, Removed};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `POST /api/v1/teams/{team}/workgroups`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewWorkgroup>,
) -> Reply<Workgroup> {
    let workgroup = domain::create(control.db(), scope.team()?, body).await?;
    Ok((StatusCode::CREATED, Json(workgroup)))
}

/// `GET /api/v1/teams/{team}/workgroups`: those the caller has a role in (all of them for
/// team admins and owners).
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Workgroup>> {
    let caller = scope.principal()?;
    let workgroups = listings::workgroups(&control, scope.team()?, caller, &page).await?;
    Ok((StatusCode::OK, Json(workgroups)))
}

/// `GET /api/v1/teams/{team}/workgroups/{workgroup}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
) -> Reply<Workgroup> {
    let workgroup = domain::show(control.db(), scope.team()?, scope.workgroup()?).await?;
    Ok((StatusCode::OK, Json(workgroup)))
}

/// `DELETE /api/v1/teams/{team}/workgroups/{workgroup}`: refused while deployments remain.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
) -> Reply<Deleted> {
    let wg = scope.workgroup()?;
    for model in domain::delete(control.db(), wg).await? {
        control.artifacts().delete_area(&["models", &model]).await;
    }
    Ok((
        StatusCode::OK,
        Json(Deleted {
            name: wg.name.clone(),
            deleted: true,
        }),
    ))
}

/// `GET .../workgroups/{workgroup}/members`.
pub async fn members(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<WorkgroupMember>> {
    let wg = scope.workgroup()?;
    let rows = store::members(control.db(), &wg.id, page.after(), page.fetch()).await?;
    let members = rows
        .into_iter()
        .map(domain::member)
        .collect::<Result<_, _>>()?;
    Ok((
        StatusCode::OK,
        Json(page.page(members, |m: &WorkgroupMember| &m.user)),
    ))
}

/// `PUT .../workgroups/{workgroup}/members/{user}`: adds a member (201) or changes a role; the
/// user must be a member of the team.
pub async fn put_member(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, user)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<WorkgroupMembership>,
) -> Reply<WorkgroupMember> {
    let (team, wg) = (scope.team()?, scope.workgroup()?);
    let added = domain::put_member(control.db(), team, wg, &user, body.role).await?;
    Ok((
        if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(WorkgroupMember {
            user,
            role: body.role,
        }),
    ))
}

/// `DELETE .../workgroups/{workgroup}/members/{user}`.
pub async fn delete_member(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, user)): Path<(String, String, String)>,
) -> Reply<Removed> {
    domain::remove_member(control.db(), scope.workgroup()?, &user).await?;
    Ok((
        StatusCode::OK,
        Json(Removed {
            user,
            removed: true,
        }),
    ))
}

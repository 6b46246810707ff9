//! Authorization, in one place: every route declares the [`Access`] it needs in the route table,
//! and [`authorize`] enforces it before the handler runs, resolving the team and work group named
//! in the path. A work group is the security boundary: without a role in it (directly, or as an
//! admin or owner of its team, or as an installation administrator) it does not exist for you
//! (404); with too small a role you may see it but not change it (403).

use crate::auth::{Principal, TeamRole, WorkgroupRole, authenticate};
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing: health and the API document.
    Open,
    /// Any valid token.
    User,
    /// An installation administrator.
    Admin,
    /// A runtime node (an administrator's token).
    Runtime,
    /// At least this role in the `{team}` of the path.
    Team(TeamRole),
    /// At least this role in the `{workgroup}` of the path.
    Workgroup(WorkgroupRole),
}

impl Access {
    /// The form used in the API document (`x-kiln-access`).
    pub fn label(self) -> String {
        match self {
            Access::Open => "open".into(),
            Access::User => "user".into(),
            Access::Admin => "admin".into(),
            Access::Runtime => "runtime".into(),
            Access::Team(role) => format!("team:{}", role.as_str()),
            Access::Workgroup(role) => format!("workgroup:{}", role.as_str()),
        }
    }
}

/// A team as the caller sees it.
#[derive(Clone, Debug)]
pub struct TeamScope {
    /// Team id.
    pub id: String,
    /// Team name.
    pub name: String,
    /// The caller's effective role (administrators are owners).
    pub role: TeamRole,
}

/// A work group as the caller sees it.
#[derive(Clone, Debug)]
pub struct WorkgroupScope {
    /// Work group id.
    pub id: String,
    /// Work group name.
    pub name: String,
    /// The caller's effective role.
    pub role: WorkgroupRole,
}

/// What [`authorize`] established, for the handler.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The caller (absent on open routes).
    pub principal: Option<Principal>,
    /// The path's team, when it names one.
    pub team: Option<TeamScope>,
    /// The path's work group, when it names one.
    pub workgroup: Option<WorkgroupScope>,
}

impl Scope {
    /// The caller; routes other than open ones always have one.
    pub fn principal(&self) -> Result<&Principal, ControlError> {
        self.principal
            .as_ref()
            .ok_or_else(|| ControlError::Unauthorized("a token is required".into()))
    }
    /// The path's team.
    pub fn team(&self) -> Result<&TeamScope, ControlError> {
        self.team
            .as_ref()
            .ok_or_else(|| ControlError::Internal("route without a team scope".into()))
    }
    /// The path's work group.
    pub fn workgroup(&self) -> Result<&WorkgroupScope, ControlError> {
        self.workgroup
            .as_ref()
            .ok_or_else(|| ControlError::Internal("route without a work group scope".into()))
    }
}

/// The middleware of every route: authenticates, resolves the scope, checks the role.
pub async fn authorize(
    State((control, access)): State<(ControlPlane, Access)>,
    params: Option<Path<HashMap<String, String>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let params = params.map(|Path(p)| p).unwrap_or_default();
    let headers = request.headers().clone();
    match resolve(&control, access, &params, &headers).await {
        Ok(scope) => {
            request.extensions_mut().insert(scope);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

async fn resolve(
    control: &ControlPlane,
    access: Access,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Scope, ControlError> {
    if access == Access::Open {
        return Ok(Scope {
            principal: None,
            team: None,
            workgroup: None,
        });
    }
    let principal = authenticate(control.db(), headers).await?;
    scope(control, principal, access, params).await
}

/// The scope of a known principal for a route's access and path parameters: the checks of
/// [`authorize`] after authentication, for callers that authenticate otherwise (a web
/// session).
pub async fn scope(
    control: &ControlPlane,
    principal: Principal,
    access: Access,
    params: &HashMap<String, String>,
) -> Result<Scope, ControlError> {
    let mut scope = Scope {
        principal: None,
        team: None,
        workgroup: None,
    };
    if principal.only_workgroup.is_some() && !matches!(access, Access::Workgroup(_)) {
        return Err(ControlError::Forbidden(
            "a run's token acts only in its run's work group".into(),
        ));
    }
    if principal.runtime && !principal.admin && access != Access::Runtime {
        return Err(ControlError::Forbidden(
            "a runtime node's token reaches the runtime routes only".into(),
        ));
    }
    match access {
        Access::Open | Access::User => {}
        Access::Runtime if principal.runtime => {}
        Access::Admin | Access::Runtime => {
            if !principal.admin {
                return Err(ControlError::Forbidden(
                    "only installation administrators may do this".into(),
                ));
            }
            // An admin route on a work group (its quota) acts on that work group.
            if params.contains_key("workgroup") {
                let (team, workgroup) = workgroup_scope(control, &principal, params).await?;
                scope.team = Some(team);
                scope.workgroup = Some(workgroup);
            }
        }
        Access::Team(need) => {
            let team = team_scope(control, &principal, params).await?;
            if team.role < need {
                return Err(ControlError::Forbidden(format!(
                    "this needs the {} role in team '{}'; you are {}",
                    need.as_str(),
                    team.name,
                    team.role.as_str()
                )));
            }
            scope.team = Some(team);
        }
        Access::Workgroup(need) => {
            let (team, mut workgroup) = workgroup_scope(control, &principal, params).await?;
            if let Some(only) = &principal.only_workgroup {
                if *only != workgroup.id {
                    return Err(ControlError::NotFound(format!(
                        "work group '{}' not found",
                        workgroup.name
                    )));
                }
                workgroup.role = workgroup.role.min(WorkgroupRole::Contributor);
            }
            if workgroup.role < need {
                return Err(ControlError::Forbidden(format!(
                    "this needs the {} role in work group '{}'; you are {}",
                    need.as_str(),
                    workgroup.name,
                    workgroup.role.as_str()
                )));
            }
            scope.team = Some(team);
            scope.workgroup = Some(workgroup);
        }
    }
    scope.principal = Some(principal);
    Ok(scope)
}

async fn team_scope(
    control: &ControlPlane,
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<TeamScope, ControlError> {
    let name = params
        .get("team")
        .ok_or_else(|| ControlError::Internal("team route without {team}".into()))?;
    let not_found = || ControlError::NotFound(format!("team '{name}' not found"));
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT t.id, m.role FROM teams t LEFT JOIN team_members m \
         ON m.team_id = t.id AND m.user_id = $2 WHERE t.name = $1",
    )
    .bind(name)
    .bind(&principal.user_id)
    .fetch_optional(control.db().pool())
    .await?;
    let (id, role) = row.ok_or_else(not_found)?;
    let role = match (principal.admin, role.as_deref().and_then(TeamRole::parse)) {
        (true, _) => TeamRole::Owner,
        (false, Some(role)) => role,
        (false, None) => return Err(not_found()),
    };
    Ok(TeamScope {
        id,
        name: name.clone(),
        role,
    })
}

/// The path's team and work group as the caller sees them, in one query.
async fn workgroup_scope(
    control: &ControlPlane,
    principal: &Principal,
    params: &HashMap<String, String>,
) -> Result<(TeamScope, WorkgroupScope), ControlError> {
    let team_name = params
        .get("team")
        .ok_or_else(|| ControlError::Internal("team route without {team}".into()))?;
    let name = params
        .get("workgroup")
        .ok_or_else(|| ControlError::Internal("work group route without {workgroup}".into()))?;
    let team_not_found = || ControlError::NotFound(format!("team '{team_name}' not found"));
    let not_found = || ControlError::NotFound(format!("work group '{name}' not found"));
    type Row = (String, Option<String>, Option<String>, Option<String>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT t.id, tm.role, w.id, wm.role FROM teams t \
         LEFT JOIN team_members tm ON tm.team_id = t.id AND tm.user_id = $3 \
         LEFT JOIN workgroups w ON w.team_id = t.id AND w.name = $2 \
         LEFT JOIN workgroup_members wm ON wm.workgroup_id = w.id AND wm.user_id = $3 \
         WHERE t.name = $1",
    )
    .bind(team_name)
    .bind(name)
    .bind(&principal.user_id)
    .fetch_optional(control.db().pool())
    .await?;
    let (team_id, team_role, workgroup_id, workgroup_role) = row.ok_or_else(team_not_found)?;
    let team_role = match (
        principal.admin,
        team_role.as_deref().and_then(TeamRole::parse),
    ) {
        (true, _) => TeamRole::Owner,
        (false, Some(role)) => role,
        (false, None) => return Err(team_not_found()),
    };
    let team = TeamScope {
        id: team_id,
        name: team_name.clone(),
        role: team_role,
    };
    let id = workgroup_id.ok_or_else(not_found)?;
    let role = if team.role >= TeamRole::Admin {
        WorkgroupRole::Owner
    } else {
        workgroup_role
            .as_deref()
            .and_then(WorkgroupRole::parse)
            .ok_or_else(not_found)?
    };
    Ok((
        team,
        WorkgroupScope {
            id,
            name: name.clone(),
            role,
        },
    ))
}

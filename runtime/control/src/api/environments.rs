//! Execution targets (`local`, `docker`, `spark`, each with its own settings) and environments:
//! a named bundle of an OCI registry with its credentials (the password sealed at rest and never
//! returned), an artifact store, execution targets and runtime nodes.

use super::Query;
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::targets as domain;
use crate::runs::targets::{self, check_reach};
use crate::store::targets as store;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::Deleted;
use kiln_api::manage::targets::{Environment, NewEnvironment, NewTarget, Target, TargetCheck};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

fn deleted(name: String) -> Reply<Deleted> {
    Ok((
        StatusCode::OK,
        Json(Deleted {
            name,
            deleted: true,
        }),
    ))
}

/// `POST .../targets`.
pub async fn create_target(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewTarget>,
) -> Reply<Target> {
    let created = domain::create_target(&control, scope.workgroup()?, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET .../targets`.
pub async fn list_targets(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Target>> {
    let wg = scope.workgroup()?;
    let rows = store::list_targets(control.db(), &wg.id, page.after(), page.fetch()).await?;
    let listed = rows.into_iter().map(domain::target).collect();
    Ok((
        StatusCode::OK,
        Json(page.page(listed, |t: &Target| &t.name)),
    ))
}

/// `POST .../targets/{target}/test`: asks the target's executor whether it can run anything.
/// A built-in target (`local`, `docker`, `spark`) can be tested without being added.
pub async fn test_target(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, target)): Path<(String, String, String)>,
) -> Reply<TargetCheck> {
    let target = targets::resolve_target(&control, &scope.workgroup()?.id, &target)
        .await
        .map_err(|e| match e {
            ControlError::Invalid(m) => ControlError::NotFound(m),
            other => other,
        })?;
    let executor = targets::executor_for(&control, &target)?;
    // A target made before the installation's limits changed is checked again: the test is no
    // port probe. The executor is handed the checked address.
    let config = check_reach(&control, &target.kind, &target.config).await?;
    let checked = executor
        .check(&kiln_executor::Target {
            config,
            ..target.clone()
        })
        .await;
    let (reachable, message) = match checked {
        Ok(message) => (true, message),
        Err(e) => (false, e.to_string()),
    };
    Ok((
        StatusCode::OK,
        Json(TargetCheck {
            name: target.name,
            kind: target.kind,
            reachable,
            message,
        }),
    ))
}

/// `GET .../targets/{target}`.
pub async fn get_target(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, target)): Path<(String, String, String)>,
) -> Reply<Target> {
    let row = store::find_target(control.db(), &scope.workgroup()?.id, &target)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("target '{target}' not found")))?;
    Ok((StatusCode::OK, Json(domain::target(row))))
}

/// `DELETE .../targets/{target}`.
pub async fn delete_target(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, target)): Path<(String, String, String)>,
) -> Reply<Deleted> {
    if !store::delete_target(control.db(), &scope.workgroup()?.id, &target).await? {
        return Err(ControlError::NotFound(format!(
            "target '{target}' not found"
        )));
    }
    deleted(target)
}

/// `POST .../environments`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewEnvironment>,
) -> Reply<Environment> {
    let created = domain::create_environment(&control, scope.workgroup()?, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET .../environments`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Environment>> {
    let wg = scope.workgroup()?;
    let rows = store::list_environments(control.db(), &wg.id, page.after(), page.fetch()).await?;
    let listed = rows.into_iter().map(domain::environment).collect();
    Ok((
        StatusCode::OK,
        Json(page.page(listed, |e: &Environment| &e.name)),
    ))
}

/// `GET .../environments/{environment}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, environment)): Path<(String, String, String)>,
) -> Reply<Environment> {
    let row = store::find_environment(control.db(), &scope.workgroup()?.id, &environment)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("environment '{environment}' not found")))?;
    Ok((StatusCode::OK, Json(domain::environment(row))))
}

/// `DELETE .../environments/{environment}`.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, environment)): Path<(String, String, String)>,
) -> Reply<Deleted> {
    if !store::delete_environment(control.db(), &scope.workgroup()?.id, &environment).await? {
        return Err(ControlError::NotFound(format!(
            "environment '{environment}' not found"
        )));
    }
    deleted(environment)
}

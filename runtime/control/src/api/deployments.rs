//! Deployments: an image served as a web service, with limits, keys and a status the runtime
//! reports. Names are unique in the installation: they are the `{model}` of prediction URLs.

use super::Query;
use super::keys::{KeyReply, rotate_key};
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::deployments as domain;
use crate::domain::listings;
use crate::store::deployments::{self as store, Keyed};
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::Deleted;
use kiln_api::manage::deployments::{
    Deployment, DeploymentCreated, DeploymentUpdate, NewDeployment, Regenerate,
};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `POST .../workgroups/{workgroup}/deployments`: returns its two keys, once.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewDeployment>,
) -> Reply<DeploymentCreated> {
    let created = domain::create(&control, scope.workgroup()?, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET .../deployments`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Deployment>> {
    let deployments = listings::deployments(&control, scope.workgroup()?, &page).await?;
    Ok((StatusCode::OK, Json(deployments)))
}

/// `GET .../deployments/{deployment}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
) -> Reply<Deployment> {
    let row = store::named(control.db(), &scope.workgroup()?.id, &deployment).await?;
    Ok((StatusCode::OK, Json(domain::deployment(&control, row)?)))
}

/// `DELETE .../deployments/{deployment}`: the runtime stops serving it.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
) -> Reply<Deleted> {
    domain::delete(&control, &scope.workgroup()?.id, &deployment).await?;
    let deleted = Deleted {
        name: deployment,
        deleted: true,
    };
    Ok((StatusCode::OK, Json(deleted)))
}

/// `PATCH .../deployments/{deployment}`: a new image (or new limits) loads next to the old
/// version, which serves until the new one passed its checks.
pub async fn update(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<DeploymentUpdate>,
) -> Reply<Deployment> {
    let changed = domain::update(&control, scope.workgroup()?, &deployment, body).await?;
    Ok((StatusCode::OK, Json(changed)))
}

/// `POST .../deployments/{deployment}/keys`: a new primary or secondary key (shown once); the
/// other keeps working, so clients can move over without a failed request.
pub async fn regenerate_key(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Regenerate>,
) -> KeyReply {
    rotate_key(&control, &scope, Keyed::Deployment, &deployment, body.key).await
}

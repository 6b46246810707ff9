//! Drift monitoring of deployments: the monitor a deployment uses and its retraining policy,
//! the drift report users read, and the deployment's events ([`crate::domain::monitoring`]
//! records what runtimes report and applies the retraining policy).

use super::JsonBody;
use super::Query;
use crate::access::Scope;
use crate::domain::monitoring as domain;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::Page;
use kiln_api::manage::monitoring::{
    DeploymentEvent, DriftReport, Monitored, MonitoringUpdate, WindowQuery,
};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `PUT .../deployments/{deployment}/monitoring`: the monitor component, its config, the window
/// and the retraining policy. Runtimes switch monitors without reloading the model.
pub async fn put(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<MonitoringUpdate>,
) -> Reply<Monitored> {
    let at = (
        scope.workgroup()?.id.as_str(),
        scope.principal()?.user_id.as_str(),
    );
    let monitored = domain::set(&control, at, &deployment, body).await?;
    Ok((StatusCode::OK, Json(monitored)))
}

/// `GET .../deployments/{deployment}/drift?window=latest|cumulative|N`.
pub async fn drift(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
    Query(query): Query<WindowQuery>,
) -> Reply<DriftReport> {
    let wg = &scope.workgroup()?.id;
    let report = domain::drift(&control, wg, &deployment, query.window.as_deref()).await?;
    Ok((StatusCode::OK, Json(report)))
}

/// `GET .../deployments/{deployment}/events`: newest first, at most 100.
pub async fn events(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
) -> Reply<Page<DeploymentEvent>> {
    let items = domain::events(&control, &scope.workgroup()?.id, &deployment).await?;
    Ok((StatusCode::OK, Json(Page { items, next: None })))
}

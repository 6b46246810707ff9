//! What runtime nodes ask the control plane: the desired deployments, and where they report
//! each deployment's status and drift. In `kiln up` the runtime calls [`ControlPlane::desired`]
//! and [`ControlPlane::report`] directly; remote nodes use these routes.

use super::JsonBody;
use crate::{ControlError, ControlPlane};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kiln_api::{Accepted, DesiredDeployment, DriftUpload, Page, StatusReport};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `GET /api/v1/runtime/deployments`.
pub async fn desired(State(control): State<ControlPlane>) -> Reply<Page<DesiredDeployment>> {
    let items = control.desired().await?;
    Ok((StatusCode::OK, Json(Page { items, next: None })))
}

/// `POST /api/v1/runtime/deployments/{deployment}/status`.
pub async fn report(
    State(control): State<ControlPlane>,
    Path(deployment): Path<String>,
    JsonBody(body): JsonBody<StatusReport>,
) -> Reply<Accepted> {
    control.report(&deployment, &body).await?;
    let accepted = Accepted {
        name: deployment,
        accepted: true,
    };
    Ok((StatusCode::OK, Json(accepted)))
}

/// `POST /api/v1/runtime/deployments/{deployment}/drift`.
pub async fn upload(
    State(control): State<ControlPlane>,
    Path(deployment): Path<String>,
    JsonBody(body): JsonBody<DriftUpload>,
) -> Reply<Accepted> {
    control.record_drift(&deployment, &body).await?;
    let accepted = Accepted {
        name: deployment,
        accepted: true,
    };
    Ok((StatusCode::OK, Json(accepted)))
}

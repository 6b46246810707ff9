//! The endpoints' side of the runtime contract: every endpoint as nodes route it, and a node's
//! finding that a rollout breached its policy, which moves the weight back.

use crate::api::JsonBody;
use crate::{ControlError, ControlPlane};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kiln_api::{DesiredEndpoint, Page, RollbackReport, RolledBack};

/// `GET /api/v1/runtime/endpoints`.
pub async fn desired(
    State(control): State<ControlPlane>,
) -> Result<(StatusCode, Json<Page<DesiredEndpoint>>), ControlError> {
    let items = control.desired_endpoints().await?;
    Ok((StatusCode::OK, Json(Page { items, next: None })))
}

/// `POST /api/v1/runtime/endpoints/{endpoint}/rollback`.
pub async fn rollback(
    State(control): State<ControlPlane>,
    Path(endpoint): Path<String>,
    JsonBody(body): JsonBody<RollbackReport>,
) -> Result<(StatusCode, Json<RolledBack>), ControlError> {
    let rolled_back = control.rollback(&endpoint, &body).await?;
    let answer = RolledBack {
        name: endpoint,
        rolled_back,
    };
    Ok((StatusCode::OK, Json(answer)))
}

//! Per work group quotas ([`crate::domain::quotas`]): read by the work group's members, set by
//! an installation admin.

use super::JsonBody;
use crate::access::Scope;
use crate::domain::quotas as domain;
use crate::{ControlError, ControlPlane};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::quotas::{Quota, QuotaChange};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `GET .../workgroups/{workgroup}/quota`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
) -> Reply<Quota> {
    let defaults = &control.settings().quota;
    let quota = domain::quota_of(control.db(), defaults, &scope.workgroup()?.id).await?;
    Ok((StatusCode::OK, Json(quota)))
}

/// `PUT .../workgroups/{workgroup}/quota`: an installation admin sets a work group's quota.
pub async fn put(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<QuotaChange>,
) -> Reply<Quota> {
    let defaults = &control.settings().quota;
    let quota = domain::change(control.db(), defaults, &scope.workgroup()?.id, &body).await?;
    Ok((StatusCode::OK, Json(quota)))
}

//! Endpoints: a stable prediction URL (`/v2/models/{endpoint}/infer` and the other protocols)
//! with its own keys, routing to deployments of its work group by integer weights that sum to
//! 100. `kiln-deployment: NAME` targets one of its deployments directly; up to 50% of requests
//! can be mirrored to one deployment, whose answers are discarded. An optional rollback policy
//! returns a rolled-out deployment's weight to 0 when its error rate or p99 breaches a threshold
//! ([`crate::domain::endpoints`] holds the rules).

use super::Query;
use super::keys::{KeyReply, rotate_key};
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::endpoints as domain;
use crate::domain::listings;
use crate::store::deployments::Keyed;
use crate::store::endpoints as store;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::Deleted;
use kiln_api::manage::deployments::Regenerate;
use kiln_api::manage::endpoints::{
    Endpoint, EndpointCreated, EndpointEvent, EndpointUpdate, NewEndpoint,
};

pub use runtime::{desired, rollback};

mod runtime;

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `POST .../workgroups/{workgroup}/endpoints`: returns its two keys, once.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewEndpoint>,
) -> Reply<EndpointCreated> {
    let created = domain::create(&control, &scope.workgroup()?.id, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET .../endpoints`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Endpoint>> {
    let endpoints = listings::endpoints(&control, scope.workgroup()?, &page).await?;
    Ok((StatusCode::OK, Json(endpoints)))
}

/// `GET .../endpoints/{endpoint}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
) -> Reply<Endpoint> {
    let wg = &scope.workgroup()?.id;
    let row = store::named(control.db(), wg, &endpoint).await?;
    Ok((
        StatusCode::OK,
        Json(domain::endpoint(&control, wg, row).await?),
    ))
}

/// `PATCH .../endpoints/{endpoint}`: weights, mirror, rollback policy, public flag. The change
/// is recorded as an event; runtimes apply it without dropping a request.
pub async fn update(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<EndpointUpdate>,
) -> Reply<Endpoint> {
    let changed = domain::update(&control, &scope.workgroup()?.id, &endpoint, body).await?;
    Ok((StatusCode::OK, Json(changed)))
}

/// `DELETE .../endpoints/{endpoint}`: its URL stops answering; its deployments stay.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
) -> Reply<Deleted> {
    domain::delete(&control, &scope.workgroup()?.id, &endpoint).await?;
    let deleted = Deleted {
        name: endpoint,
        deleted: true,
    };
    Ok((StatusCode::OK, Json(deleted)))
}

/// `POST .../endpoints/{endpoint}/keys`: a new primary or secondary key (shown once); the other
/// keeps working, so clients move over without a failed request.
pub async fn regenerate_key(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Regenerate>,
) -> KeyReply {
    rotate_key(&control, &scope, Keyed::Endpoint, &endpoint, body.key).await
}

/// `GET .../endpoints/{endpoint}/events`: newest first, at most 100.
pub async fn events(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, endpoint)): Path<(String, String, String)>,
) -> Reply<kiln_api::Page<EndpointEvent>> {
    let items = domain::events(&control, &scope.workgroup()?.id, &endpoint).await?;
    Ok((StatusCode::OK, Json(kiln_api::Page { items, next: None })))
}

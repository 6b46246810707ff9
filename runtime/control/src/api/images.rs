//! Images: OCI artifacts a work group may deploy, recorded with the digest they resolved to
//! when registered ([`crate::domain::images`] says how references resolve and who may use
//! what is in the local store).

use super::Query;
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::images as domain;
use crate::domain::listings;
use crate::store::images as store;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::Deleted;
use kiln_api::manage::images::{Image, NewImage};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `POST .../workgroups/{workgroup}/images`: an existing image by reference, or one built from
/// a manifest of the work group.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewImage>,
) -> Reply<Image> {
    let image = domain::create(&control, &scope.workgroup()?.id, body).await?;
    Ok((StatusCode::CREATED, Json(image)))
}

/// `GET .../images`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Image>> {
    let images = listings::images(&control, scope.workgroup()?, &page).await?;
    Ok((StatusCode::OK, Json(images)))
}

/// `GET .../images/{image}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, image)): Path<(String, String, String)>,
) -> Reply<Image> {
    let row = store::named(control.db(), &scope.workgroup()?.id, &image).await?;
    Ok((StatusCode::OK, Json(domain::image(row)?)))
}

/// `DELETE .../images/{image}`: refused while a deployment uses it.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, image)): Path<(String, String, String)>,
) -> Reply<Deleted> {
    domain::delete(&control, &scope.workgroup()?.id, &image).await?;
    let deleted = Deleted {
        name: image,
        deleted: true,
    };
    Ok((StatusCode::OK, Json(deleted)))
}

//! Manifests: the recipe of an image over the files of a registered model version
//! ([`crate::domain::manifests`] checks them and builds their images).

use super::Query;
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::manifests as domain;
use crate::store::manifests as store;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::Deleted;
use kiln_api::manage::images::{Manifest, ManifestChecked, NewManifest};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `POST .../workgroups/{workgroup}/manifests`: checked against the version's files.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewManifest>,
) -> Reply<ManifestChecked> {
    let checked = domain::create(&control, &scope.workgroup()?.id, body).await?;
    Ok((StatusCode::CREATED, Json(checked)))
}

/// `GET .../manifests`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Manifest>> {
    let wg = &scope.workgroup()?.id;
    let rows = store::list(control.db(), wg, page.after(), page.fetch()).await?;
    let manifests = rows.into_iter().map(domain::manifest).collect();
    Ok((StatusCode::OK, Json(page.page(manifests, |m| &m.name))))
}

/// `GET .../manifests/{manifest}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, manifest)): Path<(String, String, String)>,
) -> Reply<Manifest> {
    let row = store::named(control.db(), &scope.workgroup()?.id, &manifest).await?;
    Ok((StatusCode::OK, Json(domain::manifest(row))))
}

/// `DELETE .../manifests/{manifest}`: refused while an image records it.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, manifest)): Path<(String, String, String)>,
) -> Reply<Deleted> {
    domain::delete(&control, &scope.workgroup()?.id, &manifest).await?;
    let deleted = Deleted {
        name: manifest,
        deleted: true,
    };
    Ok((StatusCode::OK, Json(deleted)))
}

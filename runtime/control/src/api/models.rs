//! Models, their versions (files in the artifact store, lineage to a run and a commit) and
//! aliases such as `production`.

use super::Query;
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::listings;
use crate::domain::models::{self as domain};
use crate::names::check_artifact_path;
use crate::store::models as store;
use crate::uploads::{require_tar, spool_upload, tar_index};
use crate::{ControlError, ControlPlane};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kiln_api::manage::Deleted;
use kiln_api::manage::models::{
    Alias, AliasDeleted, AliasTarget, Model, ModelDetail, ModelVersion, NewModel, NewVersion,
    VersionFromRun, VersionSummary,
};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// The id of model `name` in the scope's work group.
pub(crate) async fn model_id(
    control: &ControlPlane,
    scope: &Scope,
    name: &str,
) -> Result<String, ControlError> {
    store::model_id(control.db(), &scope.workgroup()?.id, name).await
}

/// `POST .../workgroups/{workgroup}/models`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewModel>,
) -> Reply<Model> {
    let created = domain::create(&control, &scope.workgroup()?.id, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET .../models`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Model>> {
    let models = listings::models(&control, scope.workgroup()?, &page).await?;
    Ok((StatusCode::OK, Json(models)))
}

/// `GET .../models/{model}`: with its aliases.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model)): Path<(String, String, String)>,
) -> Reply<ModelDetail> {
    let detail = domain::detail(&control, &scope.workgroup()?.id, &model).await?;
    Ok((StatusCode::OK, Json(detail)))
}

/// `DELETE .../models/{model}`: its versions and files too.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model)): Path<(String, String, String)>,
) -> Reply<Deleted> {
    let id = model_id(&control, &scope, &model).await?;
    domain::delete(&control, &id).await?;
    let deleted = Deleted {
        name: model,
        deleted: true,
    };
    Ok((StatusCode::OK, Json(deleted)))
}

/// `POST .../models/{model}/versions` with `Content-Type: application/x-tar`: registers the
/// next version from the archive's files.
pub async fn create_version(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model)): Path<(String, String, String)>,
    Query(info): Query<NewVersion>,
    headers: HeaderMap,
    body: Body,
) -> Reply<ModelVersion> {
    domain::check_lineage(&info)?;
    require_tar(&headers, "the model's files")?;
    let id = model_id(&control, &scope, &model).await?;
    // The archive goes to a file, then each of its files to the store in parts: a model is
    // never whole in memory.
    let spooled = spool_upload(&control, body).await?;
    let archive = spooled.path().to_path_buf();
    let index = tokio::task::spawn_blocking(move || tar_index(&archive))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))??;
    let stored = domain::store_spooled_version(&control, &id, &spooled, &index, &info).await?;
    Ok((StatusCode::CREATED, Json(stored.shown(&model, info))))
}

/// `POST .../models/{model}/versions/from-run`: registers the next version from a run's
/// artifacts; its lineage names the run and the run's commit.
pub async fn create_version_from_run(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<VersionFromRun>,
) -> Reply<ModelVersion> {
    let id = model_id(&control, &scope, &model).await?;
    let run = super::runs::run_in_scope(&control, &scope, &body.run).await?;
    let files = domain::run_files(&control, &run.id, &body.path).await?;
    let info = NewVersion {
        description: body.description,
        run: Some(run.id.clone()),
        commit: (!run.commit_sha.is_empty()).then(|| run.commit_sha.clone()),
    };
    let stored = domain::store_version(&control, &id, &files, &info).await?;
    Ok((StatusCode::CREATED, Json(stored.shown(&model, info))))
}

/// `GET .../models/{model}/versions`.
pub async fn list_versions(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model)): Path<(String, String, String)>,
) -> Reply<kiln_api::Page<VersionSummary>> {
    let id = model_id(&control, &scope, &model).await?;
    let rows = store::versions(control.db(), &id).await?;
    let page = kiln_api::Page {
        items: rows.into_iter().map(domain::summary).collect(),
        next: None,
    };
    Ok((StatusCode::OK, Json(page)))
}

/// `GET .../models/{model}/versions/{version}`: a number or an alias.
pub async fn get_version(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model, version)): Path<(String, String, String, String)>,
) -> Reply<ModelVersion> {
    let id = model_id(&control, &scope, &model).await?;
    let row = domain::version_of(&control, &id, &version).await?;
    let shown = domain::version(&control, &model, row).await?;
    Ok((StatusCode::OK, Json(shown)))
}

/// `GET .../models/{model}/versions/{version}/files/{*path}`: the file's bytes, checked
/// against its recorded digest.
pub async fn get_file(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model, version, path)): Path<(String, String, String, String, String)>,
) -> Result<Response, ControlError> {
    check_artifact_path(&path)?;
    let id = model_id(&control, &scope, &model).await?;
    let row = domain::version_of(&control, &id, &version).await?;
    let label = format!("'{path}' of model {model} version {version}");
    let file = domain::verified_file(&control, &id, &row.id, &path, label).await?;
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_LENGTH, file.size.to_string()),
        (header::ETAG, format!("\"sha256:{}\"", file.sha256)),
    ];
    Ok((headers, Body::from_stream(file.bytes)).into_response())
}

/// `PUT .../models/{model}/aliases/{alias}`: points an alias at a version.
pub async fn put_alias(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model, alias)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<AliasTarget>,
) -> Reply<Alias> {
    domain::check_alias(&alias)?;
    let id = model_id(&control, &scope, &model).await?;
    let row = domain::version_of(&control, &id, &body.version.to_string()).await?;
    store::point_alias(control.db(), &id, &alias, &row.id).await?;
    let pointed = Alias {
        model,
        alias,
        version: row.version,
    };
    Ok((StatusCode::OK, Json(pointed)))
}

/// `DELETE .../models/{model}/aliases/{alias}`.
pub async fn delete_alias(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model, alias)): Path<(String, String, String, String)>,
) -> Reply<AliasDeleted> {
    let id = model_id(&control, &scope, &model).await?;
    if !store::delete_alias(control.db(), &id, &alias).await? {
        return Err(ControlError::NotFound(format!("alias '{alias}' not found")));
    }
    let deleted = AliasDeleted {
        model,
        alias,
        deleted: true,
    };
    Ok((StatusCode::OK, Json(deleted)))
}

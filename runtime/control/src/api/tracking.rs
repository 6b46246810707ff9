//! Kiln's own tracking API, for the Python helper in `sdk/python` and for the CLI: a batch of
//! params, metrics and tags; a metric's history; a run's artifacts (upload, list, download).
//! The MLflow-compatible API in [`super::mlflow`] writes through the same functions.

use super::JsonBody;
use super::Query;
use super::runs::run_in_scope;
use crate::access::Scope;
use crate::domain::runs as domain;
use crate::runs::tracking::{self, artifact_area, check_artifact, check_key};
use crate::{ControlError, ControlPlane};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kiln_api::manage::runs::{
    Artifact, ArtifactDir, Artifacts, LogBatch, Logged, MetricHistory, Uploaded,
};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `POST .../runs/{run}/log-batch`.
pub async fn log_batch(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
    JsonBody(batch): JsonBody<LogBatch>,
) -> Reply<Logged> {
    let row = run_in_scope(&control, &scope, &run).await?;
    let metrics = domain::metrics(&batch);
    let params = domain::text_values("param", batch.params)?;
    let tags = domain::text_values("tag", batch.tags)?;
    tracking::log_batch(&control, &row.id, &metrics, &params, &tags).await?;
    let logged = Logged {
        run: row.id,
        params: params.len(),
        metrics: metrics.len(),
        tags: tags.len(),
    };
    Ok((StatusCode::OK, Json(logged)))
}

/// `GET .../runs/{run}/metrics/{key}`: every value, by step.
pub async fn metric_history(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run, key)): Path<(String, String, String, String)>,
) -> Reply<MetricHistory> {
    let row = run_in_scope(&control, &scope, &run).await?;
    check_key("metric", &key)?;
    let history = tracking::metric_history(control.db(), &row.id, &key, 100_000).await?;
    let items = history.into_iter().map(domain::point).collect();
    Ok((StatusCode::OK, Json(MetricHistory { key, items })))
}

/// `GET .../runs/{run}/artifacts`.
pub async fn list_artifacts(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
    Query(dir): Query<ArtifactDir>,
) -> Reply<Artifacts> {
    let row = run_in_scope(&control, &scope, &run).await?;
    let items = tracking::list_artifacts(&control, &row.id, &dir.path)
        .await?
        .into_iter()
        .map(|(path, is_dir, size)| Artifact { path, is_dir, size })
        .collect();
    Ok((StatusCode::OK, Json(Artifacts { items })))
}

/// `PUT .../runs/{run}/artifacts/{path}`: the body is the file.
pub async fn put_artifact(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run, path)): Path<(String, String, String, String)>,
    body: Body,
) -> Reply<Uploaded> {
    let row = run_in_scope(&control, &scope, &run).await?;
    let path = check_artifact(&path)?.to_string();
    let limit = control.settings().max_upload_bytes as u64;
    let size = control
        .artifacts()
        .put_stream(
            &artifact_area(&row.id),
            &path,
            body.into_data_stream(),
            limit,
        )
        .await?;
    let uploaded = Uploaded {
        run: row.id,
        path,
        size,
    };
    Ok((StatusCode::CREATED, Json(uploaded)))
}

/// `GET .../runs/{run}/artifacts/{path}`: the file.
pub async fn get_artifact(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run, path)): Path<(String, String, String, String)>,
) -> Result<Response, ControlError> {
    let row = run_in_scope(&control, &scope, &run).await?;
    let path = check_artifact(&path)?;
    let (size, stream) = control
        .artifacts()
        .get_stream(&artifact_area(&row.id), path)
        .await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

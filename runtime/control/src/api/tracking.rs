//! Kiln's own tracking API, for the Python helper in `sdk/python` and for the CLI: a batch of
//! params, metrics and tags; a metric's history; a run's artifacts (upload, list, download).
//! The MLflow-compatible API in [`super::mlflow`] writes through the same functions.

use super::JsonBody;
use super::runs::run_in_scope;
use crate::access::Scope;
use crate::runs::tracking::{self, Metric, artifact_area, check_artifact, check_key};
use crate::{ControlError, ControlPlane};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// A batch: params and tags as objects, metrics as a list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    #[serde(default)]
    params: Map<String, Value>,
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    tags: Map<String, Value>,
}

fn text_values(kind: &str, map: Map<String, Value>) -> Result<Vec<(String, String)>, ControlError> {
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(ControlError::Invalid(format!(
                "{kind} '{k}': a value is a string, number or boolean, not {other}"
            ))),
        })
        .collect()
}

/// `POST .../runs/{run}/log-batch`.
pub async fn log_batch(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
    JsonBody(batch): JsonBody<Batch>,
) -> Reply {
    let view = run_in_scope(&control, &scope, &run).await?;
    let params = text_values("param", batch.params)?;
    let tags = text_values("tag", batch.tags)?;
    tracking::log_batch(&control, &view.id, &batch.metrics, &params, &tags).await?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "run": view.id,
            "params": params.len(),
            "metrics": batch.metrics.len(),
            "tags": tags.len(),
        })),
    ))
}

/// `GET .../runs/{run}/metrics/{key}`: every value, by step.
pub async fn metric_history(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run, key)): Path<(String, String, String, String)>,
) -> Reply {
    let view = run_in_scope(&control, &scope, &run).await?;
    check_key("metric", &key)?;
    let history = tracking::metric_history(&control, &view.id, &key, 100_000).await?;
    let items: Vec<Value> = history.iter().map(|m| m.json()).collect();
    Ok((StatusCode::OK, Json(json!({ "key": key, "items": items }))))
}

/// `?path=`: a directory of the run's artifacts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactDir {
    #[serde(default)]
    path: String,
}

/// `GET .../runs/{run}/artifacts`.
pub async fn list_artifacts(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
    Query(dir): Query<ArtifactDir>,
) -> Reply {
    let view = run_in_scope(&control, &scope, &run).await?;
    let items: Vec<Value> = tracking::list_artifacts(&control, &view.id, &dir.path)
        .await?
        .into_iter()
        .map(|(path, is_dir, size)| json!({ "path": path, "is_dir": is_dir, "size": size }))
        .collect();
    Ok((StatusCode::OK, Json(json!({ "items": items }))))
}

/// `PUT .../runs/{run}/artifacts/{path}`: the body is the file.
pub async fn put_artifact(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run, path)): Path<(String, String, String, String)>,
    body: Body,
) -> Reply {
    let view = run_in_scope(&control, &scope, &run).await?;
    let path = check_artifact(&path)?.to_string();
    let limit = control.settings().max_upload_bytes as u64;
    let size = control
        .artifacts()
        .put_stream(
            &artifact_area(&view.id),
            &path,
            body.into_data_stream(),
            limit,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "run": view.id, "path": path, "size": size })),
    ))
}

/// `GET .../runs/{run}/artifacts/{path}`: the file.
pub async fn get_artifact(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run, path)): Path<(String, String, String, String)>,
) -> Result<Response, ControlError> {
    let view = run_in_scope(&control, &scope, &run).await?;
    let path = check_artifact(&path)?;
    let (size, stream) = control
        .artifacts()
        .get_stream(&artifact_area(&view.id), path)
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

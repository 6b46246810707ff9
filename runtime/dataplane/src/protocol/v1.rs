//! KServe v1 (TensorFlow Serving style): `GET /v1/models/{m}`, `POST /v1/models/{m}:predict`.

use super::{instances_to_tensors, named_to_tensors, predict_rows, read_json_object};
use crate::{ApiError, Dataplane, Deployment};
use axum::Json;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Runs a `:predict` request: `{"instances": [...]}` (rows) or `{"inputs": ...}` (a list of rows,
/// or an object of named inputs); answers `{"predictions": [...]}`.
pub async fn predict(
    dataplane: &Dataplane,
    deployment: &Deployment,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut object = read_json_object(dataplane, headers, body).await?;
    let metadata = deployment.model.metadata();
    let max = dataplane.limits.max_elements;
    let inputs = match (object.remove("instances"), object.remove("inputs")) {
        (Some(Value::Array(rows)), None) | (None, Some(Value::Array(rows))) => {
            instances_to_tensors(metadata, &rows, max)?
        }
        (None, Some(Value::Object(named))) => named_to_tensors(metadata, &named, max)?,
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either 'instances' or 'inputs', not both",
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "expected {\"instances\": [...]} or {\"inputs\": [...]}",
            ));
        }
    };
    let predictions = predict_rows(dataplane, deployment, headers, inputs).await?;
    Ok(Json(json!({ "predictions": predictions })).into_response())
}

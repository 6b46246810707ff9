//! Azure ML style scoring: `POST /deployments/{m}/score` with `{"data": ...}`.

use super::{instances_to_tensors, named_to_tensors, predict_rows, read_json_object};
use crate::{ApiError, Dataplane, Deployment};
use axum::Json;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Runs a score request. `data` is a list of rows (or one row) for a single-input model, or an
/// object of named inputs; the answer is the list of predictions, one per row, as an Azure ML
/// scoring script's `run()` would return it.
pub async fn score(
    dataplane: &Dataplane,
    deployment: &Deployment,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut object = read_json_object(dataplane, headers, body).await?;
    let metadata = deployment.model.metadata();
    let max = dataplane.limits.max_elements;
    let data = object
        .remove("data")
        .or_else(|| object.remove("input_data"))
        .ok_or_else(|| ApiError::bad_request("expected {\"data\": [...]}"))?;
    let inputs = match data {
        Value::Array(rows) if rows.first().is_some_and(|r| r.is_array() || r.is_object()) => {
            instances_to_tensors(metadata, &rows, max)?
        }
        Value::Array(single_row) => {
            instances_to_tensors(metadata, &[Value::Array(single_row)], max)?
        }
        Value::Object(named) => named_to_tensors(metadata, &named, max)?,
        _ => {
            return Err(ApiError::bad_request(
                "'data' must be a list of rows or an object of named inputs",
            ));
        }
    };
    Ok(Json(predict_rows(dataplane, deployment, headers, inputs).await?).into_response())
}

//! Protocol adapters: each translates one wire format to the dataplane's request and back.
//!
//! The row-oriented formats (KServe v1, MLflow, Azure ML) share the helpers here: rows of
//! instances or table columns become tensors shaped by the model's metadata, and outputs go back
//! as one prediction per row.

pub mod mlflow;
pub mod score;
pub mod v1;
pub mod v2;

use crate::infer::InferRequest;
use crate::{ApiError, Dataplane, Deployment, tensor};
use axum::body::Body;
use axum::http::{HeaderMap, header};
use kiln_engine::{ModelMetadata, Tensor, TensorSpec};
use serde_json::{Map, Value};

/// The request's media type without parameters, lowercased; `None` when absent.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(header::CONTENT_TYPE).map(|v| {
        let text = v.to_str().unwrap_or("invalid");
        text.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// Refuses compressed request bodies, which no adapter reads.
pub fn reject_content_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("identity") => Ok(()),
        Some(other) => Err(ApiError::unsupported_media(format!(
            "content encoding '{other}' is not supported: send the body uncompressed"
        ))),
    }
}

/// Requires a JSON body (or no content type at all).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    reject_content_encoding(headers)?;
    match content_type(headers).as_deref() {
        None | Some("application/json") => Ok(()),
        Some(other) => Err(ApiError::unsupported_media(format!(
            "content type '{other}' is not supported: send application/json"
        ))),
    }
}

/// Parses a JSON object body.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!("invalid JSON: {e}"))),
    }
}

/// Reads a JSON object body (415 for other content types, 413 past the size limit).
pub async fn read_json_object(
    dataplane: &Dataplane,
    headers: &HeaderMap,
    body: Body,
) -> Result<Map<String, Value>, ApiError> {
    require_json(headers)?;
    let body = dataplane.read_body(body).await?;
    json_object(&body)
}

/// The header in which a client may shorten its request's deadline, in milliseconds.
pub const DEADLINE_HEADER: &str = "kiln-deadline-ms";

/// The deadline a client asked for with [`DEADLINE_HEADER`] (400 when it is not a positive
/// whole number of milliseconds). It can only shorten the deployment's own.
pub fn requested_deadline(headers: &HeaderMap) -> Result<Option<std::time::Duration>, ApiError> {
    let Some(value) = headers.get(DEADLINE_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(|ms| Some(std::time::Duration::from_millis(ms)))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{DEADLINE_HEADER} must be a positive number of milliseconds"
            ))
        })
}

/// Runs the inputs through the dataplane and returns one prediction per row.
pub async fn predict_rows(
    dataplane: &Dataplane,
    deployment: &Deployment,
    headers: &HeaderMap,
    inputs: Vec<Tensor>,
) -> Result<Value, ApiError> {
    let request = InferRequest {
        inputs,
        deadline: requested_deadline(headers)?,
        ..Default::default()
    };
    let response = dataplane.infer(deployment, request).await?;
    Ok(predictions(&response.outputs))
}

/// Stacks per-row values into one tensor for `spec`: shape `[rows, ...row shape]`.
fn stack(spec: &TensorSpec, rows: &[&Value], max: usize) -> Result<Tensor, ApiError> {
    let mut shape = vec![rows.len() as i64];
    if let Some(first) = rows.first() {
        shape.extend(tensor::json_shape(first));
    }
    let all = Value::Array(rows.iter().map(|v| (*v).clone()).collect());
    let data = tensor::from_json(spec.datatype, &all, max)
        .map_err(|e| ApiError::bad_request(format!("input '{}': {e}", spec.name)))?;
    Ok(Tensor {
        name: spec.name.clone(),
        shape,
        data,
    })
}

/// Instances (one per row) to input tensors. With one input, an instance is that input's row
/// (or an object holding it by name); with several, each instance is an object keyed by input.
pub fn instances_to_tensors(
    metadata: &ModelMetadata,
    instances: &[Value],
    max: usize,
) -> Result<Vec<Tensor>, ApiError> {
    if instances.is_empty() {
        return Err(ApiError::bad_request("no instances given"));
    }
    let keyed = instances.iter().all(Value::is_object);
    if let [only] = metadata.inputs.as_slice()
        && !keyed
    {
        let rows: Vec<&Value> = instances.iter().collect();
        return Ok(vec![stack(only, &rows, max)?]);
    }
    if !keyed {
        return Err(ApiError::bad_request(format!(
            "the model has {} inputs: each instance must be an object keyed by input name",
            metadata.inputs.len()
        )));
    }
    metadata
        .inputs
        .iter()
        .map(|spec| {
            let rows = instances
                .iter()
                .map(|i| {
                    i.get(&spec.name).ok_or_else(|| {
                        ApiError::bad_request(format!("an instance lacks input '{}'", spec.name))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            stack(spec, &rows, max)
        })
        .collect()
}

/// Named arrays (`{"input": [[...]]}`) to input tensors, each shaped as given.
pub fn named_to_tensors(
    metadata: &ModelMetadata,
    named: &Map<String, Value>,
    max: usize,
) -> Result<Vec<Tensor>, ApiError> {
    named
        .iter()
        .map(|(name, value)| {
            let spec = metadata
                .inputs
                .iter()
                .find(|s| &s.name == name)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("the model has no input named '{name}'"))
                })?;
            let data = tensor::from_json(spec.datatype, value, max)
                .map_err(|e| ApiError::bad_request(format!("input '{name}': {e}")))?;
            Ok(Tensor {
                name: name.clone(),
                shape: tensor::json_shape(value),
                data,
            })
        })
        .collect()
}

/// A table (columns and rows of cells) to input tensors. When every column names an input, each
/// column is that input (`[rows]`, or `[rows, 1]` if the model wants a column); otherwise a
/// single-input model takes the whole table as a `[rows, columns]` matrix in column order.
pub fn table_to_tensors(
    metadata: &ModelMetadata,
    columns: &[String],
    rows: &[Vec<Value>],
    max: usize,
) -> Result<Vec<Tensor>, ApiError> {
    if rows.is_empty() {
        return Err(ApiError::bad_request("the table has no rows"));
    }
    if let Some(bad) = rows.iter().find(|r| r.len() != columns.len()) {
        return Err(ApiError::bad_request(format!(
            "a row has {} values for {} columns",
            bad.len(),
            columns.len()
        )));
    }
    let by_name = !columns.is_empty()
        && columns
            .iter()
            .all(|c| metadata.inputs.iter().any(|s| &s.name == c))
        && metadata.inputs.iter().all(|s| columns.contains(&s.name));
    if by_name {
        return metadata
            .inputs
            .iter()
            .map(|spec| {
                let col = columns.iter().position(|c| c == &spec.name).unwrap_or(0);
                let cells: Vec<Value> = rows.iter().map(|r| r[col].clone()).collect();
                let data = tensor::from_json(spec.datatype, &Value::Array(cells), max)
                    .map_err(|e| ApiError::bad_request(format!("column '{}': {e}", spec.name)))?;
                let shape = if spec.shape.len() == 2 {
                    vec![rows.len() as i64, 1]
                } else {
                    vec![rows.len() as i64]
                };
                Ok(Tensor {
                    name: spec.name.clone(),
                    shape,
                    data,
                })
            })
            .collect();
    }
    let [only] = metadata.inputs.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "the model has {} inputs: name one column after each input ({})",
            metadata.inputs.len(),
            metadata
                .inputs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let cells = Value::Array(rows.iter().flatten().cloned().collect());
    let data = tensor::from_json(only.datatype, &cells, max)
        .map_err(|e| ApiError::bad_request(format!("input '{}': {e}", only.name)))?;
    Ok(vec![Tensor {
        name: only.name.clone(),
        shape: vec![rows.len() as i64, columns.len() as i64],
        data,
    }])
}

/// One prediction per row: the output's row with one output, else an object per row keyed by
/// output name.
pub fn predictions(outputs: &[Tensor]) -> Value {
    if let [only] = outputs {
        return Value::Array(tensor::rows(only));
    }
    let columns: Vec<(&str, Vec<Value>)> = outputs
        .iter()
        .map(|t| (t.name.as_str(), tensor::rows(t)))
        .collect();
    let count = columns
        .iter()
        .map(|(_, rows)| rows.len())
        .max()
        .unwrap_or(0);
    let records = (0..count)
        .map(|i| {
            let record: Map<String, Value> = columns
                .iter()
                .map(|(name, rows)| {
                    (
                        name.to_string(),
                        rows.get(i).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect();
            Value::Object(record)
        })
        .collect();
    Value::Array(records)
}

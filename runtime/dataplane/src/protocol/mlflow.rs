//! MLflow scoring server format at `POST /deployments/{m}/invocations`: JSON with
//! `dataframe_split`, `dataframe_records`, `instances` or `inputs`, or CSV with a header row.

use super::{
    content_type, instances_to_tensors, json_object, named_to_tensors, predict_rows,
    reject_content_encoding, table_to_tensors,
};
use crate::{ApiError, Dataplane, Deployment};
use axum::Json;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The keys an MLflow JSON body may use, exactly one at a time.
const FORMATS: &str = "dataframe_split, dataframe_records, instances or inputs";

/// Runs an invocations request and answers `{"predictions": ...}` as `mlflow models serve` does.
pub async fn invocations(
    dataplane: &Dataplane,
    deployment: &Deployment,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    reject_content_encoding(headers)?;
    let kind = content_type(headers);
    let is_csv = match kind.as_deref() {
        Some("text/csv") => true,
        None | Some("application/json") => false,
        Some(other) => {
            return Err(ApiError::unsupported_media(format!(
                "content type '{other}' is not supported: send application/json or text/csv"
            )));
        }
    };
    let body = dataplane.read_body(body).await?;
    let metadata = deployment.model.metadata();
    let max = dataplane.limits.max_elements;
    let inputs = if is_csv {
        let (columns, rows) = parse_csv(&body)?;
        table_to_tensors(metadata, &columns, &rows, max)?
    } else {
        let object = json_object(&body)?;
        if object.len() != 1 {
            return Err(ApiError::bad_request(format!(
                "the body must have exactly one of {FORMATS}"
            )));
        }
        match object.into_iter().next() {
            Some((key, value)) => match (key.as_str(), value) {
                ("dataframe_split", Value::Object(split)) => {
                    let (columns, rows) = split_table(split)?;
                    table_to_tensors(metadata, &columns, &rows, max)?
                }
                ("dataframe_records", Value::Array(records)) => {
                    let (columns, rows) = records_table(records)?;
                    table_to_tensors(metadata, &columns, &rows, max)?
                }
                ("instances", Value::Array(rows)) | ("inputs", Value::Array(rows)) => {
                    instances_to_tensors(metadata, &rows, max)?
                }
                ("inputs", Value::Object(named)) => named_to_tensors(metadata, &named, max)?,
                (key, _)
                    if [
                        "dataframe_split",
                        "dataframe_records",
                        "instances",
                        "inputs",
                    ]
                    .contains(&key) =>
                {
                    return Err(ApiError::bad_request(format!(
                        "'{key}' has the wrong JSON type"
                    )));
                }
                (key, _) => {
                    return Err(ApiError::bad_request(format!(
                        "unknown key '{key}': the body must have exactly one of {FORMATS}"
                    )));
                }
            },
            None => {
                return Err(ApiError::bad_request(format!(
                    "the body must have one of {FORMATS}"
                )));
            }
        }
    };
    let predictions = predict_rows(dataplane, deployment, headers, inputs).await?;
    Ok(Json(json!({ "predictions": predictions })).into_response())
}

fn split_table(mut split: Map<String, Value>) -> Result<(Vec<String>, Vec<Vec<Value>>), ApiError> {
    let rows = match split.remove("data") {
        Some(Value::Array(rows)) => rows
            .into_iter()
            .map(|r| match r {
                Value::Array(cells) => Ok(cells),
                _ => Err(ApiError::bad_request(
                    "dataframe_split.data must be a list of rows",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(ApiError::bad_request(
                "dataframe_split needs 'data': a list of rows",
            ));
        }
    };
    let columns = match split.remove("columns") {
        Some(Value::Array(names)) => names
            .into_iter()
            .map(|n| match n {
                Value::String(s) => Ok(s),
                other => Ok(other.to_string()),
            })
            .collect::<Result<Vec<_>, ApiError>>()?,
        None => (0..rows.first().map_or(0, Vec::len))
            .map(|i| i.to_string())
            .collect(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "dataframe_split.columns must be a list",
            ));
        }
    };
    Ok((columns, rows))
}

fn records_table(records: Vec<Value>) -> Result<(Vec<String>, Vec<Vec<Value>>), ApiError> {
    let columns: Vec<String> = match records.first() {
        Some(Value::Object(first)) => first.keys().cloned().collect(),
        _ => {
            return Err(ApiError::bad_request(
                "dataframe_records must be a list of objects",
            ));
        }
    };
    let rows = records
        .into_iter()
        .map(|record| match record {
            Value::Object(mut map) => columns
                .iter()
                .map(|c| {
                    map.remove(c).ok_or_else(|| {
                        ApiError::bad_request(format!("a record lacks column '{c}'"))
                    })
                })
                .collect(),
            _ => Err(ApiError::bad_request(
                "dataframe_records must be a list of objects",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((columns, rows))
}

fn parse_csv(body: &[u8]) -> Result<(Vec<String>, Vec<Vec<Value>>), ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let columns = reader
        .headers()
        .map_err(|e| ApiError::bad_request(format!("invalid CSV header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| ApiError::bad_request(format!("invalid CSV: {e}")))?;
            Ok(record.iter().map(csv_cell).collect())
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok((columns, rows))
}

fn csv_cell(cell: &str) -> Value {
    let cell = cell.trim();
    if let Ok(i) = cell.parse::<i64>() {
        return Value::from(i);
    }
    match cell.parse::<f64>() {
        Ok(f) if f.is_finite() => Value::from(f),
        _ => match cell {
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            _ => Value::String(cell.to_string()),
        },
    }
}

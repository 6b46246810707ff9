//! Open Inference Protocol v2 (KServe v2 / Triton) REST, with Triton's binary tensor extension:
//! translation only; the dataplane decides.

use super::{content_type, reject_content_encoding};
use crate::infer::{InferRequest, InferResponse};
use crate::{ApiError, Dataplane, tensor};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kiln_engine::{ModelMetadata, Tensor, TensorSpec};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The header that splits a binary request or response into its JSON part and tensor bytes.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Extensions this server implements, listed by `GET /v2`.
pub const EXTENSIONS: &[&str] = &["binary_tensor_data"];

#[derive(Deserialize)]
struct RequestJson {
    id: Option<String>,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<InputJson>,
    outputs: Option<Vec<OutputJson>>,
}

#[derive(Deserialize)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    data: Option<Value>,
}

#[derive(Deserialize)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

/// A parsed v2 request: the dataplane's request plus which outputs go back as binary.
pub struct Parsed {
    request: InferRequest,
    binary_outputs: BinaryOutputs,
}

enum BinaryOutputs {
    All(bool),
    Named(Vec<String>),
}

fn binary_flag(parameters: &Map<String, Value>, key: &str) -> bool {
    parameters
        .get(key)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Reads a v2 infer body: JSON, or JSON followed by binary tensor data when the request carries
/// `Inference-Header-Content-Length`.
pub fn parse(headers: &HeaderMap, body: &Bytes, max_elements: usize) -> Result<Parsed, ApiError> {
    reject_content_encoding(headers)?;
    let (json_part, mut binary) = match headers.get(HEADER_LENGTH) {
        Some(value) => {
            let length: usize = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Inference-Header-Content-Length is not a number")
                })?;
            if length > body.len() {
                return Err(ApiError::bad_request(format!(
                    "Inference-Header-Content-Length is {length} but the body has {} bytes",
                    body.len()
                )));
            }
            (body.slice(..length), body.slice(length..))
        }
        None => {
            match content_type(headers).as_deref() {
                None | Some("application/json") => {}
                Some("application/octet-stream") => {
                    return Err(ApiError::bad_request(
                        "binary request without an Inference-Header-Content-Length header",
                    ));
                }
                Some(other) => {
                    return Err(ApiError::unsupported_media(format!(
                        "content type '{other}' is not supported: send application/json, or \
                         binary tensors with Inference-Header-Content-Length"
                    )));
                }
            }
            (body.clone(), Bytes::new())
        }
    };
    let request: RequestJson = serde_json::from_slice(&json_part)
        .map_err(|e| ApiError::bad_request(format!("invalid inference request JSON: {e}")))?;

    let mut inputs = Vec::with_capacity(request.inputs.len());
    let mut budget = max_elements;
    for input in request.inputs {
        let datatype = tensor::parse_datatype(&input.datatype).ok_or_else(|| {
            ApiError::bad_request(format!(
                "input '{}' has unknown datatype '{}'",
                input.name, input.datatype
            ))
        })?;
        let data = match (input.parameters.get("binary_data_size"), &input.data) {
            (Some(size), None) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "input '{}': binary_data_size is not a size",
                            input.name
                        ))
                    })?;
                if size > binary.len() {
                    return Err(ApiError::bad_request(format!(
                        "input '{}' declares {size} bytes of binary data, only {} remain",
                        input.name,
                        binary.len()
                    )));
                }
                let bytes = binary.split_to(size);
                tensor::from_binary(datatype, &bytes, budget)
            }
            (None, Some(data)) => tensor::from_json(datatype, data, budget),
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "input '{}' has both data and binary_data_size",
                    input.name
                )));
            }
            (None, None) => {
                return Err(ApiError::bad_request(format!(
                    "input '{}' has no data",
                    input.name
                )));
            }
        }
        .map_err(|e| ApiError::bad_request(format!("input '{}': {e}", input.name)))?;
        budget = budget.saturating_sub(tensor::element_len(&data));
        inputs.push(Tensor {
            name: input.name,
            shape: input.shape,
            data,
        });
    }
    if !binary.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} bytes of binary data follow the inputs that no input claims",
            binary.len()
        )));
    }

    let all_binary = binary_flag(&request.parameters, "binary_data_output");
    let (outputs, binary_outputs) = match request.outputs {
        None => (None, BinaryOutputs::All(all_binary)),
        Some(outputs) => {
            let binary = outputs
                .iter()
                .filter(|o| {
                    o.parameters
                        .get("binary_data")
                        .and_then(Value::as_bool)
                        .unwrap_or(all_binary)
                })
                .map(|o| o.name.clone())
                .collect();
            (
                Some(outputs.into_iter().map(|o| o.name).collect()),
                BinaryOutputs::Named(binary),
            )
        }
    };
    Ok(Parsed {
        request: InferRequest {
            id: request.id,
            inputs,
            outputs,
            deadline: None,
        },
        binary_outputs,
    })
}

impl Parsed {
    /// The dataplane's request.
    pub fn take_request(&mut self) -> InferRequest {
        std::mem::take(&mut self.request)
    }
}

/// Writes a v2 response: JSON, or JSON followed by binary data for the outputs asked as binary.
pub fn respond(parsed: &Parsed, response: InferResponse) -> Response {
    let mut binary = Vec::new();
    let outputs: Vec<Value> = response
        .outputs
        .iter()
        .map(|output| {
            let as_binary = match &parsed.binary_outputs {
                BinaryOutputs::All(all) => *all,
                BinaryOutputs::Named(names) => names.contains(&output.name),
            };
            let mut out = json!({
                "name": output.name,
                "datatype": tensor::datatype_name(tensor::datatype_of(&output.data)),
                "shape": output.shape,
            });
            if as_binary {
                let bytes = tensor::to_binary(&output.data);
                out["parameters"] = json!({ "binary_data_size": bytes.len() });
                binary.extend_from_slice(&bytes);
            } else {
                out["data"] = Value::Array(tensor::to_json(&output.data));
            }
            out
        })
        .collect();
    let mut head = json!({
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    });
    if let Some(id) = response.id {
        head["id"] = Value::String(id);
    }
    let head = serde_json::to_vec(&head).unwrap_or_default();
    if binary.is_empty() {
        return (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            head,
        )
            .into_response();
    }
    let header_length = head.len();
    let mut body = head;
    body.extend_from_slice(&binary);
    let mut response = (StatusCode::OK, Body::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(HEADER_LENGTH, HeaderValue::from(header_length));
    response
}

fn spec_json(spec: &TensorSpec) -> Value {
    json!({
        "name": spec.name,
        "datatype": tensor::datatype_name(spec.datatype),
        "shape": spec.shape,
    })
}

/// `GET /v2/models/{m}`: the model metadata response.
pub fn model_metadata(name: &str, version: &str, metadata: &ModelMetadata) -> Value {
    json!({
        "name": name,
        "versions": [version],
        "platform": metadata.platform,
        "inputs": metadata.inputs.iter().map(spec_json).collect::<Vec<_>>(),
        "outputs": metadata.outputs.iter().map(spec_json).collect::<Vec<_>>(),
    })
}

/// Reads and runs a v2 infer request for a deployment.
pub async fn infer(
    dataplane: &Dataplane,
    deployment: &crate::Deployment,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = dataplane.read_body(body).await?;
    let mut parsed = parse(headers, &body, dataplane.limits.max_elements)?;
    let mut request = parsed.take_request();
    request.deadline = super::requested_deadline(headers)?;
    let response = dataplane.infer(deployment, request).await?;
    Ok(respond(&parsed, response))
}

//! The one dataplane behind every protocol: it finds the deployment, checks tensors against the
//! model's metadata, calls the model, checks what came back, and records metrics.

use crate::infer::{InferRequest, InferResponse};
use crate::registry::{Deployment, DeploymentRegistry};
use crate::{ApiError, tensor};
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use kiln_engine::Tensor;
use kiln_metrics::Protocol;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Bounds every request must stay within, whatever the deployment.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// Largest request body, in bytes (413 past it).
    pub max_body_bytes: usize,
    /// Most tensor elements one request may carry, over all inputs (400 past it).
    pub max_elements: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_body_bytes: 16 << 20,
            max_elements: 4 << 20,
        }
    }
}

/// Deployments, server limits and readiness.
pub struct Dataplane {
    /// Served deployments.
    pub registry: DeploymentRegistry,
    /// Request bounds.
    pub limits: ServerLimits,
    /// False while shutting down: no new predictions.
    ready: AtomicBool,
    /// False until the server's desired deployments are loaded (or failed with their reason).
    loaded: AtomicBool,
}

/// Why sample rows did not pass [`Dataplane::check_sample`].
#[derive(Debug)]
pub enum SampleError {
    /// The rows do not fit the model's inputs (names, types, shapes).
    Unfit(ApiError),
    /// The model refused them, failed, or answered outside its schema.
    Failed(ApiError),
}

impl SampleError {
    /// What went wrong, without saying which of the two it was.
    pub fn message(&self) -> &str {
        match self {
            SampleError::Unfit(e) | SampleError::Failed(e) => &e.message,
        }
    }
}

impl Dataplane {
    /// A dataplane with no deployments, ready.
    pub fn new(limits: ServerLimits) -> Self {
        Dataplane {
            registry: DeploymentRegistry::default(),
            limits,
            ready: AtomicBool::new(true),
            loaded: AtomicBool::new(true),
        }
    }

    /// Whether the server reads ready: its deployments are loaded and it is not shutting down.
    pub fn is_ready(&self) -> bool {
        self.loaded.load(Ordering::Acquire) && self.ready.load(Ordering::Acquire)
    }

    /// Whether it is shutting down (predictions are refused).
    pub fn is_draining(&self) -> bool {
        !self.ready.load(Ordering::Acquire)
    }

    /// Marks the desired deployments as loaded (or not yet): readiness reads false until then,
    /// while predictions (the sample checks of deployments being loaded) are taken.
    pub fn set_loaded(&self, loaded: bool) {
        self.loaded.store(loaded, Ordering::Release);
    }

    /// Stops (or resumes) taking new predictions; health/ready answers accordingly.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// The deployment `name` (at `version` when given), or 404.
    pub fn deployment(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<Deployment>, ApiError> {
        self.registry.get(name, version)
    }

    /// Reads a request body within the server's limit (413 past it).
    pub async fn read_body(&self, body: Body) -> Result<Bytes, ApiError> {
        let limit = self.limits.max_body_bytes;
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the limit of {limit} bytes"),
            )),
            Err(e) => Err(ApiError::bad_request(format!(
                "cannot read request body: {e}"
            ))),
        }
    }

    /// The readiness gate, shared by image builds and runtime nodes: sample rows (a table of
    /// `columns` and `rows`) go through `deployment` as one request, with the same input and
    /// output checks as live traffic. Run it before the version takes traffic and before it has
    /// a monitor, so the rows are not counted as traffic.
    pub async fn check_sample(
        &self,
        deployment: &Deployment,
        columns: &[String],
        rows: &[Vec<serde_json::Value>],
    ) -> Result<(), SampleError> {
        let inputs = crate::protocol::table_to_tensors(
            deployment.model.metadata(),
            columns,
            rows,
            usize::MAX,
        )
        .map_err(SampleError::Unfit)?;
        self.infer(
            deployment,
            InferRequest {
                inputs,
                ..Default::default()
            },
        )
        .await
        .map_err(SampleError::Failed)?;
        Ok(())
    }

    /// Runs one prediction: inputs checked against metadata, the model called, outputs checked.
    pub async fn infer(
        &self,
        deployment: &Deployment,
        request: InferRequest,
    ) -> Result<InferResponse, ApiError> {
        if self.is_draining() {
            return Err(ApiError::unavailable("server is shutting down"));
        }
        let metadata = deployment.model.metadata();
        let mut inputs = request.inputs;
        let total: usize = inputs.iter().map(|t| tensor::element_len(&t.data)).sum();
        if total > self.limits.max_elements {
            return Err(ApiError::bad_request(format!(
                "request holds {total} tensor elements, more than the limit of {}",
                self.limits.max_elements
            )));
        }
        if let Some(unknown) = inputs
            .iter()
            .find(|t| !metadata.inputs.iter().any(|s| s.name == t.name))
        {
            deployment.metrics.schema_violations.inc();
            return Err(ApiError::bad_request(format!(
                "model '{}' has no input named '{}' (inputs: {})",
                deployment.name,
                unknown.name,
                names(metadata.inputs.iter().map(|s| s.name.as_str()))
            )));
        }
        let violation = |message: String| {
            deployment.metrics.schema_violations.inc();
            ApiError::bad_request(message)
        };
        let mut ordered = Vec::with_capacity(metadata.inputs.len());
        for spec in &metadata.inputs {
            let position = inputs
                .iter()
                .position(|t| t.name == spec.name)
                .ok_or_else(|| violation(format!("missing input '{}'", spec.name)))?;
            let input = inputs.swap_remove(position);
            tensor::check(spec, &input, "input").map_err(violation)?;
            ordered.push(input);
        }
        if let Some(duplicate) = inputs.first() {
            return Err(violation(format!(
                "input '{}' given more than once",
                duplicate.name
            )));
        }
        if let Some(requested) = &request.outputs
            && let Some(unknown) = requested
                .iter()
                .find(|n| !metadata.outputs.iter().any(|s| &s.name == *n))
        {
            return Err(ApiError::bad_request(format!(
                "model '{}' has no output named '{unknown}' (outputs: {})",
                deployment.name,
                names(metadata.outputs.iter().map(|s| s.name.as_str()))
            )));
        }

        let mut outputs = deployment
            .model
            .predict_within(&ordered, request.deadline)
            .await?;

        let contradiction = |detail: String| {
            tracing::warn!(
                deployment = deployment.name,
                "model output contradicts its metadata: {detail}"
            );
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "model '{}' returned outputs that contradict its metadata: {detail}",
                    deployment.name
                ),
            )
        };
        let mut checked = Vec::with_capacity(metadata.outputs.len());
        for spec in &metadata.outputs {
            let position = outputs
                .iter()
                .position(|t| t.name == spec.name)
                .ok_or_else(|| contradiction(format!("output '{}' is missing", spec.name)))?;
            let output = outputs.swap_remove(position);
            tensor::check(spec, &output, "output").map_err(contradiction)?;
            checked.push(output);
        }
        if let Some(extra) = outputs.first() {
            return Err(contradiction(format!(
                "output '{}' is not declared",
                extra.name
            )));
        }
        if let Some(monitor) = &deployment.monitor {
            monitor.observe(&ordered, &checked);
        }
        if let Some(requested) = request.outputs {
            // Move the requested outputs out in the requested order; no tensor is copied.
            let mut available: Vec<Option<Tensor>> = checked.into_iter().map(Some).collect();
            checked = requested
                .iter()
                .filter_map(|name| {
                    available
                        .iter_mut()
                        .find(|t| t.as_ref().is_some_and(|t| &t.name == name))?
                        .take()
                })
                .collect();
        }
        Ok(InferResponse {
            model_name: deployment.name.clone(),
            model_version: deployment.version.clone(),
            id: request.id,
            outputs: checked,
        })
    }

    /// Serves one request of `deployment` through `protocol`: counts it in flight while it runs,
    /// then records its status and duration.
    pub async fn track(
        &self,
        deployment: &Deployment,
        protocol: Protocol,
        handler: impl Future<Output = Result<Response, ApiError>>,
    ) -> Response {
        let started = Instant::now();
        let metrics = &deployment.metrics;
        let in_flight = InFlight::enter(&metrics.in_flight);
        let response = match handler.await {
            Ok(response) => response,
            Err(error) => {
                if error.status.is_server_error() {
                    tracing::debug!(deployment = deployment.name, status = %error.status, "{}", error.message);
                }
                error.into_response()
            }
        };
        drop(in_flight);
        metrics.record_request(
            protocol,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        response
    }
}

/// Counts a request in flight until dropped, even when the client goes away mid-request.
struct InFlight<'a>(&'a prometheus::IntGauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

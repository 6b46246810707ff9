//! The HTTP routes of the prediction listener and of the metrics listener.

use crate::protocol::{mlflow, score, v1, v2};
use crate::registry::endpoint::{DEPLOYMENT_HEADER, Endpoint};
use crate::{ApiError, Dataplane, Deployment};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use kiln_metrics::{Metrics, Protocol, RouteMetrics};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

/// Shared state of the prediction routes.
#[derive(Clone)]
pub struct AppState {
    /// The dataplane.
    pub dataplane: Arc<Dataplane>,
    /// Keys accepted as `Authorization: Bearer <key>` on model and prediction routes; none
    /// means those routes are open.
    pub api_keys: Arc<Vec<String>>,
}

/// Every prediction and model route. Health routes stay open; the rest need a key when keys
/// are configured.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v2/models/{model}", get(v2_model))
        .route("/v2/models/{model}/ready", get(v2_model_ready))
        .route("/v2/models/{model}/infer", post(v2_infer))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(v2_model_version),
        )
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(v2_model_version_ready),
        )
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(v2_infer_version),
        )
        .route("/v1/models/{model}", get(v1_model).post(v1_predict))
        .route("/deployments/{model}/invocations", post(mlflow_invocations))
        .route("/deployments/{model}/score", post(azure_score));
    // Without keys the routes are open: no middleware on the request path at all.
    let protected = if state.api_keys.is_empty() {
        protected
    } else {
        protected.route_layer(middleware::from_fn_with_state(state.clone(), require_key))
    };
    Router::new()
        .route(
            "/v2/health/live",
            get(|| async { Json(json!({ "live": true })) }),
        )
        .route("/v2/health/ready", get(server_ready))
        .route("/v2", get(server_metadata))
        .merge(protected)
        .fallback(|| async { ApiError::not_found("no such route").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route",
            )
            .into_response()
        })
        .with_state(state)
}

/// The metrics listener: `GET /metrics` in the Prometheus text format.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    metrics.encode(),
                )
            }
        }),
    )
}

async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let accepted = presented.is_some_and(|key| {
        state
            .api_keys
            .iter()
            .any(|k| constant_time_eq(k.as_bytes(), key.as_bytes()))
    });
    if accepted {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "a valid key is required: Authorization: Bearer <key>",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// What a request reaches: a deployment, through an endpoint or by its own name.
struct Target {
    deployment: Arc<Deployment>,
    /// The endpoint and the index of its route taken.
    via: Option<(Arc<Endpoint>, usize)>,
}

/// Finds what `name` addresses: an endpoint (its keys, then its routing) or a deployment (its
/// own keys). `live` requests advance the endpoint's weighted rotation.
fn resolve(
    state: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    live: bool,
) -> Result<Target, ApiError> {
    let registry = &state.dataplane.registry;
    if let Some(endpoint) = registry.endpoint(name) {
        check_key(endpoint.key_digests.as_deref(), headers, "endpoint", name)?;
        let (route, deployment) = endpoint.choose(registry, headers, version, live)?;
        return Ok(Target {
            deployment,
            via: Some((endpoint, route)),
        });
    }
    let deployment = state.dataplane.deployment(name, version)?;
    check_key(
        deployment.key_digests.as_deref(),
        headers,
        "deployment",
        name,
    )?;
    Ok(Target {
        deployment,
        via: None,
    })
}

/// Checks a deployment's or endpoint's keys, when it has any: a missing or wrong key is 401.
fn check_key(
    digests: Option<&[[u8; 32]]>,
    headers: &HeaderMap,
    kind: &str,
    name: &str,
) -> Result<(), ApiError> {
    let Some(digests) = digests else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(key) = presented {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Every digest is compared, so the time taken does not say which key nearly matched.
        let matched = digests
            .iter()
            .fold(false, |found, d| found | constant_time_eq(d, &digest));
        if matched {
            return Ok(());
        }
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        format!("{kind} '{name}' needs one of its keys: Authorization: Bearer <key>"),
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn server_ready(State(state): State<AppState>) -> Response {
    if state.dataplane.is_ready() {
        Json(json!({ "ready": true })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false })),
        )
            .into_response()
    }
}

async fn server_metadata() -> Json<serde_json::Value> {
    Json(json!({
        "name": "kiln",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": v2::EXTENSIONS,
    }))
}

fn model_metadata(
    state: &AppState,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    match resolve(state, model, version, headers, false) {
        Ok(Target { deployment: d, .. }) => {
            Json(v2::model_metadata(&d.name, &d.version, d.model.metadata())).into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn model_ready(
    state: &AppState,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    match resolve(state, model, version, headers, false) {
        Ok(_) if state.dataplane.is_ready() => {
            Json(json!({ "name": model, "ready": true })).into_response()
        }
        Ok(_) => ApiError::unavailable(format!(
            "model '{model}' is not ready: server is shutting down"
        ))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn v2_model(
    State(state): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Response {
    model_metadata(&state, &model, None, &headers)
}

async fn v2_model_version(
    State(state): State<AppState>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    model_metadata(&state, &model, Some(&version), &headers)
}

async fn v2_model_ready(
    State(state): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Response {
    model_ready(&state, &model, None, &headers)
}

async fn v2_model_version_ready(
    State(state): State<AppState>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    model_ready(&state, &model, Some(&version), &headers)
}

async fn v2_infer(
    State(state): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    predict(&state, &model, None, Protocol::V2, headers, body).await
}

async fn v2_infer_version(
    State(state): State<AppState>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    predict(&state, &model, Some(&version), Protocol::V2, headers, body).await
}

/// Every prediction route: find the deployment (through an endpoint's routing, or by name),
/// then run the protocol's adapter under the dataplane's tracking (in-flight, status and
/// duration metrics). An endpoint's answer names the deployment in `kiln-deployment`; its
/// mirror, when this request is one it copies, gets the same body in the background.
async fn predict(
    state: &AppState,
    model: &str,
    version: Option<&str>,
    protocol: Protocol,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dataplane = &state.dataplane;
    let Target { deployment, via } = match resolve(state, model, version, &headers, true) {
        Ok(target) => target,
        Err(e) => return e.into_response(),
    };
    let d = &deployment;
    let started = Instant::now();
    let mirror = via.as_ref().and_then(|(endpoint, chosen)| {
        if version.is_some() || headers.contains_key(DEPLOYMENT_HEADER) {
            return None;
        }
        let index = endpoint.mirror_next().filter(|i| i != chosen)?;
        let route = &endpoint.routes[index];
        let target = dataplane.registry.get(&route.deployment, None).ok()?;
        Some((target, route.metrics.clone()))
    });
    let body = match mirror {
        None => body,
        Some((target, metrics)) => match dataplane.read_body(body).await {
            Ok(bytes) => {
                copy_to_mirror(state, target, metrics, protocol, &headers, bytes.clone());
                Body::from(bytes)
            }
            Err(e) => return dataplane.track(d, protocol, async { Err(e) }).await,
        },
    };
    let mut response = dataplane
        .track(d, protocol, adapt(dataplane, d, protocol, &headers, body))
        .await;
    if let Some((endpoint, route)) = &via {
        endpoint.routes[*route].metrics.record(
            false,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        if let Ok(name) = HeaderValue::from_str(&d.name) {
            response.headers_mut().insert(DEPLOYMENT_HEADER, name);
        }
    }
    response
}

/// The protocol's adapter for one request.
async fn adapt(
    dataplane: &Dataplane,
    d: &Deployment,
    protocol: Protocol,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    match protocol {
        Protocol::V2 => v2::infer(dataplane, d, headers, body).await,
        Protocol::V1 => v1::predict(dataplane, d, headers, body).await,
        Protocol::Mlflow => mlflow::invocations(dataplane, d, headers, body).await,
        Protocol::Score => score::score(dataplane, d, headers, body).await,
    }
}

/// Sends a copy of a request to the mirrored deployment and discards its answer; only its
/// status and time are counted (`traffic="mirror"`). The mirror's queue bounds the copies in
/// flight: past it they are refused at once.
fn copy_to_mirror(
    state: &AppState,
    target: Arc<Deployment>,
    metrics: Arc<RouteMetrics>,
    protocol: Protocol,
    headers: &HeaderMap,
    body: Bytes,
) {
    let dataplane = state.dataplane.clone();
    let headers = headers.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let status = match adapt(&dataplane, &target, protocol, &headers, Body::from(body)).await {
            Ok(response) => response.status(),
            Err(e) => e.status,
        };
        metrics.record(true, status.as_u16(), started.elapsed().as_secs_f64());
    });
}

async fn v1_model(
    State(state): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Response {
    match resolve(&state, &model, None, &headers, false) {
        Ok(_) => {
            Json(json!({ "name": model, "ready": state.dataplane.is_ready() })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn v1_predict(
    State(state): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(model) = model.strip_suffix(":predict") else {
        return ApiError::not_found("POST /v1/models/{model}:predict is the only v1 verb")
            .into_response();
    };
    predict(&state, model, None, Protocol::V1, headers, body).await
}

async fn mlflow_invocations(
    State(state): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    predict(&state, &model, None, Protocol::Mlflow, headers, body).await
}

async fn azure_score(
    State(state): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    predict(&state, &model, None, Protocol::Score, headers, body).await
}

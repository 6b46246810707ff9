//! The HTTP routes of the prediction listener and of the metrics listener.

use crate::protocol::{mlflow, score, v1, v2};
use crate::{ApiError, Dataplane, Deployment};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_metrics::{Metrics, Protocol};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;

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

/// Checks the deployment's own keys, when it has any: a missing or wrong key is 401.
fn authorize(deployment: &Deployment, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(digests) = &deployment.key_digests else {
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
        format!(
            "deployment '{}' needs one of its keys: Authorization: Bearer <key>",
            deployment.name
        ),
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
    match state
        .dataplane
        .deployment(model, version)
        .and_then(|d| authorize(&d, headers).map(|()| d))
    {
        Ok(d) => Json(v2::model_metadata(&d.name, &d.version, d.model.metadata())).into_response(),
        Err(e) => e.into_response(),
    }
}

fn model_ready(
    state: &AppState,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    match state
        .dataplane
        .deployment(model, version)
        .and_then(|d| authorize(&d, headers).map(|()| d))
    {
        Ok(d) if state.dataplane.is_ready() => {
            Json(json!({ "name": d.name, "ready": true })).into_response()
        }
        Ok(d) => ApiError::unavailable(format!(
            "model '{}' is not ready: server is shutting down",
            d.name
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

/// Every prediction route: find the deployment (404), then run the protocol's adapter under the
/// dataplane's tracking (in-flight, status and duration metrics).
async fn predict(
    state: &AppState,
    model: &str,
    version: Option<&str>,
    protocol: Protocol,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dataplane = &state.dataplane;
    let deployment = match dataplane
        .deployment(model, version)
        .and_then(|d| authorize(&d, &headers).map(|()| d))
    {
        Ok(deployment) => deployment,
        Err(e) => return e.into_response(),
    };
    let d = &deployment;
    let adapter = async {
        match protocol {
            Protocol::V2 => v2::infer(dataplane, d, &headers, body).await,
            Protocol::V1 => v1::predict(dataplane, d, &headers, body).await,
            Protocol::Mlflow => mlflow::invocations(dataplane, d, &headers, body).await,
            Protocol::Score => score::score(dataplane, d, &headers, body).await,
        }
    };
    dataplane.track(d, protocol, adapter).await
}

async fn v1_model(
    State(state): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state
        .dataplane
        .deployment(&model, None)
        .and_then(|d| authorize(&d, &headers).map(|()| d))
    {
        Ok(d) => {
            Json(json!({ "name": d.name, "ready": state.dataplane.is_ready() })).into_response()
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

//! The subset of MLflow's REST API that the `mlflow` client package uses, so that a script
//! written for an MLflow tracking server logs to Kiln unchanged: experiments, runs, params,
//! metrics, tags, batches, search of runs, artifacts through the `mlflow-artifacts` proxy, and
//! the model registry (registered models, versions, aliases).
//!
//! The tracking URI of a project is
//! `http://HOST/api/v1/teams/TEAM/workgroups/WORKGROUP/projects/PROJECT/mlflow`, with a Kiln token
//! as `MLFLOW_TRACKING_TOKEN`. MLflow's experiments are the project's experiments (MLflow's
//! default experiment `0` is the project's `default`), its runs are Kiln runs (those Kiln
//! executes get `MLFLOW_RUN_ID`, so `mlflow.start_run()` logs to them), its registered models
//! are the work group's models. MLflow names that are not Kiln names are mapped to one
//! (lowercase, other characters as `-`): `Iris Classifier` is `iris-classifier`.
//!
//! Reads need the reader role in the work group; anything that writes needs contributor.
//! Errors have MLflow's shape, `{"error_code": ..., "message": ...}`.

mod registry;
mod runs;
pub(crate) mod wire;

use crate::access::Scope;
use crate::auth::WorkgroupRole;
use crate::runs::tracking::{self, artifact_area};
use crate::{ControlError, ControlPlane};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// An error in MLflow's shape.
pub struct MlflowError(ControlError);

impl From<ControlError> for MlflowError {
    fn from(error: ControlError) -> Self {
        MlflowError(error)
    }
}

impl From<sqlx::Error> for MlflowError {
    fn from(error: sqlx::Error) -> Self {
        MlflowError(error.into())
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let (status, code) = match &self.0 {
            ControlError::Invalid(_) | ControlError::TooLarge(_) => {
                (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
            }
            ControlError::NotFound(_) => (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
            ControlError::Conflict(m) if m.contains("already exists") => {
                (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS")
            }
            ControlError::Conflict(_) => (StatusCode::BAD_REQUEST, "INVALID_STATE"),
            ControlError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            ControlError::Forbidden(_) => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
            ControlError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        };
        let message = match &self.0 {
            ControlError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("mlflow API: {}", self.0);
        }
        let error = wire::Error {
            error_code: code,
            message,
        };
        (status, Json(error)).into_response()
    }
}

/// A reply of the MLflow API.
pub type Reply = Result<Response, MlflowError>;

/// A successful reply: `body` as JSON.
pub fn reply<T: Serialize>(body: T) -> Reply {
    Ok(Json(body).into_response())
}

/// What a request carries: its query parameters and JSON body, merged (GETs use the query,
/// POSTs the body).
pub struct Request {
    fields: Map<String, Value>,
}

impl Request {
    fn parse(query: Option<&str>, body: &Bytes) -> Result<Request, ControlError> {
        let mut fields = Map::new();
        if let Some(query) = query {
            for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
                let value = Value::String(value.into_owned());
                match fields.get_mut(key.as_ref()) {
                    // A repeated key (`stages=a&stages=b`) is a list.
                    Some(Value::Array(items)) => items.push(value),
                    Some(existing) => {
                        let first = existing.take();
                        *existing = Value::Array(vec![first, value]);
                    }
                    None => {
                        fields.insert(key.into_owned(), value);
                    }
                }
            }
        }
        if !body.is_empty() {
            let parsed: Value = serde_json::from_slice(body)
                .map_err(|e| ControlError::Invalid(format!("the body is not JSON: {e}")))?;
            match parsed {
                Value::Object(map) => fields.extend(map),
                _ => {
                    return Err(ControlError::Invalid(
                        "the body is not a JSON object".into(),
                    ));
                }
            }
        }
        Ok(Request { fields })
    }

    /// A field as text, if given.
    pub fn text(&self, key: &str) -> Option<String> {
        match self.fields.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A required text field.
    pub fn required(&self, key: &str) -> Result<String, ControlError> {
        self.text(key).filter(|s| !s.is_empty()).ok_or_else(|| {
            ControlError::Invalid(format!("missing value for required parameter '{key}'"))
        })
    }

    /// An integer field (a JSON number or a string of one), if given.
    pub fn integer(&self, key: &str) -> Result<Option<i64>, ControlError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ControlError::Invalid(format!("'{key}' must be an integer"))),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| ControlError::Invalid(format!("'{key}' must be an integer"))),
            Some(_) => Err(ControlError::Invalid(format!("'{key}' must be an integer"))),
        }
    }

    /// A raw field.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// A list of `{key, value}` objects as pairs (tags, params).
    pub fn pairs(&self, key: &str) -> Result<Vec<(String, String)>, ControlError> {
        let Some(items) = self.fields.get(key) else {
            return Ok(vec![]);
        };
        let items = items
            .as_array()
            .ok_or_else(|| ControlError::Invalid(format!("'{key}' must be a list")))?;
        items
            .iter()
            .map(|item| {
                let k = item.get("key").and_then(Value::as_str);
                let v = item.get("value").map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                match (k, v) {
                    (Some(k), Some(v)) => Ok((k.to_string(), v)),
                    _ => Err(ControlError::Invalid(format!(
                        "each of '{key}' needs a key and a value"
                    ))),
                }
            })
            .collect()
    }
}

/// The project an MLflow request addresses, resolved in the caller's work group.
pub struct Project {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// MLflow's name for something, as a Kiln name: lowercase, anything else outside
/// `a-z 0-9 - _ .` as `-`, at most 63 characters.
pub fn kiln_name(name: &str) -> String {
    let mut mapped: String = name
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    while mapped.starts_with(['-', '_', '.']) {
        mapped.remove(0);
    }
    mapped.truncate(63);
    mapped
}

fn require_contributor(scope: &Scope) -> Result<(), ControlError> {
    let workgroup = scope.workgroup()?;
    if workgroup.role < WorkgroupRole::Contributor {
        return Err(ControlError::Forbidden(format!(
            "this needs the contributor role in work group '{}'; you are {}",
            workgroup.name,
            workgroup.role.as_str()
        )));
    }
    Ok(())
}

/// Operations that only read, whatever their method.
const READS: &[&str] = &[
    "experiments/get",
    "experiments/get-by-name",
    "experiments/search",
    "experiments/list",
    "runs/get",
    "runs/search",
    "metrics/get-history",
    "artifacts/list",
    "registered-models/get",
    "registered-models/search",
    "registered-models/list",
    "registered-models/get-latest-versions",
    "registered-models/alias:GET",
    "model-versions/get",
    "model-versions/search",
    "model-versions/get-download-uri",
];

/// `/mlflow/api/2.0/mlflow/{op}`: every tracking and registry operation.
pub async fn dispatch(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path(params): Path<HashMap<String, String>>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    match dispatch_op(&control, &scope, &params, &method, query.as_deref(), &body).await {
        Ok(reply) => reply,
        Err(e) => e.into_response(),
    }
}

async fn dispatch_op(
    control: &ControlPlane,
    scope: &Scope,
    params: &HashMap<String, String>,
    method: &Method,
    query: Option<&str>,
    body: &Bytes,
) -> Reply {
    let op = params.get("op").map(String::as_str).unwrap_or("");
    let request = Request::parse(query, body)?;
    let keyed = format!("{op}:{method}");
    if !READS.contains(&op) && !READS.contains(&keyed.as_str()) {
        require_contributor(scope)?;
    }
    let project = project(control, scope, params).await?;
    let p = &project;
    let r = &request;
    match (method.as_str(), op) {
        ("POST", "experiments/create") => runs::create_experiment(control, p, r).await,
        ("GET", "experiments/get") => runs::get_experiment(control, p, r).await,
        ("GET", "experiments/get-by-name") => runs::get_experiment_by_name(control, p, r).await,
        ("POST" | "GET", "experiments/search" | "experiments/list") => {
            runs::search_experiments(control, p, r).await
        }
        ("POST", "runs/create") => runs::create_run(control, scope, p, r).await,
        ("GET", "runs/get") => runs::get_run(control, p, r).await,
        ("POST", "runs/update") => runs::update_run(control, p, r).await,
        ("POST", "runs/log-metric") => runs::log_metric(control, p, r).await,
        ("POST", "runs/log-parameter") => runs::log_param(control, p, r).await,
        ("POST", "runs/set-tag") => runs::set_tag(control, p, r).await,
        ("POST", "runs/delete-tag") => runs::delete_tag(control, p, r).await,
        ("POST", "runs/log-batch") => runs::log_batch(control, p, r).await,
        ("POST", "runs/search") => runs::search_runs(control, p, r).await,
        ("GET", "metrics/get-history") => runs::metric_history(control, p, r).await,
        ("GET", "artifacts/list") => runs::list_artifacts(control, p, r).await,
        ("POST", "registered-models/create") => registry::create_model(control, scope, r).await,
        ("GET", "registered-models/get") => registry::get_model(control, scope, r).await,
        ("GET" | "POST", "registered-models/search" | "registered-models/list") => {
            registry::search_models(control, scope, r).await
        }
        ("POST" | "GET", "registered-models/get-latest-versions") => {
            registry::latest_versions(control, scope, r).await
        }
        ("POST", "registered-models/alias") => registry::set_alias(control, scope, r).await,
        ("DELETE", "registered-models/alias") => registry::delete_alias(control, scope, r).await,
        ("GET", "registered-models/alias") => registry::get_by_alias(control, scope, r).await,
        ("POST", "model-versions/create") => registry::create_version(control, scope, p, r).await,
        ("GET", "model-versions/get") => registry::get_version(control, scope, r).await,
        ("GET" | "POST", "model-versions/search") => {
            registry::search_versions(control, scope, r).await
        }
        ("GET", "model-versions/get-download-uri") => {
            registry::download_uri(control, scope, r).await
        }
        _ => Err(MlflowError(ControlError::NotFound(format!(
            "{method} {op} is not part of the MLflow API that Kiln serves"
        )))),
    }
}

async fn project(
    control: &ControlPlane,
    scope: &Scope,
    params: &HashMap<String, String>,
) -> Result<Project, ControlError> {
    let name = params
        .get("project")
        .ok_or_else(|| ControlError::Internal("route without {project}".into()))?;
    let id = crate::store::projects::project_id(control, scope, name).await?;
    Ok(Project {
        id,
        name: name.clone(),
    })
}

/// The run an `mlflow-artifacts` path starts with (`EXPERIMENT/RUN/artifacts/...`), checked to
/// be in the project, and the rest of the path.
async fn artifact_target(
    control: &ControlPlane,
    project: &Project,
    path: &str,
) -> Result<(String, String), ControlError> {
    let mut parts = path.trim_matches('/').splitn(4, '/');
    let (experiment, run, root) = (parts.next(), parts.next(), parts.next());
    let rest = parts.next().unwrap_or("").to_string();
    let (Some(experiment), Some(run), Some("artifacts")) = (experiment, run, root) else {
        return Err(ControlError::Invalid(format!(
            "'{path}' is not a run's artifact path (EXPERIMENT/RUN/artifacts/...)"
        )));
    };
    let at = (experiment, project.id.as_str());
    if !crate::store::runs::is_of_experiment(control.db(), run, at).await? {
        return Err(ControlError::NotFound(format!("run '{run}' not found")));
    }
    let run = run.to_string();
    if !rest.is_empty() {
        tracking::check_artifact(&rest)?;
    }
    Ok((run, rest))
}

/// `/mlflow/api/2.0/mlflow-artifacts/artifacts/{path}`: upload (PUT) and download (GET).
pub async fn artifact(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path(params): Path<HashMap<String, String>>,
    method: Method,
    body: Body,
) -> Response {
    let result = async {
        let project = project(&control, &scope, &params).await?;
        let path = params.get("path").cloned().unwrap_or_default();
        let (run, rest) = artifact_target(&control, &project, &path).await?;
        if rest.is_empty() {
            return Err(ControlError::Invalid(
                "an artifact path names a file".into(),
            ));
        }
        match method {
            Method::PUT => {
                require_contributor(&scope)?;
                let limit = control.settings().max_upload_bytes as u64;
                control
                    .artifacts()
                    .put_stream(&artifact_area(&run), &rest, body.into_data_stream(), limit)
                    .await?;
                Ok(Json(wire::Empty {}).into_response())
            }
            Method::GET => {
                let (size, stream) = control
                    .artifacts()
                    .get_stream(&artifact_area(&run), &rest)
                    .await?;
                Ok((
                    [
                        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                        (header::CONTENT_LENGTH, size.to_string()),
                    ],
                    axum::body::Body::from_stream(stream),
                )
                    .into_response())
            }
            _ => Err(ControlError::Invalid(format!(
                "{method} is not supported on artifacts"
            ))),
        }
    }
    .await;
    result.unwrap_or_else(|e: ControlError| MlflowError(e).into_response())
}

/// `GET /mlflow/api/2.0/mlflow-artifacts/artifacts?path=`: the entries directly under a
/// directory, by their base names.
pub async fn list_artifacts(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let project = project(&control, &scope, &params).await?;
        let request = Request::parse(query.as_deref(), &Bytes::new())?;
        let path = request.text("path").unwrap_or_default();
        let (run, rest) = artifact_target(&control, &project, &path).await?;
        let files = tracking::list_artifacts(&control, &run, &rest)
            .await?
            .into_iter()
            .map(|(path, is_dir, size)| {
                let name = path.rsplit('/').next().unwrap_or(&path).to_string();
                wire::FileInfo::of(name, is_dir, size)
            })
            .collect();
        Ok::<_, ControlError>(Json(wire::Files { files }).into_response())
    }
    .await;
    result.unwrap_or_else(|e| MlflowError(e).into_response())
}

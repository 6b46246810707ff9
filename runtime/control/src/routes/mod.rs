//! The route table: every management route with its method, path, operation id, the access it
//! needs and its handler. The router, the authorization layer and the OpenAPI document are all
//! made from this one table, so a route cannot exist without a declared access.

use crate::access::{Access, authorize};
use crate::{ControlError, ControlPlane};
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

/// What a route's request body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// None.
    Empty,
    /// A JSON object.
    Json,
    /// A tar archive (`application/x-tar`).
    Tar,
    /// A file, as it is (`application/octet-stream`).
    Bytes,
}

/// One management route.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path, with `{param}` segments.
    pub path: &'static str,
    /// OpenAPI `operationId`.
    pub operation: &'static str,
    /// One line for the API document.
    pub summary: &'static str,
    /// What the caller needs.
    pub access: Access,
    /// The request body.
    pub body: Body,
    handler: MethodRouter<ControlPlane>,
}

const TEAM: &str = "/api/v1/teams/{team}";
const WG: &str = "/api/v1/teams/{team}/workgroups/{workgroup}";

macro_rules! route {
    ($method:ident, $path:expr, $op:literal, $summary:literal, $access:expr, $body:ident, $handler:expr) => {
        $crate::routes::Route {
            method: ::axum::http::Method::$method,
            path: $path,
            operation: $op,
            summary: $summary,
            access: $access,
            body: $crate::routes::Body::$body,
            handler: $handler,
        }
    };
}

mod identity;
mod models;
mod projects;
mod runs;
mod runtime;
mod serving;
mod targets;
mod workgroups;

/// Every management route, in the order of the API document.
pub fn table() -> Vec<Route> {
    let parts: [fn() -> Vec<Route>; 8] = [
        identity::routes,
        workgroups::routes,
        projects::routes,
        runs::routes,
        models::routes,
        serving::routes,
        targets::routes,
        runtime::routes,
    ];
    parts.into_iter().flat_map(|routes| routes()).collect()
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi_route() -> Json<Value> {
    Json(openapi())
}

/// The router of the management API, every route behind [`authorize`] with its access.
pub fn router(control: ControlPlane) -> Router {
    let json_limit = DefaultBodyLimit::max(1 << 20);
    let upload_limit = DefaultBodyLimit::max(control.settings().max_upload_bytes);
    let mut router = Router::new();
    for route in table() {
        let limit = if matches!(route.body, Body::Tar | Body::Bytes) {
            upload_limit
        } else {
            json_limit
        };
        let handler = route
            .handler
            .route_layer(from_fn_with_state(
                (control.clone(), route.access),
                authorize,
            ))
            .layer(limit);
        router = router.route(route.path, handler);
    }
    router
        .fallback(|| async { ControlError::NotFound("no such route".into()).into_response() })
        .method_not_allowed_fallback(|| async {
            (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({ "error": "method not allowed on this route" })),
            )
                .into_response()
        })
        .with_state(control)
}

/// The OpenAPI 3.1 document of the management API, made from the route table. Each operation
/// carries `x-kiln-access`, the access it needs.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in table() {
        let parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({
                    "name": name.trim_start_matches('*'),
                    "in": "path",
                    "required": true,
                    "schema": { "type": "string" },
                })
            })
            .collect();
        let mut operation = json!({
            "operationId": route.operation,
            "summary": route.summary,
            "tags": [route.path.split('/').nth(3).unwrap_or("api")],
            "parameters": parameters,
            "x-kiln-access": route.access.label(),
            "responses": {
                "200": { "description": "OK", "content": { "application/json": {} } },
                "400": { "$ref": "#/components/responses/Error" },
                "401": { "$ref": "#/components/responses/Error" },
                "403": { "$ref": "#/components/responses/Error" },
                "404": { "$ref": "#/components/responses/Error" },
            },
        });
        if route.access == Access::Open {
            operation["security"] = json!([]);
        }
        match route.body {
            Body::Empty => {}
            Body::Json => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/json": { "schema": { "type": "object" } } },
                });
            }
            Body::Tar => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/x-tar": { "schema": { "type": "string", "format": "binary" } } },
                });
            }
            Body::Bytes => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } },
                });
            }
        }
        let entry = paths
            .entry(route.path.replace("{*", "{"))
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kiln control plane",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Teams, work groups, projects, models, images and deployments. Authenticate with `Authorization: Bearer <token>`.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "token": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "properties": { "error": { "type": "string" } },
                        "required": ["error"],
                    } } },
                },
            },
        },
        "security": [{ "token": [] }],
    })
}

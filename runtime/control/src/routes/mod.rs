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
use serde_json::{Value, json};

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
    /// The group of routes it belongs to in the API document.
    pub tag: &'static str,
    /// Its schemas and what a success answers.
    pub doc: doc::Doc,
    handler: MethodRouter<ControlPlane>,
}

impl Route {
    /// The route, answering `answer` on success instead of `200` with JSON.
    #[must_use]
    pub fn answers(mut self, answer: doc::Answer) -> Route {
        self.doc.answer = answer;
        self
    }

    /// The route, documented with the query parameters of `Q` (for a handler that reads its
    /// query string itself).
    #[must_use]
    pub fn query<Q: schemars::JsonSchema>(mut self) -> Route {
        self.doc.query = Some(doc::schema_of::<Q>);
        self
    }
}

const TEAM: &str = "/api/v1/teams/{team}";
const WG: &str = "/api/v1/teams/{team}/workgroups/{workgroup}";

/// One row of the table. The handler documents itself: its JSON answer, JSON body and query
/// string are read off its signature ([`doc::of`]).
macro_rules! route {
    ($method:ident, $path:expr, $op:literal, $summary:literal, $access:expr, $body:ident, $router:ident($handler:path)) => {
        $crate::routes::Route {
            method: ::axum::http::Method::$method,
            path: $path,
            operation: $op,
            summary: $summary,
            access: $access,
            body: $crate::routes::Body::$body,
            tag: "",
            doc: $crate::routes::doc::of(&$handler),
            handler: ::axum::routing::$router($handler),
        }
    };
}

pub mod doc;
mod openapi;
pub mod reference;

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
    parts
        .into_iter()
        .zip(openapi::TAGS)
        .flat_map(|(routes, (tag, _))| {
            routes()
                .into_iter()
                .map(move |route| Route { tag, ..route })
        })
        .collect()
}

/// The answer of `GET /api/v1/health`.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Health {
    /// Always `ok`: the control plane answers.
    status: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
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
        .merge(crate::ui::router())
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

pub use openapi::openapi;

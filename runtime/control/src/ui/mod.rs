//! The web UI, the Workbench in a browser: pages rendered on the server from the same
//! `kiln_api::manage` types the REST API returns, got from the same domain functions, through
//! the same authorization (`access::scope`). Templates are askama's, compiled into the binary
//! and escaped by default; the style sheet is embedded. No page needs anything from outside
//! the installation, and the `Content-Security-Policy` allows nothing else.

mod pages;
pub mod session;

use crate::{ControlError, ControlPlane};
use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

/// The style sheet, embedded.
const STYLE: &str = include_str!("../../assets/kiln.css");

/// What every page allows itself: its own style sheet and forms, nothing else.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages of the web UI.
pub fn router() -> Router<ControlPlane> {
    Router::new()
        .route("/", get(pages::home))
        .route("/sign-in", get(session::form).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route(
            "/teams/{team}/workgroups/{workgroup}",
            get(pages::workgroup),
        )
        .route("/assets/kiln.css", get(style))
        .layer(from_fn(protect))
}

/// The headers of every page: the CSP, no framing, no sniffing, no caching of pages that show
/// what a user may see.
async fn protect(request: axum::extract::Request, next: Next) -> Response {
    let asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// A page, rendered.
fn render(status: StatusCode, page: &impl Template) -> Result<Response, PageError> {
    let html = page
        .render()
        .map_err(|e| ControlError::Internal(format!("a page did not render: {e}")))?;
    Ok((status, Html(html)).into_response())
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignIn {
    csrf: String,
    next: String,
    error: Option<String>,
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

/// An error, answered as a page with the status the API would answer.
pub struct PageError(pub ControlError);

impl From<ControlError> for PageError {
    fn from(error: ControlError) -> Self {
        PageError(error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let message = self.0.public_message();
        let page = ErrorPage {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}

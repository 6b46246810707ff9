//! Signing in and out of the web UI.
//!
//! A browser signs in with an API token. The session is a row (`store::sessions`) holding the
//! SHA-256 of a random secret that only the browser has, in a cookie that is `HttpOnly`,
//! `SameSite=Strict` and, under TLS, `Secure`. A session ends after 12 hours, when its token
//! expires or is revoked, when its user is disabled, or when the user signs out. Every form
//! carries the session's form token (CSRF), and every form post must come from a page of this
//! origin (`Sec-Fetch-Site` and `Origin`), so a cross-site post is refused twice over.

use super::{PageError, SignIn, render};
use crate::auth::{self, Principal, TokenBy, digest, new_secret};
use crate::db::now_ms;
use crate::store::sessions as store;
use crate::{ControlError, ControlPlane};
use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The cookie of a signed-in browser.
pub const SESSION_COOKIE: &str = "kiln_session";
/// The cookie of the sign-in form's CSRF token (a browser has no session yet).
const SIGN_IN_COOKIE: &str = "kiln_sign_in";
/// How long a session lasts at most.
const LIFETIME_MS: i64 = 12 * 3600 * 1000;

/// A cookie's value in a request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` under TLS.
fn set_cookie(
    control: &ControlPlane,
    name: &str,
    value: &str,
    path: &str,
    max_age_s: i64,
) -> HeaderValue {
    let secure = if control.settings().api_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Refuses a form post that does not come from a page of this origin.
pub fn same_origin(headers: &HeaderMap) -> Result<(), ControlError> {
    let refused = || ControlError::Forbidden("a cross-site request is refused".into());
    if let Some(site) = headers.get("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return Err(refused());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = origin.to_str().map_err(|_| refused())?;
        let from = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if from.is_none() || from != host {
            return Err(refused());
        }
    }
    Ok(())
}

/// Refuses a form whose CSRF token is not the one expected.
pub fn check_form(expected: &str, given: &str) -> Result<(), ControlError> {
    // Digests compared, so the time taken says nothing about the expected token.
    if expected.is_empty() || digest(expected) != digest(given) {
        return Err(ControlError::Forbidden(
            "the form has expired or did not come from Kiln: reload the page".into(),
        ));
    }
    Ok(())
}

/// Where a page sends a signed-out browser: sign in, then come back.
fn to_sign_in(parts: &Parts) -> Response {
    let back = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let query = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
    Redirect::to(&format!("/sign-in?{query}")).into_response()
}

/// A path this site may send a browser to after signing in: its own, nothing else.
fn local(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/",
    }
}

/// A signed-in browser: who it is and the form token its pages carry.
pub struct Session {
    /// Who signed in.
    pub principal: Principal,
    /// The form token of this session.
    pub csrf: String,
    id: String,
}

impl FromRequestParts<ControlPlane> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        control: &ControlPlane,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_sign_in(parts));
        };
        let id = digest(&secret);
        let row = store::find(control.db(), &id)
            .await
            .map_err(|e| PageError(e).into_response())?;
        let Some(row) = row.filter(|r| r.expires_at > now_ms()) else {
            return Err(to_sign_in(parts));
        };
        match auth::principal(control.db(), TokenBy::Id(&row.token_id)).await {
            Ok(principal) => Ok(Session {
                principal,
                csrf: row.csrf,
                id,
            }),
            Err(ControlError::Unauthorized(_)) => {
                store::close(control.db(), &id)
                    .await
                    .map_err(|e| PageError(e).into_response())?;
                Err(to_sign_in(parts))
            }
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

/// `?next=`: where to go after signing in.
#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /sign-in`: the form, with a fresh CSRF token in its own cookie.
pub async fn form(
    State(control): State<ControlPlane>,
    Query(next): Query<Next>,
) -> Result<Response, PageError> {
    let csrf = new_secret("");
    let page = SignIn {
        csrf: csrf.clone(),
        next: local(next.next.as_deref()).to_string(),
        error: None,
    };
    let mut response = render(StatusCode::OK, &page)?;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&control, SIGN_IN_COOKIE, &csrf, "/sign-in", 3600),
    );
    Ok(response)
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /sign-in`: a session for a valid token, or the form again with the reason.
pub async fn sign_in(
    State(control): State<ControlPlane>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    check_form(
        &cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default(),
        &form.csrf,
    )?;
    let next = local(form.next.as_deref()).to_string();
    let refused = |status: StatusCode, error: String| {
        render(
            status,
            &SignIn {
                csrf: form.csrf.clone(),
                next: next.clone(),
                error: Some(error),
            },
        )
    };
    let principal =
        match auth::principal(control.db(), TokenBy::Digest(&digest(form.token.trim()))).await {
            Ok(principal) => principal,
            Err(ControlError::Unauthorized(why)) => {
                return refused(StatusCode::UNAUTHORIZED, why);
            }
            Err(e) => return Err(e.into()),
        };
    if principal.runtime || principal.only_workgroup.is_some() {
        let why = "a runtime node's or a run's token cannot sign in: use your own".to_string();
        return refused(StatusCode::FORBIDDEN, why);
    }
    let now = now_ms();
    let expires_at = principal
        .token_expires
        .map_or(now + LIFETIME_MS, |t| t.min(now + LIFETIME_MS));
    let secret = new_secret("");
    let csrf = new_secret("");
    store::open(
        control.db(),
        &digest(&secret),
        &principal.token_id,
        &csrf,
        now,
        expires_at,
    )
    .await?;
    tracing::info!(user = %principal.name, "signed in to the web UI");
    let mut response = Redirect::to(&next).into_response();
    let max_age = (expires_at - now) / 1000;
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&control, SESSION_COOKIE, &secret, "/", max_age),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&control, SIGN_IN_COOKIE, "", "/sign-in", 0),
    );
    Ok(response)
}

/// A form that only carries its CSRF token.
#[derive(Deserialize)]
pub struct Confirmed {
    #[serde(default)]
    csrf: String,
}

/// `POST /sign-out`: ends the session.
pub async fn sign_out(
    State(control): State<ControlPlane>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<Confirmed>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    check_form(&session.csrf, &form.csrf)?;
    store::close(control.db(), &session.id).await?;
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&control, SESSION_COOKIE, "", "/", 0),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn cookies_are_read_by_name() {
        let h = headers(&[("cookie", "a=1; kiln_session=s3cret"), ("cookie", "b=2")]);
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("s3cret"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "kiln"), None);
    }

    #[test]
    fn only_same_origin_posts_pass() {
        let ok = headers(&[("host", "kiln:8070"), ("origin", "http://kiln:8070")]);
        assert!(same_origin(&ok).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&HeaderMap::new()).is_ok());
        for bad in [
            headers(&[("host", "kiln:8070"), ("origin", "http://evil.example")]),
            headers(&[("host", "kiln:8070"), ("origin", "null")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
        ] {
            assert!(matches!(same_origin(&bad), Err(ControlError::Forbidden(_))));
        }
    }

    #[test]
    fn form_tokens_must_match() {
        assert!(check_form("abc", "abc").is_ok());
        assert!(check_form("abc", "abd").is_err());
        assert!(check_form("", "").is_err());
    }

    #[test]
    fn a_browser_is_sent_only_to_this_site() {
        assert_eq!(local(Some("/teams/t")), "/teams/t");
        for away in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "teams",
        ] {
            assert_eq!(local(Some(away)), "/", "{away}");
        }
        assert_eq!(local(None), "/");
    }
}

//! Users (created by administrators: there is no self-signup) and API tokens (each user's own).

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::auth::issue_token;
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

/// id, name, created, expires, revoked.
type TokenRow = (String, String, i64, Option<i64>, Option<i64>);

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// `GET /api/v1/whoami`.
pub async fn whoami(Extension(scope): Extension<Scope>) -> Reply {
    let p = scope.principal()?;
    Ok((
        StatusCode::OK,
        Json(json!({ "name": p.name, "admin": p.admin })),
    ))
}

/// A new user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    admin: bool,
}

/// `POST /api/v1/users`: creates a user and returns its first token (shown once).
pub async fn create(
    State(control): State<ControlPlane>,
    JsonBody(body): JsonBody<NewUser>,
) -> Reply {
    check_name("user", &body.name)?;
    let id = new_id();
    sqlx::query("INSERT INTO users (id, name, is_admin, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(&body.name)
        .bind(i64::from(body.admin))
        .bind(now_ms())
        .execute(control.db().pool())
        .await
        .map_err(ControlError::exists("user", &body.name))?;
    let (token_id, token) = issue_token(control.db(), &id, "initial", None).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": body.name,
            "admin": body.admin,
            "token": { "id": token_id, "token": token, "note": "shown once: store it now" },
        })),
    ))
}

/// `GET /api/v1/users`.
pub async fn list(State(control): State<ControlPlane>, Query(page): Query<Page>) -> Reply {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT name, is_admin, created_at FROM users WHERE name > $1 ORDER BY name LIMIT $2",
    )
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(name, admin, created)| {
            json!({ "name": name, "admin": admin != 0, "created": time(created) })
        })
        .collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// A new token of the caller's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    /// Lifetime in seconds; none for a token that lasts until revoked.
    expires_in_seconds: Option<u64>,
}

/// `POST /api/v1/tokens`: a new token for the caller (shown once).
pub async fn create_token(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewToken>,
) -> Reply {
    check_name("token", &body.name)?;
    let expires_at = match body.expires_in_seconds {
        Some(0) => {
            return Err(ControlError::Invalid(
                "expires_in_seconds must be positive".into(),
            ));
        }
        Some(s) if s > 10 * 365 * 86_400 => {
            return Err(ControlError::Invalid(
                "expires_in_seconds is at most ten years".into(),
            ));
        }
        Some(s) => Some(now_ms() + (s as i64) * 1000),
        None => None,
    };
    let (id, token) = issue_token(
        control.db(),
        &scope.principal()?.user_id,
        &body.name,
        expires_at,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "name": body.name,
            "token": token,
            "expires": expires_at.map(time),
            "note": "shown once: store it now",
        })),
    ))
}

/// `GET /api/v1/tokens`: the caller's tokens (never their values).
pub async fn list_tokens(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
) -> Reply {
    let rows: Vec<TokenRow> = sqlx::query_as(
        "SELECT id, name, created_at, expires_at, revoked_at FROM tokens WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(&scope.principal()?.user_id)
    .fetch_all(control.db().pool())
    .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(id, name, created, expires, revoked)| {
            json!({
                "id": id,
                "name": name,
                "created": time(created),
                "expires": expires.map(time),
                "revoked": revoked.map(time),
            })
        })
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({ "items": items, "next": null })),
    ))
}

/// `DELETE /api/v1/tokens/{token}`: revokes one of the caller's tokens.
pub async fn revoke_token(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path(token): Path<String>,
) -> Reply {
    let done = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(&token)
    .bind(&scope.principal()?.user_id)
    .execute(control.db().pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!("token '{token}' not found")));
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "id": token, "revoked": true })),
    ))
}

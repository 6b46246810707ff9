//! Users (created by administrators: there is no self-signup) and API tokens (each user's own).
//!
//! A stolen token can be contained: an administrator revokes any token, or disables its user
//! (every token of a disabled user answers 401 until the user is enabled again), and a token
//! only mints tokens that expire no later than itself.

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
type TokenRow = (
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

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
    /// A runtime node's user: its tokens reach the runtime routes (desired deployments,
    /// endpoints, status and drift reports) and nothing else. Give a node one instead of an
    /// admin token.
    #[serde(default)]
    runtime: bool,
}

/// `POST /api/v1/users`: creates a user and returns its first token (shown once).
pub async fn create(
    State(control): State<ControlPlane>,
    JsonBody(body): JsonBody<NewUser>,
) -> Reply {
    check_name("user", &body.name)?;
    if body.admin && body.runtime {
        return Err(ControlError::Invalid(
            "a user is an admin or a runtime node's, not both".into(),
        ));
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO users (id, name, is_admin, is_runtime, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&body.name)
    .bind(i64::from(body.admin))
    .bind(i64::from(body.runtime))
    .bind(now_ms())
        .execute(control.db().pool())
        .await
        .map_err(ControlError::exists("user", &body.name))?;
    let (token_id, token) = issue_token(control.db(), &id, "initial", None, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": body.name,
            "admin": body.admin,
            "runtime": body.runtime,
            "token": { "id": token_id, "token": token, "note": "shown once: store it now" },
        })),
    ))
}

fn user_json((name, admin, created, disabled): (String, i64, i64, Option<i64>)) -> Value {
    json!({
        "name": name,
        "admin": admin != 0,
        "created": time(created),
        "disabled": disabled.map(time),
    })
}

/// `GET /api/v1/users`.
pub async fn list(State(control): State<ControlPlane>, Query(page): Query<Page>) -> Reply {
    let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT name, is_admin, created_at, disabled_at FROM users WHERE name > $1 \
         ORDER BY name LIMIT $2",
    )
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows.into_iter().map(user_json).collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// A change to a user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// Disable (every token answers 401) or enable the user again.
    disabled: Option<bool>,
}

async fn user_id(control: &ControlPlane, name: &str) -> Result<String, ControlError> {
    sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(control.db().pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("user '{name}' not found")))
}

/// `PATCH /api/v1/users/{user}`: disables or enables a user.
pub async fn update(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path(user): Path<String>,
    JsonBody(body): JsonBody<UserChange>,
) -> Reply {
    let id = user_id(&control, &user).await?;
    if let Some(disabled) = body.disabled {
        if disabled && id == scope.principal()?.user_id {
            return Err(ControlError::Invalid(
                "you cannot disable yourself: another admin can".into(),
            ));
        }
        sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
            .bind(disabled.then(now_ms))
            .bind(&id)
            .execute(control.db().pool())
            .await?;
        tracing::info!(user = %user, disabled, by = %scope.principal()?.name, "user changed");
    }
    let row: (String, i64, i64, Option<i64>) =
        sqlx::query_as("SELECT name, is_admin, created_at, disabled_at FROM users WHERE id = $1")
            .bind(&id)
            .fetch_one(control.db().pool())
            .await?;
    Ok((StatusCode::OK, Json(user_json(row))))
}

fn tokens_json(rows: Vec<TokenRow>) -> Value {
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(id, name, created, expires, revoked, parent)| {
            json!({
                "id": id,
                "name": name,
                "created": time(created),
                "expires": expires.map(time),
                "revoked": revoked.map(time),
                "parent": parent,
            })
        })
        .collect();
    json!({ "items": items, "next": null })
}

async fn tokens_of(control: &ControlPlane, user_id: &str) -> Result<Vec<TokenRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT id, name, created_at, expires_at, revoked_at, parent_id FROM tokens \
         WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(control.db().pool())
    .await?)
}

/// Revokes a token of `user_id` and every token minted from it.
async fn revoke(control: &ControlPlane, user_id: &str, token: &str) -> Reply {
    let revoked = crate::auth::revoke_tree(control.db(), user_id, token)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("token '{token}' not found")))?;
    Ok((
        StatusCode::OK,
        Json(json!({ "id": token, "revoked": true, "children_revoked": &revoked[1..] })),
    ))
}

/// `GET /api/v1/users/{user}/tokens`: a user's tokens (never their values), for an admin.
pub async fn list_user_tokens(
    State(control): State<ControlPlane>,
    Path(user): Path<String>,
) -> Reply {
    let id = user_id(&control, &user).await?;
    Ok((
        StatusCode::OK,
        Json(tokens_json(tokens_of(&control, &id).await?)),
    ))
}

/// `DELETE /api/v1/users/{user}/tokens/{token}`: an admin revokes any user's token.
pub async fn revoke_user_token(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((user, token)): Path<(String, String)>,
) -> Reply {
    let id = user_id(&control, &user).await?;
    let reply = revoke(&control, &id, &token).await?;
    tracing::info!(user = %user, token = %token, by = %scope.principal()?.name, "token revoked");
    Ok(reply)
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
    // A token mints only tokens that end no later than itself.
    let caller = scope.principal()?;
    let expires_at = match (caller.token_expires, expires_at) {
        (Some(limit), Some(asked)) if asked > limit => {
            return Err(ControlError::Invalid(format!(
                "a token cannot outlive the token that creates it (which expires at {}): ask for \
                 at most {} seconds",
                time(limit),
                ((limit - now_ms()) / 1000).max(0)
            )));
        }
        (Some(limit), None) => Some(limit),
        (_, asked) => asked,
    };
    let (id, token) = issue_token(
        control.db(),
        &caller.user_id,
        &body.name,
        expires_at,
        Some(&caller.token_id),
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
    let rows = tokens_of(&control, &scope.principal()?.user_id).await?;
    Ok((StatusCode::OK, Json(tokens_json(rows))))
}

/// `DELETE /api/v1/tokens/{token}`: revokes one of the caller's tokens.
pub async fn revoke_token(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path(token): Path<String>,
) -> Reply {
    revoke(&control, &scope.principal()?.user_id, &token).await
}

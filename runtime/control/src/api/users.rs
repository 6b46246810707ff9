//! Users (created by administrators: there is no self-signup) and API tokens (each user's own).
//!
//! A stolen token can be contained: an administrator revokes any token, or disables its user
//! (every token of a disabled user answers 401 until the user is enabled again), and a token
//! only mints tokens that expire no later than itself.

use super::Query;
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::auth::issue_token;
use crate::db::{new_id, now_ms};
use crate::domain::users as domain;
use crate::store::users as store;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::SHOWN_ONCE;
use kiln_api::manage::users::{
    CreatedToken, CreatedUser, IssuedToken, NewToken, NewUser, Revoked, Token, User, UserChange,
    Whoami,
};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

fn ok<T>(value: T) -> Reply<T> {
    Ok((StatusCode::OK, Json(value)))
}

/// `GET /api/v1/whoami`.
pub async fn whoami(Extension(scope): Extension<Scope>) -> Reply<Whoami> {
    let p = scope.principal()?;
    ok(Whoami {
        name: p.name.clone(),
        admin: p.admin,
    })
}

/// `POST /api/v1/users`: creates a user and returns its first token (shown once).
pub async fn create(
    State(control): State<ControlPlane>,
    JsonBody(body): JsonBody<NewUser>,
) -> Reply<CreatedUser> {
    domain::check_new_user(&body)?;
    let id = new_id();
    store::insert_user(control.db(), &id, &body.name, body.admin, body.runtime).await?;
    let (token_id, token) = issue_token(control.db(), &id, "initial", None, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            name: body.name,
            admin: body.admin,
            runtime: body.runtime,
            token: IssuedToken {
                id: token_id,
                token,
                note: SHOWN_ONCE.into(),
            },
        }),
    ))
}

/// `GET /api/v1/users`.
pub async fn list(
    State(control): State<ControlPlane>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<User>> {
    let rows = store::list_users(control.db(), page.after(), page.fetch()).await?;
    let users = rows.into_iter().map(domain::user).collect();
    ok(page.page(users, |u: &User| &u.name))
}

/// `PATCH /api/v1/users/{user}`: disables or enables a user.
pub async fn update(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path(user): Path<String>,
    JsonBody(body): JsonBody<UserChange>,
) -> Reply<User> {
    let mut row = store::user_named(control.db(), &user).await?;
    if let Some(disabled) = body.disabled {
        domain::check_disable(disabled, &row.id, &scope.principal()?.user_id)?;
        row.disabled_at = disabled.then(now_ms);
        store::set_disabled(control.db(), &row.id, row.disabled_at).await?;
        tracing::info!(user = %user, disabled, by = %scope.principal()?.name, "user changed");
    }
    ok(domain::user(row))
}

async fn tokens(control: &ControlPlane, user_id: &str) -> Reply<kiln_api::Page<Token>> {
    let rows = store::tokens_of(control.db(), user_id).await?;
    ok(kiln_api::Page {
        items: rows.into_iter().map(domain::token).collect(),
        next: None,
    })
}

/// Revokes a token of `user_id` and every token minted from it.
async fn revoke(control: &ControlPlane, user_id: &str, token: &str) -> Reply<Revoked> {
    let mut revoked = store::revoke_tree(control.db(), user_id, token)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("token '{token}' not found")))?;
    let children = revoked.split_off(1);
    ok(Revoked {
        id: token.to_string(),
        revoked: true,
        children_revoked: children,
    })
}

/// `GET /api/v1/users/{user}/tokens`: a user's tokens (never their values), for an admin.
pub async fn list_user_tokens(
    State(control): State<ControlPlane>,
    Path(user): Path<String>,
) -> Reply<kiln_api::Page<Token>> {
    let row = store::user_named(control.db(), &user).await?;
    tokens(&control, &row.id).await
}

/// `DELETE /api/v1/users/{user}/tokens/{token}`: an admin revokes any user's token.
pub async fn revoke_user_token(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((user, token)): Path<(String, String)>,
) -> Reply<Revoked> {
    let row = store::user_named(control.db(), &user).await?;
    let reply = revoke(&control, &row.id, &token).await?;
    tracing::info!(user = %user, token = %token, by = %scope.principal()?.name, "token revoked");
    Ok(reply)
}

/// `POST /api/v1/tokens`: a new token for the caller (shown once).
pub async fn create_token(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewToken>,
) -> Reply<CreatedToken> {
    let caller = scope.principal()?;
    let expires_at = domain::token_expiry(&body, caller.token_expires, now_ms())?;
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
        Json(CreatedToken {
            id,
            name: body.name,
            token,
            expires: expires_at.map(super::time),
            note: SHOWN_ONCE.into(),
        }),
    ))
}

/// `GET /api/v1/tokens`: the caller's tokens (never their values).
pub async fn list_tokens(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
) -> Reply<kiln_api::Page<Token>> {
    tokens(&control, &scope.principal()?.user_id).await
}

/// `DELETE /api/v1/tokens/{token}`: revokes one of the caller's tokens.
pub async fn revoke_token(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path(token): Path<String>,
) -> Reply<Revoked> {
    revoke(&control, &scope.principal()?.user_id, &token).await
}

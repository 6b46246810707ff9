//! Users, API tokens and roles. A token is 256 random bits shown once; only its SHA-256 is
//! stored. There is no self-signup and no default password: the first start creates the `admin`
//! user and prints its token once, and administrators create the other users.

use crate::ControlError;
use crate::db::{Db, fill_random, new_id, now_ms};
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// user id, user name, admin flag, token expiry, token revocation, token work group, token id,
/// user disabled, runtime flag.
type TokenOwner = (
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    String,
    Option<i64>,
    i64,
    Option<i64>,
);

/// Prefix of API tokens (deployment keys have their own).
pub const TOKEN_PREFIX: &str = "kiln_";
/// Prefix of deployment keys.
pub const KEY_PREFIX: &str = "kdk_";

/// A new secret: `prefix` and 256 random bits, base64url.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a secret: SHA-256, hex.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Who is calling.
#[derive(Clone, Debug, Serialize)]
pub struct Principal {
    /// User id.
    pub user_id: String,
    /// User name.
    pub name: String,
    /// An installation administrator: every role everywhere.
    pub admin: bool,
    /// A runtime node's user: the runtime routes and nothing else.
    pub runtime: bool,
    /// A run's token: it acts only in this work group (id), at most as a contributor.
    pub only_workgroup: Option<String>,
    /// The id of the token the caller presented.
    pub token_id: String,
    /// When that token expires (ms since the epoch); `None` for one that lasts until revoked.
    pub token_expires: Option<i64>,
}

pub use kiln_api::manage::{TeamRole, WorkgroupRole};

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The principal a request's token names: 401 without a token, or with one that is unknown,
/// expired or revoked, or whose parent (the token that minted it) is revoked: revoking a token
/// revokes its whole tree, and a child minted while its parent was being revoked is refused too.
pub async fn authenticate(db: &Db, headers: &HeaderMap) -> Result<Principal, ControlError> {
    let token = bearer(headers).ok_or_else(|| {
        ControlError::Unauthorized("a token is required: Authorization: Bearer <token>".into())
    })?;
    principal(db, TokenBy::Digest(&digest(token))).await
}

/// How a token is found: by the digest of its value (a request's), or by its id (a web
/// session's, which holds the id of the token it was opened with).
#[derive(Clone, Copy, Debug)]
pub enum TokenBy<'a> {
    /// The SHA-256 of the token's value.
    Digest(&'a str),
    /// The token's id.
    Id(&'a str),
}

/// The principal of a token, by the rules of [`authenticate`].
pub async fn principal(db: &Db, by: TokenBy<'_>) -> Result<Principal, ControlError> {
    macro_rules! select {
        ($key:literal) => {
            concat!(
                "SELECT u.id, u.name, u.is_admin, t.expires_at, t.revoked_at, t.workgroup_id, ",
                "t.id, u.disabled_at, u.is_runtime, p.revoked_at FROM tokens t ",
                "JOIN users u ON u.id = t.user_id LEFT JOIN tokens p ON p.id = t.parent_id ",
                "WHERE ",
                $key,
                " = $1"
            )
        };
    }
    let (query, value) = match by {
        TokenBy::Digest(digest) => (select!("t.digest"), digest),
        TokenBy::Id(id) => (select!("t.id"), id),
    };
    let row: Option<TokenOwner> = sqlx::query_as(query)
        .bind(value)
        .fetch_optional(db.pool())
        .await?;
    let invalid = || ControlError::Unauthorized("the token is invalid, expired or revoked".into());
    let (
        user_id,
        name,
        admin,
        expires_at,
        revoked_at,
        only_workgroup,
        token_id,
        disabled_at,
        runtime,
        parent_revoked_at,
    ) = row.ok_or_else(invalid)?;
    if revoked_at.is_some()
        || parent_revoked_at.is_some()
        || expires_at.is_some_and(|t| t <= now_ms())
    {
        return Err(invalid());
    }
    if disabled_at.is_some() {
        return Err(ControlError::Unauthorized(format!(
            "user '{name}' is disabled: an installation admin can enable it again"
        )));
    }
    Ok(Principal {
        user_id,
        name,
        admin: admin != 0,
        runtime: runtime != 0,
        only_workgroup,
        token_id,
        token_expires: expires_at,
    })
}

/// Issues a token for a user, minted by the token `parent` (none for a user's first token);
/// returns `(token id, token)`. The token is not stored.
pub async fn issue_token(
    db: &Db,
    user_id: &str,
    name: &str,
    expires_at: Option<i64>,
    parent: Option<&str>,
) -> Result<(String, String), ControlError> {
    let id = new_id();
    let token = new_secret(TOKEN_PREFIX);
    sqlx::query(
        "INSERT INTO tokens (id, user_id, name, digest, created_at, expires_at, parent_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(name)
    .bind(digest(&token))
    .bind(now_ms())
    .bind(expires_at)
    .bind(parent)
    .execute(db.pool())
    .await?;
    Ok((id, token))
}

/// Issues a run's token: the submitting user's, acting only in the run's work group (at most as
/// a contributor) until `expires_at`; revoked when the run ends.
pub async fn issue_run_token(
    db: &Db,
    user_id: &str,
    workgroup_id: &str,
    run_id: &str,
    expires_at: i64,
) -> Result<(String, String), ControlError> {
    let id = new_id();
    let token = new_secret(TOKEN_PREFIX);
    sqlx::query(
        "INSERT INTO tokens (id, user_id, name, digest, created_at, expires_at, workgroup_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(format!("run {run_id}"))
    .bind(digest(&token))
    .bind(now_ms())
    .bind(expires_at)
    .bind(workgroup_id)
    .execute(db.pool())
    .await?;
    Ok((id, token))
}

/// Revokes a token by id (a run's, when the run ends).
pub async fn revoke_token(db: &Db, token_id: &str) -> Result<(), ControlError> {
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(token_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// On the first start only (no user yet), creates the `admin` user and returns its token.
pub async fn bootstrap(db: &Db) -> Result<Option<String>, ControlError> {
    let mut tx = db.begin().await?;
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *tx)
        .await?;
    if users > 0 {
        return Ok(None);
    }
    let id = new_id();
    let inserted = sqlx::query(
        "INSERT INTO users (id, name, is_admin, created_at) VALUES ($1, 'admin', 1, $2)",
    )
    .bind(&id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await;
    match inserted {
        // Another process starting at the same moment bootstrapped first.
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => return Ok(None),
        other => {
            other?;
        }
    }
    let token = new_secret(TOKEN_PREFIX);
    sqlx::query(
        "INSERT INTO tokens (id, user_id, name, digest, created_at) VALUES ($1, $2, 'bootstrap', $3, $4)",
    )
    .bind(new_id())
    .bind(&id)
    .bind(digest(&token))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_digests_stable() {
        let (a, b) = (new_secret(TOKEN_PREFIX), new_secret(TOKEN_PREFIX));
        assert_ne!(a, b);
        assert!(a.starts_with("kiln_") && a.len() == 5 + 43, "{a}");
        assert_eq!(digest("x"), digest("x"));
        assert_eq!(digest("x").len(), 64);
    }
}

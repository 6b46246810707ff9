//! Keys of deployments and endpoints: each has two, so a client moves to a new one before the
//! old one is regenerated.

use crate::access::Scope;
use crate::auth::{KEY_PREFIX, digest, new_secret};
use crate::db::now_ms;
use crate::{ControlError, ControlPlane};
use axum::Json;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// A deployment or endpoint key.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyName {
    /// The first key.
    Primary,
    /// The second key.
    Secondary,
}

impl KeyName {
    /// Its digest's column.
    pub fn column(self) -> &'static str {
        match self {
            KeyName::Primary => "primary_key_digest",
            KeyName::Secondary => "secondary_key_digest",
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyName::Primary => "primary",
            KeyName::Secondary => "secondary",
        }
    }
}

/// A new `key` for the deployment or endpoint (`kind`) `name` of the scope's work group, shown
/// once; the other key keeps working.
pub async fn rotate_key(
    control: &ControlPlane,
    scope: &Scope,
    kind: &'static str,
    name: &str,
    key: KeyName,
) -> Reply {
    let table = match kind {
        "endpoint" => "endpoints",
        _ => "deployments",
    };
    let value = new_secret(KEY_PREFIX);
    let column = key.column();
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET {column} = $1, generation = generation + 1, updated_at = $2 \
         WHERE workgroup_id = $3 AND name = $4"
    )))
    .bind(digest(&value))
    .bind(now_ms())
    .bind(&scope.workgroup()?.id)
    .bind(name)
    .execute(control.db().pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!("{kind} '{name}' not found")));
    }
    control.notify_runtime();
    Ok((
        StatusCode::OK,
        Json(
            json!({ "name": name, "key": key.as_str(), "value": value, "note": "shown once: store it now" }),
        ),
    ))
}

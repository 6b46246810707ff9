//! Keys of deployments and endpoints: each has two, so a client moves to a new one before the
//! old one is regenerated.

use crate::access::Scope;
use crate::domain::deployments as domain;
use crate::store::deployments::Keyed;
use crate::{ControlError, ControlPlane};
use axum::Json;
use axum::http::StatusCode;
use kiln_api::manage::deployments::{KeyName, NewKey};

/// The answer to a regenerated key.
pub type KeyReply = Result<(StatusCode, Json<NewKey>), ControlError>;

/// A new `key` for the deployment or endpoint (`kind`) `name` of the scope's work group, shown
/// once; the other key keeps working.
pub async fn rotate_key(
    control: &ControlPlane,
    scope: &Scope,
    kind: Keyed,
    name: &str,
    key: KeyName,
) -> KeyReply {
    let at = (kind, scope.workgroup()?.id.as_str(), name);
    let new = domain::rotate_key(control, at, key).await?;
    Ok((StatusCode::OK, Json(new)))
}

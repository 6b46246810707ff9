//! What runtime nodes ask the control plane: the desired deployments, and where they report
//! each deployment's status. In `kiln up` the runtime calls [`ControlPlane::desired`] and
//! [`ControlPlane::report`] directly; remote nodes use these routes.

use super::JsonBody;
use super::deployments::DeploymentLimits;
use crate::db::now_ms;
use crate::store::DeploymentSettings;
use crate::{ControlError, ControlPlane};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// name, generation, reference, digest, settings, public, primary and secondary key digests.
type DesiredRow = (String, i64, String, String, String, i64, String, String);

/// A deployment as the runtime should serve it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DesiredDeployment {
    /// The `{model}` of prediction URLs.
    pub name: String,
    /// Changes whenever anything below does.
    pub generation: i64,
    /// The image, pinned by digest (`repo@sha256:...`, in the local store or a registry).
    pub reference: String,
    /// The image manifest digest.
    pub digest: String,
    /// Limits set on the deployment.
    pub limits: DeploymentLimits,
    /// Open without keys.
    pub public: bool,
    /// SHA-256 (hex) of the keys it accepts.
    pub key_digests: Vec<String>,
    /// The drift monitor and its window.
    #[serde(default)]
    pub monitoring: super::monitoring::MonitoringSettings,
    /// Instances kept warm and the idle timeout.
    #[serde(default)]
    pub scale: super::deployments::ScaleSettings,
}

/// A runtime's report on one deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    /// The generation the report is about.
    pub generation: i64,
    /// `ready` or `failed`.
    pub state: ServingState,
    /// Why it failed.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a runtime did with a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServingState {
    /// Serving.
    Ready,
    /// Could not be served.
    Failed,
}

impl ControlPlane {
    /// Every deployment, as runtimes should serve it.
    pub async fn desired(&self) -> Result<Vec<DesiredDeployment>, ControlError> {
        let rows: Vec<DesiredRow> = sqlx::query_as(
            "SELECT name, generation, image_reference, image_digest, settings, public, \
             primary_key_digest, secondary_key_digest FROM deployments ORDER BY name",
        )
        .fetch_all(self.db().pool())
        .await?;
        rows.into_iter()
            .map(
                |(name, generation, reference, digest, settings, public, k1, k2)| {
                    let DeploymentSettings {
                        limits,
                        scale,
                        monitoring,
                        ..
                    } = DeploymentSettings::parse(&name, &settings)?;
                    let monitoring = monitoring.unwrap_or_default();
                    Ok(DesiredDeployment {
                        name,
                        generation,
                        reference,
                        digest,
                        limits,
                        public: public != 0,
                        key_digests: vec![k1, k2],
                        monitoring,
                        scale,
                    })
                },
            )
            .collect()
    }

    /// Records a runtime's report; a report on an older generation is ignored.
    pub async fn report(&self, name: &str, report: &StatusReport) -> Result<(), ControlError> {
        let state = match report.state {
            ServingState::Ready => "ready",
            ServingState::Failed => "failed",
        };
        let reason: String = report
            .reason
            .clone()
            .unwrap_or_default()
            .chars()
            .take(2000)
            .collect();
        let done = sqlx::query(
            "UPDATE deployments SET status = $1, reason = $2, status_generation = $3, updated_at = $4 \
             WHERE name = $5 AND generation = $3",
        )
        .bind(state)
        .bind(&reason)
        .bind(report.generation)
        .bind(now_ms())
        .bind(name)
        .execute(self.db().pool())
        .await?;
        if done.rows_affected() == 0 {
            tracing::debug!(
                deployment = name,
                generation = report.generation,
                "stale status report ignored"
            );
        }
        Ok(())
    }
}

/// `GET /api/v1/runtime/deployments`.
pub async fn desired(
    State(control): State<ControlPlane>,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let items = control.desired().await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "items": items, "next": null })),
    ))
}

/// `POST /api/v1/runtime/deployments/{deployment}/status`.
pub async fn report(
    State(control): State<ControlPlane>,
    Path(deployment): Path<String>,
    JsonBody(body): JsonBody<StatusReport>,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    control.report(&deployment, &body).await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "name": deployment, "accepted": true })),
    ))
}

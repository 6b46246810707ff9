//! What runtime nodes ask the control plane: the desired deployments, and where they report
//! each deployment's status. In `kiln up` the runtime calls [`ControlPlane::desired`] and
//! [`ControlPlane::report`] directly; remote nodes use these routes.

use super::JsonBody;
use crate::db::now_ms;
use crate::store::DeploymentSettings;
use crate::{ControlError, ControlPlane};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// name, generation, reference, digest, settings, public, primary and secondary key digests,
/// status and the generation it is about.
type DesiredRow = (
    String,
    i64,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    i64,
);

pub use kiln_api::{DesiredDeployment, ServingState, StatusReport};

impl ControlPlane {
    /// Every deployment, as runtimes should serve it. A deployment whose stored settings do
    /// not parse fails alone: it is left out, and its status reads `failed` with the reason,
    /// while every other deployment is served as usual.
    pub async fn desired(&self) -> Result<Vec<DesiredDeployment>, ControlError> {
        let rows: Vec<DesiredRow> = sqlx::query_as(
            "SELECT name, generation, image_reference, image_digest, settings, public, \
             primary_key_digest, secondary_key_digest, status, status_generation \
             FROM deployments ORDER BY name",
        )
        .fetch_all(self.db().pool())
        .await?;
        let mut desired = Vec::with_capacity(rows.len());
        for (name, generation, reference, digest, settings, public, k1, k2, status, reported) in
            rows
        {
            let settings = match DeploymentSettings::parse(&name, &settings) {
                Ok(settings) => settings,
                Err(_) if status == "failed" && reported == generation => continue,
                Err(error) => {
                    tracing::error!(deployment = %name, "not served: {error}");
                    let report = StatusReport {
                        generation,
                        state: ServingState::Failed,
                        reason: Some(error.to_string()),
                    };
                    self.report(&name, &report).await?;
                    continue;
                }
            };
            desired.push(DesiredDeployment {
                name,
                generation,
                reference,
                digest,
                limits: settings.limits,
                public: public != 0,
                key_digests: vec![k1, k2],
                monitoring: settings.monitoring.unwrap_or_default(),
                scale: settings.scale,
            });
        }
        Ok(desired)
    }

    /// Records a runtime's report on one deployment's generation; a report about an older
    /// generation than the stored one is ignored.
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

//! The endpoints' side of the runtime contract: every endpoint as nodes route it, and a node's
//! finding that a rollout breached its policy, which moves the weight back.

use super::{Reply, describe};
use crate::api::JsonBody;
use crate::store::endpoints::{event, parse, store_settings};
use crate::{ControlError, ControlPlane};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kiln_api::{DesiredEndpoint, RollbackReport, Weighted};
use serde_json::json;

impl ControlPlane {
    /// Every endpoint, as runtimes should route it.
    pub async fn desired_endpoints(&self) -> Result<Vec<DesiredEndpoint>, ControlError> {
        let rows: Vec<(String, i64, i64, String, String, String)> = sqlx::query_as(
            "SELECT name, generation, public, primary_key_digest, secondary_key_digest, settings \
             FROM endpoints ORDER BY name",
        )
        .fetch_all(self.db().pool())
        .await?;
        rows.into_iter()
            .map(|(name, generation, public, k1, k2, settings)| {
                let settings = parse(&name, &settings)?;
                Ok(DesiredEndpoint {
                    name,
                    generation,
                    public: public != 0,
                    key_digests: vec![k1, k2],
                    traffic: settings
                        .traffic
                        .into_iter()
                        .map(|(deployment, weight)| Weighted { deployment, weight })
                        .collect(),
                    mirror: settings.mirror,
                    rollback: settings.rollback,
                    watch: settings.watch,
                })
            })
            .collect()
    }

    /// Rolls a watched deployment back to weight 0 (see [`EndpointSettings::rolled_back`]) and
    /// records why. A report about an older generation, or an unwatched deployment, changes
    /// nothing: the traffic moved meanwhile.
    pub async fn rollback(
        &self,
        endpoint: &str,
        report: &RollbackReport,
    ) -> Result<bool, ControlError> {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT id, settings, generation FROM endpoints WHERE name = $1")
                .bind(endpoint)
                .fetch_optional(self.db().pool())
                .await?;
        let (id, stored, generation) =
            row.ok_or_else(|| ControlError::NotFound(format!("endpoint '{endpoint}' not found")))?;
        let mut settings = parse(endpoint, &stored)?;
        if generation != report.generation || !settings.watch.contains(&report.deployment) {
            return Ok(false);
        }
        let reason: String = report.reason.chars().take(500).collect();
        let Some(traffic) = settings.rolled_back(&report.deployment) else {
            settings.watch.retain(|w| w != &report.deployment);
            sqlx::query("UPDATE endpoints SET settings = $1 WHERE id = $2 AND generation = $3")
                .bind(json!(settings).to_string())
                .bind(&id)
                .bind(generation)
                .execute(self.db().pool())
                .await?;
            event(
                self,
                &id,
                "rollback_failed",
                &format!(
                    "{} breached the rollback policy ({reason}) but no other deployment can take its traffic",
                    report.deployment
                ),
            )
            .await?;
            return Ok(false);
        };
        let before = settings.traffic.clone();
        settings.set_traffic(traffic);
        settings.watch.clear();
        if !store_settings(self, &id, generation, &settings, None).await? {
            return Ok(false);
        }
        event(
            self,
            &id,
            "rollback",
            &format!(
                "rolled back {}: {reason}; traffic: {} (was {})",
                report.deployment,
                describe(&settings.traffic),
                describe(&before)
            ),
        )
        .await?;
        tracing::warn!(endpoint, deployment = %report.deployment, "rolled back: {reason}");
        self.notify_runtime();
        Ok(true)
    }
}

/// `GET /api/v1/runtime/endpoints`.
pub async fn desired(State(control): State<ControlPlane>) -> Reply {
    let items = control.desired_endpoints().await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "items": items, "next": null })),
    ))
}

/// `POST /api/v1/runtime/endpoints/{endpoint}/rollback`.
pub async fn rollback(
    State(control): State<ControlPlane>,
    Path(endpoint): Path<String>,
    JsonBody(body): JsonBody<RollbackReport>,
) -> Reply {
    let rolled_back = control.rollback(&endpoint, &body).await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "name": endpoint, "rolled_back": rolled_back })),
    ))
}

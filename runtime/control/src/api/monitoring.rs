//! Drift monitoring of deployments: the monitor a deployment uses and its retraining policy, the
//! reports runtimes send when a window closes, the drift report users read, and the
//! deployment's events. A retraining run is submitted when an alert holds for N windows in a
//! row, at most once per cool-down.

use super::{JsonBody, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::store::DeploymentSettings;
use crate::store::settings::{OwnedPolicy, RetrainPolicy};
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// Closed windows kept per deployment.
const KEEP_WINDOWS: i64 = 12;

/// How a deployment is monitored (applied by runtimes without reloading the model); unset
/// fields come from the image's `[monitoring]`, then the runtime's defaults.
pub use kiln_api::{DriftUpload, MonitoringSettings};

/// `PUT .../deployments/{deployment}/monitoring`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringUpdate {
    #[serde(flatten)]
    monitoring: MonitoringSettings,
    /// The retraining policy; `null` or absent removes it.
    #[serde(default)]
    retrain: Option<RetrainPolicy>,
}

async fn deployment_row(
    control: &ControlPlane,
    scope: &Scope,
    name: &str,
) -> Result<(String, String), ControlError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT id, settings FROM deployments WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(&scope.workgroup()?.id)
    .bind(name)
    .fetch_optional(control.db().pool())
    .await?;
    row.ok_or_else(|| ControlError::NotFound(format!("deployment '{name}' not found")))
}

/// `PUT .../deployments/{deployment}/monitoring`: the monitor component, its config, the window
/// and the retraining policy. Runtimes switch monitors without reloading the model.
pub async fn put(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<MonitoringUpdate>,
) -> Reply {
    let (id, settings) = deployment_row(&control, &scope, &deployment).await?;
    body.monitoring.check().map_err(ControlError::Invalid)?;
    let policy = match &body.retrain {
        None => None,
        Some(p) => {
            if p.windows == 0 || p.windows > KEEP_WINDOWS as u32 {
                return Err(ControlError::Invalid(format!(
                    "retrain.windows must be 1 to {KEEP_WINDOWS}"
                )));
            }
            if p.cooldown_s > 365 * 86_400 {
                return Err(ControlError::Invalid(
                    "retrain.cooldown_s is too long".into(),
                ));
            }
            // The experiment must exist in this work group.
            let found: Option<(String,)> = sqlx::query_as(
                "SELECT e.id FROM experiments e JOIN projects p ON p.id = e.project_id \
                 WHERE p.workgroup_id = $1 AND p.name = $2 AND e.name = $3",
            )
            .bind(&scope.workgroup()?.id)
            .bind(&p.project)
            .bind(&p.experiment)
            .fetch_optional(control.db().pool())
            .await?;
            if found.is_none() {
                return Err(ControlError::Invalid(format!(
                    "no experiment '{}' in project '{}'",
                    p.experiment, p.project
                )));
            }
            Some(OwnedPolicy {
                policy: p.clone(),
                owner: scope.principal()?.user_id.clone(),
            })
        }
    };
    let mut settings = DeploymentSettings::parse(&deployment, &settings)?;
    settings.monitoring = Some(body.monitoring.clone());
    settings.retrain = policy;
    sqlx::query(
        "UPDATE deployments SET settings = $1, generation = generation + 1, updated_at = $2 WHERE id = $3",
    )
    .bind(settings.to_column()?)
    .bind(now_ms())
    .bind(&id)
    .execute(control.db().pool())
    .await?;
    control.notify_runtime();
    Ok((
        StatusCode::OK,
        Json(json!({
            "name": deployment,
            "monitoring": body.monitoring,
            "retrain": body.retrain,
        })),
    ))
}

/// Which window a drift report is about.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// `latest` (default), `cumulative`, or how many windows back from the latest (0 = latest).
    window: Option<String>,
}

/// `GET .../deployments/{deployment}/drift?window=latest|cumulative|N`.
pub async fn drift(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
    Query(query): Query<WindowQuery>,
) -> Reply {
    let (id, _) = deployment_row(&control, &scope, &deployment).await?;
    let which = query.window.as_deref().unwrap_or("latest");
    let (kind, back) = match which {
        "latest" => ("window", 0),
        "cumulative" => ("cumulative", 0),
        n => (
            "window",
            n.parse::<i64>()
                .ok()
                .filter(|n| (0..KEEP_WINDOWS).contains(n))
                .ok_or_else(|| {
                    ControlError::Invalid(format!(
                        "window must be latest, cumulative or 0 to {}",
                        KEEP_WINDOWS - 1
                    ))
                })?,
        ),
    };
    let windows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT start_ms, end_ms, state FROM deployment_drift WHERE deployment_id = $1 AND kind = 'window' \
         ORDER BY seq DESC",
    )
    .bind(&id)
    .fetch_all(control.db().pool())
    .await?;
    let listed: Vec<Value> = windows
        .iter()
        .map(|(s, e, state)| json!({ "start": time(*s), "end": time(*e), "state": state }))
        .collect();
    let report: Option<(String,)> = sqlx::query_as(
        "SELECT report FROM deployment_drift WHERE deployment_id = $1 AND kind = $2 \
         ORDER BY seq DESC LIMIT 1 OFFSET $3",
    )
    .bind(&id)
    .bind(kind)
    .bind(back)
    .fetch_optional(control.db().pool())
    .await?;
    let mut report = match report {
        Some((text,)) => serde_json::from_str::<Value>(&text)
            .map_err(|e| ControlError::Internal(format!("stored drift report: {e}")))?,
        None => json!({
            "deployment": deployment,
            "kind": kind,
            "state": "no_data",
            "reason": "no window has closed yet: the runtime reports when one does",
            "features": [],
            "alerts": [],
        }),
    };
    for key in ["start_ms", "end_ms"] {
        if let Some(ms) = report.get(key).and_then(Value::as_i64) {
            report[key.trim_end_matches("_ms")] = json!(time(ms));
        }
    }
    report["windows"] = Value::Array(listed);
    Ok((StatusCode::OK, Json(report)))
}

/// `GET .../deployments/{deployment}/events`: newest first, at most 100.
pub async fn events(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, deployment)): Path<(String, String, String)>,
) -> Reply {
    let (id, _) = deployment_row(&control, &scope, &deployment).await?;
    let rows: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT kind, message, run_id, created_at FROM deployment_events WHERE deployment_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 100",
    )
    .bind(&id)
    .fetch_all(control.db().pool())
    .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(kind, message, run, at)| {
            json!({ "kind": kind, "message": message, "run": run, "time": time(at) })
        })
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({ "items": items, "next": null })),
    ))
}

/// `POST /api/v1/runtime/deployments/{deployment}/drift`.
pub async fn upload(
    State(control): State<ControlPlane>,
    Path(deployment): Path<String>,
    JsonBody(body): JsonBody<DriftUpload>,
) -> Reply {
    control.record_drift(&deployment, &body).await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "name": deployment, "accepted": true })),
    ))
}

fn state_of(report: &Value) -> String {
    report["state"].as_str().unwrap_or("unknown").to_string()
}

impl ControlPlane {
    /// Stores a drift report, keeps the last windows, records state changes as events and
    /// applies the retraining policy.
    pub async fn record_drift(&self, name: &str, upload: &DriftUpload) -> Result<(), ControlError> {
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT id, workgroup_id, settings FROM deployments WHERE name = $1")
                .bind(name)
                .fetch_optional(self.db().pool())
                .await?;
        let Some((id, workgroup_id, settings)) = row else {
            return Err(ControlError::NotFound(format!(
                "deployment '{name}' not found"
            )));
        };
        let previous: Option<(String,)> = sqlx::query_as(
            "SELECT state FROM deployment_drift WHERE deployment_id = $1 AND kind = 'window' \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(&id)
        .fetch_optional(self.db().pool())
        .await?;
        let state = state_of(&upload.window);
        let ms = |v: &Value, key: &str| v[key].as_i64().unwrap_or_else(now_ms);
        let mut tx = self.db().begin().await?;
        let next: (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM deployment_drift WHERE deployment_id = $1",
        )
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM deployment_drift WHERE deployment_id = $1 AND kind = 'cumulative'",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        for (offset, kind, report) in [
            (0, "window", &upload.window),
            (1, "cumulative", &upload.cumulative),
        ] {
            sqlx::query(
                "INSERT INTO deployment_drift (deployment_id, seq, kind, state, start_ms, end_ms, report) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(next.0 + offset)
            .bind(kind)
            .bind(state_of(report))
            .bind(ms(report, "start_ms"))
            .bind(ms(report, "end_ms"))
            .bind(report.to_string())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM deployment_drift WHERE deployment_id = $1 AND kind = 'window' AND seq <= \
             (SELECT MAX(seq) FROM deployment_drift WHERE deployment_id = $1) - $2",
        )
        .bind(&id)
        .bind(2 * KEEP_WINDOWS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if previous.as_ref().map(|p| p.0.as_str()) != Some(state.as_str()) {
            let features: Vec<&str> = upload.window["alerts"]
                .as_array()
                .map(|a| a.iter().filter_map(|f| f["name"].as_str()).collect())
                .unwrap_or_default();
            let mut message = format!(
                "drift state {} -> {state}",
                previous.map(|p| p.0).unwrap_or_else(|| "none".into())
            );
            if !features.is_empty() {
                message.push_str(&format!(" (alert: {})", features.join(", ")));
            }
            if let Some(error) = upload.window["error"].as_str() {
                message.push_str(&format!(": {error}"));
            }
            self.deployment_event(&id, "drift", &message, None).await?;
        }
        if let Some(policy) = DeploymentSettings::parse(name, &settings)?.retrain {
            self.apply_policy(&id, &workgroup_id, name, &policy).await?;
        }
        Ok(())
    }

    async fn deployment_event(
        &self,
        deployment_id: &str,
        kind: &str,
        message: &str,
        run: Option<&str>,
    ) -> Result<(), ControlError> {
        sqlx::query(
            "INSERT INTO deployment_events (id, deployment_id, kind, message, run_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(deployment_id)
        .bind(kind)
        .bind(message)
        .bind(run)
        .bind(now_ms())
        .execute(self.db().pool())
        .await?;
        tracing::info!(deployment_id, kind, "{message}");
        Ok(())
    }

    /// Submits the policy's experiment when the last `windows` windows all alerted and no run
    /// was submitted within the cool-down.
    async fn apply_policy(
        &self,
        deployment_id: &str,
        workgroup_id: &str,
        name: &str,
        stored: &OwnedPolicy,
    ) -> Result<(), ControlError> {
        let policy = &stored.policy;
        let states: Vec<(String,)> = sqlx::query_as(
            "SELECT state FROM deployment_drift WHERE deployment_id = $1 AND kind = 'window' \
             ORDER BY seq DESC LIMIT $2",
        )
        .bind(deployment_id)
        .bind(i64::from(policy.windows))
        .fetch_all(self.db().pool())
        .await?;
        if states.len() < policy.windows as usize || states.iter().any(|s| s.0 != "alert") {
            return Ok(());
        }
        let since = now_ms() - (policy.cooldown_s as i64).saturating_mul(1000);
        let recent: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM deployment_events WHERE deployment_id = $1 AND kind = 'retraining' \
             AND created_at > $2 LIMIT 1",
        )
        .bind(deployment_id)
        .bind(since)
        .fetch_optional(self.db().pool())
        .await?;
        if recent.is_some() {
            return Ok(());
        }
        let found: Option<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT p.id, e.id, e.script, e.args, e.target FROM experiments e \
             JOIN projects p ON p.id = e.project_id \
             WHERE p.workgroup_id = $1 AND p.name = $2 AND e.name = $3",
        )
        .bind(workgroup_id)
        .bind(&policy.project)
        .bind(&policy.experiment)
        .fetch_optional(self.db().pool())
        .await?;
        let outcome = match found {
            None => Err(format!(
                "experiment '{}' of project '{}' no longer exists",
                policy.experiment, policy.project
            )),
            Some((project_id, experiment_id, script, args, default_target)) => {
                let target = policy.target.clone().unwrap_or(default_target);
                let repository = crate::store::projects::repository(self, &project_id);
                let files = tokio::task::spawn_blocking(move || repository.files("main"))
                    .await
                    .map_err(|e| ControlError::Internal(e.to_string()))?;
                match files {
                    Err(e) => Err(format!("project '{}' has no main: {e}", policy.project)),
                    Ok((_, files)) if !files.contains(&script) => Err(format!(
                        "script '{script}' is not in project '{}'",
                        policy.project
                    )),
                    Ok((commit, _)) => {
                        let view = crate::store::runs::insert(
                            self.db(),
                            &crate::store::runs::RunInsert {
                                experiment_id: &experiment_id,
                                commit: &commit,
                                target: &target,
                                args: &args,
                                status: "queued",
                                created_by: &stored.owner,
                                created_at: now_ms(),
                                started_at: None,
                                script: &script,
                                name: "",
                                timeout_s: None,
                                environment: "",
                                executed: true,
                            },
                        )
                        .await?;
                        self.notify_runs();
                        Ok(view.id.clone())
                    }
                }
            }
        };
        match outcome {
            Ok(run) => {
                let message = format!(
                    "drift alert held for {} windows: submitted a run of {}/{} to retrain '{name}'",
                    policy.windows, policy.project, policy.experiment
                );
                self.deployment_event(deployment_id, "retraining", &message, Some(&run))
                    .await
            }
            Err(why) => {
                // Counted as an attempt, so a broken policy does not retry every window.
                let message = format!("retraining not submitted: {why}");
                self.deployment_event(deployment_id, "retraining", &message, None)
                    .await
            }
        }
    }
}

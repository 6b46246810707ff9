//! Drift monitoring of deployments: the monitor a deployment uses and its retraining policy, the
//! reports runtimes send when a window closes, the drift report users read, and the
//! deployment's events. A retraining run is submitted when an alert holds for N windows in a
//! row, at most once per cool-down.

use super::time;
use crate::store::DeploymentSettings;
use crate::store::monitoring::{self as store, StoredReport};
use crate::store::runs::{self as runs_store, RunInsert};
use crate::store::settings::OwnedPolicy;
use crate::{ControlError, ControlPlane};
use kiln_api::DriftUpload;
use kiln_api::manage::monitoring::{
    DeploymentEvent, DriftReport, DriftWindow, Monitored, MonitoringUpdate,
};
use kiln_api::manage::runs::RunStatus;
use serde_json::{Value, json};

/// Closed windows kept per deployment.
pub const KEEP_WINDOWS: i64 = 12;

/// Sets a deployment's monitor, window and retraining policy (its runs are submitted as
/// `owner`); the change is its next generation.
pub async fn set(
    control: &ControlPlane,
    (workgroup_id, owner): (&str, &str),
    name: &str,
    update: MonitoringUpdate,
) -> Result<Monitored, ControlError> {
    let deployment = store::deployment(control.db(), workgroup_id, name).await?;
    update.monitoring.check().map_err(ControlError::Invalid)?;
    let policy = match &update.retrain {
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
            let named = (p.project.as_str(), p.experiment.as_str());
            if store::experiment(control.db(), workgroup_id, named)
                .await?
                .is_none()
            {
                return Err(ControlError::Invalid(format!(
                    "no experiment '{}' in project '{}'",
                    p.experiment, p.project
                )));
            }
            Some(OwnedPolicy {
                policy: p.clone(),
                owner: owner.to_string(),
            })
        }
    };
    let mut settings = DeploymentSettings::parse(name, &deployment.settings)?;
    settings.monitoring = Some(update.monitoring.clone());
    settings.retrain = policy;
    store::set_settings(control.db(), &deployment.id, &settings.to_column()?).await?;
    control.notify_runtime();
    Ok(Monitored {
        name: name.to_string(),
        monitoring: update.monitoring,
        retrain: update.retrain,
    })
}

/// Which stored report a `?window=` names: its kind and how many back from the latest.
pub fn which_window(window: Option<&str>) -> Result<(&'static str, i64), ControlError> {
    match window.unwrap_or("latest") {
        "latest" => Ok(("window", 0)),
        "cumulative" => Ok(("cumulative", 0)),
        n => n
            .parse::<i64>()
            .ok()
            .filter(|n| (0..KEEP_WINDOWS).contains(n))
            .map(|back| ("window", back))
            .ok_or_else(|| {
                ControlError::Invalid(format!(
                    "window must be latest, cumulative or 0 to {}",
                    KEEP_WINDOWS - 1
                ))
            }),
    }
}

/// A deployment's drift report of a window (see [`which_window`]), with its closed windows;
/// before any window closed, a report that says so.
pub async fn drift(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
    window: Option<&str>,
) -> Result<DriftReport, ControlError> {
    let deployment = store::deployment(control.db(), workgroup_id, name).await?;
    let (kind, back) = which_window(window)?;
    let windows = store::windows(control.db(), &deployment.id)
        .await?
        .into_iter()
        .map(|w| DriftWindow {
            start: time(w.start_ms),
            end: time(w.end_ms),
            state: w.state,
        })
        .collect();
    let stored = store::report(control.db(), &deployment.id, kind, back).await?;
    let mut report = match stored {
        Some(text) => serde_json::from_str::<Value>(&text)
            .map_err(|e| ControlError::Internal(format!("stored drift report: {e}")))?,
        None => json!({
            "deployment": name,
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
    let mut report: DriftReport = serde_json::from_value(report)
        .map_err(|e| ControlError::Internal(format!("stored drift report: {e}")))?;
    report.windows = windows;
    Ok(report)
}

/// A deployment's latest 100 events, newest first.
pub async fn events(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<Vec<DeploymentEvent>, ControlError> {
    let deployment = store::deployment(control.db(), workgroup_id, name).await?;
    let rows = store::events(control.db(), &deployment.id, 100).await?;
    Ok(rows
        .into_iter()
        .map(|e| DeploymentEvent {
            kind: e.kind,
            message: e.message,
            run: e.run_id,
            time: time(e.created_at),
        })
        .collect())
}

/// A report's state, `unknown` when it has none.
fn state_of(report: &Value) -> String {
    report["state"].as_str().unwrap_or("unknown").to_string()
}

/// A report as stored: its state, its times (now, where it has none), the monitor's JSON.
fn stored<'a>(report: &Value, state: &'a str, text: &'a str) -> StoredReport<'a> {
    let ms = |key: &str| report[key].as_i64().unwrap_or_else(crate::db::now_ms);
    StoredReport {
        state,
        start_ms: ms("start_ms"),
        end_ms: ms("end_ms"),
        report: text,
    }
}

/// The message of a drift state change: from what to what, which features alert, and the
/// monitor's error if it failed.
pub fn state_change(previous: Option<&str>, window: &Value) -> String {
    let state = state_of(window);
    let features: Vec<&str> = window["alerts"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    let mut message = format!("drift state {} -> {state}", previous.unwrap_or("none"));
    if !features.is_empty() {
        message.push_str(&format!(" (alert: {})", features.join(", ")));
    }
    if let Some(error) = window["error"].as_str() {
        message.push_str(&format!(": {error}"));
    }
    message
}

impl ControlPlane {
    /// Stores a drift report, keeps the last windows, records state changes as events and
    /// applies the retraining policy.
    pub async fn record_drift(&self, name: &str, upload: &DriftUpload) -> Result<(), ControlError> {
        let deployment = store::deployment_anywhere(self.db(), name).await?;
        let id = deployment.id.as_str();
        let previous = store::window_states(self.db(), id, 1).await?.pop();
        let (window, cumulative) = (upload.window.to_string(), upload.cumulative.to_string());
        let (window_state, cumulative_state) =
            (state_of(&upload.window), state_of(&upload.cumulative));
        let window_report = stored(&upload.window, &window_state, &window);
        let cumulative_report = stored(&upload.cumulative, &cumulative_state, &cumulative);
        let reports = (&window_report, &cumulative_report);
        store::record(self.db(), id, reports, KEEP_WINDOWS).await?;
        if previous.as_deref() != Some(window_state.as_str()) {
            let message = state_change(previous.as_deref(), &upload.window);
            self.deployment_event(id, "drift", &message, None).await?;
        }
        if let Some(policy) = DeploymentSettings::parse(name, &deployment.settings)?.retrain {
            let at = (id, deployment.workgroup_id.as_str());
            self.apply_policy(at, name, &policy).await?;
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
        store::event(self.db(), deployment_id, (kind, message), run).await?;
        tracing::info!(deployment_id, kind, "{message}");
        Ok(())
    }

    /// Submits the policy's experiment when the last `windows` windows all alerted and no run
    /// was submitted within the cool-down.
    async fn apply_policy(
        &self,
        (deployment_id, workgroup_id): (&str, &str),
        name: &str,
        stored: &OwnedPolicy,
    ) -> Result<(), ControlError> {
        let policy = &stored.policy;
        let states =
            store::window_states(self.db(), deployment_id, i64::from(policy.windows)).await?;
        if states.len() < policy.windows as usize || states.iter().any(|s| s != "alert") {
            return Ok(());
        }
        let since = crate::db::now_ms() - (policy.cooldown_s as i64).saturating_mul(1000);
        if store::had_event_since(self.db(), deployment_id, "retraining", since).await? {
            return Ok(());
        }
        let named = (policy.project.as_str(), policy.experiment.as_str());
        let found = store::experiment(self.db(), workgroup_id, named).await?;
        let outcome = match found {
            None => Err(format!(
                "experiment '{}' of project '{}' no longer exists",
                policy.experiment, policy.project
            )),
            Some(experiment) => {
                let target = policy.target.clone().unwrap_or(experiment.target);
                let repository = crate::store::projects::repository(self, &experiment.project_id);
                let files = tokio::task::spawn_blocking(move || repository.files("main"))
                    .await
                    .map_err(|e| ControlError::Internal(e.to_string()))?;
                match files {
                    Err(e) => Err(format!("project '{}' has no main: {e}", policy.project)),
                    Ok((_, files)) if !files.contains(&experiment.script) => Err(format!(
                        "script '{}' is not in project '{}'",
                        experiment.script, policy.project
                    )),
                    Ok((commit, _)) => {
                        let run = runs_store::insert(
                            self.db(),
                            &RunInsert {
                                experiment_id: &experiment.id,
                                commit: &commit,
                                target: &target,
                                args: &experiment.args,
                                status: RunStatus::Queued.as_str(),
                                created_by: &stored.owner,
                                created_at: crate::db::now_ms(),
                                started_at: None,
                                script: &experiment.script,
                                name: "",
                                timeout_s: None,
                                environment: "",
                                executed: true,
                            },
                        )
                        .await?;
                        self.notify_runs();
                        Ok(run.id)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_named_by_kind_or_by_how_far_back() {
        assert_eq!(which_window(None).unwrap(), ("window", 0));
        assert_eq!(which_window(Some("cumulative")).unwrap(), ("cumulative", 0));
        assert_eq!(which_window(Some("11")).unwrap(), ("window", 11));
        for bad in ["12", "-1", "soon", ""] {
            let error = which_window(Some(bad)).unwrap_err();
            assert_eq!(
                error.to_string(),
                "window must be latest, cumulative or 0 to 11",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_state_change_names_what_alerts_and_what_failed() {
        let alert = json!({"state": "alert", "alerts": [{"name": "petal"}, {"name": "sepal"}]});
        assert_eq!(
            state_change(Some("ok"), &alert),
            "drift state ok -> alert (alert: petal, sepal)"
        );
        let failed = json!({"state": "error", "error": "the monitor trapped"});
        assert_eq!(
            state_change(None, &failed),
            "drift state none -> error: the monitor trapped"
        );
        assert_eq!(
            state_change(None, &json!({})),
            "drift state none -> unknown"
        );
    }

    #[tokio::test]
    async fn a_deployment_keeps_its_latest_windows_and_one_cumulative_report() {
        let db = crate::store::fixture().await;
        for sql in [
            "INSERT INTO images (id, workgroup_id, name, reference, digest, registry, kind, created_at) \
             VALUES ('i1', 'w1', 'iris', 'iris@sha256:aa', 'sha256:aa', NULL, 'kiln-model', 0)",
            "INSERT INTO deployments (id, workgroup_id, name, image_id, image_digest, image_reference, \
             settings, public, primary_key_digest, secondary_key_digest, generation, status, reason, \
             created_at, updated_at) VALUES ('d1', 'w1', 'iris', 'i1', 'sha256:aa', 'iris@sha256:aa', \
             '{}', 0, 'p', 's', 1, 'pending', '', 0, 0)",
        ] {
            sqlx::query(sql).execute(db.pool()).await.unwrap();
        }
        for n in 0..5 {
            let state = if n % 2 == 0 { "ok" } else { "alert" };
            let text = format!(r#"{{"n": {n}}}"#);
            let window = StoredReport {
                state,
                start_ms: n,
                end_ms: n + 1,
                report: &text,
            };
            let cumulative = StoredReport { ..window };
            store::record(&db, "d1", (&window, &cumulative), 2)
                .await
                .unwrap();
        }
        let windows = store::windows(&db, "d1").await.unwrap();
        let starts: Vec<i64> = windows.iter().map(|w| w.start_ms).collect();
        assert_eq!(starts, [4, 3], "the latest windows, newest first");
        assert_eq!(store::window_states(&db, "d1", 1).await.unwrap(), ["ok"]);
        let latest = store::report(&db, "d1", "window", 0).await.unwrap();
        assert_eq!(latest.as_deref(), Some(r#"{"n": 4}"#));
        let cumulative = store::report(&db, "d1", "cumulative", 0).await.unwrap();
        assert_eq!(cumulative.as_deref(), Some(r#"{"n": 4}"#));
        assert!(
            store::report(&db, "d1", "cumulative", 1)
                .await
                .unwrap()
                .is_none()
        );
        store::event(&db, "d1", ("retraining", "submitted"), Some("r1"))
            .await
            .unwrap();
        assert!(
            store::had_event_since(&db, "d1", "retraining", -1)
                .await
                .unwrap()
        );
        assert!(
            !store::had_event_since(&db, "d1", "drift", -1)
                .await
                .unwrap()
        );
        let events = store::events(&db, "d1", 10).await.unwrap();
        assert_eq!(events[0].run_id.as_deref(), Some("r1"));
    }
}

//! Drift monitoring of a deployment: which monitor judges its traffic, over windows of what
//! length, what it found (the monitor's own report, per feature), and what happened (state
//! changes, retraining runs submitted when an alert held).

use super::deployments::RetrainPolicy;
use crate::MonitoringSettings;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `PUT .../deployments/{deployment}/monitoring`: the monitor, its config and window (unset
/// fields come from the image's `[monitoring]`, then the runtime's defaults), and the
/// retraining policy (absent or `null` removes it). Runtimes switch monitors without
/// reloading the model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MonitoringUpdate {
    /// The monitor, its config and window.
    #[serde(flatten)]
    pub monitoring: MonitoringSettings,
    /// The retraining policy.
    #[serde(default)]
    pub retrain: Option<RetrainPolicy>,
}

/// The answer to a monitoring update: what the deployment now uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Monitored {
    /// The deployment.
    pub name: String,
    /// Its monitor, config and window, as set.
    pub monitoring: MonitoringSettings,
    /// Its retraining policy.
    pub retrain: Option<RetrainPolicy>,
}

/// `?window=`: which report (`latest`, the default; `cumulative`; or how many windows back
/// from the latest, 0 = latest).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// The window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

/// A closed window, as the list of a drift report shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DriftWindow {
    /// When it opened (RFC 3339).
    pub start: String,
    /// When it closed (RFC 3339).
    pub end: String,
    /// What the monitor found: `ok`, `warn`, `alert`, `error`, ...
    pub state: String,
}

/// A drift report: the monitor's own report of a window (or since deploy), passed on as it
/// wrote it (per feature: statistics, verdict, data quality), with its times as RFC 3339 and
/// the deployment's closed windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DriftReport {
    /// `window` or `cumulative`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What the monitor found: `no_data` before any window closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the window opened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// When it closed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// The deployment's closed windows, newest first.
    #[serde(default)]
    pub windows: Vec<DriftWindow>,
    /// The rest of the monitor's report (`features`, `alerts`, `reason`, `start_ms`, ...).
    #[serde(flatten)]
    pub report: Map<String, Value>,
}

/// Something that happened to a deployment: a drift state change, a retraining run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeploymentEvent {
    /// `drift` or `retraining`.
    pub kind: String,
    /// What happened.
    pub message: String,
    /// The run submitted, for a retraining.
    pub run: Option<String>,
    /// When (RFC 3339).
    pub time: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monitors_report_passes_through_whole() {
        let text = r#"{"kind":"window","state":"alert","start_ms":5,"features":[{"name":"x","psi":0.4}],"custom":{"a":1}}"#;
        let report: DriftReport = serde_json::from_str(text).unwrap();
        assert_eq!(report.state.as_deref(), Some("alert"));
        assert!(report.windows.is_empty());
        let again: Value = serde_json::to_value(&report).unwrap();
        let mut expected: Value = serde_json::from_str(text).unwrap();
        expected["windows"] = serde_json::json!([]);
        assert_eq!(again, expected);
        let update: MonitoringUpdate =
            serde_json::from_str(r#"{"component": "default", "window_s": 60}"#).unwrap();
        assert_eq!(update.monitoring.window_s, Some(60));
        assert_eq!(update.retrain, None);
    }
}

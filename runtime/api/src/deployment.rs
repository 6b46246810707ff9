//! A deployment as a runtime node serves it, and what the node reports back.

use crate::Limits;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a deployment scales: with an idle timeout, instances above `min_instances` (default 0)
/// are released once no prediction ran for that long; the next request starts one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScaleSettings {
    /// Instances kept warm; 0 lets an idle deployment release them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_instances: Option<usize>,
    /// Most instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<usize>,
    /// Seconds without requests before instances above the minimum go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_s: Option<u64>,
}

impl ScaleSettings {
    /// Checks the bounds: at most 1024 instances, a minimum not above the maximum, an idle
    /// timeout of 1 s to a day.
    pub fn check(&self) -> Result<(), String> {
        if self.max_instances.is_some_and(|m| !(1..=1024).contains(&m)) {
            return Err("max_instances must be 1 to 1024".into());
        }
        if self.min_instances.is_some_and(|m| m > 1024) {
            return Err("min_instances must be 0 to 1024".into());
        }
        if let (Some(min), Some(max)) = (self.min_instances, self.max_instances)
            && min > max
        {
            return Err("min_instances must not exceed max_instances".into());
        }
        if self
            .idle_timeout_s
            .is_some_and(|t| !(1..=86_400).contains(&t))
        {
            return Err("idle_timeout_s must be 1 to 86400".into());
        }
        Ok(())
    }

    /// These settings where set, else `fallback`'s.
    #[must_use]
    pub fn or(&self, fallback: &ScaleSettings) -> ScaleSettings {
        ScaleSettings {
            min_instances: self.min_instances.or(fallback.min_instances),
            max_instances: self.max_instances.or(fallback.max_instances),
            idle_timeout_s: self.idle_timeout_s.or(fallback.idle_timeout_s),
        }
    }

    /// The deployment's limits with `max_instances`, when set, as its concurrency.
    #[must_use]
    pub fn apply(&self, limits: &Limits) -> Limits {
        Limits {
            concurrency: self.max_instances.or(limits.concurrency),
            ..limits.clone()
        }
    }
}

/// `[monitoring]` of a manifest, and a deployment's monitoring settings: which monitor judges
/// drift, with what config, over windows of what length. Unset fields fall back (deployment,
/// then image, then the runtime's defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MonitoringSettings {
    /// The monitor component: `default` or an image reference (local store or registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The config string passed to the monitor's `analyze`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
    /// Window length in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<u64>,
}

impl MonitoringSettings {
    /// These settings, with unset fields taken from `fallback`.
    #[must_use]
    pub fn or(&self, fallback: &MonitoringSettings) -> MonitoringSettings {
        MonitoringSettings {
            component: self
                .component
                .clone()
                .or_else(|| fallback.component.clone()),
            config: if self.config.is_empty() {
                fallback.config.clone()
            } else {
                self.config.clone()
            },
            window_s: self.window_s.or(fallback.window_s),
        }
    }

    /// Checks the values: a window of 1 s to a day, a component that names an image (files on
    /// a runtime's disk are not for manifests or API users), a config of at most 4 KiB.
    pub fn check(&self) -> Result<(), String> {
        if self.window_s.is_some_and(|w| !(1..=86_400).contains(&w)) {
            return Err("window_s must be 1 to 86400".into());
        }
        if self.config.len() > 4096 {
            return Err("config is longer than 4096 bytes".into());
        }
        if let Some(c) = &self.component
            && (c.is_empty()
                || c.len() > 512
                || c.chars().any(char::is_control)
                || looks_like_path(c))
        {
            return Err(format!(
                "component '{c}' must be 'default' or an image reference (local store or registry), not a file"
            ));
        }
        Ok(())
    }
}

/// Whether a monitor component name is a file path rather than an image reference.
pub fn looks_like_path(name: &str) -> bool {
    name.starts_with('/') || name.starts_with('.') || name.ends_with(".wasm") || name.contains('\\')
}

/// A deployment as the runtime should serve it (`GET /api/v1/runtime/deployments`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    pub limits: Limits,
    /// Open without keys.
    pub public: bool,
    /// SHA-256 (hex) of the keys it accepts.
    pub key_digests: Vec<String>,
    /// The drift monitor and its window.
    #[serde(default)]
    pub monitoring: MonitoringSettings,
    /// Instances kept warm and the idle timeout.
    #[serde(default)]
    pub scale: ScaleSettings,
}

/// A runtime's report on one deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// The answer to a node's status or drift report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Accepted {
    /// The deployment.
    pub name: String,
    /// Always true: the report was recorded (a status about an older generation is ignored).
    pub accepted: bool,
}

/// What a runtime did with a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ServingState {
    /// Serving.
    Ready,
    /// Could not be served.
    Failed,
}

/// A runtime's drift report on one deployment: the window that just closed, and since deploy
/// (`POST /api/v1/runtime/deployments/{deployment}/drift`). Both are the monitor's own report,
/// passed on as it wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DriftUpload {
    /// The window.
    pub window: Value,
    /// Since deploy.
    pub cumulative: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_bounds() {
        let scale = |text: &str| serde_json::from_str::<ScaleSettings>(text).expect("scale");
        assert_eq!(
            scale(r#"{"min_instances": 0, "max_instances": 4}"#).check(),
            Ok(())
        );
        assert_eq!(
            scale(r#"{"min_instances": 5, "max_instances": 4}"#).check(),
            Err("min_instances must not exceed max_instances".into())
        );
        assert!(scale(r#"{"max_instances": 0}"#).check().is_err());
        assert!(scale(r#"{"idle_timeout_s": 86401}"#).check().is_err());
    }

    #[test]
    fn max_instances_is_the_concurrency() {
        let limits = Limits {
            concurrency: Some(2),
            ..Limits::default()
        };
        let scale = ScaleSettings {
            max_instances: Some(8),
            ..ScaleSettings::default()
        };
        assert_eq!(scale.apply(&limits).concurrency, Some(8));
        assert_eq!(ScaleSettings::default().apply(&limits), limits);
    }

    #[test]
    fn monitoring_falls_back_field_by_field_and_refuses_files() {
        let deployment = MonitoringSettings {
            window_s: Some(5),
            ..MonitoringSettings::default()
        };
        let image = MonitoringSettings {
            component: Some("default".into()),
            config: "psi=0.3".into(),
            window_s: Some(60),
        };
        let merged = deployment.or(&image);
        assert_eq!(merged.window_s, Some(5));
        assert_eq!(merged.config, "psi=0.3");
        assert_eq!(merged.component.as_deref(), Some("default"));
        for file in ["/etc/passwd", "./m.wasm", "m.wasm", "..\\m"] {
            let bad = MonitoringSettings {
                component: Some(file.into()),
                ..MonitoringSettings::default()
            };
            assert!(bad.check().is_err(), "{file}");
        }
    }

    #[test]
    fn status_reads_as_the_node_writes_it() {
        let report: StatusReport =
            serde_json::from_str(r#"{"generation": 3, "state": "failed", "reason": "no image"}"#)
                .expect("report");
        assert_eq!(report.state, ServingState::Failed);
        assert!(
            serde_json::from_str::<StatusReport>(r#"{"generation": 3, "state": "odd"}"#).is_err()
        );
    }
}

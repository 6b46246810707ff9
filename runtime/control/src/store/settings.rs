//! A deployment's `settings` column: its limits, scale, monitoring and retraining policy.

use crate::ControlError;
use kiln_api::{Limits, MonitoringSettings, ScaleSettings};

pub use kiln_api::manage::deployments::{OwnedPolicy, RetrainPolicy};
use serde::{Deserialize, Deserializer, Serialize};

/// A deployment's settings as stored. Unset limits and scale fields come from the image, then
/// the node's defaults; unset monitoring from the image's `[monitoring]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSettings {
    /// Memory, deadline and concurrency of the deployment's instances.
    #[serde(default, deserialize_with = "null_is_default")]
    pub limits: Limits,
    /// Instances kept warm, at most, and the idle timeout.
    #[serde(default, deserialize_with = "null_is_default")]
    pub scale: ScaleSettings,
    /// The monitor, its window and config, once a monitoring update set them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSettings>,
    /// The retraining policy, with who set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain: Option<OwnedPolicy>,
}

fn null_is_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl DeploymentSettings {
    /// Parses the stored column of `deployment`. A column that does not parse is the store's
    /// corruption: it is reported, and nothing is written over it.
    pub fn parse(deployment: &str, stored: &str) -> Result<Self, ControlError> {
        parse_column("deployment", deployment, stored)
    }

    /// The column's text.
    pub fn to_column(&self) -> Result<String, ControlError> {
        serde_json::to_string(self).map_err(|e| ControlError::Internal(e.to_string()))
    }
}

/// Parses the settings column of the `kind` named `name`: text that does not parse is the
/// store's corruption, reported as such, and the caller writes nothing over it.
pub fn parse_column<T: serde::de::DeserializeOwned>(
    kind: &str,
    name: &str,
    stored: &str,
) -> Result<T, ControlError> {
    serde_json::from_str(stored).map_err(|e| {
        ControlError::Internal(format!(
            "the stored settings of {kind} '{name}' do not parse ({e}); they were left as they are"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_kiln_wrote_parses() {
        // As written at creation, before any monitoring update.
        let created =
            DeploymentSettings::parse("iris", r#"{"limits": {"memory_mb": 64}, "scale": {}}"#)
                .unwrap();
        assert_eq!(created.limits.memory_mb, Some(64));
        assert!(created.monitoring.is_none() && created.retrain.is_none());
        // A monitoring update that removed the policy wrote null for it.
        let updated = DeploymentSettings::parse(
            "iris",
            r#"{"limits": null, "scale": {"min_instances": 0}, "monitoring": {}, "retrain": null}"#,
        )
        .unwrap();
        assert_eq!(updated.scale.min_instances, Some(0));
        assert!(updated.limits.memory_mb.is_none() && updated.retrain.is_none());
        assert!(updated.monitoring.is_some());
        assert!(DeploymentSettings::parse("iris", "{}").is_ok());
        let text = updated.to_column().unwrap();
        let again = DeploymentSettings::parse("iris", &text).unwrap();
        assert_eq!(again.scale.min_instances, Some(0));
    }

    #[test]
    fn a_column_that_does_not_parse_is_an_error_naming_the_deployment() {
        for stored in [
            "",
            "not json",
            r#"{"limits": {"memory_mb": "lots"}}"#,
            r#"{"limits": {}, "surprise": 1}"#,
        ] {
            let error = DeploymentSettings::parse("iris", stored)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("deployment 'iris'") && error.contains("left as they are"),
                "{stored}: {error}"
            );
        }
    }

    #[test]
    fn an_endpoints_column_parses_or_names_the_endpoint() {
        use crate::store::endpoints::EndpointSettings;
        let stored: EndpointSettings =
            parse_column("endpoint", "flowers", r#"{"traffic": {"iris": 100}}"#).unwrap();
        assert_eq!(stored.traffic.get("iris"), Some(&100));
        for stored in ["", "[", r#"{"traffic": {"iris": "all"}}"#] {
            let error = parse_column::<EndpointSettings>("endpoint", "flowers", stored)
                .unwrap_err()
                .to_string();
            assert!(error.contains("endpoint 'flowers'"), "{stored}: {error}");
        }
    }
}

//! Per work group quotas: how many deployments a work group holds, how many instances and how
//! much memory they may use together, and the longest prediction deadline one may ask for.

use serde::{Deserialize, Deserializer, Serialize};

/// A work group's quota, as it applies: its own settings over the installation's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Quota {
    /// Deployments it holds.
    pub deployments: u64,
    /// Instances of all its deployments together.
    pub instances: u64,
    /// Memory of all its deployments' instances together, MiB.
    pub memory_mb: u64,
    /// The longest prediction deadline one deployment may ask for, ms.
    pub deadline_ms: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            deployments: 50,
            instances: 256,
            memory_mb: 32 << 10,
            deadline_ms: 60_000,
        }
    }
}

/// `PUT .../workgroups/{workgroup}/quota`: what is given is set, `null` returns it to the
/// installation's default, and what is absent stays as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct QuotaChange {
    /// Deployments it holds.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub deployments: Option<Option<u64>>,
    /// Instances of all its deployments together.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub instances: Option<Option<u64>>,
    /// Memory of all its deployments' instances together, MiB.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_mb: Option<Option<u64>>,
    /// The longest prediction deadline one deployment may ask for, ms.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline_ms: Option<Option<u64>>,
}

/// A field that is present: `null` is `Some(None)` (absent is `None`, by `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_tells_absent_from_null_both_ways() {
        let change: QuotaChange =
            serde_json::from_str(r#"{"deployments": 3, "memory_mb": null}"#).unwrap();
        assert_eq!(change.deployments, Some(Some(3)));
        assert_eq!(change.memory_mb, Some(None));
        assert_eq!(change.instances, None);
        let text = serde_json::to_string(&change).unwrap();
        assert_eq!(text, r#"{"deployments":3,"memory_mb":null}"#);
        assert!(serde_json::from_str::<QuotaChange>(r#"{"gpus": 1}"#).is_err());
    }
}

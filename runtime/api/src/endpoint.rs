//! An endpoint as a runtime node routes it, and the node's rollback finding.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Weights by deployment name.
pub type Traffic = BTreeMap<String, u32>;

/// Most of an endpoint's requests that may be mirrored, percent.
pub const MAX_MIRROR_PERCENT: u32 = 50;

/// A copy of some requests sent to one deployment; its answers are discarded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MirrorSettings {
    /// A deployment of the endpoint.
    pub deployment: String,
    /// Share of requests copied, 1 to 50.
    pub percent: u32,
}

/// When a rollout goes back: over a window, the watched deployment's share of 5xx answers or
/// its p99 latency above the threshold (with at least `min_requests` answers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicy {
    /// Largest share of 5xx answers, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// Largest p99 latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_ms: Option<f64>,
    /// Window, seconds (default 10).
    #[serde(default = "default_window")]
    pub window_s: u64,
    /// Fewest answers a window needs to be judged (default 20).
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
}

fn default_window() -> u64 {
    10
}

fn default_min_requests() -> u64 {
    20
}

impl RollbackPolicy {
    /// Checks the bounds: at least one threshold, a rate of 0 to 1, a p99 above 0 up to ten
    /// minutes, a window of 1 s to an hour, 1 to a million answers.
    pub fn check(&self) -> Result<(), String> {
        if self.max_error_rate.is_none() && self.max_p99_ms.is_none() {
            return Err("rollback needs max_error_rate or max_p99_ms".into());
        }
        if self
            .max_error_rate
            .is_some_and(|r| !(0.0..=1.0).contains(&r))
        {
            return Err("rollback.max_error_rate must be 0 to 1".into());
        }
        if self
            .max_p99_ms
            .is_some_and(|p| !(p > 0.0 && p <= 600_000.0))
        {
            return Err("rollback.max_p99_ms must be above 0 and at most 600000".into());
        }
        if !(1..=3600).contains(&self.window_s) {
            return Err("rollback.window_s must be 1 to 3600".into());
        }
        if !(1..=1_000_000).contains(&self.min_requests) {
            return Err("rollback.min_requests must be 1 to 1000000".into());
        }
        Ok(())
    }
}

/// A weight of an endpoint, as runtimes route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Weighted {
    /// The deployment.
    pub deployment: String,
    /// Its weight, 0 to 100.
    pub weight: u32,
}

/// An endpoint as runtimes serve it (`GET /api/v1/runtime/endpoints`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DesiredEndpoint {
    /// The `{model}` of prediction URLs.
    pub name: String,
    /// Changes whenever anything below does.
    pub generation: i64,
    /// Open without keys.
    pub public: bool,
    /// SHA-256 (hex) of the keys it accepts.
    pub key_digests: Vec<String>,
    /// Weights, by deployment name.
    pub traffic: Vec<Weighted>,
    /// The mirrored deployment.
    #[serde(default)]
    pub mirror: Option<MirrorSettings>,
    /// The automatic rollback policy.
    #[serde(default)]
    pub rollback: Option<RollbackPolicy>,
    /// Deployments the policy watches (those the last change raised).
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A runtime's finding that a watched deployment breached the rollback policy
/// (`POST /api/v1/runtime/endpoints/{endpoint}/rollback`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RollbackReport {
    /// The endpoint generation the runtime judged.
    pub generation: i64,
    /// The deployment that breached.
    pub deployment: String,
    /// What breached, for the event.
    pub reason: String,
}

/// The answer to a rollback report: whether the weight moved back (a report about an older
/// generation, or a deployment nobody watches, moves nothing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RolledBack {
    /// The endpoint.
    pub name: String,
    /// Whether its traffic moved back.
    pub rolled_back: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_takes_defaults_and_is_checked() {
        let policy: RollbackPolicy =
            serde_json::from_str(r#"{"max_error_rate": 0.05}"#).expect("policy");
        assert_eq!((policy.window_s, policy.min_requests), (10, 20));
        assert_eq!(policy.check(), Ok(()));
        let none: RollbackPolicy = serde_json::from_str("{}").expect("policy");
        assert_eq!(
            none.check(),
            Err("rollback needs max_error_rate or max_p99_ms".into())
        );
        let rate: RollbackPolicy =
            serde_json::from_str(r#"{"max_error_rate": 1.5}"#).expect("policy");
        assert!(rate.check().is_err());
        let p99: RollbackPolicy = serde_json::from_str(r#"{"max_p99_ms": 0}"#).expect("policy");
        assert!(p99.check().is_err());
    }
}

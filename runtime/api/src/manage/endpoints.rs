//! Endpoints: a stable prediction URL with its own keys, routing to deployments of its work
//! group by integer weights that sum to 100, optionally mirroring a share of requests to one
//! of them and rolling a rollout back when it breaches a policy.

use super::deployments::{Keys, Urls};
use crate::endpoint::Traffic;
use crate::{MirrorSettings, RollbackPolicy};
use serde::{Deserialize, Deserializer, Serialize};

/// `POST .../workgroups/{workgroup}/endpoints`: a new endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Its name, unique in the installation (deployments' names included).
    pub name: String,
    /// Open to anyone, without keys (off by default).
    #[serde(default)]
    pub public: bool,
    /// Weights of deployments of the work group, summing to 100 (or none yet).
    #[serde(default)]
    pub traffic: Traffic,
    /// A deployment of the traffic that gets a copy of a share of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorSettings>,
    /// When to move a rolled-out deployment's weight back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackPolicy>,
}

/// Absent stays `None`; `null` becomes `Some(None)`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH .../endpoints/{endpoint}`: what is given changes; `null` removes a mirror or policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EndpointUpdate {
    /// New weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// A new mirror, or `null` for none.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror: Option<Option<MirrorSettings>>,
    /// A new rollback policy, or `null` for none.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollback: Option<Option<RollbackPolicy>>,
    /// Open to anyone, or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
}

/// Where a routed deployment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RoutedStatus {
    /// Its current generation has not been reported on yet.
    Pending,
    /// Serving.
    Ready,
    /// It could not be served.
    Failed,
    /// It no longer exists.
    Missing,
}

/// A deployment an endpoint routes to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Routed {
    /// The deployment.
    pub name: String,
    /// Its share of the traffic, in percent.
    pub weight: u32,
    /// The share of requests mirrored to it, if it is the mirror.
    pub mirror_percent: Option<u32>,
    /// Its image.
    pub image: Option<String>,
    /// Where it is.
    pub status: RoutedStatus,
    /// Why it failed.
    pub reason: Option<String>,
}

/// An endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Endpoint {
    /// Its name.
    pub name: String,
    /// Open to anyone, without keys.
    pub public: bool,
    /// Weights of its deployments.
    pub traffic: Traffic,
    /// Its mirror.
    pub mirror: Option<MirrorSettings>,
    /// Its rollback policy.
    pub rollback: Option<RollbackPolicy>,
    /// The deployments the last change raised: what the rollback policy watches.
    pub watching: Vec<String>,
    /// Each routed deployment with its state.
    pub deployments: Vec<Routed>,
    /// Its generation: every change makes a new one.
    pub generation: i64,
    /// When it last changed (RFC 3339).
    pub updated: String,
    /// Its prediction URLs.
    pub urls: Urls,
}

/// The answer to a new endpoint: it, with its two keys shown this once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointCreated {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// Its keys.
    pub keys: Keys,
}

/// Something that happened to an endpoint: created, traffic, mirror, policy, rollback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointEvent {
    /// What kind of change.
    pub kind: String,
    /// What changed.
    pub message: String,
    /// When (RFC 3339).
    pub time: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_removes_and_absent_keeps() {
        let update: EndpointUpdate = serde_json::from_str(r#"{"mirror": null}"#).unwrap();
        assert_eq!(update.mirror, Some(None));
        assert_eq!(update.rollback, None);
        assert_eq!(
            serde_json::to_string(&update).unwrap(),
            r#"{"mirror":null}"#
        );
        let kept: EndpointUpdate = serde_json::from_str("{}").unwrap();
        assert_eq!(kept, EndpointUpdate::default());
    }
}

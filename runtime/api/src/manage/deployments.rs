//! Deployments: an image served as a web service at its own prediction URLs, with limits, scale,
//! two keys, drift monitoring and a retraining policy, and the status its runtime nodes report.
//! Names are unique in the installation: they are the `{model}` of prediction URLs.

use crate::{Limits, MonitoringSettings, ScaleSettings};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `POST .../workgroups/{workgroup}/deployments`: a new deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    /// Its name, unique in the installation (endpoints' names included).
    pub name: String,
    /// An image of the work group, by name.
    pub image: String,
    /// Open to anyone, without keys (off by default).
    #[serde(default)]
    pub public: bool,
    /// Its instances' limits; unset ones come from the image, then the node.
    #[serde(default)]
    pub limits: Limits,
    /// How it scales.
    #[serde(default)]
    pub scale: ScaleSettings,
    /// An endpoint of the work group to join: at 100% when it routes nothing yet, else at 0%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// `PATCH .../deployments/{deployment}`: what is given changes (limits and scale field by
/// field). A new image, or new limits, loads next to the old version, which serves until the
/// new one passed its checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DeploymentUpdate {
    /// Another image of the work group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Limits to set; the others stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Scale settings to set; the others stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleSettings>,
    /// Open to anyone, or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
}

/// A deployment's prediction URLs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Urls {
    /// Open Inference Protocol inference.
    pub infer: String,
    /// Open Inference Protocol readiness.
    pub ready: String,
    /// Kiln's scoring URL.
    pub score: String,
    /// MLflow's scoring protocol.
    pub invocations: String,
}

impl Urls {
    /// The URLs of `name` under the prediction base URL `base`.
    pub fn of(base: &str, name: &str) -> Urls {
        let base = base.trim_end_matches('/');
        Urls {
            infer: format!("{base}/v2/models/{name}/infer"),
            ready: format!("{base}/v2/models/{name}/ready"),
            score: format!("{base}/deployments/{name}/score"),
            invocations: format!("{base}/deployments/{name}/invocations"),
        }
    }
}

/// Two keys, shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Keys {
    /// The primary key.
    pub primary: String,
    /// The secondary key.
    pub secondary: String,
    /// Always [`super::SHOWN_ONCE`]'s plural: store them now.
    pub note: String,
}

/// The endpoint a new deployment joined, at what weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Joined {
    /// The endpoint.
    pub name: String,
    /// The deployment's share of its traffic, in percent.
    pub weight: u32,
}

/// The answer to a new deployment: it is pending until a runtime node reports on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeploymentCreated {
    /// Its name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// The image's digest.
    pub digest: String,
    /// Open to anyone.
    pub public: bool,
    /// Its limits.
    pub limits: Limits,
    /// How it scales.
    pub scale: ScaleSettings,
    /// Always `pending`.
    pub status: DeploymentStatus,
    /// The endpoint it joined.
    pub endpoint: Option<Joined>,
    /// Its prediction URLs.
    pub urls: Urls,
    /// Its two keys, shown this once.
    pub keys: Keys,
}

/// Where a deployment is, as its runtime nodes report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    /// Its current generation has not been reported on yet.
    Pending,
    /// Serving.
    Ready,
    /// It could not be served: the reason says why.
    Failed,
}

impl DeploymentStatus {
    /// The status as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Pending => "pending",
            DeploymentStatus::Ready => "ready",
            DeploymentStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeploymentStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<DeploymentStatus, String> {
        [
            DeploymentStatus::Pending,
            DeploymentStatus::Ready,
            DeploymentStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| format!("unknown deployment status '{text}'"))
    }
}

/// When to retrain: an experiment submitted as a run once a drift alert holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RetrainPolicy {
    /// A project of the work group.
    pub project: String,
    /// An experiment of that project, run at the head of `main`.
    pub experiment: String,
    /// Windows in a row with an alert before a run is submitted (default 3).
    #[serde(default = "default_windows")]
    pub windows: u32,
    /// Seconds after a submitted run during which no other is (default 3600).
    #[serde(default = "default_cooldown")]
    pub cooldown_s: u64,
    /// The runs' target (default: the experiment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

fn default_windows() -> u32 {
    3
}

fn default_cooldown() -> u64 {
    3600
}

/// A retraining policy with who set it (its runs are submitted as them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OwnedPolicy {
    /// The policy as given.
    #[serde(flatten)]
    pub policy: RetrainPolicy,
    /// The id of the user who set it.
    pub owner: String,
}

/// A deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Deployment {
    /// Its name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// The image's digest.
    pub digest: String,
    /// Open to anyone, without keys.
    pub public: bool,
    /// Its limits, as set (unset ones come from the image, then the node).
    pub limits: Limits,
    /// How it scales.
    pub scale: ScaleSettings,
    /// Its drift monitoring, as set.
    pub monitoring: MonitoringSettings,
    /// Its retraining policy.
    pub retrain: Option<OwnedPolicy>,
    /// Where it is.
    pub status: DeploymentStatus,
    /// Why it failed.
    pub reason: Option<String>,
    /// Its generation: every change makes a new one, which nodes report on.
    pub generation: i64,
    /// When it last changed (RFC 3339).
    pub updated: String,
    /// Its prediction URLs.
    pub urls: Urls,
}

/// A deployment's or an endpoint's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyName {
    /// The first key.
    Primary,
    /// The second key.
    Secondary,
}

impl KeyName {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyName::Primary => "primary",
            KeyName::Secondary => "secondary",
        }
    }
}

/// `POST .../{deployments|endpoints}/{name}/keys`: which key to regenerate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Regenerate {
    /// The key.
    pub key: KeyName,
}

/// A regenerated key, shown once; the other key keeps working.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewKey {
    /// The deployment or endpoint.
    pub name: String,
    /// Which key.
    pub key: KeyName,
    /// The key.
    pub value: String,
    /// Always [`super::SHOWN_ONCE`].
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_the_prediction_protocols_own() {
        let urls = Urls::of("http://k:8080/", "iris");
        assert_eq!(urls.infer, "http://k:8080/v2/models/iris/infer");
        assert_eq!(urls.ready, "http://k:8080/v2/models/iris/ready");
        assert_eq!(urls.score, "http://k:8080/deployments/iris/score");
        assert_eq!(
            urls.invocations,
            "http://k:8080/deployments/iris/invocations"
        );
    }

    #[test]
    fn a_policy_shows_its_owner_beside_its_fields() {
        let policy: RetrainPolicy =
            serde_json::from_str(r#"{"project": "iris", "experiment": "train"}"#).unwrap();
        assert_eq!((policy.windows, policy.cooldown_s), (3, 3600));
        let owned = OwnedPolicy {
            policy,
            owner: "u1".into(),
        };
        let json = serde_json::to_value(&owned).unwrap();
        assert_eq!(json["experiment"], "train");
        assert_eq!(json["owner"], "u1");
        let again: OwnedPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(again, owned);
        assert!("loading".parse::<DeploymentStatus>().is_err());
    }
}

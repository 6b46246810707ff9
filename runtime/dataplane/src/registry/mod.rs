//! The deployments a runtime serves, by name: each owns its version, model and metrics.

pub mod endpoint;

use crate::ApiError;
use endpoint::Endpoint;
use kiln_engine::Model;
use kiln_metrics::DeploymentMetrics;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// One served deployment version.
pub struct Deployment {
    /// Deployment name, the `{model}` of prediction URLs.
    pub name: String,
    /// Version served.
    pub version: String,
    /// The loaded model and its instance pool.
    pub model: Arc<Model>,
    /// Instruments bound to this deployment version.
    pub metrics: Arc<DeploymentMetrics>,
    /// SHA-256 digests of the keys this deployment accepts as `Authorization: Bearer`; `None`
    /// when it is public (or served without a control plane, where `--api-key` applies).
    pub key_digests: Option<Vec<[u8; 32]>>,
    /// Drift monitoring of this version: every answered request's inputs and outputs fold
    /// into its histograms. `None` when monitoring is off.
    pub monitor: Option<Arc<kiln_monitor::Monitor>>,
}

impl Deployment {
    /// A version of `name` with no keys of its own and no monitor (set them after, as fields).
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        model: Arc<Model>,
        metrics: Arc<DeploymentMetrics>,
    ) -> Self {
        Deployment {
            name: name.into(),
            version: version.into(),
            model,
            metrics,
            key_digests: None,
            monitor: None,
        }
    }
}

/// Deployments by name. Reads are lock-light: a lookup clones an `Arc`.
#[derive(Default)]
pub struct DeploymentRegistry {
    deployments: RwLock<HashMap<String, Arc<Deployment>>>,
    /// Deployments that could not be loaded, with the reason; served as 503.
    failed: RwLock<HashMap<String, String>>,
    /// Endpoints by name: each routes to deployments of this registry.
    endpoints: RwLock<HashMap<String, Arc<Endpoint>>>,
}

impl DeploymentRegistry {
    /// Adds or replaces a deployment and marks it ready. In-flight requests on a replaced
    /// version finish on it; its instances go when the last of them does.
    pub fn insert(&self, deployment: Deployment) {
        self.insert_arc(Arc::new(deployment));
    }

    /// [`DeploymentRegistry::insert`] for a deployment already shared.
    pub fn insert_arc(&self, deployment: Arc<Deployment>) {
        self.failed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&deployment.name);
        let old = self
            .deployments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(deployment.name.clone(), deployment.clone());
        // The old version's gauge first: both versions may share one series.
        if let Some(old) = old {
            old.metrics.ready.set(0);
        }
        deployment.metrics.ready.set(1);
    }

    /// Stops serving `name` (a failed record included); requests already running finish.
    pub fn remove(&self, name: &str) -> Option<Arc<Deployment>> {
        self.failed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        let removed = self
            .deployments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        if let Some(old) = &removed {
            old.metrics.ready.set(0);
        }
        removed
    }

    /// Names of the deployments served or failed.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .deployments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.extend(
            self.failed
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .keys()
                .cloned(),
        );
        names.sort();
        names.dedup();
        names
    }

    /// Records a deployment that could not be loaded: its routes answer 503 with the reason.
    /// A version already served of the same name stops being served.
    pub fn insert_failed(&self, name: &str, reason: &str) {
        if let Some(old) = self
            .deployments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
        {
            old.metrics.ready.set(0);
        }
        let mut failed = self
            .failed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failed.insert(name.to_string(), reason.to_string());
    }

    /// The deployment `name`, at `version` when one is given.
    pub fn get(&self, name: &str, version: Option<&str>) -> Result<Arc<Deployment>, ApiError> {
        let map = self
            .deployments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(deployment) = map.get(name) else {
            let failed = self
                .failed
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            return Err(match failed.get(name) {
                Some(reason) => {
                    ApiError::unavailable(format!("model '{name}' is not ready: {reason}"))
                }
                None => ApiError::not_found(format!("model '{name}' not found")),
            });
        };
        match version {
            Some(v) if v != deployment.version => Err(ApiError::not_found(format!(
                "model '{name}' has no version '{v}' (serving version '{}')",
                deployment.version
            ))),
            _ => Ok(deployment.clone()),
        }
    }

    /// Adds or replaces an endpoint at once: requests already routed finish where they went.
    pub fn set_endpoint(&self, endpoint: Endpoint) {
        self.endpoints
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(endpoint.name.clone(), Arc::new(endpoint));
    }

    /// Stops routing the endpoint `name`.
    pub fn remove_endpoint(&self, name: &str) -> Option<Arc<Endpoint>> {
        self.endpoints
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
    }

    /// The endpoint `name`, if there is one.
    pub fn endpoint(&self, name: &str) -> Option<Arc<Endpoint>> {
        self.endpoints
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Names of the endpoints routed.
    pub fn endpoint_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .endpoints
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Every deployment, sorted by name.
    pub fn all(&self) -> Vec<Arc<Deployment>> {
        let map = self
            .deployments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all: Vec<_> = map.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

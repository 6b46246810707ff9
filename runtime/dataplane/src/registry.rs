//! The deployments a runtime serves, by name: each owns its version, model and metrics.

use crate::ApiError;
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
}

/// Deployments by name. Reads are lock-light: a lookup clones an `Arc`.
#[derive(Default)]
pub struct DeploymentRegistry {
    deployments: RwLock<HashMap<String, Arc<Deployment>>>,
    /// Deployments that could not be loaded, with the reason; served as 503.
    failed: RwLock<HashMap<String, String>>,
}

impl DeploymentRegistry {
    /// Adds or replaces a deployment and marks it ready.
    pub fn insert(&self, deployment: Deployment) {
        deployment.metrics.ready.set(1);
        let mut map = self
            .deployments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = map.insert(deployment.name.clone(), Arc::new(deployment)) {
            old.metrics.ready.set(0);
        }
    }

    /// Records a deployment that could not be loaded: its routes answer 503 with the reason.
    pub fn insert_failed(&self, name: &str, reason: &str) {
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

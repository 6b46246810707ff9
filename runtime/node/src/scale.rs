//! Serverless scaling: idle deployments release their instances.

use kiln_dataplane::Dataplane;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Idle timeout and minimum of instances, by deployment.
pub(crate) type IdlePolicies = Arc<Mutex<HashMap<String, (Duration, usize)>>>;

/// A deployment with an idle timeout that has seen no prediction for that long keeps only its
/// minimum of instances (by default none) and their memory goes. This runs on its own every
/// 250 ms, so a long reconciliation (many deployments loading) never holds idle instances,
/// whose pool slots new deployments need.
pub(crate) async fn scale_down(dataplane: Arc<Dataplane>, policies: IdlePolicies) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let policies = policies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if policies.is_empty() {
            continue;
        }
        for deployment in dataplane.registry.all() {
            let Some((timeout, keep)) = policies.get(&deployment.name) else {
                continue;
            };
            if deployment.model.idle_for() < *timeout {
                continue;
            }
            let released = deployment.model.release_idle(*keep);
            if released > 0 {
                tracing::info!(deployment = %deployment.name, released, kept = keep, "idle: instances released");
            }
        }
    }
}

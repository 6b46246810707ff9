//! Endpoint routing tables, and the rollback policy's windows and verdict.

use crate::DesiredState;
use kiln_api::{DesiredEndpoint, RollbackPolicy, RollbackReport};
use kiln_dataplane::{Endpoint, Route};
use kiln_metrics::{Metrics, RouteMetrics, RouteSnapshot};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The rollback verdict on one window of a watched deployment: why it breached `policy`, or
/// `None` when it did not (or had too few answers to be judged). `p99` is in seconds, infinite
/// when past the last latency bucket.
pub fn verdict(policy: &RollbackPolicy, requests: u64, errors: u64, p99: f64) -> Option<String> {
    if requests < policy.min_requests || requests == 0 {
        return None;
    }
    let rate = errors as f64 / requests as f64;
    match (policy.max_error_rate, policy.max_p99_ms) {
        (Some(max), _) if rate > max => Some(format!(
            "error rate {:.1}% ({errors} of {requests} answers) above {:.1}% over {} s",
            rate * 100.0,
            max * 100.0,
            policy.window_s
        )),
        (_, Some(max)) if p99 * 1e3 > max => Some(format!(
            "p99 latency {} above {max} ms over {} s ({requests} answers)",
            if p99.is_finite() {
                format!("{:.0} ms", p99 * 1e3)
            } else {
                "over 10 s".to_string()
            },
            policy.window_s
        )),
        _ => None,
    }
}

/// Decodes hex key digests; ones that do not decode to 32 bytes are dropped (they match no key).
pub fn decode_digests(digests: &[String]) -> Vec<[u8; 32]> {
    digests
        .iter()
        .filter_map(|h| hex::decode(h).ok()?.try_into().ok())
        .collect()
}

/// (endpoint, deployment).
type RouteKey = (String, String);

/// The endpoints routed, and the rollback policy's windows.
#[derive(Default)]
pub struct Routing {
    /// Generation of each endpoint routed.
    generations: HashMap<String, i64>,
    /// Route instruments, kept across generations so that their counts (and the policy's
    /// windows) carry on.
    metrics: HashMap<RouteKey, Arc<RouteMetrics>>,
    /// Open windows of watched routes: generation, start, counts at the start.
    windows: HashMap<RouteKey, (i64, Instant, RouteSnapshot)>,
}

impl Routing {
    /// Routes the desired endpoints: ones that went are removed, new or changed ones swapped in
    /// whole.
    pub fn apply(
        &mut self,
        registry: &kiln_dataplane::DeploymentRegistry,
        metrics: &Metrics,
        desired: &[DesiredEndpoint],
    ) {
        let wanted: HashSet<&str> = desired.iter().map(|e| e.name.as_str()).collect();
        for name in registry.endpoint_names() {
            if !wanted.contains(name.as_str()) {
                registry.remove_endpoint(&name);
                self.generations.remove(&name);
                self.forget(metrics, |(e, _)| e == &name);
                tracing::info!(endpoint = %name, "endpoint removed");
            }
        }
        for e in desired {
            if self.generations.get(&e.name) == Some(&e.generation) {
                continue;
            }
            let routes = e
                .traffic
                .iter()
                .map(|w| {
                    let key = (e.name.clone(), w.deployment.clone());
                    let route_metrics = self
                        .metrics
                        .entry(key)
                        .or_insert_with(|| Arc::new(metrics.route(&e.name, &w.deployment)))
                        .clone();
                    Route {
                        deployment: w.deployment.clone(),
                        weight: w.weight,
                        metrics: route_metrics,
                    }
                })
                .collect();
            let keys = (!e.public).then(|| decode_digests(&e.key_digests));
            let mirror = e.mirror.as_ref().map(|m| (m.deployment.clone(), m.percent));
            registry.set_endpoint(Endpoint::new(e.name.clone(), keys, routes, mirror));
            self.forget(metrics, |(name, d)| {
                name == &e.name && !e.traffic.iter().any(|w| &w.deployment == d)
            });
            self.generations.insert(e.name.clone(), e.generation);
            let split: Vec<String> = e
                .traffic
                .iter()
                .map(|w| format!("{} {}%", w.deployment, w.weight))
                .collect();
            tracing::info!(endpoint = %e.name, generation = e.generation, traffic = %split.join(", "), "endpoint routed");
        }
    }

    /// Drops the instruments and windows of routes that went.
    fn forget(&mut self, metrics: &Metrics, gone: impl Fn(&RouteKey) -> bool) {
        self.metrics.retain(|key, _| {
            if gone(key) {
                metrics.remove_route(&key.0, &key.1);
                false
            } else {
                true
            }
        });
        self.windows.retain(|key, _| !gone(key));
    }

    /// The rollback policy: each watched deployment with traffic is judged once per window on
    /// its live answers through the endpoint; a breach goes to the source, which moves its
    /// weight back and records why. A new endpoint generation starts a new window.
    pub async fn judge(&mut self, source: &impl DesiredState, desired: &[DesiredEndpoint]) {
        let now = Instant::now();
        let mut watched = HashSet::new();
        for e in desired {
            let Some(policy) = &e.rollback else { continue };
            for w in e.traffic.iter().filter(|w| w.weight > 0) {
                if !e.watch.contains(&w.deployment) {
                    continue;
                }
                let key = (e.name.clone(), w.deployment.clone());
                let Some(metrics) = self.metrics.get(&key) else {
                    continue;
                };
                watched.insert(key.clone());
                let snapshot = metrics.snapshot();
                let window = self
                    .windows
                    .entry(key.clone())
                    .or_insert_with(|| (e.generation, now, snapshot.clone()));
                if window.0 != e.generation {
                    *window = (e.generation, now, snapshot);
                    continue;
                }
                if now.duration_since(window.1) < Duration::from_secs(policy.window_s) {
                    continue;
                }
                let (requests, errors, p99) = snapshot.since(&window.2);
                *window = (e.generation, now, snapshot);
                let Some(reason) = verdict(policy, requests, errors, p99) else {
                    continue;
                };
                tracing::warn!(endpoint = %e.name, deployment = %w.deployment, "rollback policy breached: {reason}");
                let report = RollbackReport {
                    generation: e.generation,
                    deployment: w.deployment.clone(),
                    reason,
                };
                if let Err(err) = source.report_rollback(&e.name, &report).await {
                    tracing::warn!(endpoint = %e.name, "cannot report the breach: {err:#}");
                }
            }
        }
        self.windows.retain(|key, _| watched.contains(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rate: Option<f64>, p99_ms: Option<f64>) -> RollbackPolicy {
        RollbackPolicy {
            max_error_rate: rate,
            max_p99_ms: p99_ms,
            window_s: 10,
            min_requests: 20,
        }
    }

    #[test]
    fn too_few_answers_are_not_judged() {
        let p = policy(Some(0.05), None);
        assert_eq!(verdict(&p, 19, 19, 0.001), None);
        assert_eq!(verdict(&p, 0, 0, f64::INFINITY), None);
        assert!(verdict(&p, 20, 19, 0.001).is_some());
    }

    #[test]
    fn an_error_rate_above_the_threshold_breaches_and_says_so() {
        let p = policy(Some(0.05), None);
        assert_eq!(verdict(&p, 100, 5, 0.001), None, "5% is not above 5%");
        let reason = verdict(&p, 100, 6, 0.001).expect("6% breaches");
        assert_eq!(
            reason,
            "error rate 6.0% (6 of 100 answers) above 5.0% over 10 s"
        );
    }

    #[test]
    fn a_p99_above_the_threshold_breaches_even_past_the_last_bucket() {
        let p = policy(None, Some(100.0));
        assert_eq!(verdict(&p, 50, 0, 0.1), None, "100 ms is not above 100 ms");
        assert_eq!(
            verdict(&p, 50, 0, 0.25).expect("250 ms"),
            "p99 latency 250 ms above 100 ms over 10 s (50 answers)"
        );
        assert!(
            verdict(&p, 50, 0, f64::INFINITY)
                .expect("off the scale")
                .contains("over 10 s above 100 ms")
        );
    }

    #[test]
    fn with_both_thresholds_the_error_rate_is_named_first() {
        let p = policy(Some(0.1), Some(50.0));
        let reason = verdict(&p, 40, 20, 1.0).expect("both breach");
        assert!(reason.starts_with("error rate 50.0%"), "{reason}");
        let reason = verdict(&p, 40, 0, 1.0).expect("p99 breaches");
        assert!(reason.starts_with("p99 latency 1000 ms"), "{reason}");
        assert_eq!(verdict(&p, 40, 1, 0.01), None);
    }

    #[test]
    fn digests_that_do_not_decode_match_nothing() {
        let good = "ab".repeat(32);
        let digests = decode_digests(&[good.clone(), "zz".into(), "abcd".into(), String::new()]);
        assert_eq!(digests.len(), 1);
        assert_eq!(hex::encode(digests[0]), good);
    }
}

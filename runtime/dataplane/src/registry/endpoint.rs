//! Endpoints: a stable name in prediction URLs that routes each request to one of its
//! deployments. Live requests follow the integer weights through a table of 100 slots filled by
//! smooth weighted round robin, so any 100 requests in a row split exactly by weight, spread
//! out; a deployment that is not ready (loading, failed its checks) is skipped for the heaviest
//! ready one, so a request never meets a version that cannot answer. `kiln-deployment: NAME`
//! targets one deployment of the endpoint. A mirror copies its share of requests to one
//! deployment in the background; its answers are discarded.

use super::{Deployment, DeploymentRegistry};
use crate::ApiError;
use axum::http::HeaderMap;
use kiln_metrics::RouteMetrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The request header that targets one deployment of an endpoint.
pub const DEPLOYMENT_HEADER: &str = "kiln-deployment";

/// One deployment an endpoint routes to.
pub struct Route {
    /// The deployment's name.
    pub deployment: String,
    /// Percent of live traffic.
    pub weight: u32,
    /// Its instruments under this endpoint.
    pub metrics: Arc<RouteMetrics>,
}

/// An endpoint as a runtime routes it.
pub struct Endpoint {
    /// The `{model}` of prediction URLs.
    pub name: String,
    /// SHA-256 digests of the keys it accepts; `None` when public.
    pub key_digests: Option<Vec<[u8; 32]>>,
    /// Its deployments, weighted or not.
    pub routes: Vec<Route>,
    /// Route index per slot; empty when no route has weight.
    slots: Vec<u8>,
    next: AtomicUsize,
    /// The mirrored route and its percent.
    mirror: Option<(usize, u32)>,
    mirror_next: AtomicUsize,
}

impl Endpoint {
    /// An endpoint routing by `routes`' weights (which sum to 100, or are all 0), mirroring
    /// `mirror.1` percent of requests to the route named `mirror.0`.
    pub fn new(
        name: String,
        key_digests: Option<Vec<[u8; 32]>>,
        routes: Vec<Route>,
        mirror: Option<(String, u32)>,
    ) -> Endpoint {
        let weights: Vec<u32> = routes.iter().map(|r| r.weight).collect();
        let mirror = mirror.and_then(|(deployment, percent)| {
            let index = routes.iter().position(|r| r.deployment == deployment)?;
            Some((index, percent.min(100)))
        });
        for route in &routes {
            route.metrics.weight.set(i64::from(route.weight));
            route.metrics.mirror.set(0);
        }
        if let Some((index, percent)) = mirror {
            routes[index].metrics.mirror.set(i64::from(percent));
        }
        Endpoint {
            name,
            key_digests,
            routes,
            slots: slots(&weights),
            next: AtomicUsize::new(0),
            mirror,
            mirror_next: AtomicUsize::new(0),
        }
    }

    /// The deployment for one request: the one the header names, or one serving `version`, or
    /// the next by weight (`live`) or the heaviest ready one (metadata and readiness).
    pub fn choose(
        &self,
        registry: &DeploymentRegistry,
        headers: &HeaderMap,
        version: Option<&str>,
        live: bool,
    ) -> Result<(usize, Arc<Deployment>), ApiError> {
        if let Some(named) = headers.get(DEPLOYMENT_HEADER) {
            let named = named.to_str().unwrap_or("").trim();
            let index = self
                .routes
                .iter()
                .position(|r| r.deployment == named)
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "endpoint '{}' has no deployment '{named}' (deployments: {})",
                        self.name,
                        self.names()
                    ))
                })?;
            return Ok((index, registry.get(named, version)?));
        }
        if let Some(version) = version {
            return self
                .routes
                .iter()
                .enumerate()
                .find_map(|(i, r)| {
                    let d = registry.get(&r.deployment, Some(version)).ok()?;
                    Some((i, d))
                })
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "endpoint '{}' has no ready deployment serving version '{version}'",
                        self.name
                    ))
                });
        }
        if self.slots.is_empty() {
            return Err(ApiError::unavailable(format!(
                "endpoint '{}' routes no traffic yet: give one of its deployments a weight",
                self.name
            )));
        }
        let first = if live {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            usize::from(self.slots[n % self.slots.len()])
        } else {
            self.heaviest()
        };
        let mut last_error = match registry.get(&self.routes[first].deployment, None) {
            Ok(deployment) => return Ok((first, deployment)),
            Err(e) => e,
        };
        // Not ready: the heaviest ready deployment with traffic answers instead.
        let mut others: Vec<usize> = (0..self.routes.len())
            .filter(|&i| i != first && self.routes[i].weight > 0)
            .collect();
        others.sort_by_key(|&i| std::cmp::Reverse(self.routes[i].weight));
        for i in others {
            match registry.get(&self.routes[i].deployment, None) {
                Ok(deployment) => return Ok((i, deployment)),
                Err(e) => last_error = e,
            }
        }
        Err(ApiError::unavailable(format!(
            "endpoint '{}' has no ready deployment: {}",
            self.name, last_error.message
        )))
    }

    /// Whether this request is also copied to the mirror; the mirrored route when it is.
    pub fn mirror_next(&self) -> Option<usize> {
        let (index, percent) = self.mirror?;
        let n = (self.mirror_next.fetch_add(1, Ordering::Relaxed) % 100) as u32;
        // Exactly `percent` of every 100 requests in a row, spread out.
        ((n + 1) * percent / 100 > n * percent / 100).then_some(index)
    }

    fn heaviest(&self) -> usize {
        (0..self.routes.len())
            .max_by_key(|&i| (self.routes[i].weight, std::cmp::Reverse(i)))
            .unwrap_or(0)
    }

    fn names(&self) -> String {
        self.routes
            .iter()
            .map(|r| r.deployment.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// 100 slots holding route indices in proportion to `weights`, interleaved (smooth weighted
/// round robin); none when every weight is 0.
fn slots(weights: &[u32]) -> Vec<u8> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut current = vec![0i64; weights.len()];
    (0..100)
        .map(|_| {
            for (c, w) in current.iter_mut().zip(weights) {
                *c += i64::from(*w);
            }
            let best = (0..weights.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .unwrap_or(0);
            current[best] -= total;
            best as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_split_exactly_and_spread() {
        let s = slots(&[90, 10]);
        assert_eq!(s.len(), 100);
        assert_eq!(s.iter().filter(|&&i| i == 1).count(), 10);
        // The ten go one per tenth, not in a burst.
        for tenth in s.chunks(10) {
            assert_eq!(tenth.iter().filter(|&&i| i == 1).count(), 1, "{s:?}");
        }
        let s = slots(&[0, 100, 0]);
        assert!(s.iter().all(|&i| i == 1));
        assert!(slots(&[0, 0]).is_empty());
        let s = slots(&[33, 33, 34]);
        assert_eq!(s.iter().filter(|&&i| i == 2).count(), 34);
    }

    #[test]
    fn mirror_copies_its_percent_of_every_hundred() {
        let metrics = kiln_metrics::Metrics::new();
        let route = |name: &str, weight| Route {
            deployment: name.into(),
            weight,
            metrics: Arc::new(metrics.route("e", name)),
        };
        let e = Endpoint::new(
            "e".into(),
            None,
            vec![route("blue", 100), route("green", 0)],
            Some(("green".into(), 20)),
        );
        let copies = (0..1000).filter(|_| e.mirror_next() == Some(1)).count();
        assert_eq!(copies, 200);
    }
}

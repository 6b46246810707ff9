//! The instruments of an endpoint's routes, and the live totals the rollback policy reads.

use crate::{CODES, LATENCY_BUCKETS, code_index};
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live answers of one route, counted for the rollback policy: totals since the route was
/// made, read as differences between two snapshots.
#[derive(Default)]
pub struct RouteTotals {
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// Answers per latency bucket (the last one past every bound).
    pub(crate) buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
}

/// A snapshot of [`RouteTotals`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteSnapshot {
    /// Answers.
    pub requests: u64,
    /// 5xx answers.
    pub errors: u64,
    pub(crate) buckets: Vec<u64>,
}

impl RouteSnapshot {
    /// Answers, 5xx answers and the p99 latency (a bucket's upper bound, seconds; infinite past
    /// the last) between `earlier` and this snapshot.
    pub fn since(&self, earlier: &RouteSnapshot) -> (u64, u64, f64) {
        let requests = self.requests.saturating_sub(earlier.requests);
        let errors = self.errors.saturating_sub(earlier.errors);
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, n)| n.saturating_sub(earlier.buckets.get(i).copied().unwrap_or(0)))
            .collect();
        let total: u64 = counts.iter().sum();
        let mut p99 = 0.0;
        if total > 0 {
            let rank = (total as f64 * 0.99).ceil() as u64;
            let mut seen = 0;
            for (i, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    p99 = LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
                    break;
                }
            }
        }
        (requests, errors, p99)
    }
}

/// Instruments of one endpoint's route to one deployment, live and mirrored.
pub struct RouteMetrics {
    pub(crate) endpoint: String,
    pub(crate) deployment: String,
    pub(crate) family: IntCounterVec,
    pub(crate) requests: [[OnceLock<IntCounter>; CODES.len()]; 2],
    pub(crate) duration: [Histogram; 2],
    /// Percent of live traffic.
    pub weight: IntGauge,
    /// Percent mirrored.
    pub mirror: IntGauge,
    pub(crate) live: RouteTotals,
}

impl RouteMetrics {
    /// Counts one answer: `mirrored` for a copy whose answer was discarded.
    pub fn record(&self, mirrored: bool, status: u16, seconds: f64) {
        let t = usize::from(mirrored);
        let c = code_index(status);
        self.requests[t][c]
            .get_or_init(|| {
                self.family.with_label_values(&[
                    self.endpoint.as_str(),
                    self.deployment.as_str(),
                    if mirrored { "mirror" } else { "live" },
                    CODES[c],
                ])
            })
            .inc();
        self.duration[t].observe(seconds);
        if !mirrored {
            let live = &self.live;
            live.requests.fetch_add(1, Ordering::Relaxed);
            if status >= 500 {
                live.errors.fetch_add(1, Ordering::Relaxed);
            }
            let bucket = LATENCY_BUCKETS.partition_point(|b| *b < seconds);
            live.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The live answers so far.
    pub fn snapshot(&self) -> RouteSnapshot {
        RouteSnapshot {
            requests: self.live.requests.load(Ordering::Relaxed),
            errors: self.live.errors.load(Ordering::Relaxed),
            buckets: self
                .live
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

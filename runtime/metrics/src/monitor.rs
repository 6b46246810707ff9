//! Drift and data-quality instruments of a deployment version.

use prometheus::{GaugeVec, Histogram, IntCounterVec, IntGaugeVec};

/// Drift and data-quality instruments of one deployment version. Label values depend on the
/// features and statistics a monitor reports, so these are resolved off the request path.
pub struct MonitorMetrics {
    pub(crate) deployment: String,
    pub(crate) version: String,
    pub(crate) drift_statistic: GaugeVec,
    pub(crate) drift_severity: IntGaugeVec,
    pub(crate) drift_state: IntGaugeVec,
    pub(crate) feature_values: IntCounterVec,
    pub(crate) monitor_runs: IntCounterVec,
    /// Time of one monitor component call.
    pub monitor_duration: Histogram,
    pub(crate) input_summary: GaugeVec,
}

/// Deployment-level monitoring states, one-hot in `kiln_drift_state`.
pub const DRIFT_STATES: [&str; 7] = [
    "ok",
    "warning",
    "alert",
    "insufficient_data",
    "no_baseline",
    "no_monitor",
    "monitor_failed",
];

impl MonitorMetrics {
    /// Sets one statistic of one feature, for `window` (`latest` or `cumulative`).
    pub fn set_statistic(&self, role: &str, feature: &str, statistic: &str, window: &str, v: f64) {
        self.drift_statistic
            .with_label_values(&[
                self.deployment.as_str(),
                self.version.as_str(),
                role,
                feature,
                statistic,
                window,
            ])
            .set(v);
    }

    /// Sets a feature's verdict in the latest window: -1 insufficient data, 0 ok, 1 warning,
    /// 2 alert.
    pub fn set_severity(&self, role: &str, feature: &str, severity: i64) {
        self.drift_severity
            .with_label_values(&[
                self.deployment.as_str(),
                self.version.as_str(),
                role,
                feature,
            ])
            .set(severity);
    }

    /// Sets the deployment's monitoring state (one of [`DRIFT_STATES`]).
    pub fn set_state(&self, state: &str) {
        for s in DRIFT_STATES {
            self.drift_state
                .with_label_values(&[self.deployment.as_str(), self.version.as_str(), s])
                .set(i64::from(s == state));
        }
    }

    /// Adds values of a feature seen with `quality` (`valid`, `missing`, `nan`, `out_of_range`).
    pub fn add_values(&self, role: &str, feature: &str, quality: &str, n: u64) {
        let counter = self.feature_values.with_label_values(&[
            self.deployment.as_str(),
            self.version.as_str(),
            role,
            feature,
            quality,
        ]);
        if n > 0 {
            counter.inc_by(n);
        }
    }

    /// Counts one monitor run by its result (`ok`, `deadline`, `trap`, `error`, `invalid`).
    pub fn count_run(&self, result: &str) {
        self.monitor_runs
            .with_label_values(&[self.deployment.as_str(), self.version.as_str(), result])
            .inc();
    }

    /// Sets a summary statistic (`mean`, `stddev`, `nan_ratio`) of a wide input tensor.
    pub fn set_summary(&self, tensor: &str, statistic: &str, v: f64) {
        self.input_summary
            .with_label_values(&[
                self.deployment.as_str(),
                self.version.as_str(),
                tensor,
                statistic,
            ])
            .set(v);
    }
}

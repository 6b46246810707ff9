//! Kiln's drift monitoring, in the serving process.
//!
//! A [`Monitor`] belongs to one deployment version. Its [`Plan`] maps the image's baseline onto
//! the model's tabular inputs and outputs; on the request path [`Monitor::observe`] folds each
//! request into a [`Sketch`] of sharded relaxed atomic counters on the baseline's bins (no lock,
//! a few nanoseconds per value). Off the request path, [`run`] closes tumbling windows (counter
//! differences between snapshots), hands reference and window histograms to the deployment's
//! monitor component (`kiln:monitor`, with a deadline and a memory limit), exports the
//! statistics as Prometheus gauges and sends a JSON report to whoever listens.

mod analyze;
mod plan;
mod sketch;
mod values;

pub use analyze::{FeatureInput, reports_json};
pub use plan::{
    MAX_TABULAR_WIDTH, Plan, Role, Slot, is_label, prediction_baseline, tabular_columns,
};
pub use sketch::{NA_F16, NA_F32, NA_F64, Sketch};
pub use values::{labels, numbers};

use kiln_engine::{
    CompiledMonitor, FeatureKind as WitKind, ModelMetadata, MonitorError, MonitorFeature,
    MonitorLimits, Role as WitRole, ScoringEngine, Severity, Tensor,
};
use kiln_image::{Baseline, FeatureKind};
use kiln_metrics::MonitorMetrics;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How deployments are monitored.
#[derive(Clone, Debug)]
pub struct MonitorSettings {
    /// Length of a tumbling window.
    pub window: Duration,
    /// Closed windows kept in memory.
    pub keep_windows: usize,
    /// Most features monitored per deployment version.
    pub max_features: usize,
    /// Bounds of one monitor component call.
    pub limits: MonitorLimits,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            window: Duration::from_secs(300),
            keep_windows: 12,
            max_features: 100,
            limits: MonitorLimits::default(),
        }
    }
}

/// A monitor component chosen for a deployment.
pub struct MonitorComponent {
    /// What the user named (`default`, a file, an image reference).
    pub name: String,
    /// The compiled component.
    pub compiled: CompiledMonitor,
    /// The config string passed to `analyze`.
    pub config: String,
}

/// One closed window: counter differences between two snapshots.
#[derive(Clone, Debug)]
pub struct Window {
    /// Start, ms since the Unix epoch.
    pub start_ms: u64,
    /// End, ms since the Unix epoch.
    pub end_ms: u64,
    /// Counters of the sketch over the window.
    pub counts: Vec<u64>,
}

struct State {
    window_start_ms: u64,
    window_started: Instant,
    started_ms: u64,
    at_window_start: Vec<u64>,
    exported: Vec<u64>,
    windows: VecDeque<Window>,
    component: Option<Arc<MonitorComponent>>,
    component_error: Option<String>,
    window_length: Duration,
}

/// The drift monitor of one deployment version.
pub struct Monitor {
    /// Deployment name.
    pub deployment: String,
    /// Deployment version.
    pub version: String,
    plan: Plan,
    sketch: Sketch,
    has_baseline: bool,
    metrics: MonitorMetrics,
    settings: MonitorSettings,
    state: Mutex<State>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Ok => "ok",
        Severity::Warning => "warning",
        Severity::Alert => "alert",
        Severity::InsufficientData => "insufficient_data",
    }
}

fn severity_value(s: Severity) -> i64 {
    match s {
        Severity::Ok => 0,
        Severity::Warning => 1,
        Severity::Alert => 2,
        Severity::InsufficientData => -1,
    }
}

impl Monitor {
    /// The monitor of a deployment version serving `metadata`, with the image's baseline (when
    /// it has one).
    pub fn new(
        deployment: &str,
        version: &str,
        metadata: &ModelMetadata,
        baseline: Option<&Baseline>,
        settings: MonitorSettings,
        metrics: MonitorMetrics,
    ) -> Monitor {
        let plan = baseline
            .map(|b| Plan::new(metadata, b, settings.max_features))
            .unwrap_or_default();
        for (name, why) in &plan.unmonitored {
            tracing::info!(deployment, feature = %name, "not monitored: {why}");
        }
        let sketch = Sketch::new(&plan, Sketch::default_shards());
        let zero = vec![0; sketch.snapshot().len()];
        metrics.set_state(if baseline.is_some() {
            "no_monitor"
        } else {
            "no_baseline"
        });
        Monitor {
            deployment: deployment.to_string(),
            version: version.to_string(),
            plan,
            sketch,
            has_baseline: baseline.is_some(),
            metrics,
            state: Mutex::new(State {
                window_start_ms: now_ms(),
                window_started: Instant::now(),
                started_ms: now_ms(),
                at_window_start: zero.clone(),
                exported: zero,
                windows: VecDeque::new(),
                component: None,
                component_error: None,
                window_length: settings.window,
            }),
            settings,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is monitored.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Whether the image carried a baseline.
    pub fn has_baseline(&self) -> bool {
        self.has_baseline
    }

    /// The request path: folds one answered request's inputs and outputs (metadata order).
    #[inline]
    pub fn observe(&self, inputs: &[Tensor], outputs: &[Tensor]) {
        if !self.plan.is_empty() {
            self.sketch.observe(&self.plan, inputs, outputs);
        }
    }

    /// Uses `component` from now on (or none, with the reason), without touching the counts.
    pub fn set_component(&self, component: Result<Arc<MonitorComponent>, String>) {
        let mut state = self.state();
        match component {
            Ok(c) => {
                state.component = Some(c);
                state.component_error = None;
            }
            Err(e) => {
                state.component = None;
                state.component_error = Some(e);
                drop(state);
                self.metrics.set_state("no_monitor");
            }
        }
    }

    /// The component in use, if any.
    pub fn component(&self) -> Option<Arc<MonitorComponent>> {
        self.state().component.clone()
    }

    /// Changes the window length; the open window keeps its start.
    pub fn set_window(&self, window: Duration) {
        self.state().window_length = window.max(Duration::from_millis(100));
    }

    /// Closed windows, oldest first.
    pub fn windows(&self) -> Vec<Window> {
        self.state().windows.iter().cloned().collect()
    }

    /// Exports the data-quality counters, and closes the window when its time is up.
    pub fn tick(&self) -> Option<Window> {
        let snapshot = self.sketch.snapshot();
        let mut state = self.state();
        for slot in &self.plan.slots {
            let bins = slot.bins();
            let delta = |i: usize| snapshot[i].saturating_sub(state.exported[i]);
            let valid: u64 = (slot.offset..slot.offset + bins).map(delta).sum();
            let (role, name) = (slot.role.as_str(), slot.baseline.name.as_str());
            self.metrics.add_values(role, name, "valid", valid);
            self.metrics
                .add_values(role, name, "missing", delta(slot.offset + bins));
            self.metrics
                .add_values(role, name, "nan", delta(slot.offset + bins + 1));
            self.metrics
                .add_values(role, name, "out_of_range", delta(slot.offset + bins + 2));
        }
        for (k, summary) in self.plan.summaries.iter().enumerate() {
            let base = self.plan.counters + k * 4;
            let n = snapshot[base] as f64;
            let finite = n - snapshot[base + 1] as f64;
            if n > 0.0 {
                let (sum, sq) = (
                    f64::from_bits(snapshot[base + 2]),
                    f64::from_bits(snapshot[base + 3]),
                );
                let mean = if finite > 0.0 { sum / finite } else { f64::NAN };
                let var = if finite > 0.0 {
                    (sq / finite - mean * mean).max(0.0)
                } else {
                    f64::NAN
                };
                self.metrics.set_summary(&summary.name, "mean", mean);
                self.metrics
                    .set_summary(&summary.name, "stddev", var.sqrt());
                self.metrics
                    .set_summary(&summary.name, "nan_ratio", snapshot[base + 1] as f64 / n);
            }
        }
        let upto = self.plan.counters;
        state.exported[..upto].copy_from_slice(&snapshot[..upto]);
        if state.window_started.elapsed() < state.window_length {
            return None;
        }
        let end_ms = now_ms();
        let counts = snapshot
            .iter()
            .zip(&state.at_window_start)
            .map(|(now, then)| now.saturating_sub(*then))
            .collect();
        let window = Window {
            start_ms: state.window_start_ms,
            end_ms,
            counts,
        };
        state.at_window_start = snapshot;
        state.window_start_ms = end_ms;
        state.window_started = Instant::now();
        state.windows.push_back(window.clone());
        while state.windows.len() > self.settings.keep_windows.max(1) {
            state.windows.pop_front();
        }
        Some(window)
    }

    /// The monitor's input for `counts` (a window's, or a snapshot since deploy).
    pub fn features(&self, counts: &[u64]) -> Vec<MonitorFeature> {
        self.plan
            .slots
            .iter()
            .map(|slot| {
                let b = &slot.baseline;
                MonitorFeature {
                    name: b.name.clone(),
                    role: match slot.role {
                        Role::Input => WitRole::Input,
                        Role::Output => WitRole::Output,
                    },
                    kind: match b.kind {
                        FeatureKind::Numeric => WitKind::Numeric,
                        FeatureKind::Categorical => WitKind::Categorical,
                    },
                    edges: b.edges.clone(),
                    categories: b.categories.clone(),
                    reference_min: b.min.unwrap_or(f64::NAN),
                    reference_max: b.max.unwrap_or(f64::NAN),
                    reference: b.counts.clone(),
                    current: counts
                        .get(slot.offset..slot.offset + slot.bins())
                        .map(<[u64]>::to_vec)
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Judges a window (or, with `cumulative`, everything since deploy) with the deployment's
    /// monitor component; exports gauges and returns the report.
    pub async fn evaluate(
        &self,
        engine: &ScoringEngine,
        window: &Window,
        cumulative: bool,
    ) -> Value {
        let kind = if cumulative { "cumulative" } else { "window" };
        let label = if cumulative { "cumulative" } else { "latest" };
        let (component, component_error) = {
            let state = self.state();
            (state.component.clone(), state.component_error.clone())
        };
        let features = self.features(&window.counts);
        let mut report = json!({
            "deployment": self.deployment,
            "version": self.version,
            "kind": kind,
            "start_ms": window.start_ms,
            "end_ms": window.end_ms,
            "monitor": Value::Null,
            "unmonitored": self.plan.unmonitored.iter().map(|(n, why)| json!({"name": n, "reason": why})).collect::<Vec<_>>(),
        });
        let (state, answer) = if !self.has_baseline {
            ("no_baseline", None)
        } else if let Some(component) = &component {
            report["monitor"] = json!({
                "component": component.name,
                "digest": component.compiled.digest,
                "config": component.config,
            });
            let started = Instant::now();
            let result = engine
                .analyze(
                    &component.compiled,
                    &features,
                    &component.config,
                    self.settings.limits,
                )
                .await;
            self.metrics
                .monitor_duration
                .observe(started.elapsed().as_secs_f64());
            match result {
                Ok(reports) => {
                    self.metrics.count_run("ok");
                    ("ok", Some(reports))
                }
                Err(e) => {
                    self.metrics.count_run(e.kind());
                    tracing::warn!(deployment = %self.deployment, monitor = %component.name, "monitor run failed: {e}");
                    report["error"] = json!(e.to_string());
                    ("monitor_failed", None)
                }
            }
        } else {
            report["error"] = json!(
                component_error.unwrap_or_else(|| "no monitor component is configured".into())
            );
            ("no_monitor", None)
        };
        let reports = answer.unwrap_or_default();
        let mut alerts = Vec::new();
        let mut worst = "insufficient_data";
        let rank = |s: &str| match s {
            "alert" => 3,
            "warning" => 2,
            "ok" => 1,
            _ => 0,
        };
        let feature_json: Vec<Value> = features
            .iter()
            .zip(&self.plan.slots)
            .map(|(f, slot)| {
                let bins = slot.bins();
                let q = |i: usize| window.counts.get(slot.offset + bins + i).copied().unwrap_or(0);
                let role = slot.role.as_str();
                let found = reports.iter().find(|r| {
                    r.name == f.name && (matches!(r.role, WitRole::Input) == (slot.role == Role::Input))
                });
                let mut entry = json!({
                    "name": f.name,
                    "role": role,
                    "kind": match f.kind { WitKind::Numeric => "numeric", WitKind::Categorical => "categorical" },
                    "values": f.current.iter().sum::<u64>(),
                    "quality": { "missing": q(0), "nan": q(1), "out_of_range": q(2) },
                    "edges": f.edges,
                    "categories": f.categories,
                    "reference": f.reference,
                    "current": f.current,
                });
                if let Some(r) = found {
                    let severity = severity_name(r.severity);
                    if rank(severity) > rank(worst) {
                        worst = severity;
                    }
                    if matches!(r.severity, Severity::Alert) {
                        alerts.push(json!({"name": f.name, "role": role}));
                    }
                    let mut stats = serde_json::Map::new();
                    for s in &r.statistics {
                        stats.insert(s.name.clone(), json!(finite_or_null(s.value)));
                        self.metrics.set_statistic(role, &f.name, &s.name, label, s.value);
                    }
                    if !cumulative {
                        self.metrics.set_severity(role, &f.name, severity_value(r.severity));
                    }
                    entry["severity"] = json!(severity);
                    entry["reason"] = json!(r.reason);
                    entry["statistics"] = Value::Object(stats);
                }
                entry
            })
            .collect();
        // Once the monitor has judged, the worst feature verdict is the deployment's state.
        if state != "ok" {
            worst = state;
        }
        if !cumulative {
            self.metrics.set_state(worst);
        }
        report["state"] = json!(worst);
        report["features"] = Value::Array(feature_json);
        report["alerts"] = Value::Array(alerts);
        report["summaries"] = self.summaries(&window.counts);
        report
    }

    fn summaries(&self, counts: &[u64]) -> Value {
        Value::Array(
            self.plan
                .summaries
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let base = self.plan.counters + k * 4;
                    let get = |i: usize| counts.get(base + i).copied().unwrap_or(0);
                    json!({ "tensor": s.name, "values": get(0), "nan": get(1) })
                })
                .collect(),
        )
    }

    /// Everything since deploy, as a window.
    pub fn cumulative(&self) -> Window {
        let started_ms = self.state().started_ms;
        Window {
            start_ms: started_ms,
            end_ms: now_ms(),
            counts: self.sketch.snapshot(),
        }
    }
}

fn finite_or_null(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// A report for one deployment: its latest window and the cumulative view, sent after each
/// window closes.
#[derive(Clone, Debug)]
pub struct DriftReport {
    /// Deployment name.
    pub deployment: String,
    /// Deployment version.
    pub version: String,
    /// The window just closed.
    pub window: Value,
    /// Since deploy.
    pub cumulative: Value,
}

/// Closes windows and judges them, for every monitor `monitors` returns, until the process ends.
/// Monitor runs happen here, never on the request path; each report goes to `sink`.
pub async fn run(
    engine: Arc<ScoringEngine>,
    monitors: impl Fn() -> Vec<Arc<Monitor>> + Send + 'static,
    sink: tokio::sync::mpsc::UnboundedSender<DriftReport>,
    tick: Duration,
) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        for monitor in monitors() {
            let Some(window) = monitor.tick() else {
                continue;
            };
            let latest = monitor.evaluate(&engine, &window, false).await;
            let cumulative = monitor.evaluate(&engine, &monitor.cumulative(), true).await;
            let _ = sink.send(DriftReport {
                deployment: monitor.deployment.clone(),
                version: monitor.version.clone(),
                window: latest,
                cumulative,
            });
        }
    }
}

/// Compiles a monitor component for deployments, naming it `name` with `config`.
pub fn component(
    engine: &ScoringEngine,
    name: &str,
    bytes: &[u8],
    config: &str,
) -> Result<Arc<MonitorComponent>, MonitorError> {
    Ok(Arc::new(MonitorComponent {
        name: name.to_string(),
        compiled: engine.compile_monitor(bytes)?,
        config: config.to_string(),
    }))
}

#[cfg(test)]
mod tests;

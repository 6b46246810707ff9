//! Kiln's drift monitoring, in the serving process.
//!
//! A [`Monitor`] belongs to one deployment version. Its [`Plan`] maps the image's baseline onto
//! the model's tabular inputs and outputs; on the request path [`Monitor::observe`] folds each
//! request into a [`Sketch`] of sharded relaxed atomic counters on the baseline's bins (no lock,
//! a few nanoseconds per value). Off the request path, [`run`] closes tumbling windows (counter
//! differences between snapshots), hands reference and window histograms to the deployment's
//! monitor component (`kiln:monitor`, with a deadline and a memory limit), exports the
//! statistics as Prometheus gauges and sends a JSON report to whoever listens.

mod plan;
mod sketch;
mod values;

pub use plan::{
    MAX_TABULAR_WIDTH, Plan, Role, Slot, is_label, prediction_baseline, tabular_columns,
};
pub use sketch::{NA_F16, NA_F32, NA_F64, Sketch};
pub use values::{labels, numbers};

use kiln_engine::{
    CompiledMonitor, FeatureKind as WitKind, FeatureReport, ModelMetadata, MonitorError,
    MonitorFeature, MonitorLimits, Role as WitRole, ScoringEngine, Severity, Tensor,
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

/// A monitor input given as JSON (for `kiln monitor analyze`): the fields of the WIT record.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureInput {
    /// Feature name.
    pub name: String,
    /// `input` (default) or `output`.
    #[serde(default)]
    pub role: Option<String>,
    /// `numeric` or `categorical`.
    pub kind: FeatureKind,
    /// Interior bin edges (numeric).
    #[serde(default)]
    pub edges: Vec<f64>,
    /// Category labels (categorical).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Smallest reference value.
    #[serde(default)]
    pub reference_min: Option<f64>,
    /// Largest reference value.
    #[serde(default)]
    pub reference_max: Option<f64>,
    /// Reference counts.
    pub reference: Vec<u64>,
    /// Current counts.
    pub current: Vec<u64>,
}

impl FeatureInput {
    /// The WIT record.
    pub fn into_feature(self) -> MonitorFeature {
        MonitorFeature {
            name: self.name,
            role: if self.role.as_deref() == Some("output") {
                WitRole::Output
            } else {
                WitRole::Input
            },
            kind: match self.kind {
                FeatureKind::Numeric => WitKind::Numeric,
                FeatureKind::Categorical => WitKind::Categorical,
            },
            edges: self.edges,
            categories: self.categories,
            reference_min: self.reference_min.unwrap_or(f64::NAN),
            reference_max: self.reference_max.unwrap_or(f64::NAN),
            reference: self.reference,
            current: self.current,
        }
    }
}

/// Monitor reports as JSON: name, role, severity, reason and statistics by name.
pub fn reports_json(reports: &[FeatureReport]) -> Value {
    Value::Array(
        reports
            .iter()
            .map(|r| {
                let stats: serde_json::Map<String, Value> = r
                    .statistics
                    .iter()
                    .map(|s| (s.name.clone(), json!(finite_or_null(s.value))))
                    .collect();
                json!({
                    "name": r.name,
                    "role": if matches!(r.role, WitRole::Output) { "output" } else { "input" },
                    "severity": severity_name(r.severity),
                    "reason": r.reason,
                    "statistics": stats,
                })
            })
            .collect(),
    )
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kiln_engine::{Datatype, TensorData, TensorSpec};
    use serde_json::Value;

    fn metadata() -> ModelMetadata {
        ModelMetadata {
            name: "m".into(),
            platform: "test".into(),
            inputs: vec![
                TensorSpec {
                    name: "x".into(),
                    datatype: Datatype::Fp32,
                    shape: vec![-1, 2],
                },
                TensorSpec {
                    name: "image".into(),
                    datatype: Datatype::Fp32,
                    shape: vec![-1, 784],
                },
            ],
            outputs: vec![TensorSpec {
                name: "label".into(),
                datatype: Datatype::Int64,
                shape: vec![-1],
            }],
        }
    }

    fn baseline() -> Baseline {
        let rows: Vec<Vec<Value>> = (0..100)
            .map(|i| vec![Value::from(i), Value::from(i % 2)])
            .collect();
        let mut b = Baseline::from_table(&["a".into(), "b".into()], &rows, 4, "sample");
        b.predictions = vec![kiln_image::FeatureBaseline::categorical(
            "label",
            (0..100).map(|i| Some((i % 3).to_string())),
        )];
        b
    }

    fn monitor() -> Monitor {
        let metrics = kiln_metrics::Metrics::new();
        let meta = metadata();
        let b = baseline();
        Monitor::new(
            "d",
            "1",
            &meta,
            Some(&b),
            MonitorSettings {
                window: Duration::from_millis(1),
                ..MonitorSettings::default()
            },
            metrics.monitor("d", "1"),
        )
    }

    fn request(rows: &[[f32; 2]], labels: &[i64]) -> (Vec<Tensor>, Vec<Tensor>) {
        let x = Tensor {
            name: "x".into(),
            shape: vec![rows.len() as i64, 2],
            data: TensorData::Fp32(rows.iter().flatten().copied().collect()),
        };
        let image = Tensor {
            name: "image".into(),
            shape: vec![1, 784],
            data: TensorData::Fp32(vec![0.5; 784]),
        };
        let label = Tensor {
            name: "label".into(),
            shape: vec![labels.len() as i64],
            data: TensorData::Int64(labels.to_vec()),
        };
        (vec![x, image], vec![label])
    }

    #[test]
    fn the_baseline_maps_onto_tabular_columns_and_wide_tensors_get_summaries() {
        let m = monitor();
        let names: Vec<_> = m
            .plan()
            .slots
            .iter()
            .map(|s| (s.baseline.name.as_str(), s.role, s.column))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a", Role::Input, 0),
                ("b", Role::Input, 1),
                ("label", Role::Output, 0)
            ]
        );
        assert_eq!(m.plan().summaries.len(), 1);
        assert_eq!(m.plan().summaries[0].name, "image");
    }

    #[test]
    fn values_fold_into_bins_and_quality_counters_and_windows_are_differences() {
        let m = monitor();
        let na = f32::from_bits(NA_F32);
        let (inputs, outputs) = request(
            &[
                [10.0, 0.0],
                [60.0, 1.0],
                [na, 1.0],
                [f32::NAN, 500.0],
                [-3.0, 1.0],
            ],
            &[0, 1, 2, 7, 0],
        );
        m.observe(&inputs, &outputs);
        std::thread::sleep(Duration::from_millis(2));
        let window = m.tick().unwrap();
        let f = m.features(&window.counts);
        assert_eq!(f[0].reference, vec![25, 25, 25, 25]);
        // 10 and -3 in the first bin, 60 in the third; NA missing, NaN not a number.
        assert_eq!(f[0].current, vec![2, 0, 1, 0]);
        let a = &m.plan().slots[0];
        let quality = &window.counts[a.offset + 4..a.offset + 7];
        assert_eq!(quality, &[1, 1, 1], "missing, nan, out of range (-3)");
        // Categories of the label: 7 is unlisted (other bin, out of range).
        let label = &m.plan().slots[2];
        let cats = &label.baseline.categories;
        let bin = |v: &str| cats.iter().position(|c| c == v).unwrap();
        assert_eq!(f[2].current[bin("0")], 2);
        assert_eq!(f[2].current[bin(kiln_image::OTHER)], 1);
        assert_eq!(window.counts[label.offset + label.bins() + 2], 1);
        // The next window holds only what came after.
        m.observe(&inputs, &outputs);
        std::thread::sleep(Duration::from_millis(2));
        let next = m.tick().unwrap();
        assert_eq!(m.features(&next.counts)[0].current, vec![2, 0, 1, 0]);
        assert_eq!(m.cumulative().counts[a.offset], 4);
        assert_eq!(m.windows().len(), 2);
    }

    #[test]
    fn features_past_the_cap_are_not_monitored_and_say_why() {
        let plan = Plan::new(&metadata(), &baseline(), 2);
        assert_eq!(plan.slots.len(), 2);
        assert_eq!(plan.unmonitored.len(), 1);
        assert_eq!(plan.unmonitored[0].0, "label");
        assert!(
            plan.unmonitored[0].1.contains("limit of 2"),
            "{:?}",
            plan.unmonitored
        );
    }

    #[test]
    fn updates_from_many_threads_are_all_counted() {
        let m = Arc::new(monitor());
        let (inputs, outputs) = request(&[[10.0, 0.0]; 8], &[0; 8]);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let (m, inputs, outputs) = (m.clone(), inputs.clone(), outputs.clone());
                scope.spawn(move || {
                    for _ in 0..1000 {
                        m.observe(&inputs, &outputs);
                    }
                });
            }
        });
        let counts = m.cumulative().counts;
        assert_eq!(m.features(&counts)[0].current[0], 32_000);
    }
}

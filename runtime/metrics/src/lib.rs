//! Kiln's Prometheus instruments.
//!
//! [`Metrics`] owns the registry and every instrument; the runtime asks it once per deployment
//! version for a [`DeploymentMetrics`], whose handles are already bound to the `deployment` and
//! `version` labels, so the request path records without any label lookup. Names follow the
//! Prometheus conventions: base units (seconds, bytes), `_total` on counters.

mod monitor;
mod route;

pub use monitor::{DRIFT_STATES, MonitorMetrics};
pub use route::{RouteMetrics, RouteSnapshot, RouteTotals};

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, core::Collector,
};
use std::sync::OnceLock;

/// The protocol a request came in through, a label on request metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Open Inference Protocol v2 (JSON or Triton binary tensors).
    V2,
    /// KServe v1 `:predict`.
    V1,
    /// MLflow scoring `/invocations`.
    Mlflow,
    /// Azure ML style `/score`.
    Score,
}

impl Protocol {
    const ALL: [Protocol; 4] = [
        Protocol::V2,
        Protocol::V1,
        Protocol::Mlflow,
        Protocol::Score,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::V2 => "v2",
            Protocol::V1 => "v1",
            Protocol::Mlflow => "mlflow",
            Protocol::Score => "score",
        }
    }
}

/// HTTP status codes a prediction can end with; anything else is counted as `other`.
const CODES: [&str; 11] = [
    "200", "400", "404", "413", "415", "422", "429", "500", "503", "504", "other",
];

fn code_index(status: u16) -> usize {
    match status {
        200 => 0,
        400 => 1,
        404 => 2,
        413 => 3,
        415 => 4,
        422 => 5,
        429 => 6,
        500 => 7,
        503 => 8,
        504 => 9,
        _ => 10,
    }
}

/// Latency buckets in seconds, from 25 microseconds (a warm wasm call) to 10 seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every instrument Kiln exports, in one registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    inference_duration: HistogramVec,
    component_duration: HistogramVec,
    graph_duration: HistogramVec,
    graphs_loaded: IntCounterVec,
    graph_memory: IntGaugeVec,
    in_flight: IntGaugeVec,
    instances: IntGaugeVec,
    instance_starts: IntCounterVec,
    instance_start_duration: HistogramVec,
    traps: IntCounterVec,
    deadline_exceeded: IntCounterVec,
    queue_rejections: IntCounterVec,
    compile_duration: prometheus::GaugeVec,
    ready: IntGaugeVec,
    schema_violations: IntCounterVec,
    drift_statistic: GaugeVec,
    drift_severity: IntGaugeVec,
    drift_state: IntGaugeVec,
    feature_values: IntCounterVec,
    monitor_runs: IntCounterVec,
    monitor_duration: HistogramVec,
    input_summary: GaugeVec,
    endpoint_requests: IntCounterVec,
    endpoint_request_duration: HistogramVec,
    endpoint_weight: IntGaugeVec,
    endpoint_mirror: IntGaugeVec,
}

/// Instruments bound to one deployment version: record with no label lookup.
pub struct DeploymentMetrics {
    deployment: String,
    version: String,
    requests_family: IntCounterVec,
    requests: [[OnceLock<IntCounter>; CODES.len()]; Protocol::ALL.len()],
    request_duration: [Histogram; Protocol::ALL.len()],
    /// Time spent inside the guest's `predict`.
    pub inference_duration: Histogram,
    /// The part of it spent in the component itself, graph calls excluded.
    pub component_duration: Histogram,
    graph_duration: HistogramVec,
    graphs_loaded: IntCounterVec,
    graph_memory: IntGaugeVec,
    /// Requests being served now.
    pub in_flight: IntGauge,
    /// Live (loaded) instances.
    pub instances: IntGauge,
    /// Instances started (cold starts).
    pub instance_starts: IntCounter,
    /// Time to instantiate and load one instance.
    pub instance_start_duration: Histogram,
    /// Guest traps (the instance is discarded).
    pub traps: IntCounter,
    /// Requests that hit their deadline inside the guest.
    pub deadline_exceeded: IntCounter,
    /// Requests rejected because the deployment's queue was full.
    pub queue_rejections: IntCounter,
    /// Whether the deployment version is ready (1) or not (0).
    pub ready: IntGauge,
    /// Requests rejected because their inputs do not fit the model's schema.
    pub schema_violations: IntCounter,
    compile_duration: prometheus::GaugeVec,
}

/// Instruments of one model graph of a deployment version, resolved once when it loads.
pub struct GraphMetrics {
    /// Time of each call into the graph.
    pub duration: Histogram,
    /// Graphs parsed.
    pub loaded: IntCounter,
    /// Native memory the graphs hold.
    pub memory: IntGauge,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric definition")
}

const DV: &[&str] = &["deployment", "version"];

impl Metrics {
    /// Creates the registry with every instrument, plus process metrics where the OS has them.
    #[allow(clippy::expect_used)] // metric definitions are constants: a failure is a bug
    pub fn new() -> Self {
        let registry = Registry::new();
        let metrics = Metrics {
            requests: counter(
                "kiln_requests_total",
                "Prediction requests answered, by protocol and HTTP status code.",
                &["deployment", "version", "protocol", "code"],
            ),
            request_duration: histogram(
                "kiln_request_duration_seconds",
                "Time from request received to response ready, by protocol.",
                &["deployment", "version", "protocol"],
            ),
            inference_duration: histogram(
                "kiln_inference_duration_seconds",
                "Time spent in the scoring component's predict call.",
                DV,
            ),
            component_duration: histogram(
                "kiln_component_duration_seconds",
                "Time spent in the scoring component itself: its predict call less the time in model graphs.",
                DV,
            ),
            graph_duration: histogram(
                "kiln_graph_duration_seconds",
                "Time spent in model graphs run on the host through wasi:nn, by inference backend.",
                &["deployment", "version", "backend"],
            ),
            graphs_loaded: counter(
                "kiln_graphs_loaded_total",
                "Model graphs parsed by an inference backend; instances of a version share each one.",
                &["deployment", "version", "backend"],
            ),
            graph_memory: gauge(
                "kiln_graph_memory_bytes",
                "Native memory held by loaded model graphs (resident growth while loading, at least the graph's size), by inference backend.",
                &["deployment", "version", "backend"],
            ),
            in_flight: gauge(
                "kiln_requests_in_flight",
                "Prediction requests being served.",
                DV,
            ),
            instances: gauge("kiln_instances", "Live scoring component instances.", DV),
            instance_starts: counter(
                "kiln_instance_starts_total",
                "Scoring component instances started (cold starts).",
                DV,
            ),
            instance_start_duration: histogram(
                "kiln_instance_start_duration_seconds",
                "Time to instantiate a scoring component and load its model.",
                DV,
            ),
            traps: counter(
                "kiln_guest_traps_total",
                "Scoring component traps; the instance is discarded.",
                DV,
            ),
            deadline_exceeded: counter(
                "kiln_deadline_exceeded_total",
                "Predictions stopped at their deadline; the instance is discarded.",
                DV,
            ),
            queue_rejections: counter(
                "kiln_queue_rejections_total",
                "Requests rejected because the deployment's queue was full.",
                DV,
            ),
            compile_duration: prometheus::GaugeVec::new(
                Opts::new(
                    "kiln_compile_duration_seconds",
                    "Time to compile the scoring component, or to load it from the compile cache.",
                ),
                &["deployment", "version", "cached"],
            )
            .expect("valid metric definition"),
            ready: gauge(
                "kiln_deployment_ready",
                "1 when the deployment version is ready.",
                DV,
            ),
            schema_violations: counter(
                "kiln_schema_violations_total",
                "Prediction requests rejected because their inputs do not fit the model's schema.",
                DV,
            ),
            drift_statistic: GaugeVec::new(
                Opts::new(
                    "kiln_drift_statistic",
                    "A drift statistic of one feature against the baseline, over the latest closed window or since deploy (window=cumulative).",
                ),
                &["deployment", "version", "role", "feature", "statistic", "window"],
            )
            .expect("valid metric definition"),
            drift_severity: gauge(
                "kiln_drift_severity",
                "A feature's drift verdict in the latest window: -1 insufficient data, 0 ok, 1 warning, 2 alert.",
                &["deployment", "version", "role", "feature"],
            ),
            drift_state: gauge(
                "kiln_drift_state",
                "1 for the deployment's current monitoring state (ok, warning, alert, insufficient_data, no_baseline, no_monitor, monitor_failed).",
                &["deployment", "version", "state"],
            ),
            feature_values: counter(
                "kiln_feature_values_total",
                "Monitored feature values, by quality: valid, missing, nan, out_of_range (outside the baseline, also counted as valid).",
                &["deployment", "version", "role", "feature", "quality"],
            ),
            monitor_runs: counter(
                "kiln_monitor_runs_total",
                "Monitor component runs, by result: ok, deadline, trap, error, invalid.",
                &["deployment", "version", "result"],
            ),
            monitor_duration: histogram(
                "kiln_monitor_duration_seconds",
                "Time of one monitor component call.",
                DV,
            ),
            input_summary: GaugeVec::new(
                Opts::new(
                    "kiln_input_summary",
                    "Summary statistics of wide input tensors since deploy: mean, stddev, nan_ratio.",
                ),
                &["deployment", "version", "tensor", "statistic"],
            )
            .expect("valid metric definition"),
            endpoint_requests: counter(
                "kiln_endpoint_requests_total",
                "Requests an endpoint routed to a deployment, by traffic (live, or mirror: a copy whose answer was discarded) and HTTP status code.",
                &["endpoint", "deployment", "traffic", "code"],
            ),
            endpoint_request_duration: histogram(
                "kiln_endpoint_request_duration_seconds",
                "Time of requests an endpoint routed to a deployment, by traffic (live or mirror).",
                &["endpoint", "deployment", "traffic"],
            ),
            endpoint_weight: gauge(
                "kiln_endpoint_traffic_weight",
                "Percent of an endpoint's live traffic routed to a deployment.",
                &["endpoint", "deployment"],
            ),
            endpoint_mirror: gauge(
                "kiln_endpoint_mirror_percent",
                "Percent of an endpoint's requests copied to a deployment (answers discarded).",
                &["endpoint", "deployment"],
            ),
            registry,
        };
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(metrics.requests.clone()),
            Box::new(metrics.request_duration.clone()),
            Box::new(metrics.inference_duration.clone()),
            Box::new(metrics.component_duration.clone()),
            Box::new(metrics.graph_duration.clone()),
            Box::new(metrics.graphs_loaded.clone()),
            Box::new(metrics.graph_memory.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.instances.clone()),
            Box::new(metrics.instance_starts.clone()),
            Box::new(metrics.instance_start_duration.clone()),
            Box::new(metrics.traps.clone()),
            Box::new(metrics.deadline_exceeded.clone()),
            Box::new(metrics.queue_rejections.clone()),
            Box::new(metrics.compile_duration.clone()),
            Box::new(metrics.ready.clone()),
            Box::new(metrics.schema_violations.clone()),
            Box::new(metrics.drift_statistic.clone()),
            Box::new(metrics.drift_severity.clone()),
            Box::new(metrics.drift_state.clone()),
            Box::new(metrics.feature_values.clone()),
            Box::new(metrics.monitor_runs.clone()),
            Box::new(metrics.monitor_duration.clone()),
            Box::new(metrics.input_summary.clone()),
            Box::new(metrics.endpoint_requests.clone()),
            Box::new(metrics.endpoint_request_duration.clone()),
            Box::new(metrics.endpoint_weight.clone()),
            Box::new(metrics.endpoint_mirror.clone()),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("unique metric names");
        }
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            metrics
                .registry
                .register(Box::new(process))
                .expect("unique metric names");
        }
        metrics
    }

    /// Binds every instrument to one deployment version.
    pub fn deployment(&self, deployment: &str, version: &str) -> DeploymentMetrics {
        let dv = [deployment, version];
        DeploymentMetrics {
            deployment: deployment.to_string(),
            version: version.to_string(),
            requests_family: self.requests.clone(),
            requests: Default::default(),
            request_duration: Protocol::ALL.map(|p| {
                self.request_duration
                    .with_label_values(&[deployment, version, p.as_str()])
            }),
            inference_duration: self.inference_duration.with_label_values(&dv),
            component_duration: self.component_duration.with_label_values(&dv),
            graph_duration: self.graph_duration.clone(),
            graphs_loaded: self.graphs_loaded.clone(),
            graph_memory: self.graph_memory.clone(),
            in_flight: self.in_flight.with_label_values(&dv),
            instances: self.instances.with_label_values(&dv),
            instance_starts: self.instance_starts.with_label_values(&dv),
            instance_start_duration: self.instance_start_duration.with_label_values(&dv),
            traps: self.traps.with_label_values(&dv),
            deadline_exceeded: self.deadline_exceeded.with_label_values(&dv),
            queue_rejections: self.queue_rejections.with_label_values(&dv),
            ready: self.ready.with_label_values(&dv),
            schema_violations: self.schema_violations.with_label_values(&dv),
            compile_duration: self.compile_duration.clone(),
        }
    }

    /// The drift instruments of one deployment version.
    pub fn monitor(&self, deployment: &str, version: &str) -> MonitorMetrics {
        MonitorMetrics {
            deployment: deployment.to_string(),
            version: version.to_string(),
            drift_statistic: self.drift_statistic.clone(),
            drift_severity: self.drift_severity.clone(),
            drift_state: self.drift_state.clone(),
            feature_values: self.feature_values.clone(),
            monitor_runs: self.monitor_runs.clone(),
            monitor_duration: self
                .monitor_duration
                .with_label_values(&[deployment, version]),
            input_summary: self.input_summary.clone(),
        }
    }

    /// Instruments of one endpoint's route to one deployment.
    pub fn route(&self, endpoint: &str, deployment: &str) -> RouteMetrics {
        let traffic = ["live", "mirror"];
        RouteMetrics {
            endpoint: endpoint.to_string(),
            deployment: deployment.to_string(),
            family: self.endpoint_requests.clone(),
            requests: Default::default(),
            duration: traffic.map(|t| {
                self.endpoint_request_duration
                    .with_label_values(&[endpoint, deployment, t])
            }),
            weight: self
                .endpoint_weight
                .with_label_values(&[endpoint, deployment]),
            mirror: self
                .endpoint_mirror
                .with_label_values(&[endpoint, deployment]),
            live: RouteTotals::default(),
        }
    }

    /// Forgets every series of a deployment version that no longer serves (removed, or replaced
    /// by another version), so that the number of series follows the deployments served, not
    /// every version ever served.
    pub fn forget_deployment(&self, deployment: &str, version: &str) {
        fn forget<T: prometheus::core::MetricVecBuilder>(
            vec: &prometheus::core::MetricVec<T>,
            deployment: &str,
            version: &str,
        ) {
            use prometheus::core::Collector;
            for family in vec.collect() {
                for metric in family.get_metric() {
                    let labels: std::collections::HashMap<&str, &str> = metric
                        .get_label()
                        .iter()
                        .map(|pair| (pair.name(), pair.value()))
                        .collect();
                    if labels.get("deployment") == Some(&deployment)
                        && labels.get("version") == Some(&version)
                    {
                        let _ = vec.remove(&labels);
                    }
                }
            }
        }
        let (d, v) = (deployment, version);
        forget(&self.requests, d, v);
        forget(&self.request_duration, d, v);
        forget(&self.inference_duration, d, v);
        forget(&self.component_duration, d, v);
        forget(&self.graph_duration, d, v);
        forget(&self.graphs_loaded, d, v);
        forget(&self.graph_memory, d, v);
        forget(&self.in_flight, d, v);
        forget(&self.instances, d, v);
        forget(&self.instance_starts, d, v);
        forget(&self.instance_start_duration, d, v);
        forget(&self.traps, d, v);
        forget(&self.deadline_exceeded, d, v);
        forget(&self.queue_rejections, d, v);
        forget(&self.compile_duration, d, v);
        forget(&self.ready, d, v);
        forget(&self.schema_violations, d, v);
        forget(&self.drift_statistic, d, v);
        forget(&self.drift_severity, d, v);
        forget(&self.drift_state, d, v);
        forget(&self.feature_values, d, v);
        forget(&self.monitor_runs, d, v);
        forget(&self.monitor_duration, d, v);
        forget(&self.input_summary, d, v);
    }

    /// Forgets the weight and mirror gauges of a route that went (its counters stay, as counters do).
    pub fn remove_route(&self, endpoint: &str, deployment: &str) {
        let _ = self
            .endpoint_weight
            .remove_label_values(&[endpoint, deployment]);
        let _ = self
            .endpoint_mirror
            .remove_label_values(&[endpoint, deployment]);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec only fails on invalid metric families, which we never register.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl DeploymentMetrics {
    /// The instruments of a graph run by `backend`.
    pub fn graph(&self, backend: &str) -> GraphMetrics {
        let labels = [self.deployment.as_str(), self.version.as_str(), backend];
        GraphMetrics {
            duration: self.graph_duration.with_label_values(&labels),
            loaded: self.graphs_loaded.with_label_values(&labels),
            memory: self.graph_memory.with_label_values(&labels),
        }
    }

    /// Counts one answered request and its duration.
    pub fn record_request(&self, protocol: Protocol, status: u16, seconds: f64) {
        let p = protocol as usize;
        let c = code_index(status);
        self.requests[p][c]
            .get_or_init(|| {
                self.requests_family.with_label_values(&[
                    self.deployment.as_str(),
                    self.version.as_str(),
                    protocol.as_str(),
                    CODES[c],
                ])
            })
            .inc();
        self.request_duration[p].observe(seconds);
    }

    /// Records how long it took to get the compiled component, and whether it came from cache.
    pub fn record_compile(&self, seconds: f64, cached: bool) {
        let cached = if cached { "true" } else { "false" };
        self.compile_duration
            .with_label_values(&[self.deployment.as_str(), self.version.as_str(), cached])
            .set(seconds);
    }
}

#[cfg(test)]
mod tests;

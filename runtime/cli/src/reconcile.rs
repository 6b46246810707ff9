//! The runtime side of the control plane: learn the desired deployments and endpoints, serve
//! and route them, report each deployment's status. In `kiln up` the control plane is in the
//! same process; a change wakes the loop at once, and it also looks every half second.
//!
//! A new version takes traffic only once its instances loaded and its image's sample rows went
//! through it with outputs that fit the schema; until then (and for good, when that fails) the
//! version it replaces keeps serving. Endpoints are swapped whole, so a request is routed either
//! by the old weights or the new ones, and requests running on a replaced version finish on it.

use crate::config::LimitsConfig;
use anyhow::{Context, Result};
use kiln_control::{
    ControlPlane, DesiredDeployment, DesiredEndpoint, RollbackReport, ServingState, StatusReport,
};
use kiln_dataplane::{Dataplane, Deployment, Endpoint, InferRequest, Route};
use kiln_engine::{Artifacts, Model, ScoringEngine};
use kiln_image::{OciStore, open_image};
use kiln_metrics::{Metrics, RouteMetrics, RouteSnapshot};
use kiln_registry::RegistryOptions;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What serves deployments in this process.
pub struct Runtime {
    /// The engine.
    pub engine: Arc<ScoringEngine>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The dataplane whose registry is kept in line with the control plane.
    pub dataplane: Arc<Dataplane>,
    /// The local image store.
    pub store_dir: PathBuf,
    /// How registries are reached for images that name one.
    pub registry: RegistryOptions,
    /// Drift monitoring of the deployments served.
    pub monitoring: crate::monitoring::Monitoring,
}

/// What is served now, per deployment.
struct Served {
    generation: i64,
    /// Digest and limits: when only keys or monitoring change, the loaded model is kept.
    image_key: String,
    deployment: Option<Arc<Deployment>>,
    /// The deployment's monitoring settings over its image's: what the monitor was given.
    monitoring: kiln_image::MonitoringSection,
    /// The image's `[monitoring]`.
    image_monitoring: kiln_image::MonitoringSection,
}

/// Where the desired deployments come from.
pub enum Source {
    /// The control plane in this process (`kiln up`).
    Local(ControlPlane),
    /// A control plane over HTTP (`kiln serve --control URL --token T`).
    Remote {
        /// Its base URL.
        url: String,
        /// A runtime (administrator) token.
        token: String,
        /// The HTTP client.
        http: reqwest::Client,
    },
}

/// The items of `GET /api/v1/runtime/{what}` on a remote control plane.
async fn items<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    what: &str,
) -> Result<Vec<T>> {
    let response = http
        .get(format!("{url}/api/v1/runtime/{what}"))
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach the control plane at {url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("control plane at {url}: {status}: {body}");
    }
    #[derive(serde::Deserialize)]
    struct Page<T> {
        items: Vec<T>,
    }
    let page: Page<T> = serde_json::from_str(&body)
        .with_context(|| format!("control plane at {url}: unexpected answer"))?;
    Ok(page.items)
}

impl Source {
    async fn desired(&self) -> Result<Vec<DesiredDeployment>> {
        match self {
            Source::Local(control) => Ok(control.desired().await?),
            Source::Remote { url, token, http } => items(http, url, token, "deployments").await,
        }
    }

    async fn drift(&self, report: &kiln_monitor::DriftReport) -> Result<()> {
        let upload = kiln_control::DriftUpload {
            window: report.window.clone(),
            cumulative: report.cumulative.clone(),
        };
        match self {
            Source::Local(control) => Ok(control.record_drift(&report.deployment, &upload).await?),
            Source::Remote { url, token, http } => {
                let response = http
                    .post(format!(
                        "{url}/api/v1/runtime/deployments/{}/drift",
                        report.deployment
                    ))
                    .bearer_auth(token)
                    .json(&upload)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    anyhow::bail!("drift report refused: {}", response.status());
                }
                Ok(())
            }
        }
    }

    async fn report(&self, name: &str, report: &StatusReport) -> Result<()> {
        match self {
            Source::Local(control) => Ok(control.report(name, report).await?),
            Source::Remote { url, token, http } => {
                let response = http
                    .post(format!("{url}/api/v1/runtime/deployments/{name}/status"))
                    .bearer_auth(token)
                    .json(report)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    anyhow::bail!("status report refused: {}", response.status());
                }
                Ok(())
            }
        }
    }

    async fn endpoints(&self) -> Result<Vec<DesiredEndpoint>> {
        match self {
            Source::Local(control) => Ok(control.desired_endpoints().await?),
            Source::Remote { url, token, http } => items(http, url, token, "endpoints").await,
        }
    }

    async fn rollback(&self, endpoint: &str, report: &RollbackReport) -> Result<()> {
        match self {
            Source::Local(control) => {
                control.rollback(endpoint, report).await?;
                Ok(())
            }
            Source::Remote { url, token, http } => {
                let response = http
                    .post(format!(
                        "{url}/api/v1/runtime/endpoints/{endpoint}/rollback"
                    ))
                    .bearer_auth(token)
                    .json(report)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    anyhow::bail!("rollback refused: {}", response.status());
                }
                Ok(())
            }
        }
    }

    /// Returns when the desired deployments may have changed.
    async fn changed(&self) {
        match self {
            Source::Local(control) => control.changed().await,
            Source::Remote { .. } => std::future::pending().await,
        }
    }
}

/// Logs drift reports where no control plane takes them (`kiln serve` on its own).
pub async fn log_reports(
    mut reports: tokio::sync::mpsc::UnboundedReceiver<kiln_monitor::DriftReport>,
) {
    while let Some(report) = reports.recv().await {
        tracing::info!(
            deployment = %report.deployment,
            version = %report.version,
            state = report.window["state"].as_str().unwrap_or(""),
            alerts = %report.window["alerts"],
            "drift window closed"
        );
    }
}

/// Keeps the runtime serving what the control plane wants, until the process ends.
/// Drift reports of closed windows go to the control plane.
pub async fn run(
    runtime: Runtime,
    source: Source,
    reports: tokio::sync::mpsc::UnboundedReceiver<kiln_monitor::DriftReport>,
) {
    let source = Arc::new(source);
    tokio::spawn(forward_reports(reports, source.clone()));
    let mut served: HashMap<String, Served> = HashMap::new();
    let mut routing = Routing::default();
    let idle_policies: IdlePolicies = Arc::default();
    tokio::spawn(scale_down(runtime.dataplane.clone(), idle_policies.clone()));
    // The server is ready once every desired deployment of the first pass is loaded or failed
    // with its reason (the caller starts it not ready); later passes leave readiness alone, so
    // that a shutdown's "not ready" stays.
    let mut first_pass = true;
    loop {
        let mut applied = false;
        match source.desired().await {
            Ok(desired) => {
                *idle_policies
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = desired
                    .iter()
                    .filter_map(|d| {
                        let timeout = Duration::from_secs(d.scale.idle_timeout_s?);
                        Some((
                            d.name.clone(),
                            (timeout, d.scale.min_instances.unwrap_or(0)),
                        ))
                    })
                    .collect();
                apply(&runtime, &source, &mut served, desired).await;
                applied = true;
            }
            Err(e) => tracing::warn!("cannot read the desired deployments: {e:#}"),
        }
        match source.endpoints().await {
            Ok(endpoints) => {
                routing.apply(&runtime, &endpoints);
                routing.judge(&source, &endpoints).await;
            }
            Err(e) => {
                applied = false;
                tracing::warn!("cannot read the desired endpoints: {e:#}");
            }
        }
        if first_pass && applied {
            first_pass = false;
            runtime.dataplane.set_loaded(true);
            tracing::info!("ready: every desired deployment is loaded or failed with its reason");
        }
        tokio::select! {
            () = source.changed() => {},
            () = tokio::time::sleep(Duration::from_millis(500)) => {},
        }
    }
}

fn image_key(d: &DesiredDeployment) -> String {
    format!(
        "{} {:?} {:?} {:?} {:?}",
        d.digest,
        d.limits.memory_mb,
        d.limits.deadline_ms,
        d.limits.concurrency,
        d.scale.max_instances
    )
}

/// The endpoints routed, and the rollback policy's windows.
#[derive(Default)]
struct Routing {
    /// Generation of each endpoint routed.
    generations: HashMap<String, i64>,
    /// Route instruments by (endpoint, deployment), kept across generations so that their
    /// counts (and the policy's windows) carry on.
    metrics: HashMap<(String, String), Arc<RouteMetrics>>,
    /// Open windows of watched routes: (endpoint, deployment) -> generation, start, counts.
    windows: HashMap<(String, String), (i64, Instant, RouteSnapshot)>,
}

impl Routing {
    fn apply(&mut self, runtime: &Runtime, desired: &[DesiredEndpoint]) {
        let registry = &runtime.dataplane.registry;
        let wanted: std::collections::HashSet<&str> =
            desired.iter().map(|e| e.name.as_str()).collect();
        for name in registry.endpoint_names() {
            if !wanted.contains(name.as_str()) {
                registry.remove_endpoint(&name);
                self.generations.remove(&name);
                self.forget(runtime, |(e, _)| e == &name);
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
                    let metrics = self
                        .metrics
                        .entry(key)
                        .or_insert_with(|| Arc::new(runtime.metrics.route(&e.name, &w.deployment)))
                        .clone();
                    Route {
                        deployment: w.deployment.clone(),
                        weight: w.weight,
                        metrics,
                    }
                })
                .collect();
            let keys = (!e.public).then(|| {
                e.key_digests
                    .iter()
                    .filter_map(|h| hex::decode(h).ok()?.try_into().ok())
                    .collect()
            });
            let mirror = e.mirror.as_ref().map(|m| (m.deployment.clone(), m.percent));
            registry.set_endpoint(Endpoint::new(e.name.clone(), keys, routes, mirror));
            self.forget(runtime, |(name, d)| {
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
    fn forget(&mut self, runtime: &Runtime, gone: impl Fn(&(String, String)) -> bool) {
        self.metrics.retain(|key, _| {
            if gone(key) {
                runtime.metrics.remove_route(&key.0, &key.1);
                false
            } else {
                true
            }
        });
        self.windows.retain(|key, _| !gone(key));
    }

    /// The rollback policy: each watched deployment with traffic is judged once per window on
    /// its live answers through the endpoint; a breach is sent to the control plane, which
    /// moves its weight back and records why.
    async fn judge(&mut self, source: &Source, desired: &[DesiredEndpoint]) {
        let now = Instant::now();
        let mut watched = std::collections::HashSet::new();
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
                if requests < policy.min_requests {
                    continue;
                }
                let rate = errors as f64 / requests as f64;
                let reason = match (policy.max_error_rate, policy.max_p99_ms) {
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
                };
                let Some(reason) = reason else { continue };
                tracing::warn!(endpoint = %e.name, deployment = %w.deployment, "rollback policy breached: {reason}");
                let report = RollbackReport {
                    generation: e.generation,
                    deployment: w.deployment.clone(),
                    reason,
                };
                if let Err(err) = source.rollback(&e.name, &report).await {
                    tracing::warn!(endpoint = %e.name, "cannot report the breach: {err:#}");
                }
            }
        }
        self.windows.retain(|key, _| watched.contains(key));
    }
}

fn key_digests(d: &DesiredDeployment) -> Option<Vec<[u8; 32]>> {
    if d.public {
        return None;
    }
    Some(
        d.key_digests
            .iter()
            .filter_map(|h| hex::decode(h).ok()?.try_into().ok())
            .collect(),
    )
}

/// Idle timeout and minimum of instances, by deployment.
type IdlePolicies = Arc<std::sync::Mutex<HashMap<String, (Duration, usize)>>>;

/// Serverless scaling: a deployment with an idle timeout that has seen no prediction for that
/// long keeps only its minimum of instances (by default none) and their memory goes. This runs
/// on its own every 250 ms, so a long reconciliation (many deployments loading) never holds
/// idle instances, whose pool slots new deployments need.
async fn scale_down(dataplane: Arc<Dataplane>, policies: IdlePolicies) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let policies = policies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Sends each drift report to the control plane (a lost report is logged, not retried: the
/// next window brings a fresh one).
async fn forward_reports(
    mut reports: tokio::sync::mpsc::UnboundedReceiver<kiln_monitor::DriftReport>,
    source: Arc<Source>,
) {
    while let Some(report) = reports.recv().await {
        if let Err(e) = source.drift(&report).await {
            tracing::warn!(deployment = %report.deployment, "cannot send the drift report: {e:#}");
        }
    }
}

async fn apply(
    runtime: &Runtime,
    control: &Source,
    served: &mut HashMap<String, Served>,
    desired: Vec<DesiredDeployment>,
) {
    let wanted: std::collections::HashSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    let gone: Vec<String> = served
        .keys()
        .filter(|name| !wanted.contains(name.as_str()))
        .cloned()
        .collect();
    for name in gone {
        runtime.dataplane.registry.remove(&name);
        if let Some(Served {
            deployment: Some(old),
            ..
        }) = served.remove(&name)
        {
            runtime.metrics.forget_deployment(&old.name, &old.version);
        }
        tracing::info!(deployment = %name, "deployment removed");
    }
    for d in &desired {
        if served
            .get(&d.name)
            .is_some_and(|s| s.generation == d.generation)
        {
            continue;
        }
        let key = image_key(d);
        // Only the keys (or public flag) changed: same model, new keys, nothing reloaded.
        let reuse = served
            .get(&d.name)
            .filter(|s| s.image_key == key)
            .and_then(|s| s.deployment.clone());
        let result = match reuse {
            Some(old) => {
                // Same model and monitor (its counts stay); a changed monitor is swapped in.
                let previous = served.get(&d.name);
                let image_monitoring = previous
                    .map(|s| s.image_monitoring.clone())
                    .unwrap_or_default();
                let wanted = d.monitoring.or(&image_monitoring);
                if let Some(monitor) = old
                    .monitor
                    .as_ref()
                    .filter(|_| previous.is_some_and(|s| s.monitoring != wanted))
                {
                    runtime.monitoring.configure(monitor, &wanted).await;
                }
                Ok((
                    Deployment {
                        name: old.name.clone(),
                        version: old.version.clone(),
                        model: old.model.clone(),
                        metrics: old.metrics.clone(),
                        key_digests: key_digests(d),
                        monitor: old.monitor.clone(),
                    },
                    image_monitoring,
                ))
            }
            None => load(runtime, d).await,
        };
        let report = match result {
            Ok((deployment, image_monitoring)) => {
                let deployment = Arc::new(deployment);
                runtime.dataplane.registry.insert_arc(deployment.clone());
                tracing::info!(deployment = %d.name, digest = %d.digest, generation = d.generation, "deployment ready");
                let replaced = served.insert(
                    d.name.clone(),
                    Served {
                        generation: d.generation,
                        image_key: key,
                        deployment: Some(deployment.clone()),
                        monitoring: d.monitoring.or(&image_monitoring),
                        image_monitoring,
                    },
                );
                // A replaced version's series go with it (same version: the series carry on).
                if let Some(Served {
                    deployment: Some(old),
                    ..
                }) = replaced
                    && old.version != deployment.version
                {
                    runtime.metrics.forget_deployment(&old.name, &old.version);
                }
                StatusReport {
                    generation: d.generation,
                    state: ServingState::Ready,
                    reason: None,
                }
            }
            Err(e) => {
                let mut reason = format!("{e:#}");
                // A replacement that fails leaves the version it was to replace serving.
                let previous = served.remove(&d.name).filter(|s| s.deployment.is_some());
                match &previous {
                    Some(Served {
                        deployment: Some(old),
                        ..
                    }) => {
                        reason.push_str(&format!(
                            " (version {} of the previous generation still serves)",
                            old.version
                        ));
                        tracing::error!(deployment = %d.name, "new generation not served: {reason}");
                    }
                    _ => {
                        tracing::error!(deployment = %d.name, "not served: {reason}");
                        runtime.dataplane.registry.insert_failed(&d.name, &reason);
                    }
                }
                served.insert(
                    d.name.clone(),
                    Served {
                        generation: d.generation,
                        image_key: previous.as_ref().map_or(key, |p| p.image_key.clone()),
                        deployment: previous.as_ref().and_then(|p| p.deployment.clone()),
                        monitoring: previous
                            .as_ref()
                            .map_or_else(|| d.monitoring.clone(), |p| p.monitoring.clone()),
                        image_monitoring: previous.map(|p| p.image_monitoring).unwrap_or_default(),
                    },
                );
                StatusReport {
                    generation: d.generation,
                    state: ServingState::Failed,
                    reason: Some(reason),
                }
            }
        };
        if let Err(e) = control.report(&d.name, &report).await {
            tracing::warn!(deployment = %d.name, "cannot report status: {e:#}");
        }
    }
}

/// Readiness gate: the image's sample rows go through the new version as one request, with the
/// dataplane's input and output checks, before it takes any traffic (and before its monitor
/// exists, so they are not counted as traffic).
async fn check_sample(
    dataplane: &Dataplane,
    name: &str,
    version: &str,
    model: &Arc<Model>,
    metrics: &Arc<kiln_metrics::DeploymentMetrics>,
    sample: &[u8],
) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Split {
        columns: Vec<String>,
        data: Vec<Vec<serde_json::Value>>,
    }
    let table: Split =
        serde_json::from_slice(sample).context("the image's sample rows are not readable")?;
    let inputs = kiln_dataplane::protocol::table_to_tensors(
        model.metadata(),
        &table.columns,
        &table.data,
        usize::MAX,
    )
    .map_err(|e| anyhow::anyhow!("sample check failed: {}", e.message))?;
    let trial = Deployment {
        name: name.to_string(),
        version: version.to_string(),
        model: model.clone(),
        metrics: metrics.clone(),
        key_digests: None,
        monitor: None,
    };
    dataplane
        .infer(
            &trial,
            InferRequest {
                inputs,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("sample check failed: {}", e.message))?;
    tracing::info!(deployment = %name, version, rows = table.data.len(), "sample check passed");
    Ok(())
}

/// Opens the deployment's image (pulling it when it names a registry and the store lacks it),
/// compiles its component (cached), loads its instances and attaches its drift monitor; returns
/// it with the image's monitoring defaults.
async fn load(
    runtime: &Runtime,
    d: &DesiredDeployment,
) -> Result<(Deployment, kiln_image::MonitoringSection)> {
    let store = OciStore::open(&runtime.store_dir)?;
    let reference = d.reference.strip_prefix("oci://").unwrap_or(&d.reference);
    if store.resolve(reference).is_err() && kiln_registry::is_registry_reference(reference) {
        crate::transfer::pull_into(&store, reference, &runtime.registry)
            .await
            .with_context(|| format!("cannot pull {reference}"))?;
    }
    let image = {
        let owned = reference.to_string();
        tokio::task::spawn_blocking(move || open_image(&store, &owned))
            .await
            .context("image task failed")?
            .with_context(|| format!("image {reference}"))?
    };
    if image.manifest_digest.as_str() != d.digest {
        anyhow::bail!(
            "image {reference} is {} in the local store, the deployment pins {}",
            image.manifest_digest,
            d.digest
        );
    }
    let config = image.config.clone();
    let baseline = config.as_ref().and_then(|c| c.baseline.clone());
    let image_monitoring = config
        .as_ref()
        .and_then(|c| c.monitoring.clone())
        .unwrap_or_default();
    let image_limits = config
        .as_ref()
        .map(|c| c.limits.clone())
        .unwrap_or_default();
    let limits = LimitsConfig {
        memory_mb: d.limits.memory_mb,
        deadline_ms: d.limits.deadline_ms,
        load_deadline_ms: None,
        concurrency: d.scale.max_instances.or(d.limits.concurrency),
        queue: None,
    }
    .or(&LimitsConfig {
        memory_mb: image_limits.memory_mb,
        deadline_ms: image_limits.deadline_ms,
        load_deadline_ms: None,
        concurrency: image_limits.concurrency,
        queue: None,
    })
    .resolve()?;
    let version = config
        .as_ref()
        .map(|c| c.version.clone())
        .unwrap_or_else(|| "1".into());
    let pinned = format!("{reference}@{}", d.digest);
    let capabilities = crate::serve::image_capabilities(config.as_ref())?;
    let (model, metrics) = crate::serve::compile_and_load(
        &runtime.engine,
        &runtime.metrics,
        crate::serve::ModelSource {
            name: &d.name,
            version: &version,
            image: Some(&pinned),
            component: image.component,
            capabilities,
            artifacts: Artifacts::from_files(image.files),
            config: config.map(|c| c.scorer_config).unwrap_or_default(),
            limits,
        },
    )
    .await?;
    if let Some(sample) = &image.sample {
        check_sample(
            &runtime.dataplane,
            &d.name,
            &version,
            &model,
            &metrics,
            sample,
        )
        .await?;
    }
    if let Some(min) = d.scale.min_instances {
        model.warm(min).await?;
    }
    let monitor = runtime
        .monitoring
        .attach(
            &d.name,
            &version,
            &model,
            baseline.as_ref(),
            &d.monitoring.or(&image_monitoring),
        )
        .await;
    Ok((
        Deployment {
            name: d.name.clone(),
            version,
            model,
            metrics,
            key_digests: key_digests(d),
            monitor,
        },
        image_monitoring,
    ))
}

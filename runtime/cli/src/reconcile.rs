//! The runtime side of the control plane: learn the desired deployments, serve them, report
//! each one's status. In `kiln up` the control plane is in the same process; a change wakes the
//! loop at once, and it also looks every half second.

use crate::config::LimitsConfig;
use anyhow::{Context, Result};
use kiln_control::{ControlPlane, DesiredDeployment, ServingState, StatusReport};
use kiln_dataplane::{Dataplane, Deployment};
use kiln_engine::{Artifacts, Model, ModelSpec, ScoringEngine};
use kiln_image::{OciStore, open_image};
use kiln_metrics::Metrics;
use kiln_registry::RegistryOptions;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

impl Source {
    async fn desired(&self) -> Result<Vec<DesiredDeployment>> {
        match self {
            Source::Local(control) => Ok(control.desired().await?),
            Source::Remote { url, token, http } => {
                let response = http
                    .get(format!("{url}/api/v1/runtime/deployments"))
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
                struct Page {
                    items: Vec<DesiredDeployment>,
                }
                let page: Page = serde_json::from_str(&body)
                    .with_context(|| format!("control plane at {url}: unexpected answer"))?;
                Ok(page.items)
            }
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
    loop {
        match source.desired().await {
            Ok(desired) => {
                scale_down(&served, &desired);
                apply(&runtime, &source, &mut served, desired).await;
            }
            Err(e) => tracing::warn!("cannot read the desired deployments: {e:#}"),
        }
        tokio::select! {
            () = source.changed() => {},
            () = tokio::time::sleep(Duration::from_millis(500)) => {},
        }
    }
}

fn image_key(d: &DesiredDeployment) -> String {
    format!(
        "{} {:?} {:?} {:?}",
        d.digest, d.limits.memory_mb, d.limits.deadline_ms, d.limits.concurrency
    )
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

/// Serverless scaling: a deployment with an idle timeout that has seen no prediction for that
/// long keeps only its minimum of instances (by default none) and their memory goes.
fn scale_down(served: &HashMap<String, Served>, desired: &[DesiredDeployment]) {
    for d in desired {
        let Some(timeout) = d.scale.idle_timeout_s.map(Duration::from_secs) else {
            continue;
        };
        let Some(deployment) = served.get(&d.name).and_then(|s| s.deployment.as_ref()) else {
            continue;
        };
        if deployment.model.idle_for() < timeout {
            continue;
        }
        let keep = d.scale.min_instances.unwrap_or(0);
        let released = deployment.model.release_idle(keep);
        if released > 0 {
            tracing::info!(deployment = %d.name, released, kept = keep, "idle: instances released");
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
        served.remove(&name);
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
                served.insert(
                    d.name.clone(),
                    Served {
                        generation: d.generation,
                        image_key: key,
                        deployment: Some(deployment),
                        monitoring: d.monitoring.or(&image_monitoring),
                        image_monitoring,
                    },
                );
                StatusReport {
                    generation: d.generation,
                    state: ServingState::Ready,
                    reason: None,
                }
            }
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::error!(deployment = %d.name, "not served: {reason}");
                runtime.dataplane.registry.insert_failed(&d.name, &reason);
                served.insert(
                    d.name.clone(),
                    Served {
                        generation: d.generation,
                        image_key: key,
                        deployment: None,
                        monitoring: d.monitoring.clone(),
                        image_monitoring: Default::default(),
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
        concurrency: d.limits.concurrency,
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
    let compiled = {
        let engine = runtime.engine.clone();
        let bytes = image.component;
        tokio::task::spawn_blocking(move || engine.compile(&bytes))
            .await
            .context("compile task failed")??
    };
    let metrics = Arc::new(runtime.metrics.deployment(&d.name, &version));
    metrics.record_compile(compiled.compile_time.as_secs_f64(), compiled.cached);
    let spec = ModelSpec {
        name: d.name.clone(),
        compiled,
        artifacts: Artifacts::from_files(image.files),
        config: config.map(|c| c.scorer_config).unwrap_or_default(),
        limits,
    };
    let model = Model::load(runtime.engine.clone(), spec, metrics.clone()).await?;
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

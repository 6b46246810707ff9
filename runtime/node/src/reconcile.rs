//! Reconciliation: keep the dataplane serving what the desired state says, and report each
//! deployment's status back. A pass [`plan`]s its steps from what was seen before, then carries
//! them out; the loop runs a pass when the source says something changed, and every half
//! second.
//!
//! A changed deployment loads next to the version it replaces, which serves until the new one
//! passed the readiness gate; a replacement that fails leaves the old version serving, and the
//! failure is reported with which version still serves. Endpoints are swapped whole, so a
//! request is routed by the old weights or the new ones, and requests running on a replaced
//! version finish on it.

use crate::loader::{ModelSource, Wanted};
use crate::routing::{Routing, decode_digests};
use crate::scale::{IdlePolicies, scale_down};
use crate::{DesiredState, Node};
use anyhow::{Context, Result};
use kiln_api::{DesiredDeployment, DriftUpload, MonitoringSettings, ServingState, StatusReport};
use kiln_dataplane::Deployment;
use kiln_monitor::DriftReport;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// What a pass remembers of a deployment it handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The generation last handled (served or failed).
    pub generation: i64,
    /// What a reload depends on: the image digest and the limits. When only keys, public access,
    /// monitoring or the warm minimum change, the loaded model is kept.
    pub image_key: String,
    /// Whether a version of it is serving.
    pub serving: bool,
}

/// One step of a pass.
#[derive(Debug, PartialEq)]
pub enum Step<'a> {
    /// No longer desired: stop serving it.
    Remove(String),
    /// New, or its image or limits changed (or nothing serves it): load a version.
    Load(&'a DesiredDeployment),
    /// A new generation that keeps the loaded model: new keys, monitoring or warm minimum.
    Update(&'a DesiredDeployment),
}

/// The reload key of a desired deployment (see [`Seen::image_key`]).
pub fn image_key(d: &DesiredDeployment) -> String {
    format!("{} {:?} {:?}", d.digest, d.limits, d.scale.max_instances)
}

/// The steps that bring what was `seen` to `desired`: removals first (by name), then the
/// deployments whose generation differs from the one handled, in the order given. Generations
/// are compared for equality, not order: a deployment deleted and created again starts over
/// at generation 1, and must still load.
pub fn plan<'a>(seen: &HashMap<String, Seen>, desired: &'a [DesiredDeployment]) -> Vec<Step<'a>> {
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    let gone: BTreeSet<&String> = seen
        .keys()
        .filter(|name| !wanted.contains(name.as_str()))
        .collect();
    let mut steps: Vec<Step<'a>> = gone.into_iter().map(|n| Step::Remove(n.clone())).collect();
    for d in desired {
        match seen.get(&d.name) {
            Some(s) if s.generation == d.generation => {}
            Some(s) if s.serving && s.image_key == image_key(d) => steps.push(Step::Update(d)),
            _ => steps.push(Step::Load(d)),
        }
    }
    steps
}

/// The report of a generation that failed: its reason, and the version that still serves,
/// when a previous generation's does.
pub fn failure(generation: i64, reason: &str, still_serving: Option<&str>) -> StatusReport {
    let reason = match still_serving {
        Some(version) => {
            format!("{reason} (version {version} of the previous generation still serves)")
        }
        None => reason.to_string(),
    };
    StatusReport {
        generation,
        state: ServingState::Failed,
        reason: Some(reason),
    }
}

/// The report of a generation that serves.
pub fn ready(generation: i64) -> StatusReport {
    StatusReport {
        generation,
        state: ServingState::Ready,
        reason: None,
    }
}

/// What is served now, per deployment.
struct Served {
    /// The generation last handled.
    generation: i64,
    /// The reload key of the version serving (or of the one that failed, when none serves).
    image_key: String,
    /// The version serving, if any.
    deployment: Option<Arc<Deployment>>,
    /// The deployment's monitoring settings over its image's: what the monitor was given.
    monitoring: MonitoringSettings,
    /// The image's `[monitoring]`.
    image_monitoring: MonitoringSettings,
}

/// A node's reconciliation state: what it serves and routes.
pub struct Reconciler<S> {
    node: Node,
    source: Arc<S>,
    served: HashMap<String, Served>,
    routing: Routing,
    idle: IdlePolicies,
}

impl<S: DesiredState> Reconciler<S> {
    /// A reconciler of `node` with `source`; it serves nothing until its first pass. Starts the
    /// task that releases idle instances.
    pub fn new(node: Node, source: Arc<S>) -> Self {
        let idle: IdlePolicies = Arc::default();
        tokio::spawn(scale_down(node.dataplane.clone(), idle.clone()));
        Reconciler {
            node,
            source,
            served: HashMap::new(),
            routing: Routing::default(),
            idle,
        }
    }

    /// What the last passes handled, by deployment.
    pub fn seen(&self) -> HashMap<String, Seen> {
        self.served
            .iter()
            .map(|(name, s)| {
                let seen = Seen {
                    generation: s.generation,
                    image_key: s.image_key.clone(),
                    serving: s.deployment.is_some(),
                };
                (name.clone(), seen)
            })
            .collect()
    }

    /// One pass over deployments, then endpoints. Returns whether both were read (a source
    /// that cannot be read leaves everything serving as it was).
    pub async fn pass(&mut self) -> bool {
        let mut applied = false;
        match self.source.deployments().await {
            Ok(desired) => {
                *self.idle.lock().unwrap_or_else(PoisonError::into_inner) = desired
                    .iter()
                    .filter_map(|d| {
                        let timeout = Duration::from_secs(d.scale.idle_timeout_s?);
                        Some((
                            d.name.clone(),
                            (timeout, d.scale.min_instances.unwrap_or(0)),
                        ))
                    })
                    .collect();
                let seen = self.seen();
                for step in plan(&seen, &desired) {
                    self.step(step).await;
                }
                applied = true;
            }
            Err(e) => tracing::warn!("cannot read the desired deployments: {e:#}"),
        }
        match self.source.endpoints().await {
            Ok(endpoints) => {
                let registry = &self.node.dataplane.registry;
                self.routing.apply(registry, &self.node.metrics, &endpoints);
                self.routing.judge(&*self.source, &endpoints).await;
            }
            Err(e) => {
                applied = false;
                tracing::warn!("cannot read the desired endpoints: {e:#}");
            }
        }
        applied
    }

    async fn step(&mut self, step: Step<'_>) {
        let (d, report) = match step {
            Step::Remove(name) => {
                self.node.dataplane.registry.remove(&name);
                if let Some(Served {
                    deployment: Some(old),
                    ..
                }) = self.served.remove(&name)
                {
                    self.node.metrics.forget_deployment(&old.name, &old.version);
                }
                tracing::info!(deployment = %name, "deployment removed");
                return;
            }
            Step::Update(d) => match self.update(d).await {
                Some(report) => (d, report),
                None => (d, self.load(d).await),
            },
            Step::Load(d) => (d, self.load(d).await),
        };
        self.report(&d.name, &report).await;
    }

    async fn report(&self, name: &str, report: &StatusReport) {
        if let Err(e) = self.source.report_status(name, report).await {
            tracing::warn!(deployment = %name, "cannot report status: {e:#}");
        }
    }

    /// Same model, new keys or monitoring: the counts stay, a changed monitor is swapped in.
    /// `None` when nothing is loaded to update.
    async fn update(&mut self, d: &DesiredDeployment) -> Option<StatusReport> {
        let previous = self.served.get(&d.name)?;
        let old = previous.deployment.clone()?;
        let image_monitoring = previous.image_monitoring.clone();
        let wanted = d.monitoring.or(&image_monitoring);
        if let Some(monitor) = old
            .monitor
            .as_ref()
            .filter(|_| previous.monitoring != wanted)
        {
            self.node.monitoring.configure(monitor, &wanted).await;
        }
        if let Some(min) = d.scale.min_instances
            && let Err(e) = old.model.warm(min).await
        {
            tracing::warn!(deployment = %d.name, "cannot start {min} instances: {e}");
        }
        let mut deployment = Deployment::new(
            &old.name,
            &old.version,
            old.model.clone(),
            old.metrics.clone(),
        );
        deployment.monitor = old.monitor.clone();
        deployment.key_digests = keys(d);
        let deployment = Arc::new(deployment);
        self.node.dataplane.registry.insert_arc(deployment.clone());
        tracing::info!(deployment = %d.name, generation = d.generation, "deployment updated");
        self.served.insert(
            d.name.clone(),
            Served {
                generation: d.generation,
                image_key: image_key(d),
                deployment: Some(deployment),
                monitoring: wanted,
                image_monitoring,
            },
        );
        Some(ready(d.generation))
    }

    /// A new version: loaded next to the old one, swapped in once ready.
    async fn load(&mut self, d: &DesiredDeployment) -> StatusReport {
        let key = image_key(d);
        match self.load_version(d).await {
            Ok(loaded) => {
                let deployment = Arc::new(loaded.deployment);
                self.node.dataplane.registry.insert_arc(deployment.clone());
                tracing::info!(deployment = %d.name, digest = %d.digest, generation = d.generation, "deployment ready");
                let replaced = self.served.insert(
                    d.name.clone(),
                    Served {
                        generation: d.generation,
                        image_key: key,
                        deployment: Some(deployment.clone()),
                        monitoring: d.monitoring.or(&loaded.image_monitoring),
                        image_monitoring: loaded.image_monitoring,
                    },
                );
                // A replaced version's series go with it (same version: the series carry on).
                if let Some(Served {
                    deployment: Some(old),
                    ..
                }) = replaced
                    && old.version != deployment.version
                {
                    self.node.metrics.forget_deployment(&old.name, &old.version);
                }
                ready(d.generation)
            }
            Err(e) => {
                let reason = format!("{e:#}");
                let previous = self
                    .served
                    .remove(&d.name)
                    .filter(|s| s.deployment.is_some());
                let still = previous.as_ref().and_then(|p| p.deployment.as_ref());
                let report = failure(d.generation, &reason, still.map(|old| old.version.as_str()));
                match still {
                    Some(_) => {
                        tracing::error!(deployment = %d.name, "new generation not served: {}", report.reason.as_deref().unwrap_or_default())
                    }
                    None => {
                        tracing::error!(deployment = %d.name, "not served: {reason}");
                        self.node.dataplane.registry.insert_failed(&d.name, &reason);
                    }
                }
                let served = match previous {
                    Some(p) => Served {
                        generation: d.generation,
                        ..p
                    },
                    None => Served {
                        generation: d.generation,
                        image_key: key,
                        deployment: None,
                        monitoring: d.monitoring.clone(),
                        image_monitoring: MonitoringSettings::default(),
                    },
                };
                self.served.insert(d.name.clone(), served);
                report
            }
        }
    }

    /// Opens the deployment's image by the node's policy, checks it is the pinned digest, and
    /// loads it.
    async fn load_version(&self, d: &DesiredDeployment) -> Result<crate::loader::Loaded> {
        let store = self
            .node
            .store_dir
            .as_deref()
            .context("this node has no local image store")?;
        let (image, reference) = crate::images::open(store, &d.reference, &self.node.registry)
            .await
            .with_context(|| format!("image {}", d.reference))?;
        if image.manifest_digest.as_str() != d.digest {
            anyhow::bail!(
                "image {reference} is {}, the deployment pins {}",
                image.manifest_digest,
                d.digest
            );
        }
        let source = ModelSource::from_image(image, &reference)?;
        self.node
            .load(
                &d.name,
                source,
                Wanted {
                    limits: d.scale.apply(&d.limits),
                    monitoring: d.monitoring.clone(),
                    min_instances: d.scale.min_instances,
                    key_digests: keys(d),
                    check_sample: true,
                },
            )
            .await
    }
}

fn keys(d: &DesiredDeployment) -> Option<Vec<[u8; 32]>> {
    (!d.public).then(|| decode_digests(&d.key_digests))
}

/// Keeps `node` serving what `source` wants, until the process ends; drift reports of closed
/// windows go to the source. The dataplane is marked loaded once the first pass has loaded
/// (or failed) every desired deployment: later passes leave readiness alone, so that a
/// shutdown's "not ready" stays.
pub async fn run<S: DesiredState>(
    node: Node,
    source: Arc<S>,
    reports: UnboundedReceiver<DriftReport>,
) {
    tokio::spawn(forward_reports(reports, source.clone()));
    let dataplane = node.dataplane.clone();
    let mut reconciler = Reconciler::new(node, source.clone());
    let mut first_pass = true;
    loop {
        if reconciler.pass().await && first_pass {
            first_pass = false;
            dataplane.set_loaded(true);
            tracing::info!("ready: every desired deployment is loaded or failed with its reason");
        }
        tokio::select! {
            () = source.changed() => {},
            () = tokio::time::sleep(Duration::from_millis(500)) => {},
        }
    }
}

/// Sends each drift report to the source (a lost report is logged, not retried: the next
/// window brings a fresh one).
async fn forward_reports<S: DesiredState>(
    mut reports: UnboundedReceiver<DriftReport>,
    source: Arc<S>,
) {
    while let Some(report) = reports.recv().await {
        let upload = DriftUpload {
            window: report.window.clone(),
            cumulative: report.cumulative.clone(),
        };
        if let Err(e) = source.report_drift(&report.deployment, &upload).await {
            tracing::warn!(deployment = %report.deployment, "cannot send the drift report: {e:#}");
        }
    }
}

/// Logs drift reports where no control plane takes them (`kiln serve` on its own).
pub async fn log_reports(mut reports: UnboundedReceiver<DriftReport>) {
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

#[cfg(test)]
mod tests;

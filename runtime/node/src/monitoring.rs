//! Drift monitoring on a node: a monitor per deployment version, the monitor components they
//! use (Kiln's default, a `.wasm` file the operator names, or an image), and the task that
//! closes windows and reports them.

use anyhow::{Context, Result};
use kiln_api::MonitoringSettings;
use kiln_api::deployment::looks_like_path;
use kiln_dataplane::Dataplane;
use kiln_engine::{Model, ScoringEngine};
use kiln_image::Baseline;
use kiln_metrics::Metrics;
use kiln_monitor::{DriftReport, Monitor, MonitorComponent, MonitorSettings};
use kiln_registry::RegistryOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How a node monitors drift.
#[derive(Clone, Debug)]
pub struct MonitoringConfig {
    /// Off: no monitors, no histograms on the request path.
    pub enabled: bool,
    /// Window length, features, and the bounds of one monitor run.
    pub settings: MonitorSettings,
    /// The monitor component deployments use unless they name one: a `.wasm` file or an image
    /// (the operator's choice; deployments themselves may only name images).
    pub component: Option<String>,
    /// Kiln's own default monitor component, when it is installed.
    pub shipped: Option<PathBuf>,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            enabled: true,
            settings: MonitorSettings::default(),
            component: None,
            shipped: None,
        }
    }
}

/// Monitoring as a node runs it.
#[derive(Clone)]
pub struct Monitoring {
    config: MonitoringConfig,
    engine: Arc<ScoringEngine>,
    metrics: Arc<Metrics>,
    store_dir: Option<PathBuf>,
    registry: RegistryOptions,
}

impl Monitoring {
    /// Monitoring with `config` on `engine`; monitor images are found in `store_dir` or pulled.
    pub fn new(
        config: MonitoringConfig,
        engine: Arc<ScoringEngine>,
        metrics: Arc<Metrics>,
        store_dir: Option<PathBuf>,
        registry: RegistryOptions,
    ) -> Self {
        Monitoring {
            config,
            engine,
            metrics,
            store_dir,
            registry,
        }
    }

    /// The monitor of a deployment version (`None` when monitoring is off), with the monitor
    /// component and config `chosen` names (or the default).
    pub async fn attach(
        &self,
        deployment: &str,
        version: &str,
        model: &Model,
        baseline: Option<&Baseline>,
        chosen: &MonitoringSettings,
    ) -> Option<Arc<Monitor>> {
        if !self.config.enabled {
            return None;
        }
        let monitor = Arc::new(Monitor::new(
            deployment,
            version,
            model.metadata(),
            baseline,
            self.config.settings.clone(),
            self.metrics.monitor(deployment, version),
        ));
        if baseline.is_none() {
            tracing::info!(
                deployment,
                "no drift baseline in the image: drift is not monitored"
            );
        }
        self.configure(&monitor, chosen).await;
        Some(monitor)
    }

    /// Applies a deployment's monitoring settings to its monitor; the counts stay.
    pub async fn configure(&self, monitor: &Monitor, chosen: &MonitoringSettings) {
        if let Some(seconds) = chosen.window_s {
            monitor.set_window(Duration::from_secs(seconds));
        }
        if !monitor.has_baseline() {
            return;
        }
        let component = match chosen.component.as_deref() {
            Some(name) if looks_like_path(name) => Err(format!(
                "monitor component '{name}': deployments name a monitor by image (local store or registry), not by file"
            )),
            name => self
                .component(name, &chosen.config)
                .await
                .map_err(|e| format!("{e:#}")),
        };
        match &component {
            Ok(c) => {
                tracing::info!(deployment = %monitor.deployment, monitor = %c.name, digest = %c.compiled.digest, "drift monitor ready")
            }
            Err(e) => {
                tracing::warn!(deployment = %monitor.deployment, "no drift monitor: {e}")
            }
        }
        monitor.set_component(component);
    }

    /// Loads a monitor component: `None`/`default` (the operator's, else Kiln's), a `.wasm`
    /// file, or an image in the local store or a registry.
    pub async fn component(
        &self,
        name: Option<&str>,
        config: &str,
    ) -> Result<Arc<MonitorComponent>> {
        let (label, bytes) = match name.filter(|n| *n != "default") {
            None => match &self.config.component {
                Some(flag) => (flag.clone(), self.bytes_of(flag).await?),
                None => {
                    let path = self.config.shipped.as_deref().context(
                        "Kiln's default monitor component (monitor_default.wasm) is not installed \
                         beside the kiln binary: build it with sdk/build-components, or give \
                         --monitor-component",
                    )?;
                    ("default".to_string(), read(path)?)
                }
            },
            Some(reference) => (reference.to_string(), self.bytes_of(reference).await?),
        };
        let engine = self.engine.clone();
        let (label2, config) = (label.clone(), config.to_string());
        tokio::task::spawn_blocking(move || {
            kiln_monitor::component(&engine, &label2, &bytes, &config)
        })
        .await
        .context("compile task failed")?
        .with_context(|| format!("monitor component '{label}'"))
    }

    async fn bytes_of(&self, reference: &str) -> Result<Vec<u8>> {
        let path = Path::new(reference);
        if reference.ends_with(".wasm") || path.is_file() {
            return read(path);
        }
        let dir = self
            .store_dir
            .as_deref()
            .context("no local image store to find the monitor image in")?;
        let (image, _) = crate::images::open(dir, reference, &self.registry)
            .await
            .with_context(|| format!("monitor image {reference}"))?;
        Ok(image.component)
    }

    /// Starts the task that closes windows and judges them; reports go to the returned receiver.
    pub fn start(
        &self,
        dataplane: Arc<Dataplane>,
    ) -> tokio::sync::mpsc::UnboundedReceiver<DriftReport> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let tick = self.config.settings.window.min(Duration::from_secs(1)) / 2;
        tokio::spawn(kiln_monitor::run(
            self.engine.clone(),
            move || {
                dataplane
                    .registry
                    .all()
                    .into_iter()
                    .filter_map(|d| d.monitor.clone())
                    .collect()
            },
            tx,
            tick.max(Duration::from_millis(50)),
        ));
        rx
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

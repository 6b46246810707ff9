//! Drift monitoring in `kiln serve` and `kiln up`: a monitor per deployment version, the monitor
//! components they use (Kiln's default, a `.wasm` file or an image), and the task that closes
//! windows and reports them. Also `kiln monitor analyze`, which runs a monitor component on
//! histograms given as JSON.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kiln_dataplane::Dataplane;
use kiln_engine::{EngineConfig, Model, MonitorLimits, ScoringEngine};
use kiln_image::{Baseline, OciStore, open_image};
use kiln_metrics::Metrics;
use kiln_monitor::{DriftReport, Monitor, MonitorComponent, MonitorSettings};
use kiln_registry::RegistryOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Drift monitoring flags of `kiln serve` and `kiln up`.
#[derive(Args, Clone, Debug)]
pub struct MonitorArgs {
    /// Length of a drift window in seconds (tumbling windows; fractions allowed).
    #[arg(long, env = "KILN_MONITOR_WINDOW", default_value_t = 300.0)]
    monitor_window: f64,
    /// The monitor component deployments use unless they name one: a `.wasm` file or an image
    /// (default: Kiln's, `monitor_default.wasm` beside the binary's `components/` directory).
    #[arg(long, env = "KILN_MONITOR_COMPONENT")]
    monitor_component: Option<String>,
    /// Most features monitored per deployment version.
    #[arg(long, default_value_t = 100)]
    monitor_max_features: usize,
    /// Deadline of one monitor run, in ms.
    #[arg(long, default_value_t = 2000)]
    monitor_deadline_ms: u64,
    /// Linear memory of a monitor run, in MiB.
    #[arg(long, default_value_t = 64)]
    monitor_memory_mb: usize,
    /// Turn drift monitoring off (no histograms on the request path).
    #[arg(long)]
    no_monitoring: bool,
}

impl MonitorArgs {
    fn settings(&self) -> MonitorSettings {
        MonitorSettings {
            window: Duration::from_secs_f64(self.monitor_window.clamp(0.1, 86_400.0)),
            max_features: self.monitor_max_features,
            limits: MonitorLimits {
                memory: self.monitor_memory_mb.clamp(1, 4096) << 20,
                deadline: Duration::from_millis(self.monitor_deadline_ms.clamp(1, 600_000)),
            },
            ..MonitorSettings::default()
        }
    }
}

/// Where Kiln's default monitor component is: `$KILN_MONITOR_COMPONENT` aside, where Kiln's
/// shipped components are (see [`kiln_build::shipped_component`]).
pub fn default_component_path() -> Option<PathBuf> {
    kiln_build::shipped_component("monitor_default.wasm")
}

/// Monitoring as a runtime runs it.
#[derive(Clone)]
pub struct Monitoring {
    args: MonitorArgs,
    engine: Arc<ScoringEngine>,
    metrics: Arc<Metrics>,
    store_dir: Option<PathBuf>,
    registry: RegistryOptions,
}

impl Monitoring {
    /// Monitoring with `args` on `engine`.
    pub fn new(
        args: MonitorArgs,
        engine: Arc<ScoringEngine>,
        metrics: Arc<Metrics>,
        store_dir: Option<PathBuf>,
        registry: RegistryOptions,
    ) -> Self {
        Monitoring {
            args,
            engine,
            metrics,
            store_dir,
            registry,
        }
    }

    /// The monitor of a deployment version (`None` with `--no-monitoring`), using `component`
    /// (or the default) with `config`.
    pub async fn attach(
        &self,
        deployment: &str,
        version: &str,
        model: &Model,
        baseline: Option<&Baseline>,
        chosen: &kiln_image::MonitoringSection,
    ) -> Option<Arc<Monitor>> {
        if self.args.no_monitoring {
            return None;
        }
        let monitor = Arc::new(Monitor::new(
            deployment,
            version,
            model.metadata(),
            baseline,
            self.args.settings(),
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
    pub async fn configure(&self, monitor: &Monitor, chosen: &kiln_image::MonitoringSection) {
        if let Some(seconds) = chosen.window_s {
            monitor.set_window(Duration::from_secs(seconds));
        }
        if !monitor.has_baseline() {
            return;
        }
        let component = match chosen.component.as_deref() {
            Some(name) if kiln_image::looks_like_path(name) => Err(format!(
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

    /// Loads a monitor component: `None`/`default` (the flag's, else Kiln's), a `.wasm` file, or
    /// an image in the local store or a registry.
    pub async fn component(
        &self,
        name: Option<&str>,
        config: &str,
    ) -> Result<Arc<MonitorComponent>> {
        let (label, bytes) = match name.filter(|n| *n != "default") {
            None => match &self.args.monitor_component {
                Some(flag) => (flag.clone(), self.bytes_of(flag).await?),
                None => {
                    let path = default_component_path().context(
                        "Kiln's default monitor component (monitor_default.wasm) is not installed \
                         beside the kiln binary: build it with sdk/build-components, or give \
                         --monitor-component",
                    )?;
                    ("default".to_string(), read(&path)?)
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
            .clone()
            .context("no local image store to find the monitor image in")?;
        let store = OciStore::open(&dir)?;
        let name = reference.strip_prefix("oci://").unwrap_or(reference);
        if store.resolve(name).is_err() && kiln_registry::is_registry_reference(name) {
            crate::transfer::pull_into(&store, name, &self.registry)
                .await
                .with_context(|| format!("cannot pull the monitor image {name}"))?;
        }
        let owned = name.to_string();
        let image = tokio::task::spawn_blocking(move || open_image(&store, &owned))
            .await
            .context("image task failed")?
            .with_context(|| format!("monitor image {name}"))?;
        Ok(image.component)
    }

    /// Starts the task that closes windows and judges them; reports go to the returned receiver.
    pub fn start(
        &self,
        dataplane: Arc<Dataplane>,
    ) -> tokio::sync::mpsc::UnboundedReceiver<DriftReport> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let tick = self.args.settings().window.min(Duration::from_secs(1)) / 2;
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

/// `kiln monitor`.
#[derive(Subcommand)]
pub enum MonitorCommand {
    /// Run a monitor component on reference and current histograms given as JSON
    /// (`{"features": [{"name", "kind", "edges", "categories", "reference_min",
    /// "reference_max", "reference", "current"}]}`), and print its statistics.
    Analyze {
        /// The JSON file (`-` for standard input).
        file: PathBuf,
        /// The monitor component (default: Kiln's).
        #[arg(long)]
        component: Option<PathBuf>,
        /// The config string passed to the monitor.
        #[arg(long, default_value = "")]
        config: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: crate::images::Output,
    },
}

/// Runs `kiln monitor`.
pub fn command(command: MonitorCommand) -> Result<()> {
    let MonitorCommand::Analyze {
        file,
        component,
        config,
        output,
    } = command;
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Input {
        features: Vec<kiln_monitor::FeatureInput>,
    }
    let input: Input = serde_json::from_str(&text).context("not monitor input JSON")?;
    if input.features.is_empty() {
        bail!("no features given");
    }
    let path = match component {
        Some(p) => p,
        None => default_component_path()
            .context("Kiln's default monitor component is not installed: give --component")?,
    };
    let bytes = read(&path)?;
    let engine = ScoringEngine::new(&EngineConfig::default())?;
    let compiled = engine.compile_monitor(&bytes)?;
    let features: Vec<_> = input
        .features
        .into_iter()
        .map(kiln_monitor::FeatureInput::into_feature)
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let reports = runtime.block_on(engine.analyze(
        &compiled,
        &features,
        &config,
        MonitorLimits::default(),
    ))?;
    match output {
        crate::images::Output::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&kiln_monitor::reports_json(&reports))?
            )
        }
        _ => {
            for r in kiln_monitor::reports_json(&reports)
                .as_array()
                .into_iter()
                .flatten()
            {
                let stats = r["statistics"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                println!(
                    "{:<24} {:<18} {stats}",
                    r["name"].as_str().unwrap_or(""),
                    r["severity"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

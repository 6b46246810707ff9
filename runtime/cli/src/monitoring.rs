//! Drift monitoring flags of `kiln serve` and `kiln up` (the node runs monitors, see
//! [`kiln_node::monitoring`]), and `kiln monitor analyze`, which runs a monitor component on
//! histograms given as JSON.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kiln_engine::{EngineConfig, MonitorLimits, ScoringEngine};
use kiln_monitor::MonitorSettings;
use kiln_node::MonitoringConfig;
use std::path::{Path, PathBuf};
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
    /// The node's monitoring, from these flags.
    pub fn config(&self) -> MonitoringConfig {
        MonitoringConfig {
            enabled: !self.no_monitoring,
            settings: self.settings(),
            component: self.monitor_component.clone(),
            shipped: default_component_path(),
        }
    }

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
        output: crate::args::Output,
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
        crate::args::Output::Json => {
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

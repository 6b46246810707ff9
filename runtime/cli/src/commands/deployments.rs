//! `kiln deployment ...`: deployments of the work group, their keys, drift and events.

use super::print;
use crate::context::{Connection, Session, runtime};
use anyhow::{Context, Result};
use clap::Subcommand;
use kiln_api::manage::deployments::RetrainPolicy;
use kiln_api::manage::deployments::{Deployment, DeploymentUpdate, KeyName, NewDeployment};
use kiln_api::manage::monitoring::{DriftReport, MonitoringUpdate};
use kiln_api::{Limits, MonitoringSettings, ScaleSettings};
use serde::Serialize;
use serde_json::Value;

/// `kiln deployment ...`.
#[derive(Subcommand)]
pub enum DeploymentCommand {
    /// Deploy an image of the work group; prints its keys once.
    Create {
        name: String,
        /// The image (as registered with `kiln image register`).
        #[arg(long)]
        image: String,
        /// Serve without keys.
        #[arg(long)]
        public: bool,
        #[arg(long)]
        memory_mb: Option<usize>,
        #[arg(long)]
        deadline_ms: Option<u64>,
        #[arg(long)]
        concurrency: Option<usize>,
        /// Instances kept warm (0: released when idle).
        #[arg(long)]
        min_instances: Option<usize>,
        #[arg(long)]
        max_instances: Option<usize>,
        /// Seconds idle before instances above the minimum go.
        #[arg(long)]
        idle_timeout_s: Option<u64>,
        /// Join this endpoint: at 100% when it routes nothing yet, else at 0%.
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Change a deployment's image, limits or scale: the new version loads and passes its
    /// sample check while the old one serves, then takes over.
    Update {
        name: String,
        /// The new image (as registered with `kiln image register`).
        #[arg(long)]
        image: Option<String>,
        #[arg(long)]
        memory_mb: Option<usize>,
        #[arg(long)]
        deadline_ms: Option<u64>,
        #[arg(long)]
        concurrency: Option<usize>,
        #[arg(long)]
        min_instances: Option<usize>,
        #[arg(long)]
        max_instances: Option<usize>,
        #[arg(long)]
        idle_timeout_s: Option<u64>,
    },
    /// List deployments.
    List,
    /// Show a deployment and its status.
    Show { name: String },
    /// Delete a deployment.
    Delete { name: String },
    /// Regenerate the primary or secondary key (printed once).
    RegenerateKey {
        name: String,
        #[arg(long, value_enum, default_value = "primary")]
        key: Key,
    },
    /// Choose the drift monitor, its window and the retraining policy; the model keeps serving.
    Monitor {
        name: String,
        /// The monitor component: `default` or an image (local store or registry); unset, the
        /// image's `[monitoring]` choice, else Kiln's default.
        #[arg(long)]
        component: Option<String>,
        /// The config string passed to the monitor (the default one takes thresholds such as
        /// `psi_alert=0.25,p_value=0.05,min_count=50`); unset, the image's.
        #[arg(long)]
        config: Option<String>,
        /// Window length in seconds.
        #[arg(long)]
        window: Option<u64>,
        /// Retrain with this experiment (`PROJECT/EXPERIMENT`) when an alert holds.
        #[arg(long, value_name = "PROJECT/EXPERIMENT")]
        retrain: Option<String>,
        /// Windows in a row with an alert before retraining.
        #[arg(long, default_value_t = 3, requires = "retrain")]
        retrain_windows: u32,
        /// Seconds after a retraining run during which no other is submitted.
        #[arg(long, default_value_t = 3600, requires = "retrain")]
        cooldown: u64,
        /// The target of retraining runs (default: the experiment's).
        #[arg(long, requires = "retrain")]
        retrain_target: Option<String>,
    },
    /// The drift report of a window: per feature, statistics, verdict and data quality.
    Drift {
        name: String,
        /// `latest`, `cumulative`, or how many windows back (0 = latest).
        #[arg(long, default_value = "latest")]
        window: String,
    },
    /// Events: drift state changes and retraining runs.
    Events { name: String },
}

/// Which key: `primary` or `secondary`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Key {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

impl From<Key> for KeyName {
    fn from(key: Key) -> KeyName {
        match key {
            Key::Primary => KeyName::Primary,
            Key::Secondary => KeyName::Secondary,
        }
    }
}

/// A text field of an untyped answer, `-` when it is missing.
fn s(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// One line per monitored feature of a drift report.
fn drift_lines(report: &DriftReport) -> String {
    let report = &serde_json::to_value(report).unwrap_or_default();
    let mut out = format!(
        "  drift: {} ({} to {})",
        s(report, "state"),
        s(report, "start"),
        s(report, "end")
    );
    if let Some(reason) = report["reason"].as_str() {
        out.push_str(&format!("\n    {reason}"));
    }
    if let Some(error) = report["error"].as_str() {
        out.push_str(&format!("\n    monitor: {error}"));
    }
    for f in report["features"].as_array().into_iter().flatten() {
        let stats = &f["statistics"];
        let test = if stats["ks_pvalue"].is_number() {
            format!(
                "ks_p={:.3}",
                stats["ks_pvalue"].as_f64().unwrap_or(f64::NAN)
            )
        } else {
            format!(
                "chi2_p={:.3}",
                stats["chi2_pvalue"].as_f64().unwrap_or(f64::NAN)
            )
        };
        out.push_str(&format!(
            "\n    {:<6} {:<20} {:<17} psi={:<8.4} {test} values={} missing={} nan={} out_of_range={}",
            s(f, "role"),
            s(f, "name"),
            s(f, "severity"),
            stats["psi"].as_f64().unwrap_or(f64::NAN),
            f["values"],
            f["quality"]["missing"],
            f["quality"]["nan"],
            f["quality"]["out_of_range"],
        ));
    }
    out
}

/// A deployment with its latest drift report, as `kiln deployment show` prints it.
#[derive(Serialize)]
struct Shown {
    #[serde(flatten)]
    deployment: Deployment,
    drift: DriftReport,
}

/// Runs `kiln deployment ...`.
pub fn deployment(command: DeploymentCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let at = (team.as_str(), workgroup.as_str());
        match command {
            DeploymentCommand::Create {
                name,
                image,
                public,
                memory_mb,
                deadline_ms,
                concurrency,
                min_instances,
                max_instances,
                idle_timeout_s,
                endpoint,
            } => {
                let new = NewDeployment {
                    name,
                    image,
                    public,
                    limits: Limits {
                        memory_mb,
                        deadline_ms,
                        concurrency,
                        ..Limits::default()
                    },
                    scale: ScaleSettings {
                        min_instances,
                        max_instances,
                        idle_timeout_s,
                    },
                    endpoint,
                };
                let created = client.create_deployment(at, &new).await?;
                print(output, &created, |d| {
                    format!(
                        "created deployment {} ({})\n  infer: {}\n  primary key (shown once): {}\n  secondary key (shown once): {}",
                        d.name, d.status, d.urls.infer, d.keys.primary, d.keys.secondary
                    )
                })
            }
            DeploymentCommand::Update {
                name,
                image,
                memory_mb,
                deadline_ms,
                concurrency,
                min_instances,
                max_instances,
                idle_timeout_s,
            } => {
                let limits = Limits {
                    memory_mb,
                    deadline_ms,
                    concurrency,
                    ..Limits::default()
                };
                let scale = ScaleSettings {
                    min_instances,
                    max_instances,
                    idle_timeout_s,
                };
                let change = DeploymentUpdate {
                    image,
                    limits: (limits != Limits::default()).then_some(limits),
                    scale: (scale != ScaleSettings::default()).then_some(scale),
                    public: None,
                };
                let changed = client.update_deployment(at, &name, &change).await?;
                print(output, &changed, |d| {
                    format!(
                        "deployment {}: {} (generation {}), image {}",
                        d.name, d.status, d.generation, d.image
                    )
                })
            }
            DeploymentCommand::List => {
                let deployments = client.deployments(at).await?;
                super::print_list(output, deployments, |d| {
                    format!("{}  {}  {}", d.name, d.status, d.image)
                })
            }
            DeploymentCommand::Show { name } => {
                let shown = Shown {
                    deployment: client.deployment(at, &name).await?,
                    drift: client.drift(at, &name, "latest").await?,
                };
                print(output, &shown, |v| {
                    let d = &v.deployment;
                    format!(
                        "{}: {} {}\n  image {} {}\n  infer: {}\n{}",
                        d.name,
                        d.status,
                        d.reason.as_deref().unwrap_or("-"),
                        d.image,
                        d.digest,
                        d.urls.infer,
                        drift_lines(&v.drift)
                    )
                })
            }
            DeploymentCommand::Monitor {
                name,
                component,
                config,
                window,
                retrain,
                retrain_windows,
                cooldown,
                retrain_target,
            } => {
                let retrain = match retrain {
                    None => None,
                    Some(text) => {
                        let (project, experiment) = text
                            .split_once('/')
                            .context("--retrain takes PROJECT/EXPERIMENT")?;
                        Some(RetrainPolicy {
                            project: project.to_string(),
                            experiment: experiment.to_string(),
                            windows: retrain_windows,
                            cooldown_s: cooldown,
                            target: retrain_target,
                        })
                    }
                };
                let update = MonitoringUpdate {
                    monitoring: MonitoringSettings {
                        component,
                        config: config.unwrap_or_default(),
                        window_s: window,
                    },
                    retrain,
                };
                let monitored = client.set_monitoring(at, &name, &update).await?;
                print(output, &monitored, |m| {
                    format!(
                        "deployment {}: monitor {}{}",
                        m.name,
                        m.monitoring
                            .component
                            .as_deref()
                            .unwrap_or("(the image's, or Kiln's default)"),
                        m.retrain.as_ref().map_or(String::new(), |r| format!(
                            ", retraining {}/{} after {} alert windows",
                            r.project, r.experiment, r.windows
                        ))
                    )
                })
            }
            DeploymentCommand::Drift { name, window } => {
                let report = client.drift(at, &name, &window).await?;
                print(output, &report, drift_lines)
            }
            DeploymentCommand::Events { name } => {
                let events = client.deployment_events(at, &name).await?;
                print(output, &events, |page| {
                    page.items
                        .iter()
                        .map(|e| {
                            let run = e.run.as_ref().map(|r| format!(" (run {r})"));
                            let run = run.unwrap_or_default();
                            format!("{}  {:<10} {}{run}", e.time, e.kind, e.message)
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            }
            DeploymentCommand::Delete { name } => {
                let deleted = client.delete_deployment(at, &name).await?;
                print(output, &deleted, |d| format!("deleted deployment {}", d.name))
            }
            DeploymentCommand::RegenerateKey { name, key } => {
                let new = client
                    .regenerate_deployment_key(at, &name, key.into())
                    .await?;
                print(output, &new, |k| {
                    format!(
                        "new {} key of {} (shown once): {}",
                        k.key.as_str(),
                        k.name,
                        k.value
                    )
                })
            }
        }
    })
}

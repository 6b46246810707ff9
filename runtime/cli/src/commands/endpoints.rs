//! `kiln endpoint ...`: stable prediction URLs that route to deployments by weight, with a
//! mirror and an automatic rollback policy.

use super::deployments::Key;
use super::{print, print_list};
use crate::context::{Connection, Session, runtime};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use kiln_api::endpoint::Traffic;
use kiln_api::manage::endpoints::{Endpoint, EndpointUpdate, NewEndpoint};
use kiln_api::{MirrorSettings, RollbackPolicy};

/// `kiln endpoint ...`.
#[derive(Subcommand)]
pub enum EndpointCommand {
    /// Create an endpoint; prints its keys once.
    Create {
        name: String,
        /// Serve without keys.
        #[arg(long)]
        public: bool,
        /// Weights, e.g. `blue=100` (repeat for each deployment; they sum to 100).
        #[arg(long = "traffic", value_name = "DEPLOYMENT=WEIGHT")]
        traffic: Vec<String>,
    },
    /// List endpoints with their split.
    List,
    /// Show an endpoint: split, mirror, policy and each deployment's state.
    Show { name: String },
    /// Set the weights: `kiln endpoint traffic E blue=90 green=10` (they sum to 100; a
    /// deployment left out leaves the endpoint).
    Traffic {
        name: String,
        #[arg(required = true, value_name = "DEPLOYMENT=WEIGHT")]
        weights: Vec<String>,
    },
    /// Copy a share of requests to a deployment of the endpoint (its answers are discarded).
    Mirror {
        name: String,
        /// The deployment mirrored to.
        #[arg(required_unless_present = "off")]
        deployment: Option<String>,
        /// Percent of requests copied, 1 to 50.
        #[arg(long, default_value_t = 10)]
        percent: u32,
        /// Stop mirroring.
        #[arg(long, conflicts_with = "deployment")]
        off: bool,
    },
    /// Roll a new deployment back to weight 0 when it breaches these thresholds over a window.
    Rollback {
        name: String,
        /// Largest share of 5xx answers, 0 to 1.
        #[arg(long)]
        max_error_rate: Option<f64>,
        /// Largest p99 latency in ms.
        #[arg(long)]
        max_p99_ms: Option<f64>,
        /// Window in seconds.
        #[arg(long, default_value_t = 10)]
        window: u64,
        /// Fewest answers a window needs to be judged.
        #[arg(long, default_value_t = 20)]
        min_requests: u64,
        /// Remove the policy.
        #[arg(long, conflicts_with_all = ["max_error_rate", "max_p99_ms"])]
        off: bool,
    },
    /// Traffic changes, mirror and policy changes, and rollbacks.
    Events { name: String },
    /// Regenerate the primary or secondary key (printed once); the other keeps working.
    RegenerateKey {
        name: String,
        #[arg(long, value_enum, default_value = "primary")]
        key: Key,
    },
    /// Delete an endpoint (its deployments stay).
    Delete { name: String },
}

/// Weights given as `DEPLOYMENT=WEIGHT`.
fn weights(pairs: &[String]) -> Result<Traffic> {
    let mut traffic = Traffic::new();
    for pair in pairs {
        let (name, weight) = pair
            .split_once('=')
            .with_context(|| format!("'{pair}': weights are DEPLOYMENT=WEIGHT"))?;
        let weight: u32 = weight
            .parse()
            .with_context(|| format!("'{pair}': the weight is a whole number 0 to 100"))?;
        if traffic.insert(name.to_string(), weight).is_some() {
            bail!("'{name}' is given twice");
        }
    }
    Ok(traffic)
}

/// An endpoint with its deployments, as a person reads it.
fn describe(e: &Endpoint) -> String {
    let mut out = format!(
        "{}: {}\n  infer: {}",
        e.name,
        if e.public { "public" } else { "keys required" },
        e.urls.infer
    );
    for d in &e.deployments {
        let status = serde_json::to_value(d.status).unwrap_or_default();
        out.push_str(&format!(
            "\n  {:<20} {:>3}%{}  {:<8} {}{}",
            d.name,
            d.weight,
            d.mirror_percent
                .map(|p| format!(" (+{p}% mirrored)"))
                .unwrap_or_default(),
            status.as_str().unwrap_or_default(),
            d.image.as_deref().unwrap_or("-"),
            d.reason
                .as_deref()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        ));
    }
    if let Some(policy) = &e.rollback {
        let policy = serde_json::to_string(policy).unwrap_or_default();
        out.push_str(&format!("\n  rollback policy: {policy}"));
    }
    out
}

/// Runs `kiln endpoint ...`.
pub fn endpoint(command: EndpointCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let at = (team.as_str(), workgroup.as_str());
        match command {
            EndpointCommand::Create {
                name,
                public,
                traffic,
            } => {
                let new = NewEndpoint {
                    name,
                    public,
                    traffic: weights(&traffic)?,
                    mirror: None,
                    rollback: None,
                };
                let created = client.create_endpoint(at, &new).await?;
                print(output, &created, |c| {
                    format!(
                        "created endpoint {}\n  primary key (shown once): {}\n  secondary key (shown once): {}",
                        describe(&c.endpoint),
                        c.keys.primary,
                        c.keys.secondary
                    )
                })
            }
            EndpointCommand::List => print_list(output, client.endpoints(at).await?, |e| {
                let split: Vec<String> = e.traffic.iter().map(|(n, w)| format!("{n} {w}%")).collect();
                format!("{}  {}", e.name, split.join(", "))
            }),
            EndpointCommand::Show { name } => print(output, &client.endpoint(at, &name).await?, describe),
            EndpointCommand::Traffic { name, weights: w } => {
                let update = EndpointUpdate {
                    traffic: Some(weights(&w)?),
                    ..EndpointUpdate::default()
                };
                print(output, &client.update_endpoint(at, &name, &update).await?, describe)
            }
            EndpointCommand::Mirror {
                name,
                deployment,
                percent,
                off,
            } => {
                let mirror = match (off, deployment) {
                    (true, _) | (false, None) => None,
                    (false, Some(deployment)) => Some(MirrorSettings { deployment, percent }),
                };
                let update = EndpointUpdate {
                    mirror: Some(mirror),
                    ..EndpointUpdate::default()
                };
                print(output, &client.update_endpoint(at, &name, &update).await?, describe)
            }
            EndpointCommand::Rollback {
                name,
                max_error_rate,
                max_p99_ms,
                window,
                min_requests,
                off,
            } => {
                let policy = (!off).then_some(RollbackPolicy {
                    max_error_rate,
                    max_p99_ms,
                    window_s: window,
                    min_requests,
                });
                let update = EndpointUpdate {
                    rollback: Some(policy),
                    ..EndpointUpdate::default()
                };
                print(output, &client.update_endpoint(at, &name, &update).await?, describe)
            }
            EndpointCommand::Events { name } => {
                let events = client.endpoint_events(at, &name).await?;
                print(output, &events, |page| {
                    page.items
                        .iter()
                        .map(|e| format!("{}  {:<15} {}", e.time, e.kind, e.message))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            }
            EndpointCommand::RegenerateKey { name, key } => {
                let new = client.regenerate_endpoint_key(at, &name, key.into()).await?;
                print(output, &new, |k| {
                    format!(
                        "new {} key of {} (shown once): {}",
                        k.key.as_str(),
                        k.name,
                        k.value
                    )
                })
            }
            EndpointCommand::Delete { name } => {
                let deleted = client.delete_endpoint(at, &name).await?;
                print(output, &deleted, |d| format!("deleted endpoint {}", d.name))
            }
        }
    })
}

//! `kiln endpoint ...`: stable prediction URLs that route to deployments by weight, with a
//! mirror and an automatic rollback policy.

use crate::client::{Api, Connection, fields, runtime, s};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

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
        #[arg(long, default_value = "primary")]
        key: String,
    },
    /// Delete an endpoint (its deployments stay).
    Delete { name: String },
}

fn weights(pairs: &[String]) -> Result<Value> {
    let mut traffic = serde_json::Map::new();
    for pair in pairs {
        let (name, weight) = pair
            .split_once('=')
            .with_context(|| format!("'{pair}': weights are DEPLOYMENT=WEIGHT"))?;
        let weight: u32 = weight
            .parse()
            .with_context(|| format!("'{pair}': the weight is a whole number 0 to 100"))?;
        if traffic.insert(name.to_string(), json!(weight)).is_some() {
            bail!("'{name}' is given twice");
        }
    }
    Ok(Value::Object(traffic))
}

/// The split as one line per deployment.
fn describe(v: &Value) -> String {
    let mut out = format!(
        "{}: {}\n  infer: {}",
        s(v, "name"),
        if v["public"] == json!(true) {
            "public"
        } else {
            "keys required"
        },
        s(&v["urls"], "infer")
    );
    for d in v["deployments"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  {:<20} {:>3}%{}  {:<8} {}{}",
            s(d, "name"),
            d["weight"],
            d["mirror_percent"]
                .as_u64()
                .map(|p| format!(" (+{p}% mirrored)"))
                .unwrap_or_default(),
            s(d, "status"),
            s(d, "image"),
            d["reason"]
                .as_str()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        ));
    }
    if !v["rollback"].is_null() {
        out.push_str(&format!("\n  rollback policy: {}", v["rollback"]));
    }
    out
}

/// Runs `kiln endpoint ...`.
pub fn endpoint(command: EndpointCommand, connection: &Connection) -> Result<()> {
    let api = Api::new(connection)?;
    runtime()?.block_on(async {
        let base = format!("{}/endpoints", api.workgroup_path()?);
        match command {
            EndpointCommand::Create {
                name,
                public,
                traffic,
            } => {
                let body = json!({ "name": name, "public": public, "traffic": weights(&traffic)? });
                let v = api.post(&base, body).await?;
                api.show(&v, |v| {
                    format!(
                        "created endpoint {}\n  primary key (shown once): {}\n  secondary key (shown once): {}",
                        describe(v),
                        s(&v["keys"], "primary"),
                        s(&v["keys"], "secondary")
                    )
                });
            }
            EndpointCommand::List => {
                let v = api.get(&base).await?;
                api.show_list(&v, |i| {
                    let split: Vec<String> = i["traffic"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(n, w)| format!("{n} {w}%"))
                        .collect();
                    format!("{}  {}", s(i, "name"), split.join(", "))
                });
            }
            EndpointCommand::Show { name } => {
                let v = api.get(&format!("{base}/{name}")).await?;
                api.show(&v, describe);
            }
            EndpointCommand::Traffic { name, weights: w } => {
                let v = api
                    .patch(&format!("{base}/{name}"), json!({ "traffic": weights(&w)? }))
                    .await?;
                api.show(&v, describe);
            }
            EndpointCommand::Mirror {
                name,
                deployment,
                percent,
                off,
            } => {
                let mirror = match (off, deployment) {
                    (true, _) | (false, None) => Value::Null,
                    (false, Some(d)) => json!({ "deployment": d, "percent": percent }),
                };
                let v = api
                    .patch(&format!("{base}/{name}"), json!({ "mirror": mirror }))
                    .await?;
                api.show(&v, describe);
            }
            EndpointCommand::Rollback {
                name,
                max_error_rate,
                max_p99_ms,
                window,
                min_requests,
                off,
            } => {
                let policy = if off {
                    Value::Null
                } else {
                    let mut p = fields(&[
                        ("max_error_rate", max_error_rate.map(|v| json!(v))),
                        ("max_p99_ms", max_p99_ms.map(|v| json!(v))),
                    ]);
                    p.insert("window_s".into(), json!(window));
                    p.insert("min_requests".into(), json!(min_requests));
                    Value::Object(p)
                };
                let v = api
                    .patch(&format!("{base}/{name}"), json!({ "rollback": policy }))
                    .await?;
                api.show(&v, describe);
            }
            EndpointCommand::Events { name } => {
                let v = api.get(&format!("{base}/{name}/events")).await?;
                api.show_list(&v, |i| {
                    format!("{}  {:<15} {}", s(i, "time"), s(i, "kind"), s(i, "message"))
                });
            }
            EndpointCommand::RegenerateKey { name, key } => {
                let v = api
                    .post(&format!("{base}/{name}/keys"), json!({ "key": key }))
                    .await?;
                api.show(&v, |v| {
                    format!(
                        "new {} key of {} (shown once): {}",
                        s(v, "key"),
                        s(v, "name"),
                        s(v, "value")
                    )
                });
            }
            EndpointCommand::Delete { name } => {
                let v = api.delete(&format!("{base}/{name}")).await?;
                api.show(&v, |_| format!("deleted endpoint {name}"));
            }
        }
        Ok(())
    })
}

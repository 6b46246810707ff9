//! `kiln target ...` and `kiln env ...`: execution targets and environments of the work group.

use super::{print, print_list};
use crate::context::{Connection, Session, runtime};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use kiln_api::manage::targets::{NewEnvironment, NewTarget, RegistrySettings};

/// `kiln target ...`.
#[derive(Subcommand)]
pub enum TargetCommand {
    /// Add an execution target.
    #[command(visible_alias = "add")]
    Create {
        name: String,
        /// local, docker or spark.
        #[arg(long)]
        kind: String,
        /// A setting, KEY=VALUE (VALUE read as JSON when it parses, else as text). Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// List execution targets.
    List,
    /// Show an execution target.
    Show { name: String },
    /// Delete an execution target.
    Delete { name: String },
    /// Check a target is reachable: its Docker API, Spark master or interpreter.
    Test { name: String },
}

/// `kiln env ...`.
#[derive(Subcommand)]
pub enum EnvCommand {
    /// Create an environment.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Its OCI registry, host[:port].
        #[arg(long)]
        registry: Option<String>,
        #[arg(long)]
        registry_username: Option<String>,
        /// Sealed at rest, never shown again.
        #[arg(long, env = "KILN_ENV_REGISTRY_PASSWORD", hide_env_values = true)]
        registry_password: Option<String>,
        /// Artifact store URL for its runs.
        #[arg(long)]
        artifact_store: Option<String>,
        /// Execution targets (repeatable).
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Runtime node URLs (repeatable).
        #[arg(long = "runtime-node")]
        runtime_nodes: Vec<String>,
        /// The container image of its runs on docker targets.
        #[arg(long)]
        run_image: Option<String>,
    },
    /// List environments.
    List,
    /// Show an environment (never its secrets).
    Show { name: String },
    /// Delete an environment.
    Delete { name: String },
}

/// Runs `kiln target ...`.
pub fn target(command: TargetCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let at = (team.as_str(), workgroup.as_str());
        match command {
            TargetCommand::Create {
                name,
                kind,
                settings,
            } => {
                let mut config = serde_json::Map::new();
                for setting in settings {
                    let (key, value) = setting
                        .split_once('=')
                        .with_context(|| format!("--set {setting}: KEY=VALUE"))?;
                    let value = serde_json::from_str(value)
                        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
                    config.insert(key.to_string(), value);
                }
                let new = NewTarget { name, kind, config };
                let created = client.create_target(at, &new).await?;
                print(output, &created, |t| {
                    format!("created {} target {}", t.kind, t.name)
                })
            }
            TargetCommand::List => {
                print_list(output, client.targets(&team, &workgroup).await?, |t| {
                    format!(
                        "{}  {}  {}",
                        t.name,
                        t.kind,
                        serde_json::Value::Object(t.config.clone())
                    )
                })
            }
            TargetCommand::Show { name } => print(output, &client.target(at, &name).await?, |t| {
                format!(
                    "{}: {} {}",
                    t.name,
                    t.kind,
                    serde_json::Value::Object(t.config.clone())
                )
            }),
            TargetCommand::Delete { name } => {
                let deleted = client.delete_target(at, &name).await?;
                print(output, &deleted, |d| format!("deleted target {}", d.name))
            }
            TargetCommand::Test { name } => {
                let check = client.test_target(at, &name).await?;
                print(output, &check, |c| {
                    format!(
                        "{} ({}): {}",
                        c.name,
                        if c.reachable {
                            "reachable"
                        } else {
                            "NOT reachable"
                        },
                        c.message
                    )
                })?;
                if !check.reachable {
                    bail!("target {name} is not reachable");
                }
                Ok(())
            }
        }
    })
}

/// Runs `kiln env ...`.
pub fn env(command: EnvCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let at = (team.as_str(), workgroup.as_str());
        match command {
            EnvCommand::Create {
                name,
                description,
                registry,
                registry_username,
                registry_password,
                artifact_store,
                targets,
                runtime_nodes,
                run_image,
            } => {
                let new = NewEnvironment {
                    name,
                    description,
                    registry: registry.map(|host| RegistrySettings {
                        host,
                        username: registry_username,
                        password: registry_password,
                    }),
                    artifact_store,
                    targets,
                    runtime_nodes,
                    run_image,
                };
                let created = client.create_environment(at, &new).await?;
                print(output, &created, |e| {
                    format!("created environment {}", e.name)
                })
            }
            EnvCommand::List => {
                let listed = client.environments(&team, &workgroup).await?;
                print_list(output, listed, |e| {
                    format!(
                        "{}  registry {}  targets {}",
                        e.name,
                        e.registry.as_ref().map_or("-", |r| r.host.as_str()),
                        e.targets.join(",")
                    )
                })
            }
            EnvCommand::Show { name } => {
                let environment = client.environment(at, &name).await?;
                print(output, &environment, |e| {
                    serde_json::to_string(e).unwrap_or_default()
                })
            }
            EnvCommand::Delete { name } => {
                let deleted = client.delete_environment(at, &name).await?;
                print(output, &deleted, |d| {
                    format!("deleted environment {}", d.name)
                })
            }
        }
    })
}

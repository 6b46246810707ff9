//! `kiln experiment ...` (in `--project`).

use super::{print, print_list};
use crate::args::ProjectArg;
use crate::context::{Connection, Session, runtime};
use anyhow::Result;
use clap::Subcommand;
use kiln_api::manage::experiments::NewExperiment;

/// `kiln experiment ...` (in `--project`).
#[derive(Subcommand)]
pub enum ExperimentCommand {
    /// Create an experiment: a named entry point of the project.
    Create {
        name: String,
        /// The script, a path in the project.
        #[arg(long)]
        script: String,
        /// Default execution target.
        #[arg(long, default_value = "local")]
        target: String,
        /// Default arguments.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// List experiments.
    List,
    /// Show an experiment.
    Show { name: String },
    /// Delete an experiment and its runs.
    Delete { name: String },
}

/// Runs `kiln experiment ...`.
pub fn experiment(
    command: ExperimentCommand,
    project: &ProjectArg,
    connection: &Connection,
) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let project = project.name()?.to_string();
        let at = (team.as_str(), workgroup.as_str(), project.as_str());
        match command {
            ExperimentCommand::Create {
                name,
                script,
                target,
                args,
            } => {
                let new = NewExperiment {
                    name,
                    script,
                    args,
                    target,
                };
                let created = client.create_experiment(at, &new).await?;
                print(output, &created, |e| {
                    format!(
                        "created experiment {} ({} on {})",
                        e.name, e.script, e.target
                    )
                })
            }
            ExperimentCommand::List => print_list(output, client.experiments(at).await?, |e| {
                format!("{}  {}  {}", e.name, e.script, e.target)
            }),
            ExperimentCommand::Show { name } => {
                print(output, &client.experiment(at, &name).await?, |e| {
                    format!(
                        "{}: {} {} on {}",
                        e.name,
                        e.script,
                        serde_json::to_string(&e.args).unwrap_or_default(),
                        e.target
                    )
                })
            }
            ExperimentCommand::Delete { name } => {
                let deleted = client.delete_experiment(at, &name).await?;
                print(output, &deleted, |d| {
                    format!("deleted experiment {}", d.name)
                })
            }
        }
    })
}

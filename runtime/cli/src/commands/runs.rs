//! `kiln run ...`: submit a script from a project directory (its code is pushed as a commit
//! first, so the run is pinned to exactly what was there), list and show runs with what they
//! logged, follow their logs live, cancel them.

use super::print;
use super::projects::tar_of_tree;
use crate::args::ProjectArg;
use crate::context::{Connection, Session, runtime};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use kiln_api::manage::experiments::NewExperiment;
use kiln_api::manage::runs::{LogQuery, NewRun, Run, RunDetail, RunFilter, RunStatus};
use kiln_client::{Client, WorkgroupPath};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `kiln run ...`.
#[derive(Subcommand)]
pub enum RunCommand {
    /// Run a script of the project: pushes DIR as a commit (unless --commit names one), queues
    /// the run on its target and prints it; with -f, follows its log to the end.
    Submit {
        /// The script, a path in the project (default: the experiment's).
        script: Option<String>,
        /// The script's arguments (everything after the script).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
        /// The experiment (default: the script's file name without extension; created if
        /// needed).
        #[arg(long, short = 'e')]
        experiment: Option<String>,
        /// Execution target (default: the experiment's, `local` for a new one).
        #[arg(long, short = 't')]
        target: Option<String>,
        /// Run this commit instead of pushing DIR.
        #[arg(long)]
        commit: Option<String>,
        /// The project's working tree (default: the current directory).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// A name for the run.
        #[arg(long)]
        name: Option<String>,
        /// Seconds the run may take.
        #[arg(long)]
        timeout: Option<u64>,
        /// An environment: its run image and registry credentials (docker targets).
        #[arg(long = "env")]
        environment: Option<String>,
        /// Follow the run's log until it ends; exit non-zero unless it completed.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// List runs, newest first.
    List {
        /// Only runs of this experiment (of --project).
        #[arg(long, short = 'e')]
        experiment: Option<String>,
        /// Only runs in this state (queued, preparing, running, completed, failed, canceled).
        #[arg(long)]
        status: Option<RunStatus>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a run with its params, latest metrics and tags.
    Show { id: String },
    /// Print a run's log; with -f, follow it live until the run ends.
    Logs {
        id: String,
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a run.
    Cancel { id: String },
}

/// A run on one line: id, experiment and number, status, target, commit, and why it ended.
fn line(run: &Run) -> String {
    let commit = run.commit.as_deref().unwrap_or("-");
    let mut text = format!(
        "{}  {} #{}  {}  on {}  commit {}",
        run.id,
        run.experiment,
        run.number,
        run.status,
        run.target,
        &commit[..12.min(commit.len())],
    );
    if let Some(reason) = &run.reason {
        text.push_str(&format!("  ({reason})"));
    }
    text
}

/// A run with its script, times and what it logged.
fn details(detail: &RunDetail) -> String {
    let run = &detail.run;
    let or_dash = |text: &Option<String>| text.clone().unwrap_or_else(|| "-".into());
    let mut text = line(run);
    text.push_str(&format!(
        "\n  script {} {}\n  created {} by {}, started {}, finished {}",
        or_dash(&run.script),
        serde_json::to_string(&run.args).unwrap_or_default(),
        run.created,
        run.created_by,
        or_dash(&run.started),
        or_dash(&run.finished),
    ));
    let metrics = detail
        .data
        .metrics
        .iter()
        .map(|(key, value)| {
            let value = serde_json::to_value(value).unwrap_or_default();
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            (key.clone(), value)
        })
        .collect();
    for (section, values) in [
        ("params", detail.data.params.clone()),
        ("metrics", metrics),
        ("tags", detail.data.tags.clone()),
    ] {
        if !values.is_empty() {
            text.push_str(&format!("\n  {section}:"));
            for (key, value) in values {
                text.push_str(&format!("\n    {key} = {value}"));
            }
        }
    }
    text
}

/// The project: --project, else the working tree's directory name.
fn project_name(project: &ProjectArg, dir: &Path) -> Result<String> {
    if let Ok(name) = project.name() {
        return Ok(name.to_string());
    }
    let absolute =
        std::fs::canonicalize(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("no project: give --project or set KILN_PROJECT")
}

/// Prints a run's log from the start; with `follow`, until the run ends. Returns the run.
async fn print_logs(
    client: &Client,
    workgroup: WorkgroupPath<'_>,
    id: &str,
    follow: bool,
) -> Result<RunDetail> {
    let query = LogQuery { offset: 0, follow };
    let mut response = client.run_log(workgroup, id, &query).await?;
    let mut stdout = std::io::stdout();
    while let Some(chunk) = response.chunk().await.context("the log stream broke off")? {
        stdout.write_all(&chunk)?;
        stdout.flush()?;
    }
    Ok(client.run(workgroup, id).await?)
}

/// After following: the run's end on stderr, and an error unless it completed.
fn conclude(run: &Run) -> Result<()> {
    eprintln!("run {}: {}", run.id, run.status);
    if run.status != RunStatus::Completed {
        bail!(
            "run {} {}: {}",
            run.id,
            run.status,
            run.reason.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// The experiment a submitted run belongs to: --experiment, else the script's file stem.
fn experiment_name(experiment: Option<String>, script: Option<&str>) -> Result<String> {
    match (experiment, script) {
        (Some(e), _) => Ok(e),
        (None, Some(script)) => Path::new(script)
            .file_stem()
            .map(|s| s.to_string_lossy().replace(['.', ' '], "-"))
            .context("the script needs a file name"),
        (None, None) => bail!("give a script, or --experiment to run its script"),
    }
}

/// Runs `kiln run ...`.
pub fn run(command: RunCommand, project: &ProjectArg, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let at = (team.as_str(), workgroup.as_str());
        match command {
            RunCommand::Submit {
                script,
                args,
                experiment,
                target,
                commit,
                dir,
                name,
                timeout,
                environment,
                follow,
            } => {
                let project = project_name(project, &dir)?;
                let in_project = (team.as_str(), workgroup.as_str(), project.as_str());
                let experiment = experiment_name(experiment, script.as_deref())?;
                let commit = match commit {
                    Some(commit) => commit,
                    None => {
                        let (archive, count) = tar_of_tree(&dir)?;
                        let message = format!("run {experiment}");
                        let pushed = client
                            .push_project(in_project, archive, Some(&message))
                            .await?;
                        if matches!(output, crate::args::Output::Text) {
                            eprintln!(
                                "pushed {count} file(s) to {project}: commit {}",
                                pushed.commit
                            );
                        }
                        pushed.commit
                    }
                };
                match client.experiment(in_project, &experiment).await {
                    Ok(_) => {}
                    Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                        let script = script.clone().with_context(|| {
                            format!("experiment '{experiment}' does not exist: give its script")
                        })?;
                        let new = NewExperiment {
                            name: experiment.clone(),
                            script,
                            args: Vec::new(),
                            target: target.clone().unwrap_or_else(|| "local".into()),
                        };
                        client.create_experiment(in_project, &new).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
                let new = NewRun {
                    commit: Some(commit),
                    script,
                    target,
                    args: (!args.is_empty()).then_some(args),
                    name,
                    timeout,
                    environment,
                };
                let submitted = client.submit_run(in_project, &experiment, &new).await?;
                print(output, &submitted, line)?;
                if follow {
                    let ended = print_logs(client, at, &submitted.id, true).await?;
                    conclude(&ended.run)?;
                }
                Ok(())
            }
            RunCommand::List {
                experiment,
                status,
                limit,
            } => {
                let mut filter = RunFilter {
                    limit: Some(limit),
                    status,
                    ..RunFilter::default()
                };
                let page = match experiment {
                    Some(experiment) => {
                        let in_project = (team.as_str(), workgroup.as_str(), project.name()?);
                        client
                            .experiment_runs(in_project, &experiment, &filter)
                            .await?
                    }
                    None => {
                        filter.project = project.name().ok().map(str::to_string);
                        client.runs(at, &filter).await?
                    }
                };
                print(output, &page, |page| {
                    page.items.iter().map(line).collect::<Vec<_>>().join("\n")
                })
            }
            RunCommand::Show { id } => print(output, &client.run(at, &id).await?, details),
            RunCommand::Logs { id, follow } => {
                let ended = print_logs(client, at, &id, follow).await?;
                if follow {
                    conclude(&ended.run)?;
                }
                Ok(())
            }
            RunCommand::Cancel { id } => {
                let canceled = client.cancel_run(at, &id).await?;
                print(output, &canceled, |c| {
                    if c.cancel_requested {
                        format!("run {} is being canceled ({})", c.run.id, c.run.status)
                    } else {
                        format!("run {}: {}", c.run.id, c.run.status)
                    }
                })
            }
        }
    })
}

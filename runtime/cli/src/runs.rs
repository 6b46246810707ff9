//! `kiln run ...`: submit a script from a project directory (its code is pushed as a commit
//! first, so the run is pinned to exactly what was there), list and show runs with what they
//! logged, follow their logs live, cancel them.

use crate::args::Output;
use crate::client::{Api, Connection, ProjectArg, runtime, s, tar_of_tree};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
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
        status: Option<String>,
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

fn line(v: &Value) -> String {
    let mut text = format!(
        "{}  {} #{}  {}  on {}  commit {}",
        s(v, "id"),
        s(v, "experiment"),
        s(v, "number"),
        s(v, "status"),
        s(v, "target"),
        &s(v, "commit")[..12.min(s(v, "commit").len())],
    );
    if !v["reason"].is_null() {
        text.push_str(&format!("  ({})", s(v, "reason")));
    }
    text
}

fn details(v: &Value) -> String {
    let mut text = line(v);
    text.push_str(&format!(
        "\n  script {} {}\n  created {} by {}, started {}, finished {}",
        s(v, "script"),
        v["args"],
        s(v, "created"),
        s(v, "created_by"),
        s(v, "started"),
        s(v, "finished")
    ));
    for (section, values) in [
        ("params", &v["data"]["params"]),
        ("metrics", &v["data"]["metrics"]),
        ("tags", &v["data"]["tags"]),
    ] {
        if let Some(map) = values.as_object().filter(|m| !m.is_empty()) {
            text.push_str(&format!("\n  {section}:"));
            for (key, value) in map {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
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
async fn print_logs(api: &Api, base: &str, id: &str, follow: bool) -> Result<Value> {
    let path = format!("{base}/runs/{id}/logs?follow={follow}");
    let mut response = api.stream(&path).await?;
    let mut stdout = std::io::stdout();
    while let Some(chunk) = response.chunk().await.context("the log stream broke off")? {
        stdout.write_all(&chunk)?;
        stdout.flush()?;
    }
    api.get(&format!("{base}/runs/{id}")).await
}

/// After following: the run's end on stderr, and an error unless it completed.
fn conclude(run: &Value) -> Result<()> {
    let status = s(run, "status");
    eprintln!("run {}: {status}", s(run, "id"));
    if status != "completed" {
        bail!("run {} {status}: {}", s(run, "id"), s(run, "reason"));
    }
    Ok(())
}

/// Runs `kiln run ...`.
pub fn run(command: RunCommand, project: &ProjectArg, connection: &Connection) -> Result<()> {
    let api = Api::new(connection)?;
    let json_output = matches!(connection.output(), Output::Json);
    runtime()?.block_on(async {
        let base = api.workgroup_path()?;
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
                let projects = format!("{base}/projects/{project}");
                let experiment = match (&experiment, &script) {
                    (Some(e), _) => e.clone(),
                    (None, Some(script)) => Path::new(script)
                        .file_stem()
                        .map(|s| s.to_string_lossy().replace(['.', ' '], "-"))
                        .context("the script needs a file name")?,
                    (None, None) => bail!("give a script, or --experiment to run its script"),
                };
                let commit = match commit {
                    Some(commit) => commit,
                    None => {
                        let (archive, count) = tar_of_tree(&dir)?;
                        let pushed = api
                            .post_tar(
                                &format!("{projects}/commits"),
                                &[("message", format!("run {experiment}"))],
                                archive,
                            )
                            .await?;
                        if !json_output {
                            eprintln!(
                                "pushed {count} file(s) to {project}: commit {}",
                                s(&pushed, "commit")
                            );
                        }
                        s(&pushed, "commit")
                    }
                };
                let experiments = format!("{projects}/experiments");
                if let Err(e) = api.get(&format!("{experiments}/{experiment}")).await {
                    if !e.to_string().contains("404") {
                        return Err(e);
                    }
                    let script = script.clone().with_context(|| {
                        format!("experiment '{experiment}' does not exist: give its script")
                    })?;
                    api.post(
                        &experiments,
                        json!({
                            "name": experiment,
                            "script": script,
                            "target": target.clone().unwrap_or_else(|| "local".into()),
                        }),
                    )
                    .await?;
                }
                let mut body = serde_json::Map::new();
                body.insert("commit".into(), json!(commit));
                body.extend(script.map(|s| ("script".to_string(), json!(s))));
                body.extend(target.map(|t| ("target".to_string(), json!(t))));
                body.extend(name.map(|n| ("name".to_string(), json!(n))));
                body.extend(timeout.map(|t| ("timeout".to_string(), json!(t))));
                body.extend(environment.map(|e| ("environment".to_string(), json!(e))));
                if !args.is_empty() {
                    body.insert("args".into(), json!(args));
                }
                let v = api
                    .post(
                        &format!("{experiments}/{experiment}/runs"),
                        Value::Object(body),
                    )
                    .await?;
                api.show(&v, line);
                if follow {
                    let id = s(&v, "id");
                    let ended = print_logs(&api, &base, &id, true).await?;
                    conclude(&ended)?;
                }
            }
            RunCommand::List {
                experiment,
                status,
                limit,
            } => {
                let mut query = vec![format!("limit={limit}")];
                query.extend(status.map(|s| format!("status={s}")));
                let path = match experiment {
                    Some(experiment) => format!(
                        "{base}/projects/{}/experiments/{experiment}/runs",
                        project.name()?
                    ),
                    None => {
                        if let Ok(project) = project.name() {
                            query.push(format!("project={project}"));
                        }
                        format!("{base}/runs")
                    }
                };
                let v = api.get(&format!("{path}?{}", query.join("&"))).await?;
                api.show_list(&v, line);
            }
            RunCommand::Show { id } => {
                let v = api.get(&format!("{base}/runs/{id}")).await?;
                api.show(&v, details);
            }
            RunCommand::Logs { id, follow } => {
                let ended = print_logs(&api, &base, &id, follow).await?;
                if follow {
                    conclude(&ended)?;
                }
            }
            RunCommand::Cancel { id } => {
                let v = api
                    .post(&format!("{base}/runs/{id}/cancel"), json!({}))
                    .await?;
                api.show(&v, |v| {
                    if v["cancel_requested"] == json!(true) {
                        format!("run {} is being canceled ({})", s(v, "id"), s(v, "status"))
                    } else {
                        format!("run {}: {}", s(v, "id"), s(v, "status"))
                    }
                });
            }
        }
        Ok(())
    })
}

//! `kiln model ...`: models of the work group, their versions (registered from local files or
//! a run's artifacts, downloaded and checked against their digests) and aliases.

use super::{print, print_list};
use crate::context::{Connection, Session, runtime};
use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use kiln_api::manage::models::{ModelVersion, NewModel, NewVersion, VersionFromRun};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// `kiln model ...`.
#[derive(Subcommand)]
pub enum ModelCommand {
    /// Create a model.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List models.
    List,
    /// Show a model with its aliases.
    Show { name: String },
    /// Delete a model with its versions.
    Delete { name: String },
    /// Register the next version from a file or directory (created with the model if needed).
    Register {
        name: String,
        /// The model's files: a local file or directory, or with --run a path in the run's
        /// artifacts (`model/`).
        #[arg(long)]
        path: PathBuf,
        #[arg(long, default_value = "")]
        description: String,
        /// The run that produced it. With --run, --path names the run's artifacts and the
        /// lineage (run and commit) comes from the run.
        #[arg(long)]
        run: Option<String>,
        /// Upload local files as the version even with --run (lineage only).
        #[arg(long)]
        local: bool,
        /// The commit it was trained from.
        #[arg(long)]
        commit: Option<String>,
    },
    /// List versions.
    Versions { name: String },
    /// Download a version's files into a directory, each checked against its sha256.
    Download {
        name: String,
        /// The version: a number or an alias.
        #[arg(long)]
        version: String,
        /// The directory to write into (created if needed).
        #[arg(long, short = 'o', default_value = ".")]
        out: PathBuf,
    },
    /// Point an alias (e.g. production) at a version.
    Alias {
        name: String,
        alias: String,
        version: i64,
    },
}

/// A tar of a file or of a directory's regular files (paths relative to it; symlinks refused).
fn tar_of(path: &Path) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        let name = path.file_name().context("a file name is needed")?;
        builder.append_path_with_name(path, name)?;
    } else if meta.is_dir() {
        fn walk(builder: &mut tar::Builder<Vec<u8>>, root: &Path, dir: &Path) -> Result<()> {
            let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let path = entry.path();
                let kind = entry.file_type()?;
                let relative = path.strip_prefix(root)?;
                if kind.is_dir() {
                    walk(builder, root, &path)?;
                } else if kind.is_file() {
                    builder.append_path_with_name(&path, relative)?;
                } else {
                    bail!("{} is not a regular file or directory", path.display());
                }
            }
            Ok(())
        }
        walk(&mut builder, path, path)?;
    } else {
        bail!("{} is not a file or directory", path.display());
    }
    Ok(builder.into_inner()?)
}

/// A version as registered, on one line: from a run's artifacts, with the run and its commit.
fn registered(v: &ModelVersion, from_run: bool) -> String {
    let or_dash = |text: &Option<String>| text.clone().unwrap_or_else(|| "-".into());
    match v.version.run.as_ref().filter(|_| from_run) {
        Some(run) => format!(
            "registered {} version {} from run {run} at commit {} ({} file(s))",
            v.model,
            v.version.version,
            or_dash(&v.version.commit),
            v.files.len()
        ),
        None => format!(
            "registered {} version {} ({} file(s))",
            v.model,
            v.version.version,
            v.files.len()
        ),
    }
}

/// A file `kiln model download` wrote.
#[derive(Serialize)]
struct Written {
    path: String,
    size: usize,
    file: PathBuf,
}

/// What `kiln model download` wrote.
#[derive(Serialize)]
struct Downloaded {
    model: String,
    version: i64,
    files: Vec<Written>,
}

/// Runs `kiln model ...`.
pub fn model(command: ModelCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let at = (team.as_str(), workgroup.as_str());
        match command {
            ModelCommand::Create { name, description } => {
                let new = NewModel { name, description };
                let created = client.create_model(at, &new).await?;
                print(output, &created, |m| format!("created model {}", m.name))
            }
            ModelCommand::List => print_list(output, client.models(at).await?, |m| {
                let latest = m.latest_version.map_or("-".into(), |v| v.to_string());
                format!("{}  latest {latest}", m.name)
            }),
            ModelCommand::Show { name } => {
                let detail = client.model(at, &name).await?;
                print(output, &detail, |d| {
                    let latest = d.model.latest_version.map_or("-".into(), |v| v.to_string());
                    let aliases = serde_json::to_string(&d.aliases).unwrap_or_default();
                    format!("{}: latest {latest}, aliases {aliases}", d.model.name)
                })
            }
            ModelCommand::Delete { name } => {
                let deleted = client.delete_model(at, &name).await?;
                print(output, &deleted, |d| format!("deleted model {}", d.name))
            }
            ModelCommand::Register {
                name,
                path,
                description,
                run,
                local,
                commit,
            } => {
                match client.model(at, &name).await {
                    Ok(_) => {}
                    Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                        let new = NewModel {
                            name: name.clone(),
                            description: String::new(),
                        };
                        client.create_model(at, &new).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
                let from_run = run.is_some() && !local;
                let version = match (run, local) {
                    (Some(run), false) => {
                        if commit.is_some() {
                            bail!(
                                "--commit comes from the run with --run (add --local to upload files)"
                            );
                        }
                        let from = VersionFromRun {
                            run,
                            path: path.to_string_lossy().into_owned(),
                            description,
                        };
                        client.register_version_from_run(at, &name, &from).await?
                    }
                    (run, _) => {
                        let archive = tar_of(&path)?;
                        let info = NewVersion {
                            description,
                            run,
                            commit,
                        };
                        client.register_version(at, &name, archive, &info).await?
                    }
                };
                print(output, &version, |v| registered(v, from_run))
            }
            ModelCommand::Download { name, version, out } => {
                let shown = client.model_version(at, &name, &version).await?;
                let mut files = Vec::new();
                for file in &shown.files {
                    kiln_image::check_title(&file.path)
                        .map_err(|e| anyhow!("the server named an unsafe file: {e}"))?;
                    let response = client.model_file(at, &name, &version, &file.path).await?;
                    let bytes = response
                        .bytes()
                        .await
                        .with_context(|| format!("{}: the download broke off", file.path))?;
                    let digest = kiln_image::Digest::of(&bytes).to_string();
                    let digest = digest.trim_start_matches("sha256:");
                    if digest != file.sha256 {
                        bail!(
                            "{}: sha256 {digest} is not the registered {}",
                            file.path,
                            file.sha256
                        );
                    }
                    let target = out.join(&file.path);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("cannot create {}", parent.display()))?;
                    }
                    std::fs::write(&target, &bytes)
                        .with_context(|| format!("cannot write {}", target.display()))?;
                    files.push(Written {
                        path: file.path.clone(),
                        size: bytes.len(),
                        file: target,
                    });
                }
                let downloaded = Downloaded {
                    model: name.clone(),
                    version: shown.version.version,
                    files,
                };
                print(output, &downloaded, |d| {
                    format!(
                        "downloaded {} file(s) of {name} version {} into {}",
                        d.files.len(),
                        d.version,
                        out.display()
                    )
                })
            }
            ModelCommand::Versions { name } => {
                let versions = client.model_versions(at, &name).await?;
                print(output, &versions, |page| {
                    let or_dash = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
                    page.items
                        .iter()
                        .map(|v| {
                            format!(
                                "{}  run {}  commit {}  {}",
                                v.version,
                                or_dash(&v.run),
                                or_dash(&v.commit),
                                v.created
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            }
            ModelCommand::Alias {
                name,
                alias,
                version,
            } => {
                let pointed = client.put_alias(at, &name, &alias, version).await?;
                print(output, &pointed, |a| {
                    format!("{} {} -> version {}", a.model, a.alias, a.version)
                })
            }
        }
    })
}

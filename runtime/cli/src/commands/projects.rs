//! `kiln project ...`.

use super::{print, print_list};
use crate::context::{Connection, Session, runtime};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use kiln_api::manage::projects::NewProject;
use std::path::{Path, PathBuf};

/// `kiln project ...`.
#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Create a project.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List projects.
    List,
    /// Show a project.
    Show { name: String },
    /// Delete a project.
    Delete { name: String },
    /// Commit a working tree to the project's repository (what .gitignore ignores is left out).
    Push {
        /// The project.
        name: String,
        /// The working tree.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Commit message.
        #[arg(long, short = 'm')]
        message: Option<String>,
    },
    /// History of the project's main branch.
    Log { name: String },
}

/// Runs `kiln project ...`.
pub fn project(command: ProjectCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        match command {
            ProjectCommand::Create { name, description } => {
                let new = NewProject { name, description };
                let created = client.create_project(&team, &workgroup, &new).await?;
                print(output, &created, |p| format!("created project {}", p.name))
            }
            ProjectCommand::List => {
                let projects = client.projects(&team, &workgroup).await?;
                print_list(output, projects, |p| p.name.clone())
            }
            ProjectCommand::Show { name } => {
                let project = client.project(&team, &workgroup, &name).await?;
                print(output, &project, |p| {
                    format!("{}: {}", p.name, p.description)
                })
            }
            ProjectCommand::Delete { name } => {
                let deleted = client.delete_project(&team, &workgroup, &name).await?;
                print(output, &deleted, |d| format!("deleted project {}", d.name))
            }
            ProjectCommand::Push { name, dir, message } => {
                let (archive, count) = tar_of_tree(&dir)?;
                let pushed = client
                    .push_project((&team, &workgroup, &name), archive, message.as_deref())
                    .await?;
                print(output, &pushed, |p| {
                    format!("pushed {count} file(s) to {name}: commit {}", p.commit)
                })
            }
            ProjectCommand::Log { name } => {
                let log = client.project_log(&team, &workgroup, &name).await?;
                print(output, &log, |page| {
                    page.items
                        .iter()
                        .map(|c| {
                            format!(
                                "{}  {}  {}  {}",
                                &c.commit[..12.min(c.commit.len())],
                                c.time,
                                c.author,
                                c.message
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                })
            }
        }
    })
}

/// A tar of a working tree: every file `.gitignore` (and `.git/info/exclude`, `.ignore`) does not
/// ignore, `.git` left out, symlinks refused. Returns the archive and its file count.
pub(crate) fn tar_of_tree(dir: &Path) -> Result<(Vec<u8>, usize)> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    let mut count = 0;
    for entry in walker {
        let entry = entry.with_context(|| format!("cannot walk {}", dir.display()))?;
        let kind = entry.file_type().context("unknown file type")?;
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            bail!(
                "{} is not a regular file: the project holds files only",
                entry.path().display()
            );
        }
        let relative = entry.path().strip_prefix(dir)?;
        builder.append_path_with_name(entry.path(), relative)?;
        count += 1;
    }
    if count == 0 {
        bail!("nothing to push in {}", dir.display());
    }
    Ok((builder.into_inner()?, count))
}

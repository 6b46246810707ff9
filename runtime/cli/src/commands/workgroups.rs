//! `kiln workgroup ...`.

use super::{print, print_list};
use crate::context::{Connection, Session, runtime};
use anyhow::Result;
use clap::Subcommand;
use kiln_api::manage::WorkgroupRole;
use kiln_api::manage::quotas::QuotaChange;
use kiln_api::manage::workgroups::NewWorkgroup;

/// A work group role as given on the command line.
fn workgroup_role(text: &str) -> Result<WorkgroupRole, String> {
    WorkgroupRole::parse(text)
        .ok_or_else(|| format!("'{text}' is not a work group role: reader, contributor or owner"))
}

/// A quota limit as given on the command line: a number, or `default` for the installation's.
#[derive(Clone, Copy, Debug)]
pub struct QuotaSetting(Option<u64>);

fn quota_setting(text: &str) -> Result<QuotaSetting, String> {
    if text == "default" {
        return Ok(QuotaSetting(None));
    }
    text.parse()
        .map(|n| QuotaSetting(Some(n)))
        .map_err(|_| format!("'{text}' is neither a number nor 'default'"))
}

/// `kiln workgroup ...`.
#[derive(Subcommand)]
pub enum WorkgroupCommand {
    /// Create a work group in the team.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List work groups you have a role in.
    List,
    /// Show a work group.
    Show { name: String },
    /// Delete a work group.
    Delete { name: String },
    /// Give a team member a role (reader, contributor, owner).
    AddMember {
        user: String,
        #[arg(long, value_parser = workgroup_role)]
        role: WorkgroupRole,
    },
    /// Remove a member.
    RemoveMember { user: String },
    /// List members.
    Members,
    /// Show the work group's quota, or change it (an installation admin): each limit given is
    /// set, `default` returns it to the installation's.
    Quota {
        /// Deployments it holds.
        #[arg(long, value_parser = quota_setting)]
        deployments: Option<QuotaSetting>,
        /// Instances of all its deployments together.
        #[arg(long, value_parser = quota_setting)]
        instances: Option<QuotaSetting>,
        /// Memory of all its deployments' instances together, MiB.
        #[arg(long, value_parser = quota_setting)]
        memory_mb: Option<QuotaSetting>,
        /// The longest prediction deadline one deployment may ask for, ms.
        #[arg(long, value_parser = quota_setting)]
        deadline_ms: Option<QuotaSetting>,
    },
}

/// Runs `kiln workgroup ...`.
pub fn workgroup(command: WorkgroupCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        let team = session.team()?;
        match command {
            WorkgroupCommand::Create { name, description } => {
                let new = NewWorkgroup { name, description };
                let created = client.create_workgroup(&team, &new).await?;
                print(output, &created, |w| {
                    format!("created work group {}", w.name)
                })
            }
            WorkgroupCommand::List => print_list(output, client.workgroups(&team).await?, |w| {
                format!("{}  ({})", w.name, w.role.as_str())
            }),
            WorkgroupCommand::Show { name } => {
                print(output, &client.workgroup(&team, &name).await?, |w| {
                    format!(
                        "{}: {} (your role: {})",
                        w.name,
                        w.description,
                        w.role.as_str()
                    )
                })
            }
            WorkgroupCommand::Delete { name } => {
                let deleted = client.delete_workgroup(&team, &name).await?;
                print(output, &deleted, |d| {
                    format!("deleted work group {}", d.name)
                })
            }
            WorkgroupCommand::AddMember { user, role } => {
                let workgroup = session.workgroup()?;
                let member = client
                    .put_workgroup_member(&team, &workgroup, &user, role)
                    .await?;
                print(output, &member, |m| {
                    format!("{} is {}", m.user, m.role.as_str())
                })
            }
            WorkgroupCommand::RemoveMember { user } => {
                let workgroup = session.workgroup()?;
                let removed = client
                    .remove_workgroup_member(&team, &workgroup, &user)
                    .await?;
                print(output, &removed, |r| format!("removed {}", r.user))
            }
            WorkgroupCommand::Members => {
                let members = client
                    .workgroup_members(&team, &session.workgroup()?)
                    .await?;
                print_list(output, members, |m| {
                    format!("{}  {}", m.user, m.role.as_str())
                })
            }
            WorkgroupCommand::Quota {
                deployments,
                instances,
                memory_mb,
                deadline_ms,
            } => {
                let workgroup = session.workgroup()?;
                let change = QuotaChange {
                    deployments: deployments.map(|s| s.0),
                    instances: instances.map(|s| s.0),
                    memory_mb: memory_mb.map(|s| s.0),
                    deadline_ms: deadline_ms.map(|s| s.0),
                };
                let quota = if change == QuotaChange::default() {
                    client.quota(&team, &workgroup).await?
                } else {
                    client.set_quota(&team, &workgroup, &change).await?
                };
                print(output, &quota, |q| {
                    format!(
                        "work group {workgroup}: {} deployments, {} instances, {} MiB, \
                         deadlines up to {} ms",
                        q.deployments, q.instances, q.memory_mb, q.deadline_ms
                    )
                })
            }
        }
    })
}

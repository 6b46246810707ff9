//! `kiln team ...`.

use super::{print, print_list};
use crate::context::{Connection, Session, runtime};
use anyhow::Result;
use clap::Subcommand;
use kiln_api::manage::TeamRole;
use kiln_api::manage::teams::NewTeam;

/// A team role as given on the command line.
fn team_role(text: &str) -> Result<TeamRole, String> {
    TeamRole::parse(text)
        .ok_or_else(|| format!("'{text}' is not a team role: member, admin or owner"))
}

/// `kiln team ...`.
#[derive(Subcommand)]
pub enum TeamCommand {
    /// Create a team (you become its owner).
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List your teams.
    List,
    /// Show a team.
    Show { name: String },
    /// Delete a team.
    Delete { name: String },
    /// Add a member or change a role (member, admin, owner).
    AddMember {
        user: String,
        #[arg(long, value_parser = team_role)]
        role: TeamRole,
    },
    /// Remove a member.
    RemoveMember { user: String },
    /// List members.
    Members,
}

/// Runs `kiln team ...`.
pub fn team(command: TeamCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        match command {
            TeamCommand::Create { name, description } => {
                let team = client.create_team(&NewTeam { name, description }).await?;
                print(output, &team, |t| format!("created team {}", t.name))
            }
            TeamCommand::List => print_list(output, client.teams().await?, |t| {
                format!("{}  ({})", t.name, t.role.as_str())
            }),
            TeamCommand::Show { name } => print(output, &client.team(&name).await?, |t| {
                format!(
                    "{}: {} (your role: {})",
                    t.name,
                    t.description,
                    t.role.as_str()
                )
            }),
            TeamCommand::Delete { name } => {
                let deleted = client.delete_team(&name).await?;
                print(output, &deleted, |d| format!("deleted team {}", d.name))
            }
            TeamCommand::AddMember { user, role } => {
                let team = session.team()?;
                let member = client.put_team_member(&team, &user, role).await?;
                print(output, &member, |m| {
                    format!("{} is {} of team {team}", m.user, m.role.as_str())
                })
            }
            TeamCommand::RemoveMember { user } => {
                let removed = client.remove_team_member(&session.team()?, &user).await?;
                print(output, &removed, |r| format!("removed {}", r.user))
            }
            TeamCommand::Members => {
                let members = client.team_members(&session.team()?).await?;
                print_list(output, members, |m| {
                    format!("{}  {}", m.user, m.role.as_str())
                })
            }
        }
    })
}

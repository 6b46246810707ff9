//! `kiln user ...` (administrators) and `kiln token ...` (the caller's own).

use super::{print, print_list};
use crate::context::{Connection, Session, runtime};
use anyhow::Result;
use clap::Subcommand;
use kiln_api::Page;
use kiln_api::manage::users::{NewToken, NewUser, Revoked, Token, UserChange};

/// `kiln user ...` (administrators).
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; prints its first token once.
    Create {
        name: String,
        /// Make it an installation administrator.
        #[arg(long, conflicts_with = "runtime")]
        admin: bool,
        /// A runtime node's user: its tokens reach the runtime routes and nothing else (give
        /// `kiln serve --control` this token, not an admin's).
        #[arg(long)]
        runtime: bool,
    },
    /// List users.
    List,
    /// Disable a user: every token of theirs answers 401 until they are enabled again.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// A user's tokens (never their values).
    Tokens { name: String },
    /// Revoke one of a user's tokens (by id, from `kiln user tokens`).
    RevokeToken { name: String, id: String },
}

/// `kiln token ...` (the caller's own).
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token (printed once).
    Create {
        name: String,
        /// Lifetime in seconds (default: until revoked).
        #[arg(long)]
        expires_in_seconds: Option<u64>,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

/// Runs `kiln user ...`.
/// Runs `kiln user ...`.
pub fn user(command: UserCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        match command {
            UserCommand::Create {
                name,
                admin,
                runtime,
            } => {
                let created = client
                    .create_user(&NewUser {
                        name,
                        admin,
                        runtime,
                    })
                    .await?;
                print(output, &created, |c| {
                    format!(
                        "created user {}; token (shown once): {}",
                        c.name, c.token.token
                    )
                })
            }
            UserCommand::List => print_list(output, client.users().await?, |user| {
                format!(
                    "{}{}{}",
                    user.name,
                    if user.admin { " (admin)" } else { "" },
                    if user.disabled.is_some() {
                        " (disabled)"
                    } else {
                        ""
                    }
                )
            }),
            UserCommand::Disable { name } => {
                let change = UserChange {
                    disabled: Some(true),
                };
                let user = client.update_user(&name, &change).await?;
                print(output, &user, |u| format!("disabled user {}", u.name))
            }
            UserCommand::Enable { name } => {
                let change = UserChange {
                    disabled: Some(false),
                };
                let user = client.update_user(&name, &change).await?;
                print(output, &user, |u| format!("enabled user {}", u.name))
            }
            UserCommand::Tokens { name } => {
                print(output, &client.user_tokens(&name).await?, token_tree)
            }
            UserCommand::RevokeToken { name, id } => {
                let revoked = client.revoke_user_token(&name, &id).await?;
                print(output, &revoked, |r| {
                    format!("{} of {name}", revoked_tree(r))
                })
            }
        }
    })
}

/// Tokens as a tree, each under the token that minted it:
///
/// ```text
/// ID  NAME  expires -  revoked -
///   └ ID  NAME  expires ...  revoked ...
/// ```
fn token_tree(page: &Page<Token>) -> String {
    let items = &page.items;
    let known: std::collections::HashSet<&str> = items.iter().map(|t| t.id.as_str()).collect();
    let is_root = |t: &Token| t.parent.as_deref().is_none_or(|p| !known.contains(p));
    // Depth first, children in the order they were listed (oldest first).
    let mut stack: Vec<(usize, &Token)> = items
        .iter()
        .rev()
        .filter(|t| is_root(t))
        .map(|t| (0, t))
        .collect();
    let mut lines = Vec::new();
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    while let Some((depth, token)) = stack.pop() {
        let branch = if depth == 0 {
            String::new()
        } else {
            format!("{}└ ", "  ".repeat(depth))
        };
        lines.push(format!(
            "{branch}{}  {}  expires {}  revoked {}",
            token.id,
            token.name,
            or_dash(&token.expires),
            or_dash(&token.revoked)
        ));
        stack.extend(
            items
                .iter()
                .rev()
                .filter(|t| t.parent.as_deref() == Some(token.id.as_str()))
                .map(|t| (depth + 1, t)),
        );
    }
    lines.join("\n")
}

/// What a revocation revoked: the token, and the tokens minted from it.
fn revoked_tree(revoked: &Revoked) -> String {
    let children = &revoked.children_revoked;
    if children.is_empty() {
        format!("revoked {}", revoked.id)
    } else {
        format!(
            "revoked {} and the {} token(s) minted from it: {}",
            revoked.id,
            children.len(),
            children.join(", ")
        )
    }
}

/// Runs `kiln token ...`.
pub fn token(command: TokenCommand, connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    let (client, output) = (&session.client, session.output);
    runtime()?.block_on(async {
        match command {
            TokenCommand::Create {
                name,
                expires_in_seconds,
            } => {
                let created = client
                    .create_token(&NewToken {
                        name,
                        expires_in_seconds,
                    })
                    .await?;
                print(output, &created, |c| {
                    format!("token {} ({}), shown once: {}", c.name, c.id, c.token)
                })
            }
            TokenCommand::List => print(output, &client.tokens().await?, token_tree),
            TokenCommand::Revoke { id } => {
                print(output, &client.revoke_token(&id).await?, revoked_tree)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, parent: Option<&str>) -> Token {
        Token {
            id: id.into(),
            name: format!("n{id}"),
            created: "2026-01-01T00:00:00.000Z".into(),
            expires: None,
            revoked: (id == "b").then(|| "2026-01-02T00:00:00.000Z".into()),
            parent: parent.map(str::to_string),
        }
    }

    #[test]
    fn tokens_print_as_a_tree_under_the_token_that_minted_them() {
        // Listed oldest first; "x" was minted by a token no longer listed: a root.
        let page = Page {
            items: vec![
                token("a", None),
                token("b", Some("a")),
                token("c", Some("b")),
                token("d", Some("a")),
                token("x", Some("gone")),
            ],
            next: None,
        };
        assert_eq!(
            token_tree(&page),
            "a  na  expires -  revoked -\n\
             \x20 └ b  nb  expires -  revoked 2026-01-02T00:00:00.000Z\n\
             \x20   └ c  nc  expires -  revoked -\n\
             \x20 └ d  nd  expires -  revoked -\n\
             x  nx  expires -  revoked -"
        );
        let revoked = Revoked {
            id: "b".into(),
            revoked: true,
            children_revoked: vec!["c".into()],
        };
        assert_eq!(
            revoked_tree(&revoked),
            "revoked b and the 1 token(s) minted from it: c"
        );
    }
}

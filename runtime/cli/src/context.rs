//! Where the API is and who calls it: the connection flags, the login context file
//! (`~/.config/kiln/context.json`), and `kiln login`.

use crate::args::Output;
use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where the API is and who is calling; flags, else environment, else the login context.
#[derive(Args, Clone, Default)]
pub struct Connection {
    /// Management API URL (default: the login context's).
    #[arg(long, env = "KILN_URL", global = true)]
    url: Option<String>,
    /// API token (default: the login context's).
    #[arg(long, env = "KILN_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Team (default: the login context's).
    #[arg(long, env = "KILN_TEAM", global = true)]
    team: Option<String>,
    /// Work group (default: the login context's).
    #[arg(long, env = "KILN_WORKGROUP", global = true)]
    workgroup: Option<String>,
    #[arg(long, value_enum, default_value_t, global = true)]
    output: Output,
}

/// The login context file (`~/.config/kiln/context.json`, mode 0600).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginContext {
    url: String,
    token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workgroup: Option<String>,
}

fn context_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("KILN_CONTEXT") {
        return Ok(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("set KILN_CONTEXT: no home directory")?;
    Ok(base.join("kiln").join("context.json"))
}

fn read_context() -> Result<Option<LoginContext>> {
    let path = context_path()?;
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("invalid {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_context(context: &LoginContext) -> Result<PathBuf> {
    let path = context_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(context)?)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A connection resolved against the context file: the typed client, and the team and work
/// group commands act in.
pub(crate) struct Session {
    /// The typed client.
    pub(crate) client: kiln_client::Client,
    team: Option<String>,
    workgroup: Option<String>,
    /// The output format asked for.
    pub(crate) output: Output,
}

impl Session {
    /// Resolves a connection: flags, else environment, else the login context.
    pub(crate) fn new(connection: &Connection) -> Result<Session> {
        let context = read_context()?.unwrap_or_default();
        let url = connection
            .url
            .clone()
            .or(Some(context.url).filter(|u| !u.is_empty()))
            .context("no API URL: run `kiln login --url URL --token TOKEN`, or give --url")?;
        let token = connection
            .token
            .clone()
            .or(Some(context.token).filter(|t| !t.is_empty()))
            .context("no token: run `kiln login`, or give --token or KILN_TOKEN")?;
        Ok(Session {
            client: kiln_client::Client::new(&url, &token),
            team: connection.team.clone().or(context.team),
            workgroup: connection.workgroup.clone().or(context.workgroup),
            output: connection.output,
        })
    }

    /// The team: flag, environment or login context.
    pub(crate) fn team(&self) -> Result<String> {
        self.team
            .clone()
            .context("no team: give --team, set KILN_TEAM, or `kiln login --team`")
    }

    /// The work group: flag, environment or login context.
    pub(crate) fn workgroup(&self) -> Result<String> {
        self.workgroup.clone().context(
            "no work group: give --workgroup, set KILN_WORKGROUP, or `kiln login --workgroup`",
        )
    }
}

/// `kiln login`.
#[derive(Args)]
pub struct LoginArgs {
    /// Management API URL, e.g. http://127.0.0.1:8070.
    #[arg(long)]
    url: String,
    /// API token (KILN_TOKEN also works).
    #[arg(long, env = "KILN_TOKEN", hide_env_values = true)]
    token: String,
    /// Default team.
    #[arg(long)]
    team: Option<String>,
    /// Default work group.
    #[arg(long)]
    workgroup: Option<String>,
}

/// Checks the token and writes the context file.
pub fn login(args: LoginArgs) -> Result<()> {
    let client = kiln_client::Client::new(&args.url, &args.token);
    let me = runtime()?.block_on(client.whoami())?;
    let path = write_context(&LoginContext {
        url: client.url().to_string(),
        token: args.token,
        team: args.team,
        workgroup: args.workgroup,
    })?;
    println!(
        "logged in to {} as {} (context in {})",
        client.url(),
        me.name,
        path.display()
    );
    Ok(())
}

/// The async runtime a command's calls run on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

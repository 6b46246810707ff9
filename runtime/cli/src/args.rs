//! The flags commands share: the output format, the local store, registry access.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use kiln_image::OciStore;
use kiln_registry::{Credentials, RegistryOptions, parse_reference};
use std::path::PathBuf;

/// Output format of commands that list or show.
#[derive(Clone, Copy, Default, ValueEnum)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// For programs.
    Json,
}

/// Where the local image store lives.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The local OCI image-layout store (default: ~/.local/share/kiln/store).
    #[arg(long, env = "KILN_STORE", global = true)]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// The store's directory.
    pub fn dir(&self) -> Result<PathBuf> {
        match &self.store {
            Some(path) => Ok(path.clone()),
            None => default_store().context("set --store or KILN_STORE: no home directory"),
        }
    }

    /// Opens (creating) the store.
    pub fn open(&self) -> Result<OciStore> {
        Ok(OciStore::open(self.dir()?)?)
    }
}

/// Where images come from: the local store, and registries for references that name one.
#[derive(Args, Clone)]
pub struct Sources {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn default_store() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("kiln").join("store"))
}

/// How to reach registries.
#[derive(Args, Clone, Default)]
pub struct RegistryArgs {
    /// A registry reached over plain HTTP (repeatable; loopback registries always are).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", global = true)]
    pub insecure: Vec<String>,
    /// The registry the user name and password are for; they are sent to no other host.
    /// `kiln push` and `kiln pull` default to the registry they name.
    #[arg(
        long,
        env = "KILN_REGISTRY_HOST",
        value_name = "HOST[:PORT]",
        global = true
    )]
    pub registry_host: Option<String>,
    /// Registry user name (else the Docker config.json, else anonymous).
    #[arg(long, env = "KILN_REGISTRY_USERNAME", global = true)]
    pub username: Option<String>,
    /// Registry password or token.
    #[arg(
        long,
        env = "KILN_REGISTRY_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Largest blob to pull, in MiB.
    #[arg(long, default_value_t = 2048, global = true)]
    pub max_blob_mb: u64,
}

impl RegistryArgs {
    /// The registry client's options. A user name and password need `--registry-host`: a
    /// command that pulls what a manifest, a deployment or a control plane names must not send
    /// them to whichever host that is.
    pub fn options(&self) -> Result<RegistryOptions> {
        self.bound_to(self.registry_host.as_deref())
    }

    /// The options of a command that names one registry reference (`kiln push`, `kiln pull`):
    /// the credentials are for that reference's registry unless `--registry-host` says which.
    pub fn options_for(&self, reference: &str) -> Result<RegistryOptions> {
        let named = parse_reference(reference)?.resolve_registry().to_string();
        self.bound_to(Some(self.registry_host.as_deref().unwrap_or(&named)))
    }

    fn bound_to(&self, host: Option<&str>) -> Result<RegistryOptions> {
        let credentials = match (&self.username, &self.password, host) {
            (None, None, _) => None,
            (Some(username), Some(password), Some(host)) => Some(Credentials {
                host: host.to_string(),
                username: username.clone(),
                password: password.clone(),
            }),
            (Some(_), Some(_), None) => anyhow::bail!(
                "--username and --password need --registry-host HOST[:PORT], the registry they \
                 are for: Kiln sends them to no other host"
            ),
            _ => anyhow::bail!("give both --username and --password, or neither"),
        };
        Ok(RegistryOptions {
            insecure: self.insecure.clone(),
            max_blob_bytes: self.max_blob_mb << 20,
            credentials,
            ..RegistryOptions::default()
        })
    }
}

/// The project for `kiln experiment` and `kiln run`.
#[derive(Args, Clone)]
pub struct ProjectArg {
    /// The project.
    #[arg(long, env = "KILN_PROJECT", global = true)]
    project: Option<String>,
}

impl ProjectArg {
    pub(crate) fn name(&self) -> Result<&str> {
        self.project
            .as_deref()
            .context("no project: give --project or set KILN_PROJECT")
    }
}

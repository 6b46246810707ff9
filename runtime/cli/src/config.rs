//! `kiln serve` configuration: raw (file and flags, parsed permissively where it helps) then one
//! validating step that produces the resolved settings. Unknown keys in the file are errors.

use anyhow::{Context, Result, bail};
use kiln_api::Limits;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The config file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    pub cache_dir: Option<PathBuf>,
    #[serde(default)]
    pub api_keys: Vec<String>,
    pub max_body_bytes: Option<usize>,
    pub max_elements: Option<usize>,
    pub shutdown_delay_ms: Option<u64>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub deployments: Vec<DeploymentConfig>,
}

/// One `[[deployments]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    pub name: String,
    pub component: PathBuf,
    pub artifacts: Option<PathBuf>,
    #[serde(default)]
    pub config: String,
    pub version: Option<String>,
    pub memory_mb: Option<usize>,
    pub deadline_ms: Option<u64>,
    pub load_deadline_ms: Option<u64>,
    pub concurrency: Option<usize>,
    pub queue: Option<usize>,
    /// Capabilities granted to a `.wasm` component (an image carries its manifest's).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl DeploymentConfig {
    /// This deployment's own limits (unset ones fall back to the flags, then the image's, then
    /// `[limits]`).
    pub fn limits(&self) -> Limits {
        Limits {
            memory_mb: self.memory_mb,
            deadline_ms: self.deadline_ms,
            load_deadline_ms: self.load_deadline_ms,
            concurrency: self.concurrency,
            queue: self.queue,
        }
    }

    /// As the node serves it, with `limits` as its own.
    pub fn into_static(self, limits: Limits) -> kiln_node::serve::StaticDeployment {
        kiln_node::serve::StaticDeployment {
            name: self.name,
            component: self.component,
            artifacts: self.artifacts,
            config: self.config,
            version: self.version,
            capabilities: self.capabilities,
            limits,
        }
    }
}

/// Reads a config file, rejecting unknown keys with the key's name.
pub fn read_file(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Parses `--deploy NAME=PATH[,artifacts=DIR][,version=V][,grant=CAPABILITY][,config=TEXT]`;
/// `config=` takes the rest of the argument, commas included.
pub fn parse_deploy(arg: &str) -> Result<DeploymentConfig> {
    let (name, rest) = arg
        .split_once('=')
        .with_context(|| format!("--deploy '{arg}': expected NAME=PATH.wasm"))?;
    let (head, config) = match rest.split_once(",config=") {
        Some((head, config)) => (head, config.to_string()),
        None => (rest, String::new()),
    };
    let mut parts = head.split(',');
    let component = PathBuf::from(parts.next().unwrap_or_default());
    let mut deployment = DeploymentConfig {
        name: name.to_string(),
        component,
        artifacts: None,
        config,
        version: None,
        memory_mb: None,
        deadline_ms: None,
        load_deadline_ms: None,
        concurrency: None,
        queue: None,
        capabilities: Vec::new(),
    };
    for option in parts {
        match option.split_once('=') {
            Some(("artifacts", dir)) => deployment.artifacts = Some(PathBuf::from(dir)),
            Some(("version", v)) => deployment.version = Some(v.to_string()),
            Some(("grant", c)) => deployment.capabilities.push(c.to_string()),
            _ => bail!(
                "--deploy '{arg}': unknown option '{option}' (use artifacts=, version=, grant=, config=)"
            ),
        }
    }
    Ok(deployment)
}

/// Checks a deployment's names: URL-safe, not empty.
pub fn check_deployment(deployment: &DeploymentConfig) -> Result<()> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if !valid(&deployment.name) {
        bail!(
            "deployment name '{}' must be 1-128 characters of a-z, A-Z, 0-9, '-', '_', '.'",
            deployment.name
        );
    }
    if let Some(version) = &deployment.version
        && !valid(version)
    {
        bail!(
            "deployment '{}': version '{version}' must be 1-128 characters of a-z, A-Z, 0-9, '-', '_', '.'",
            deployment.name
        );
    }
    if deployment.component.as_os_str().is_empty() {
        bail!("deployment '{}' names no component", deployment.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_flag_takes_options_and_config_with_commas() {
        let d = parse_deploy("iris=a/iris.wasm,artifacts=model,version=2,config={\"a\":1,\"b\":2}")
            .expect("parse");
        assert_eq!(d.name, "iris");
        assert_eq!(d.component, PathBuf::from("a/iris.wasm"));
        assert_eq!(d.artifacts, Some(PathBuf::from("model")));
        assert_eq!(d.version.as_deref(), Some("2"));
        assert_eq!(d.config, "{\"a\":1,\"b\":2}");
        assert!(parse_deploy("iris").is_err());
        assert!(parse_deploy("iris=x.wasm,colour=red").is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected_by_name() {
        let err = toml::from_str::<FileConfig>("adr = \"127.0.0.1:1\"").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `adr`"), "{err}");
        let err = toml::from_str::<FileConfig>("[limits]\nmemory = 3").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `memory`"), "{err}");
    }

    #[test]
    fn names_must_be_url_safe() {
        let mut d = parse_deploy("ok=x.wasm").expect("parse");
        assert!(check_deployment(&d).is_ok());
        d.name = "../etc".into();
        assert!(check_deployment(&d).is_err());
    }
}

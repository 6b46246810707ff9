//! Where a run goes and what it takes along: the target a work group names, its executor, the
//! installation's limits on where a target reaches, and a run's environment (its image, its
//! registry credentials, the targets it allows).

use crate::store::targets as store;
use crate::{ControlError, ControlPlane};
use kiln_executor::{Executor, Target};
use kiln_registry::Endpoint;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Target kinds that exist in every work group under their own name, with default settings.
pub const BUILT_IN_TARGETS: &[&str] = &["local", "docker", "spark"];

/// The target a work group calls `name`: one it configured, or a built-in kind.
pub async fn resolve_target(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<Target, ControlError> {
    match store::find_target(control.db(), workgroup_id, name).await? {
        Some(row) => Ok(Target {
            name: name.to_string(),
            kind: row.kind,
            config: serde_json::from_str(&row.config).unwrap_or_default(),
        }),
        None if BUILT_IN_TARGETS.contains(&name) => Ok(Target {
            name: name.to_string(),
            kind: name.to_string(),
            config: Map::new(),
        }),
        None => Err(ControlError::Invalid(format!(
            "target '{name}' not found: add it with `kiln target add` (built in: local, docker, spark)"
        ))),
    }
}

/// The executor for a target, or a clear error.
pub fn executor_for(
    control: &ControlPlane,
    target: &Target,
) -> Result<Arc<dyn Executor>, ControlError> {
    control.executor(&target.kind).ok_or_else(|| {
        ControlError::Unavailable(format!(
            "this control plane has no executor for '{}' targets",
            target.kind
        ))
    })
}

/// Checks where a target reaches against the installation's limits (403 with the limit named):
/// its Docker host and network, its Spark master (the registry of its image is checked when a
/// run pulls it: [`registry_gate`]). Returns the settings to hand
/// to the executor: a Docker host given as `tcp://` or `http://` is parsed once, resolved once
/// and pinned to the checked address (`tcp://IP:PORT`), so that the client connects to the
/// address that was checked and parses nothing that could mean another host.
pub async fn check_reach(
    control: &ControlPlane,
    kind: &str,
    config: &Map<String, Value>,
) -> Result<Map<String, Value>, ControlError> {
    let limits = &control.settings().targets;
    let refuse = |m: String| Err(ControlError::Forbidden(m));
    let mut pinned = config.clone();
    match kind {
        "docker" => {
            if let Some(host) = config.get("host").and_then(Value::as_str)
                && !limits.docker_hosts.iter().any(|h| h == host)
                && !is_installation_docker_host(host)
            {
                if host.starts_with("unix://") || !host.contains("://") {
                    return refuse(format!(
                        "Docker host '{host}' is not allowed on this installation (an admin can \
                         allow it: kiln up --allow-docker-host {host})"
                    ));
                }
                let endpoint = Endpoint::parse(host, &["tcp", "http"], 2375)
                    .map_err(|why| ControlError::Invalid(format!("invalid Docker host: {why}")))?;
                let address = match limits.addresses.pin(&endpoint).await {
                    Ok(address) => address,
                    Err(why) => return refuse(format!("Docker host: {why}")),
                };
                pinned.insert("host".into(), Value::String(format!("tcp://{address}")));
            }
            if let Some(network) = config.get("network").and_then(Value::as_str)
                && !["bridge", "none", "default"].contains(&network)
                && !limits.docker_networks.iter().any(|n| n == network)
            {
                return refuse(format!(
                    "Docker network '{network}' is not allowed on this installation: a container \
                     on it would share the host's or another container's network (an admin can \
                     allow it: kiln up --allow-docker-network {network})"
                ));
            }
        }
        "spark" => {
            let master = config.get("master").and_then(Value::as_str).unwrap_or("");
            let endpoints: Vec<Result<Endpoint, String>> =
                if let Some(list) = master.strip_prefix("spark://") {
                    list.split(',')
                        .map(|h| Endpoint::parse(&format!("spark://{h}"), &["spark"], 7077))
                        .collect()
                } else if let Some(url) = master.strip_prefix("k8s://") {
                    vec![Endpoint::parse(url, &["https", "http"], 443)]
                } else {
                    Vec::new()
                };
            for endpoint in endpoints {
                let endpoint = endpoint
                    .map_err(|why| ControlError::Invalid(format!("invalid Spark master: {why}")))?;
                if let Err(why) = limits.addresses.pin(&endpoint).await {
                    return refuse(format!("Spark master: {why}"));
                }
            }
        }
        _ => {}
    }
    Ok(pinned)
}

/// The gate a container host's pulls for a work group's runs go through: the registry a run
/// image names (a docker target's `image`, an environment's `run_image`) is held to the
/// installation's address limits, checked when the image is pulled (an image the host has is
/// not pulled). Docker Hub's images name no registry host.
pub fn registry_gate(control: &ControlPlane) -> kiln_executor::RegistryGate {
    let policy = control.settings().targets.addresses.clone();
    kiln_executor::RegistryGate(std::sync::Arc::new(move |registry: String| {
        let policy = policy.clone();
        Box::pin(async move {
            let endpoint = Endpoint::parse(&format!("https://{registry}"), &["https"], 443)?;
            policy.pin(&endpoint).await.map(|_| ())
        })
    }))
}

/// Whether `host` is the Docker host of the installation itself.
fn is_installation_docker_host(host: &str) -> bool {
    let own = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    host == own
}

/// The registry credentials of an environment, opened, for the server's own use (pulls), bound
/// to the environment's registry host.
pub async fn registry_credentials(
    control: &ControlPlane,
    workgroup_id: &str,
    environment: &str,
) -> Result<Option<kiln_registry::Credentials>, ControlError> {
    match store::find_environment(control.db(), workgroup_id, environment).await? {
        Some(row) => credentials_of(control, &row),
        None => Ok(None),
    }
}

/// The registry credentials of an environment's row, opened: none unless it has a registry,
/// a user name and a password.
fn credentials_of(
    control: &ControlPlane,
    row: &store::EnvironmentRow,
) -> Result<Option<kiln_registry::Credentials>, ControlError> {
    let (Some(host), Some(user), Some(sealed)) = (
        &row.registry,
        &row.registry_username,
        &row.registry_password_sealed,
    ) else {
        return Ok(None);
    };
    let password = control
        .secrets()
        .open(sealed, &format!("environment:{}:registry_password", row.id))?;
    Ok(Some(kiln_registry::Credentials {
        host: host.clone(),
        username: user.clone(),
        password,
    }))
}

/// What a run takes from its environment: the image for docker targets, the registry
/// credentials, and the targets it allows (none listed: any).
pub(crate) struct RunEnvironment {
    pub image: Option<String>,
    pub credentials: Option<kiln_registry::Credentials>,
    pub targets: Vec<String>,
}

/// The environment `name` of a work group, for a run.
pub(crate) async fn run_environment(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<RunEnvironment, ControlError> {
    let row = store::find_environment(control.db(), workgroup_id, name)
        .await?
        .ok_or_else(|| ControlError::Invalid(format!("environment '{name}' not found")))?;
    Ok(RunEnvironment {
        credentials: credentials_of(control, &row)?,
        image: row.run_image,
        targets: serde_json::from_str(&row.targets).unwrap_or_default(),
    })
}

//! Registry credentials, each for one host, and Docker's `config.json`.

use crate::RegistryOptions;
use oci_client::secrets::RegistryAuth;

/// A user name and password for one registry host (`host[:port]`), and no other: the
/// installation's (`--registry-host`, `--username`, `--password`) and a work group
/// environment's alike. Every pull and push asks [`credentials`], so whatever reference a work
/// group names, the password reaches only the host it was given for.
#[derive(Clone)]
pub struct Credentials {
    /// The registry host, `host[:port]` (`docker.io` and its aliases are one host).
    pub host: String,
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"(hidden)")
            .finish()
    }
}

impl Credentials {
    /// Whether these credentials are for `registry` (`host[:port]`, as a reference names it).
    pub fn are_for(&self, registry: &str) -> bool {
        canonical_host(&self.host) == canonical_host(registry)
    }
}

/// A registry host as compared for credentials: lower case, without a scheme or a trailing
/// slash, Docker Hub's names as one.
pub(crate) fn canonical_host(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(host)
        .trim_end_matches('/')
        .to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "index.docker.io".into(),
        _ => host,
    }
}

/// Credentials for a registry: the options' credentials when they are for this registry's
/// host, else the Docker `config.json` (`$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`, whose entries are per host) when the options allow it, else
/// anonymous.
pub fn credentials(registry: &str, options: &RegistryOptions) -> RegistryAuth {
    if let Some(given) = &options.credentials
        && given.are_for(registry)
    {
        return RegistryAuth::Basic(given.username.clone(), given.password.clone());
    }
    if !options.docker_config {
        return RegistryAuth::Anonymous;
    }
    docker_config_auth(registry).unwrap_or(RegistryAuth::Anonymous)
}

fn docker_config_auth(registry: &str) -> Option<RegistryAuth> {
    use base64::Engine as _;
    let path = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")))?
        .join("config.json");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(key, value)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()?;
        (host == registry).then_some(value)
    })?;
    if let Some(token) = entry.get("registrytoken").and_then(|v| v.as_str()) {
        return Some(RegistryAuth::Bearer(token.to_string()));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.get("auth")?.as_str()?)
        .ok()?;
    let (user, password) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some(RegistryAuth::Basic(user, password))
}

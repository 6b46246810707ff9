//! Kiln's OCI registry client: moves images between any OCI registry and the local store.
//!
//! Built on `oci-client`, with the Wasm media types of `oci-wasm`. A pull resolves a tag to a
//! manifest digest, checks the manifest (size cap, digest, media type, no index mixed with
//! layers), then fetches every blob within its declared size and the configured cap and verifies
//! it against its digest before anything is written to the store. Plain HTTP is used only for
//! registries named insecure, and loopback registries by default. Transient failures (connection
//! errors, 5xx) are retried with backoff.

use futures_util::StreamExt;
use kiln_image::media::{OCI_MANIFEST, WASM_LAYER};
use kiln_image::{Descriptor, Digest, ImageError, ImageManifest, MAX_MANIFEST_BYTES, OciStore};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::time::Duration;
use thiserror::Error;

/// Why a registry operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Not an image reference.
    #[error("'{0}' is not an image reference: {1}")]
    Reference(String, String),
    /// The registry refused or failed.
    #[error("registry {registry}: {message}")]
    Registry {
        /// Registry host.
        registry: String,
        /// What went wrong.
        message: String,
    },
    /// Content failed verification, or the store failed.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// How Kiln talks to registries.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Registries reached over plain HTTP (loopback registries always are).
    pub insecure: Vec<String>,
    /// Largest blob Kiln pulls.
    pub max_blob_bytes: u64,
    /// User name and password (basic auth, or exchanged for a bearer token).
    pub username: Option<String>,
    /// Password or token.
    pub password: Option<String>,
    /// Attempts per request on transient errors.
    pub attempts: u32,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: vec![],
            max_blob_bytes: 2 << 30,
            username: None,
            password: None,
            attempts: 4,
        }
    }
}

/// One transfer's progress: `(what, bytes done, bytes total)`.
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

/// Whether text names a registry image (`host[:port]/path[:tag|@digest]`, optionally `oci://`).
pub fn is_registry_reference(text: &str) -> bool {
    let text = text.strip_prefix("oci://").unwrap_or(text);
    match text.split_once('/') {
        Some((host, rest)) => {
            !rest.is_empty() && (host.contains('.') || host.contains(':') || host == "localhost")
        }
        None => false,
    }
}

/// Parses `[oci://]host/path[:tag][@digest]`.
pub fn parse_reference(text: &str) -> Result<Reference, RegistryError> {
    let text = text.strip_prefix("oci://").unwrap_or(text);
    text.parse::<Reference>()
        .map_err(|e| RegistryError::Reference(text.to_string(), e.to_string()))
}

fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            registry
        }
    });
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

/// Credentials for a registry: the options' user and password, else the Docker `config.json`
/// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), else anonymous.
pub fn credentials(registry: &str, options: &RegistryOptions) -> RegistryAuth {
    if let (Some(user), Some(password)) = (&options.username, &options.password) {
        return RegistryAuth::Basic(user.clone(), password.clone());
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

fn transient(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::RequestError(e) => e.is_connect() || e.is_timeout() || e.is_request(),
        OciDistributionError::ServerError { code, .. } => *code >= 500,
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
}

/// A client for one registry.
pub struct Registry {
    client: Client,
    registry: String,
    options: RegistryOptions,
}

/// What a pull stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Pulled {
    /// The store tag: the reference as given (without `oci://`).
    pub name: String,
    /// The manifest digest the tag resolved to.
    pub digest: Digest,
    /// Bytes fetched (blobs already in the store are not fetched again).
    pub fetched_bytes: u64,
}

impl Registry {
    /// A client for the registry of `reference`.
    pub async fn connect(reference: &Reference, options: &RegistryOptions) -> Registry {
        let registry = reference.resolve_registry().to_string();
        let insecure = is_loopback(&registry) || options.insecure.iter().any(|r| r == &registry);
        let protocol = if insecure {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            ..Default::default()
        });
        client
            .store_auth_if_needed(&registry, &credentials(&registry, options))
            .await;
        Registry {
            client,
            registry,
            options: options.clone(),
        }
    }

    fn fail(&self, message: impl Into<String>) -> RegistryError {
        RegistryError::Registry {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    async fn retry<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=self.options.attempts.max(1) {
            match call().await {
                Ok(value) => return Ok(value),
                Err(e) if transient(&e) && attempt < self.options.attempts => {
                    tracing::warn!(registry = %self.registry, "{what} failed (attempt {attempt}), retrying: {e}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(self.fail(format!("{what}: {e}"))),
            }
        }
        Err(self.fail(format!("{what}: no attempts")))
    }

    /// Fetches a blob within its declared size and the cap, verified against its digest.
    async fn fetch_blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        progress: Progress<'_>,
    ) -> Result<Vec<u8>, RegistryError> {
        if descriptor.size > self.options.max_blob_bytes {
            return Err(self.fail(format!(
                "blob {} declares {} bytes, over the limit of {}",
                descriptor.digest, descriptor.size, self.options.max_blob_bytes
            )));
        }
        let layer = oci_client::manifest::OciDescriptor {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.digest.to_string(),
            size: descriptor.size as i64,
            ..Default::default()
        };
        let mut stream = self
            .retry(&format!("fetch blob {}", descriptor.digest), || {
                self.client.pull_blob_stream(reference, &layer)
            })
            .await?;
        let mut bytes = Vec::with_capacity(descriptor.size.min(64 << 20) as usize);
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| self.fail(format!("blob {}: {e}", descriptor.digest)))?;
            if (bytes.len() + chunk.len()) as u64 > descriptor.size {
                return Err(ImageError::SizeMismatch {
                    digest: descriptor.digest.clone(),
                    declared: descriptor.size,
                    actual: (bytes.len() + chunk.len()) as u64,
                }
                .into());
            }
            bytes.extend_from_slice(&chunk);
            progress(
                descriptor.digest.as_str(),
                bytes.len() as u64,
                descriptor.size,
            );
        }
        descriptor.verify(&bytes)?;
        Ok(bytes)
    }

    /// Pulls an image into the store, tagged with the reference as given. Nothing is written
    /// unless the manifest and every blob verified.
    pub async fn pull(
        &self,
        store: &OciStore,
        text: &str,
        progress: Progress<'_>,
    ) -> Result<Pulled, RegistryError> {
        let reference = parse_reference(text)?;
        let (bytes, header_digest) = self
            .retry("fetch manifest", || {
                self.client
                    .pull_manifest_raw(&reference, &RegistryAuth::Anonymous, &[OCI_MANIFEST])
            })
            .await?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(self.fail(format!(
                "manifest of {} bytes is over the {MAX_MANIFEST_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let digest = Digest::of(&bytes);
        let expected = reference
            .digest()
            .map(str::to_string)
            .unwrap_or(header_digest);
        if expected != digest.as_str() {
            return Err(ImageError::DigestMismatch {
                expected: expected.parse()?,
                actual: digest,
            }
            .into());
        }
        let manifest = ImageManifest::parse(&bytes)?;
        let mut fetched = Vec::new();
        let mut fetched_bytes = 0;
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !store.has_blob(&descriptor.digest) {
                let blob = self.fetch_blob(&reference, descriptor, progress).await?;
                fetched_bytes += blob.len() as u64;
                fetched.push((descriptor.clone(), blob));
            }
        }
        for (descriptor, blob) in &fetched {
            store.put_verified(descriptor, blob)?;
        }
        let name = text.strip_prefix("oci://").unwrap_or(text).to_string();
        // The exact bytes the registry served: their digest is the one a deployment pins.
        store.put_manifest_bytes(&bytes, &name)?;
        Ok(Pulled {
            name,
            digest,
            fetched_bytes,
        })
    }

    /// Pushes an image from the store to `remote`; returns the manifest digest.
    pub async fn push(
        &self,
        store: &OciStore,
        local: &str,
        remote: &str,
        progress: Progress<'_>,
    ) -> Result<Digest, RegistryError> {
        let reference = parse_reference(remote)?;
        let (_, manifest) = store.resolve(local)?;
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let digest = descriptor.digest.to_string();
            let exists = self
                .retry("check blob", || {
                    self.client.blob_exists(&reference, &digest)
                })
                .await?;
            if !exists {
                let bytes = store.read_blob(descriptor)?;
                self.retry(&format!("push blob {digest}"), || {
                    self.client.push_blob(&reference, bytes.clone(), &digest)
                })
                .await?;
            }
            progress(descriptor.digest.as_str(), descriptor.size, descriptor.size);
        }
        // The exact stored bytes, so the pushed digest is the local one.
        let body = store.manifest_bytes(local)?;
        let digest = Digest::of(&body);
        let content_type = http::HeaderValue::from_static(OCI_MANIFEST);
        self.retry("push manifest", || {
            self.client
                .push_manifest_raw(&reference, body.clone(), content_type.clone())
        })
        .await?;
        Ok(digest)
    }
}

const _: () = {
    // Kiln's constants must stay those of oci-wasm.
    assert!(const_str_eq(WASM_LAYER, oci_wasm::WASM_LAYER_MEDIA_TYPE));
    assert!(const_str_eq(
        kiln_image::media::WASM_CONFIG,
        oci_wasm::WASM_MANIFEST_CONFIG_MEDIA_TYPE
    ));
    assert!(const_str_eq(
        kiln_image::media::COMPONENT_OS,
        oci_wasm::COMPONENT_OS
    ));
    assert!(const_str_eq(
        kiln_image::media::WASM_ARCHITECTURE,
        oci_wasm::WASM_ARCHITECTURE
    ));
};

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_loopback() {
        assert!(is_registry_reference("127.0.0.1:5000/models/iris:1"));
        assert!(is_registry_reference("oci://ghcr.io/acme/iris@sha256:abc"));
        assert!(is_registry_reference("localhost/iris:1"));
        assert!(!is_registry_reference("iris:1"));
        assert!(!is_registry_reference("models/iris.wasm"));
        assert!(
            is_loopback("127.0.0.1:5055") && is_loopback("localhost") && !is_loopback("ghcr.io")
        );
        let r = parse_reference("oci://127.0.0.1:5055/models/iris:1").expect("parse");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5055", "models/iris", Some("1"))
        );
    }
}

//! Kiln's OCI registry client: moves images between any OCI registry and the local store.
//!
//! Built on `oci-client`, with the Wasm media types of `oci-wasm`. A pull resolves a tag to a
//! manifest digest, checks the manifest (size cap, digest, media type, no index mixed with
//! layers), then fetches every blob within its declared size and the configured cap and verifies
//! it against its digest before anything is written to the store. Plain HTTP is used only for
//! registries named insecure, and loopback registries by default. Transient failures (connection
//! errors, 5xx) are retried with backoff.

mod address;
mod credentials;
mod transfer;

pub use address::{AddressPolicy, Endpoint, is_internal};
pub use credentials::{Credentials, credentials};
use futures_util::StreamExt;
use kiln_image::media::{OCI_INDEX, OCI_MANIFEST, WASM_LAYER};
use kiln_image::{
    Descriptor, Digest, ImageError, ImageManifest, MAX_MANIFEST_BYTES, OciStore, deployable_kind,
};
use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::time::Duration;
use thiserror::Error;
use transfer::{Failed, ServedManifest, Transient, append_chunk, shared_http_client};

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
    /// A user name and password, bound to the one registry host they are sent to (basic auth,
    /// or exchanged for a bearer token at the token endpoint that registry names).
    pub credentials: Option<Credentials>,
    /// Whether the Docker `config.json` of this process's user supplies credentials when the
    /// options have none. The CLI reads it, as Docker clients do; the control plane does not, so
    /// that no work group pulls with the host's credentials.
    pub docker_config: bool,
    /// Attempts per request on transient errors.
    pub attempts: u32,
    /// Which addresses pulls may reach, redirects included (`None`: any). The control plane
    /// sets one, so that no work group reaches the host's internal network through a registry.
    pub addresses: Option<std::sync::Arc<AddressPolicy>>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: vec![],
            max_blob_bytes: 2 << 30,
            credentials: None,
            docker_config: true,
            attempts: 4,
            addresses: None,
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

/// A client for one registry.
pub struct Registry {
    client: Client,
    /// For manifest fetches, which need the response headers `oci-client` does not expose.
    http: reqwest::Client,
    scheme: &'static str,
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
    /// Whether the manifest was new to the store (not there before this pull).
    pub new_to_store: bool,
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
            http: match &options.addresses {
                Some(policy) => address::guarded_client(policy.clone()),
                None => shared_http_client(),
            },
            scheme: if insecure { "http" } else { "https" },
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

    async fn retry<T, E, F, Fut>(&self, what: &str, mut call: F) -> Result<T, RegistryError>
    where
        E: Transient,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=self.options.attempts.max(1) {
            match call().await {
                Ok(value) => return Ok(value),
                Err(e) if e.transient() && attempt < self.options.attempts => {
                    tracing::warn!(registry = %self.registry, "{what} failed (attempt {attempt}), retrying: {e}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(self.fail(format!("{what}: {e}"))),
            }
        }
        Err(self.fail(format!("{what}: no attempts")))
    }

    /// The bearer token for pulling `reference`, if the registry wants one. Under an address
    /// policy Kiln asks for it itself, through its guarded client: the token endpoint (the
    /// `realm` of the registry's challenge) is held to the policy like the registry is.
    /// Otherwise `oci-client` does it.
    async fn pull_token(
        &self,
        reference: &Reference,
        auth: &RegistryAuth,
    ) -> Result<Option<String>, Failed> {
        let Some(policy) = &self.options.addresses else {
            return Ok(self
                .client
                .auth(reference, auth, RegistryOperation::Pull)
                .await?);
        };
        let failed = |message: String| Failed {
            transient: false,
            message,
        };
        let probe = self
            .http
            .get(format!("{}://{}/v2/", self.scheme, self.registry))
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        if probe.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        let challenge = probe
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let Some(params) = challenge
            .strip_prefix("Bearer ")
            .or_else(|| challenge.strip_prefix("bearer "))
        else {
            // Basic (or no scheme): the credentials go with each request.
            return Ok(None);
        };
        let field = |name: &str| {
            params.split(',').find_map(|part| {
                let (key, value) = part.trim().split_once('=')?;
                (key.trim() == name).then(|| value.trim().trim_matches('"').to_string())
            })
        };
        let realm = field("realm")
            .ok_or_else(|| failed("the registry's challenge names no realm".into()))?;
        let mut url = reqwest::Url::parse(&realm)
            .map_err(|e| failed(format!("the registry's token realm '{realm}': {e}")))?;
        let host = url.host_str().unwrap_or("");
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            && !policy.permits(ip)
        {
            return Err(failed(format!(
                "the registry's token realm {realm} is at {ip}, a loopback, private or link-local \
                 address, and was refused"
            )));
        }
        {
            let mut query = url.query_pairs_mut();
            query.append_pair(
                "scope",
                &format!("repository:{}:pull", reference.repository()),
            );
            if let Some(service) = field("service") {
                query.append_pair("service", &service);
            }
        }
        let mut request = self.http.get(url).timeout(Duration::from_secs(30));
        if let RegistryAuth::Basic(user, password) = auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(failed(format!(
                "the registry's token endpoint answered {}",
                response.status()
            )));
        }
        let body: serde_json::Value = serde_json::from_slice(&response.bytes().await?)
            .map_err(|e| failed(format!("the registry's token endpoint: {e}")))?;
        Ok(body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string))
    }

    /// One GET of a manifest, authenticated as `oci-client` would (bearer token from the
    /// registry's challenge, else basic credentials), read within the size cap.
    async fn fetch_manifest(&self, reference: &Reference) -> Result<ServedManifest, Failed> {
        let auth = credentials(&self.registry, &self.options);
        let token = self.pull_token(reference, &auth).await?;
        let target = reference.digest().or(reference.tag()).unwrap_or("latest");
        let url = format!(
            "{}://{}/v2/{}/manifests/{target}",
            self.scheme,
            self.registry,
            reference.repository()
        );
        let mut request = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, OCI_MANIFEST)
            .timeout(Duration::from_secs(60));
        request = match (token, &auth) {
            (Some(token), _) => request.bearer_auth(token),
            (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
            _ => request,
        };
        let mut response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let what = match status.as_u16() {
                401 | 403 => format!(
                    "not authorized to pull {} ({status}): give --username and --password, or log in with a Docker config.json",
                    reference.repository()
                ),
                404 => format!(
                    "manifest '{target}' not found in {} ({status})",
                    reference.repository()
                ),
                _ => format!("manifest '{target}': {status}"),
            };
            return Err(Failed {
                transient: status.is_server_error() || status.as_u16() == 429,
                message: what,
            });
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type")
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let digest = header("docker-content-digest");
        let over = |detail: String| Failed {
            transient: false,
            message: format!("manifest is over the {MAX_MANIFEST_BYTES}-byte limit ({detail})"),
        };
        if let Some(length) = response.content_length()
            && length > MAX_MANIFEST_BYTES as u64
        {
            return Err(over(format!("{length} bytes declared")));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if bytes.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(over("read stopped at the limit".to_string()));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(ServedManifest {
            bytes,
            content_type,
            digest,
        })
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
        if self.options.addresses.is_some() {
            return self
                .fetch_blob_guarded(reference, descriptor, progress)
                .await;
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
            append_chunk(&mut bytes, &chunk, descriptor, progress)?;
        }
        descriptor.verify(&bytes)?;
        Ok(bytes)
    }

    /// [`Registry::fetch_blob`] through Kiln's own HTTP client, whose connections and redirects
    /// stay within the options' address policy (blob downloads are often redirected to storage).
    async fn fetch_blob_guarded(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        progress: Progress<'_>,
    ) -> Result<Vec<u8>, RegistryError> {
        let auth = credentials(&self.registry, &self.options);
        let token = self
            .pull_token(reference, &auth)
            .await
            .map_err(|e| self.fail(format!("blob {}: {}", descriptor.digest, e.message)))?;
        let url = format!(
            "{}://{}/v2/{}/blobs/{}",
            self.scheme,
            self.registry,
            reference.repository(),
            descriptor.digest
        );
        let mut request = self.http.get(&url).timeout(Duration::from_secs(600));
        request = match (token, &auth) {
            (Some(token), _) => request.bearer_auth(token),
            (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
            _ => request,
        };
        let mut response = request
            .send()
            .await
            .map_err(|e| self.fail(format!("blob {}: {e}", descriptor.digest)))?;
        if !response.status().is_success() {
            return Err(self.fail(format!("blob {}: {}", descriptor.digest, response.status())));
        }
        let mut bytes = Vec::with_capacity(descriptor.size.min(64 << 20) as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.fail(format!("blob {}: {e}", descriptor.digest)))?
        {
            append_chunk(&mut bytes, &chunk, descriptor, progress)?;
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
        if let Some(policy) = &self.options.addresses {
            policy
                .check_host(&self.registry)
                .await
                .map_err(|e| self.fail(e))?;
        }
        let served = self
            .retry("fetch manifest", || self.fetch_manifest(&reference))
            .await?;
        let bytes = served.bytes;
        let digest = Digest::of(&bytes);
        // A digest in the reference is what the user pinned; else the registry's header.
        if let Some(expected) = reference.digest().map(str::to_string).or(served.digest)
            && expected != digest.as_str()
        {
            return Err(ImageError::DigestMismatch {
                expected: expected.parse()?,
                actual: digest,
            }
            .into());
        }
        let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string));
        if let Some(declared) = &declared
            && *declared != served.content_type
        {
            return Err(self.fail(format!(
                "manifest {digest}: mediaType '{declared}' disagrees with its Content-Type '{}'",
                served.content_type
            )));
        }
        if served.content_type != OCI_MANIFEST {
            let hint = if served.content_type == OCI_INDEX {
                " (an image index; Kiln deploys single image manifests)"
            } else {
                ""
            };
            return Err(self.fail(format!(
                "manifest {digest} is '{}'{hint}, expected '{OCI_MANIFEST}'",
                served.content_type
            )));
        }
        let manifest = ImageManifest::parse(&bytes)?;
        // Refuse what Kiln could not deploy before fetching a single blob.
        deployable_kind(&digest, &manifest)?;
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
        let new_to_store = !store.has_blob(&digest);
        // The exact bytes the registry served: their digest is the one a deployment pins.
        store.put_manifest_bytes(&bytes, &name)?;
        Ok(Pulled {
            name,
            digest,
            fetched_bytes,
            new_to_store,
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
mod tests;

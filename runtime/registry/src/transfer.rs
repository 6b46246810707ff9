//! Pieces of a transfer: blobs that must not outgrow their size, failures and whether trying
//! again may help, manifests as served, and the one HTTP client of Kiln's own requests.

use crate::{Progress, RegistryError};
use kiln_image::{Descriptor, ImageError};
use oci_client::errors::OciDistributionError;
use std::time::Duration;

/// Adds one piece of a blob being fetched, refusing a blob that grows past its declared size,
/// and reports the progress.
pub(crate) fn append_chunk(
    bytes: &mut Vec<u8>,
    chunk: &[u8],
    descriptor: &Descriptor,
    progress: Progress<'_>,
) -> Result<(), RegistryError> {
    if (bytes.len() + chunk.len()) as u64 > descriptor.size {
        return Err(ImageError::SizeMismatch {
            digest: descriptor.digest.clone(),
            declared: descriptor.size,
            actual: (bytes.len() + chunk.len()) as u64,
        }
        .into());
    }
    bytes.extend_from_slice(chunk);
    progress(
        descriptor.digest.as_str(),
        bytes.len() as u64,
        descriptor.size,
    );
    Ok(())
}

/// A failed request, and whether trying again may help (connection errors, timeouts, 5xx, 429).
pub(crate) trait Transient: std::fmt::Display {
    /// Whether trying again may help.
    fn transient(&self) -> bool;
}

impl Transient for OciDistributionError {
    fn transient(&self) -> bool {
        match self {
            OciDistributionError::RequestError(e) => {
                e.is_connect() || e.is_timeout() || e.is_request()
            }
            OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
            OciDistributionError::IoError(_) => true,
            _ => false,
        }
    }
}

/// A failed request made by Kiln itself rather than through `oci-client`.
pub(crate) struct Failed {
    pub(crate) transient: bool,
    pub(crate) message: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Transient for Failed {
    fn transient(&self) -> bool {
        self.transient
    }
}

impl From<reqwest::Error> for Failed {
    fn from(e: reqwest::Error) -> Failed {
        // reqwest's own text leaves out why (a refused redirect, a DNS answer the policy
        // dropped): name the causes too.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            source = cause.source();
        }
        Failed {
            transient: !e.is_redirect()
                && (e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()),
            message,
        }
    }
}

impl From<OciDistributionError> for Failed {
    fn from(e: OciDistributionError) -> Failed {
        Failed {
            transient: e.transient(),
            message: e.to_string(),
        }
    }
}

/// A manifest as the registry served it, read within [`kiln_image::MAX_MANIFEST_BYTES`].
pub(crate) struct ServedManifest {
    pub(crate) bytes: Vec<u8>,
    /// The response's media type, parameters removed.
    pub(crate) content_type: String,
    /// `Docker-Content-Digest`, when the registry sent one.
    pub(crate) digest: Option<String>,
}

/// The HTTP client of Kiln's own manifest requests, built once per process: building one reads
/// and parses the system's CA bundle, tens of milliseconds that a deploy should not pay twice.
pub(crate) fn shared_http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::limited(5))
                .build()
                .unwrap_or_default()
        })
        .clone()
}

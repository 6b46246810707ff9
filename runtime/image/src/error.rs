//! Errors of image formats and the store.

use crate::Digest;
use thiserror::Error;

/// What went wrong with an image or the store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Not a `sha256:<64 hex>` digest.
    #[error("invalid digest '{0}'")]
    InvalidDigest(String),
    /// Content does not hash to its digest.
    #[error("content of {expected} hashes to {actual}: corrupt or tampered")]
    DigestMismatch {
        /// What the descriptor says.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// Content is not the declared size.
    #[error("{digest} declares {declared} bytes but has {actual}")]
    SizeMismatch {
        /// The content's digest.
        digest: Digest,
        /// Declared size.
        declared: u64,
        /// Actual size.
        actual: u64,
    },
    /// A manifest, config or layer does not fit the expected format.
    #[error("{0}")]
    Invalid(String),
    /// No image by that reference in the store.
    #[error("no image '{0}' in the local store")]
    NotFound(String),
    /// A blob the manifest names is not in the store.
    #[error("blob {0} is missing from the local store")]
    MissingBlob(Digest),
    /// The model manifest file is invalid.
    #[error("{0}")]
    Manifest(String),
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What Kiln was doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }
}

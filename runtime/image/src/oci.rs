//! OCI descriptors, image manifests and indexes, and sha256 digests.

use crate::ImageError;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// A `sha256:<64 hex>` content digest, validated so it can name a file safely.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The digest of some bytes.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// `sha256:...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Digest {
    type Error = ImageError;
    fn try_from(text: String) -> Result<Self, ImageError> {
        let valid = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if valid {
            Ok(Digest(text))
        } else {
            Err(ImageError::InvalidDigest(text))
        }
    }
}

impl std::str::FromStr for Digest {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, ImageError> {
        Digest::try_from(s.to_string())
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Artifact type (manifests in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// Describes bytes of a media type.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The same descriptor with an annotation.
    pub fn annotated(mut self, key: &str, value: &str) -> Descriptor {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// The `org.opencontainers.image.title` annotation.
    pub fn title(&self) -> Option<&str> {
        self.annotations
            .get(crate::media::TITLE)
            .map(String::as_str)
    }

    /// Checks that `bytes` are what this descriptor describes: size first, then digest.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), ImageError> {
        if bytes.len() as u64 != self.size {
            return Err(ImageError::SizeMismatch {
                digest: self.digest.clone(),
                declared: self.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = Digest::of(bytes);
        if actual != self.digest {
            return Err(ImageError::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// An OCI image manifest (schema version 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.manifest.v1+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// What kind of artifact this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Largest manifest Kiln reads.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

impl ImageManifest {
    /// Parses and checks a manifest: size cap, schema version, media type, and no `manifests`
    /// (an index) mixed with `layers`.
    pub fn parse(bytes: &[u8]) -> Result<ImageManifest, ImageError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ImageError::Invalid(format!(
                "manifest of {} bytes is over the {MAX_MANIFEST_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let raw: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ImageError::Invalid(format!("manifest is not JSON: {e}")))?;
        if raw.get("manifests").is_some() {
            return Err(ImageError::Invalid(
                "manifest has 'manifests' (an index) where an image manifest was expected".into(),
            ));
        }
        let manifest: ImageManifest = serde_json::from_value(raw)
            .map_err(|e| ImageError::Invalid(format!("invalid image manifest: {e}")))?;
        if manifest.schema_version != 2 {
            return Err(ImageError::Invalid(format!(
                "schemaVersion {} is not 2",
                manifest.schema_version
            )));
        }
        if let Some(media_type) = &manifest.media_type
            && media_type != crate::media::OCI_MANIFEST
        {
            return Err(ImageError::Invalid(format!(
                "manifest mediaType '{media_type}' is not an OCI image manifest"
            )));
        }
        Ok(manifest)
    }

    /// The canonical JSON bytes Kiln stores and pushes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// An OCI image index (the layout's `index.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.index.v1+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests, each tagged by a `org.opencontainers.image.ref.name` annotation.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_validated_and_verified() {
        let d = Digest::of(b"hello");
        assert_eq!(
            d.as_str(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        for bad in ["sha256:../../etc/passwd", "md5:abc", "sha256:ABC", ""] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
        let desc = Descriptor::of("application/wasm", b"hello");
        assert!(desc.verify(b"hello").is_ok());
        assert!(matches!(
            desc.verify(b"hellO"),
            Err(ImageError::DigestMismatch { .. })
        ));
        assert!(matches!(
            desc.verify(b"hello!"),
            Err(ImageError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn manifests_mixing_index_and_layers_or_wrong_types_are_rejected() {
        let layer = Descriptor::of("application/wasm", b"x");
        let good = ImageManifest {
            schema_version: 2,
            media_type: Some(crate::media::OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::of(crate::media::WASM_CONFIG, b"{}"),
            layers: vec![layer],
            annotations: BTreeMap::new(),
        };
        assert_eq!(ImageManifest::parse(&good.to_bytes()).expect("parse"), good);
        let mut mixed: serde_json::Value = serde_json::from_slice(&good.to_bytes()).expect("json");
        mixed["manifests"] = serde_json::json!([]);
        let err =
            ImageManifest::parse(&serde_json::to_vec(&mixed).expect("json")).expect_err("mixed");
        assert!(err.to_string().contains("'manifests'"), "{err}");
        let mut wrong = good.clone();
        wrong.media_type = Some("application/vnd.docker.distribution.manifest.v2+json".into());
        assert!(ImageManifest::parse(&wrong.to_bytes()).is_err());
        assert!(ImageManifest::parse(&vec![b' '; MAX_MANIFEST_BYTES + 1]).is_err());
    }
}

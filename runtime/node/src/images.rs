//! The one image-resolution policy of a runtime node, for scoring images (`kiln serve`'s
//! `--deploy`, the control plane's deployments) and monitor images alike:
//!
//! 1. A reference pinned by digest (`repo@sha256:...`) is taken from the local store when the
//!    store has it: a digest names the same bytes everywhere, so the registry is not asked.
//! 2. Otherwise a reference that names a registry (`host/repo:tag`) is pulled: the registry says
//!    what a tag means now, and blobs the store already holds are not fetched again.
//! 3. When that pull fails and the store has the reference, the store's copy serves, with a
//!    warning. A reference without a registry is only looked for in the store.

use anyhow::{Context, Result, bail};
use kiln_image::{DeployableImage, ImageError, OciStore, open_image};
use kiln_registry::{Pulled, Registry, RegistryOptions, is_registry_reference, parse_reference};
use std::path::Path;

/// Whether a reference pins a digest.
pub fn is_pinned(reference: &str) -> bool {
    reference.contains("@sha256:")
}

/// Pulls a registry image into the store, logging what was fetched.
pub async fn pull(store: &OciStore, reference: &str, options: &RegistryOptions) -> Result<Pulled> {
    let parsed = parse_reference(reference)?;
    let registry = Registry::connect(&parsed, options).await;
    let pulled = registry
        .pull(store, reference, &|_, _, _| {})
        .await
        .with_context(|| format!("cannot pull {reference}"))?;
    tracing::info!(
        digest = %pulled.digest,
        fetched_bytes = pulled.fetched_bytes,
        "pulled {reference}"
    );
    Ok(pulled)
}

/// Opens `reference` (`oci://` allowed) by the policy above; returns the image and the
/// reference it was opened by, pinned to the digest when it was pulled.
pub async fn open(
    store_dir: &Path,
    reference: &str,
    registry: &RegistryOptions,
) -> Result<(DeployableImage, String)> {
    let store = OciStore::open(store_dir)?;
    let mut reference = reference
        .strip_prefix("oci://")
        .unwrap_or(reference)
        .to_string();
    let in_store = store.resolve(&reference).is_ok();
    if is_registry_reference(&reference) && !(in_store && is_pinned(&reference)) {
        match pull(&store, &reference, registry).await {
            Ok(pulled) => {
                reference = format!(
                    "{}@{}",
                    reference.split('@').next().unwrap_or(&reference),
                    pulled.digest
                );
            }
            Err(e) if in_store => {
                tracing::warn!(
                    "registry unavailable, deploying the local store's {reference}: {e:#}"
                );
            }
            Err(e) => return Err(e),
        }
    }
    let root = store.root().to_path_buf();
    let owned = reference.clone();
    let image = tokio::task::spawn_blocking(move || open_image(&store, &owned))
        .await
        .context("image task failed")?;
    match image {
        Ok(image) => Ok((image, reference)),
        Err(ImageError::NotFound(_)) => bail!(
            "no image '{reference}' in the local store {}",
            root.display()
        ),
        Err(e) => Err(e).with_context(|| format!("image '{reference}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_digest_pins() {
        assert!(is_pinned("reg.example/m@sha256:0123"));
        assert!(is_pinned("m:1@sha256:0123"));
        assert!(!is_pinned("reg.example/m:1"));
        assert!(!is_pinned("m"));
    }

    #[tokio::test]
    async fn a_missing_local_image_names_the_store() {
        let dir = std::env::temp_dir().join(format!("kiln-node-images-{}", std::process::id()));
        let Err(error) = open(&dir, "absent:1", &RegistryOptions::default()).await else {
            panic!("an image that is nowhere opened");
        };
        let text = format!("{error:#}");
        assert!(
            text.contains("no image 'absent:1' in the local store"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The local OCI store as work groups see it: registry images pulled into it with a work
//! group's access (and claimed), and store names resolved to the digest they mean before
//! anything is read.

use crate::store::images as store;
use crate::{ControlError, ControlPlane};
use kiln_image::OciStore;

/// Pulls a registry image into the local store for a work group, and claims it when the pull
/// brought it in or another work group already claimed it (the pull showed this one may read it
/// too). An image already in the store that nobody claimed is the installation's and stays
/// shared.
pub async fn pull_for(
    control: &ControlPlane,
    workgroup_id: &str,
    store: &OciStore,
    text: &str,
    options: &kiln_registry::RegistryOptions,
) -> Result<kiln_registry::Pulled, ControlError> {
    let parsed =
        kiln_registry::parse_reference(text).map_err(|e| ControlError::Invalid(e.to_string()))?;
    // Within the installation's address limits, redirects included.
    let options = kiln_registry::RegistryOptions {
        addresses: Some(control.settings().targets.addresses.clone()),
        ..options.clone()
    };
    let client = kiln_registry::Registry::connect(&parsed, &options).await;
    let pulled = client
        .pull(store, text, &|_, _, _| {})
        .await
        .map_err(|e| ControlError::Invalid(format!("cannot pull {text}: {e}")))?;
    let digest = pulled.digest.to_string();
    let claimed = !store::claimants(control.db(), &digest).await?.is_empty();
    if pulled.new_to_store || claimed {
        store::claim(control.db(), workgroup_id, &digest).await?;
    }
    Ok(pulled)
}

/// The manifest digest a store name (a tag, or `NAME@sha256:...`) resolves to, read off the
/// async workers: which image a name means is settled by this before whether a work group may
/// use it, and only then is the image read.
pub async fn digest_in_store(
    store: &OciStore,
    name: &str,
) -> Result<Result<String, kiln_image::ImageError>, ControlError> {
    let (store, name) = (store.clone(), name.to_string());
    tokio::task::spawn_blocking(move || store.resolve(&name).map(|(d, _)| d.digest.to_string()))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))
}

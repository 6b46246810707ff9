//! Who may use what is in the local OCI store: the work groups that brought an image in (built
//! or pulled it) claim its digest; an image nobody claimed is the installation's, shared.

use crate::db::now_ms;
use crate::{ControlError, ControlPlane};
use kiln_image::OciStore;

/// Records that a work group brought `digest` into the local store (built or pulled it).
pub(crate) async fn claim(
    control: &ControlPlane,
    workgroup_id: &str,
    digest: &str,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO store_claims (digest, workgroup_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (digest, workgroup_id) DO NOTHING",
    )
    .bind(digest)
    .bind(workgroup_id)
    .bind(now_ms())
    .execute(control.db().pool())
    .await?;
    Ok(())
}

/// Whether a work group may use the local store's image `digest`: one it claimed, or one no
/// work group claimed (the installation's).
pub(crate) async fn may_use(
    control: &ControlPlane,
    workgroup_id: &str,
    digest: &str,
) -> Result<bool, ControlError> {
    let owners: Vec<String> =
        sqlx::query_scalar("SELECT workgroup_id FROM store_claims WHERE digest = $1")
            .bind(digest)
            .fetch_all(control.db().pool())
            .await?;
    Ok(owners.is_empty() || owners.iter().any(|o| o == workgroup_id))
}

/// Pulls a registry image into the local store for a work group, and claims it when the pull
/// brought it in or another work group already claimed it (the pull showed this one may read it
/// too). An image already in the store that nobody claimed is the installation's and stays shared.
pub(crate) async fn pull_for(
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
    let claimed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM store_claims WHERE digest = $1")
        .bind(&digest)
        .fetch_one(control.db().pool())
        .await?;
    if pulled.new_to_store || claimed > 0 {
        claim(control, workgroup_id, &digest).await?;
    }
    Ok(pulled)
}

/// The manifest digest a store name (a tag, or `NAME@sha256:...`) resolves to, read off the
/// async workers: which image a name means is settled by this before whether a work group may
/// use it, and only then is the image read.
pub(crate) async fn digest_in_store(
    store: &OciStore,
    name: &str,
) -> Result<Result<String, kiln_image::ImageError>, ControlError> {
    let (store, name) = (store.clone(), name.to_string());
    tokio::task::spawn_blocking(move || store.resolve(&name).map(|(d, _)| d.digest.to_string()))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))
}

//! Images: a reference resolved to a deployable image pinned by digest (registry images pulled
//! into the local store with the work group's access, and claimed), and who may use what is in
//! the local store.
//!
//! The local store is shared by the installation, so what a work group brings into it (an image
//! built from its manifest, an image pulled with its registry access) is claimed by that work
//! group: its digest, and every tag that points at it, resolve for no other work group. An image
//! no work group claimed was put in the store by the installation (`kiln image build --store`)
//! and is shared, as built-in scorers are. A registry's credentials go only to that registry's
//! host.

use super::oci::{digest_in_store, pull_for};
use super::time;
use crate::names::check_name;
use crate::store::images::{self as store, ImageInsert, ImageRow};
use crate::{ControlError, ControlPlane};
use kiln_api::manage::images::{Image, ImageKind, NewImage};
use kiln_image::{OciStore, open_image};

/// An image as the API shows it.
pub fn image(row: ImageRow) -> Result<Image, ControlError> {
    Ok(Image {
        kind: row.kind.parse().map_err(ControlError::Internal)?,
        name: row.name,
        reference: row.reference,
        digest: row.digest,
        registry: row.registry,
        manifest: row.manifest,
        created: time(row.created_at),
    })
}

/// The API's kind of an image read from the store.
fn kind_of(kind: kiln_image::ImageKind) -> ImageKind {
    match kind {
        kiln_image::ImageKind::KilnModel => ImageKind::KilnModel,
        kiln_image::ImageKind::WasmComponent => ImageKind::WasmComponent,
    }
}

/// The message for a local reference that does not resolve in the work group: the same whether
/// the store lacks it or another work group holds it, so that nothing can be probed.
fn not_in_store(text: &str) -> ControlError {
    ControlError::Invalid(format!(
        "no image '{text}' in the local store (build it with `kiln image build`, or name a registry)"
    ))
}

/// An image reference resolved: pinned by digest in the local store.
pub struct Resolved {
    /// The store reference, pinned by digest.
    pub pinned: String,
    /// The manifest digest.
    pub digest: String,
    /// The registry it was pulled from.
    pub registry: Option<String>,
    /// What it holds.
    pub kind: ImageKind,
}

/// Resolves a reference, pulling registry images into the local store first. The image must be
/// deployable.
async fn resolve(
    control: &ControlPlane,
    workgroup_id: &str,
    reference: &str,
    registry_options: &kiln_registry::RegistryOptions,
) -> Result<Resolved, ControlError> {
    if reference.is_empty() || reference.len() > 512 || reference.chars().any(char::is_control) {
        return Err(ControlError::Invalid("invalid image reference".into()));
    }
    let store = OciStore::open(&control.settings().store_dir)
        .map_err(|e| ControlError::Unavailable(format!("local image store: {e}")))?;
    let text = reference.strip_prefix("oci://").unwrap_or(reference);
    let (name, registry) = if kiln_registry::is_registry_reference(text) {
        let parsed = kiln_registry::parse_reference(text)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let pulled = pull_for(control, workgroup_id, &store, text, registry_options).await?;
        (
            format!(
                "{}@{}",
                text.split('@').next().unwrap_or(text),
                pulled.digest
            ),
            Some(parsed.resolve_registry().to_string()),
        )
    } else {
        (text.to_string(), None)
    };
    // Which image the name means is settled first, then whether this work group may use it,
    // and only then is the image read: a digest or tag the work group may not use gets the
    // missing-image answer whatever it names (another work group's image, a layer, a config).
    let not_deployable = |e: kiln_image::ImageError| match e {
        kiln_image::ImageError::NotFound(_) => not_in_store(text),
        other => ControlError::Invalid(format!("image '{text}' cannot be deployed: {other}")),
    };
    let digest = digest_in_store(&store, &name)
        .await?
        .map_err(not_deployable)?;
    // A registry image was claimed by its pull; a local one must be this work group's or the
    // installation's.
    if registry.is_none() && !store::may_use(control.db(), workgroup_id, &digest).await? {
        return Err(not_in_store(text));
    }
    let opened = tokio::task::spawn_blocking({
        let pinned = format!("{}@{digest}", name.split('@').next().unwrap_or(&name));
        move || open_image(&store, &pinned)
    })
    .await
    .map_err(|e| ControlError::Internal(e.to_string()))?;
    let image = opened.map_err(not_deployable)?;
    let digest = image.manifest_digest.to_string();
    let repository = name.split('@').next().unwrap_or(&name).to_string();
    Ok(Resolved {
        pinned: format!("{repository}@{digest}"),
        digest,
        registry,
        kind: kind_of(image.kind),
    })
}

/// The registry options of a pull for the work group, with an environment's credentials when
/// it names one: they go to the environment's registry and nowhere else, so a reference to
/// another registry is refused rather than pulled anonymously.
async fn pull_options(
    control: &ControlPlane,
    workgroup_id: &str,
    reference: &str,
    environment: Option<&str>,
) -> Result<kiln_registry::RegistryOptions, ControlError> {
    let mut options = control.settings().registry.clone();
    let Some(environment) = environment else {
        return Ok(options);
    };
    let credentials =
        crate::runs::targets::registry_credentials(control, workgroup_id, environment)
            .await?
            .ok_or_else(|| {
                ControlError::Invalid(format!(
                    "environment '{environment}' has no registry credentials"
                ))
            })?;
    let text = reference.strip_prefix("oci://").unwrap_or(reference);
    let host = kiln_registry::is_registry_reference(text)
        .then(|| kiln_registry::parse_reference(text).ok())
        .flatten()
        .map(|r| r.resolve_registry().to_string());
    if host.as_deref().is_none_or(|h| !credentials.are_for(h)) {
        return Err(ControlError::Invalid(format!(
            "environment '{environment}' holds credentials for the registry {}, and \
             '{reference}' is not an image of that registry",
            credentials.host
        )));
    }
    options.credentials = Some(credentials);
    Ok(options)
}

/// Registers an image in the work group `workgroup_id`: an existing one by reference, or one
/// built from a manifest of the work group.
pub async fn create(
    control: &ControlPlane,
    workgroup_id: &str,
    new: NewImage,
) -> Result<Image, ControlError> {
    check_name("image", &new.name)?;
    let (resolved, manifest_id) = match (&new.reference, &new.manifest) {
        (Some(reference), None) => {
            let environment = new.environment.as_deref();
            let options = pull_options(control, workgroup_id, reference, environment).await?;
            let resolved = resolve(control, workgroup_id, reference, &options).await?;
            (resolved, None)
        }
        (None, Some(manifest)) => {
            let built = super::manifests::build(control, workgroup_id, manifest, &new.name).await?;
            let resolved = Resolved {
                pinned: built.pinned,
                digest: built.digest,
                registry: None,
                kind: ImageKind::KilnModel,
            };
            (resolved, Some(built.manifest_id))
        }
        _ => {
            return Err(ControlError::Invalid(
                "give either reference (an existing image) or manifest (to build one)".into(),
            ));
        }
    };
    let created_at = crate::db::now_ms();
    let insert = ImageInsert {
        id: &crate::db::new_id(),
        workgroup_id,
        name: &new.name,
        reference: &resolved.pinned,
        digest: &resolved.digest,
        registry: resolved.registry.as_deref(),
        kind: resolved.kind.as_str(),
        created_at,
        manifest_id: manifest_id.as_deref(),
    };
    store::insert(control.db(), &insert).await?;
    Ok(Image {
        name: new.name,
        reference: resolved.pinned,
        digest: resolved.digest,
        registry: resolved.registry,
        kind: resolved.kind,
        manifest: new.manifest,
        created: time(created_at),
    })
}

/// Deletes a work group's image; refused while a deployment uses it.
pub async fn delete(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<(), ControlError> {
    let users = store::deployed_by(control.db(), workgroup_id, name).await?;
    if !users.is_empty() {
        return Err(ControlError::Conflict(format!(
            "image '{name}' is deployed by {}",
            users.join(", ")
        )));
    }
    if !store::delete(control.db(), workgroup_id, name).await? {
        return Err(ControlError::NotFound(format!("image '{name}' not found")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_claimed_image_is_its_work_groups_and_an_unclaimed_one_everyones() {
        let db = crate::store::fixture().await;
        assert!(store::may_use(&db, "w1", "sha256:aa").await.unwrap());
        store::claim(&db, "w1", "sha256:aa").await.unwrap();
        store::claim(&db, "w1", "sha256:aa").await.unwrap();
        assert!(store::may_use(&db, "w1", "sha256:aa").await.unwrap());
        assert!(!store::may_use(&db, "w2", "sha256:aa").await.unwrap());
        assert_eq!(store::claimants(&db, "sha256:aa").await.unwrap(), ["w1"]);
    }

    #[tokio::test]
    async fn images_list_with_the_manifest_they_were_built_from() {
        let db = crate::store::fixture().await;
        for (name, kind) in [("b", "kiln-model"), ("a", "wasm-component")] {
            let insert = ImageInsert {
                id: name,
                workgroup_id: "w1",
                name,
                reference: "iris@sha256:aa",
                digest: "sha256:aa",
                registry: None,
                kind,
                created_at: 0,
                manifest_id: None,
            };
            store::insert(&db, &insert).await.unwrap();
        }
        let again = ImageInsert {
            id: "c",
            workgroup_id: "w1",
            name: "a",
            reference: "x@sha256:bb",
            digest: "sha256:bb",
            registry: None,
            kind: "kiln-model",
            created_at: 0,
            manifest_id: None,
        };
        let error = store::insert(&db, &again).await.unwrap_err();
        assert_eq!(error.to_string(), "image 'a' already exists");
        let listed: Vec<Image> = store::list(&db, "w1", "", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|row| image(row).unwrap())
            .collect();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            (listed[0].name.as_str(), listed[0].kind),
            ("a", ImageKind::WasmComponent)
        );
        assert_eq!(listed[1].manifest, None);
        assert!(store::list(&db, "w2", "", 10).await.unwrap().is_empty());
        assert!(store::delete(&db, "w1", "a").await.unwrap());
        assert!(!store::delete(&db, "w1", "a").await.unwrap());
        let gone = store::named(&db, "w1", "a").await.unwrap_err();
        assert!(matches!(gone, ControlError::NotFound(_)), "{gone}");
    }
}

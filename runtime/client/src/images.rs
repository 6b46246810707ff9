//! Images and manifests of a work group.

use crate::runs::WorkgroupPath;
use crate::{Client, Error, under, workgroups_path};
use kiln_api::manage::Deleted;
use kiln_api::manage::images::{Image, Manifest, ManifestChecked, NewImage, NewManifest};

/// The path of a work group's `kind` (`images`, `manifests`), or of one of them.
fn path((team, workgroup): WorkgroupPath<'_>, kind: &str, name: Option<&str>) -> String {
    under(
        format!("{}/{kind}", workgroups_path(team, Some(workgroup))),
        name,
    )
}

impl Client {
    /// Registers an image: an existing one by reference, or one built from a manifest.
    pub async fn create_image(
        &self,
        workgroup: WorkgroupPath<'_>,
        image: &NewImage,
    ) -> Result<Image, Error> {
        self.post(&path(workgroup, "images", None), image).await
    }

    /// Every image of a work group, page after page.
    pub async fn images(&self, workgroup: WorkgroupPath<'_>) -> Result<Vec<Image>, Error> {
        self.all(&path(workgroup, "images", None)).await
    }

    /// One image.
    pub async fn image(&self, workgroup: WorkgroupPath<'_>, name: &str) -> Result<Image, Error> {
        self.get(&path(workgroup, "images", Some(name))).await
    }

    /// Deletes an image no deployment uses.
    pub async fn delete_image(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Deleted, Error> {
        self.delete(&path(workgroup, "images", Some(name))).await
    }

    /// Registers a manifest over a model version's files.
    pub async fn create_manifest(
        &self,
        workgroup: WorkgroupPath<'_>,
        manifest: &NewManifest,
    ) -> Result<ManifestChecked, Error> {
        self.post(&path(workgroup, "manifests", None), manifest)
            .await
    }

    /// Every manifest of a work group, page after page.
    pub async fn manifests(&self, workgroup: WorkgroupPath<'_>) -> Result<Vec<Manifest>, Error> {
        self.all(&path(workgroup, "manifests", None)).await
    }

    /// One manifest.
    pub async fn manifest(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Manifest, Error> {
        self.get(&path(workgroup, "manifests", Some(name))).await
    }

    /// Deletes a manifest no image was built from.
    pub async fn delete_manifest(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Deleted, Error> {
        self.delete(&path(workgroup, "manifests", Some(name))).await
    }
}

//! Models of a work group, their versions and their aliases.

use crate::runs::WorkgroupPath;
use crate::{Client, Error, segment, under, workgroups_path};
use kiln_api::Page;
use kiln_api::manage::Deleted;
use kiln_api::manage::models::{
    Alias, AliasDeleted, AliasTarget, Model, ModelDetail, ModelVersion, NewModel, NewVersion,
    VersionFromRun, VersionSummary,
};
use reqwest::Method;

/// The path of a work group's models, or of one of them.
fn path((team, workgroup): WorkgroupPath<'_>, model: Option<&str>) -> String {
    under(
        format!("{}/models", workgroups_path(team, Some(workgroup))),
        model,
    )
}

impl Client {
    /// Creates a model.
    pub async fn create_model(
        &self,
        workgroup: WorkgroupPath<'_>,
        model: &NewModel,
    ) -> Result<Model, Error> {
        self.post(&path(workgroup, None), model).await
    }

    /// Every model of a work group, page after page.
    pub async fn models(&self, workgroup: WorkgroupPath<'_>) -> Result<Vec<Model>, Error> {
        self.all(&path(workgroup, None)).await
    }

    /// One model, with its aliases.
    pub async fn model(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<ModelDetail, Error> {
        self.get(&path(workgroup, Some(name))).await
    }

    /// Deletes a model with its versions and their files.
    pub async fn delete_model(
        &self,
        workgroup: WorkgroupPath<'_>,
        name: &str,
    ) -> Result<Deleted, Error> {
        self.delete(&path(workgroup, Some(name))).await
    }

    /// Registers the next version of a model from a tar of its files.
    pub async fn register_version(
        &self,
        workgroup: WorkgroupPath<'_>,
        model: &str,
        archive: Vec<u8>,
        info: &NewVersion,
    ) -> Result<ModelVersion, Error> {
        let path = format!("{}/versions", path(workgroup, Some(model)));
        let request = self
            .request(Method::POST, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .query(info)
            .body(archive);
        self.json(request, &Method::POST, &path).await
    }

    /// Registers the next version of a model from a run's artifacts.
    pub async fn register_version_from_run(
        &self,
        workgroup: WorkgroupPath<'_>,
        model: &str,
        from: &VersionFromRun,
    ) -> Result<ModelVersion, Error> {
        let path = format!("{}/versions/from-run", path(workgroup, Some(model)));
        self.post(&path, from).await
    }

    /// Every version of a model, by number.
    pub async fn model_versions(
        &self,
        workgroup: WorkgroupPath<'_>,
        model: &str,
    ) -> Result<Page<VersionSummary>, Error> {
        self.get(&format!("{}/versions", path(workgroup, Some(model))))
            .await
    }

    /// A version (a number or an alias) with its files.
    pub async fn model_version(
        &self,
        workgroup: WorkgroupPath<'_>,
        model: &str,
        version: &str,
    ) -> Result<ModelVersion, Error> {
        self.get(&format!(
            "{}/versions/{}",
            path(workgroup, Some(model)),
            segment(version)
        ))
        .await
    }

    /// A file of a version, as a response to read (the server ends it short of its length if
    /// the file no longer matches its digest).
    pub async fn model_file(
        &self,
        workgroup: WorkgroupPath<'_>,
        model: &str,
        version: &str,
        file: &str,
    ) -> Result<reqwest::Response, Error> {
        let file: Vec<String> = file.split('/').map(segment).collect();
        let path = format!(
            "{}/versions/{}/files/{}",
            path(workgroup, Some(model)),
            segment(version),
            file.join("/")
        );
        self.send(self.request(Method::GET, &path), &Method::GET, &path)
            .await
    }

    /// Points an alias of a model at a version.
    pub async fn put_alias(
        &self,
        workgroup: WorkgroupPath<'_>,
        model: &str,
        alias: &str,
        version: i64,
    ) -> Result<Alias, Error> {
        let path = format!(
            "{}/aliases/{}",
            path(workgroup, Some(model)),
            segment(alias)
        );
        self.call(Method::PUT, &path, Some(&AliasTarget { version }))
            .await
    }

    /// Removes an alias of a model.
    pub async fn delete_alias(
        &self,
        workgroup: WorkgroupPath<'_>,
        model: &str,
        alias: &str,
    ) -> Result<AliasDeleted, Error> {
        let path = format!(
            "{}/aliases/{}",
            path(workgroup, Some(model)),
            segment(alias)
        );
        self.delete(&path).await
    }
}

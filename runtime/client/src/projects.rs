//! Projects and their commits.

use crate::{Client, Error, segment, under, workgroups_path};
use kiln_api::Page;
use kiln_api::manage::Deleted;
use kiln_api::manage::projects::{Commit, CommitFiles, NewProject, Project, Pushed};
use reqwest::Method;

/// The path of a work group's projects, or of one of them.
pub(crate) fn path(team: &str, workgroup: &str, project: Option<&str>) -> String {
    under(
        format!("{}/projects", workgroups_path(team, Some(workgroup))),
        project,
    )
}

impl Client {
    /// Creates a project, with its repository.
    pub async fn create_project(
        &self,
        team: &str,
        workgroup: &str,
        project: &NewProject,
    ) -> Result<Project, Error> {
        self.post(&path(team, workgroup, None), project).await
    }

    /// Every project of a work group, page after page.
    pub async fn projects(&self, team: &str, workgroup: &str) -> Result<Vec<Project>, Error> {
        self.all(&path(team, workgroup, None)).await
    }

    /// One project.
    pub async fn project(&self, team: &str, workgroup: &str, name: &str) -> Result<Project, Error> {
        self.get(&path(team, workgroup, Some(name))).await
    }

    /// Deletes a project with its repository.
    pub async fn delete_project(
        &self,
        team: &str,
        workgroup: &str,
        name: &str,
    ) -> Result<Deleted, Error> {
        self.delete(&path(team, workgroup, Some(name))).await
    }

    /// Commits a working tree, sent as a tar archive, to the project's `main`.
    pub async fn push_project(
        &self,
        (team, workgroup, name): (&str, &str, &str),
        archive: Vec<u8>,
        message: Option<&str>,
    ) -> Result<Pushed, Error> {
        let path = format!("{}/commits", path(team, workgroup, Some(name)));
        let mut request = self
            .request(Method::POST, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(archive);
        if let Some(message) = message {
            request = request.query(&[("message", message)]);
        }
        self.json(request, &Method::POST, &path).await
    }

    /// The history of a project's `main`, newest first.
    pub async fn project_log(
        &self,
        team: &str,
        workgroup: &str,
        name: &str,
    ) -> Result<Page<Commit>, Error> {
        self.get(&format!("{}/commits", path(team, workgroup, Some(name))))
            .await
    }

    /// The files of one commit of a project.
    pub async fn project_commit(
        &self,
        (team, workgroup, name): (&str, &str, &str),
        commit: &str,
    ) -> Result<CommitFiles, Error> {
        self.get(&format!(
            "{}/commits/{}",
            path(team, workgroup, Some(name)),
            segment(commit)
        ))
        .await
    }
}

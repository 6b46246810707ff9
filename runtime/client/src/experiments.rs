//! Experiments of a project.

use crate::{Client, Error, under};
use kiln_api::manage::Deleted;
use kiln_api::manage::experiments::{Experiment, NewExperiment};

/// Where a project is: its team, work group and name.
pub type ProjectPath<'a> = (&'a str, &'a str, &'a str);

/// The path of a project's experiments, or of one of them.
fn path((team, workgroup, project): ProjectPath<'_>, experiment: Option<&str>) -> String {
    under(
        format!(
            "{}/experiments",
            crate::projects::path(team, workgroup, Some(project))
        ),
        experiment,
    )
}

impl Client {
    /// Creates an experiment in a project.
    pub async fn create_experiment(
        &self,
        project: ProjectPath<'_>,
        experiment: &NewExperiment,
    ) -> Result<Experiment, Error> {
        self.post(&path(project, None), experiment).await
    }

    /// Every experiment of a project, page after page.
    pub async fn experiments(&self, project: ProjectPath<'_>) -> Result<Vec<Experiment>, Error> {
        self.all(&path(project, None)).await
    }

    /// One experiment.
    pub async fn experiment(
        &self,
        project: ProjectPath<'_>,
        name: &str,
    ) -> Result<Experiment, Error> {
        self.get(&path(project, Some(name))).await
    }

    /// Deletes an experiment with its runs.
    pub async fn delete_experiment(
        &self,
        project: ProjectPath<'_>,
        name: &str,
    ) -> Result<Deleted, Error> {
        self.delete(&path(project, Some(name))).await
    }
}

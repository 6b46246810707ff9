//! Runs: submitted to an experiment, listed, shown, canceled; their logs, what they logged,
//! and their artifacts.

use crate::experiments::ProjectPath;
use crate::{Client, Error, segment, workgroups_path};
use kiln_api::Page;
use kiln_api::manage::runs::{
    Artifacts, Canceled, LogBatch, LogQuery, Logged, MetricHistory, NewRun, Run, RunDetail,
    RunFilter, Uploaded,
};
use reqwest::Method;

/// Where a work group is: its team and name.
pub type WorkgroupPath<'a> = (&'a str, &'a str);

/// The path of a work group's run `id`, with `rest` after it (`""`, `/logs`, ...).
fn run_path((team, workgroup): WorkgroupPath<'_>, id: &str, rest: &str) -> String {
    format!(
        "{}/runs/{}{rest}",
        workgroups_path(team, Some(workgroup)),
        segment(id)
    )
}

/// The runs of an experiment.
fn experiment_runs((team, workgroup, project): ProjectPath<'_>, experiment: &str) -> String {
    format!(
        "{}/experiments/{}/runs",
        crate::projects::path(team, workgroup, Some(project)),
        segment(experiment)
    )
}

/// A path in a run's artifacts, each part a segment.
fn artifact_path(path: &str) -> String {
    path.split('/').map(segment).collect::<Vec<_>>().join("/")
}

impl Client {
    /// Submits a run of an experiment, pinned to a commit of its project.
    pub async fn submit_run(
        &self,
        project: ProjectPath<'_>,
        experiment: &str,
        run: &NewRun,
    ) -> Result<Run, Error> {
        self.post(&experiment_runs(project, experiment), run).await
    }

    /// One page of `path` with the filter's query.
    async fn run_page(&self, path: String, filter: &RunFilter) -> Result<Page<Run>, Error> {
        let request = self.request(Method::GET, &path).query(filter);
        self.json(request, &Method::GET, &path).await
    }

    /// A page of a work group's runs, newest first.
    pub async fn runs(
        &self,
        (team, workgroup): WorkgroupPath<'_>,
        filter: &RunFilter,
    ) -> Result<Page<Run>, Error> {
        let path = format!("{}/runs", workgroups_path(team, Some(workgroup)));
        self.run_page(path, filter).await
    }

    /// A page of an experiment's runs, newest first.
    pub async fn experiment_runs(
        &self,
        project: ProjectPath<'_>,
        experiment: &str,
        filter: &RunFilter,
    ) -> Result<Page<Run>, Error> {
        self.run_page(experiment_runs(project, experiment), filter)
            .await
    }

    /// A run by id, with what it logged.
    pub async fn run(&self, workgroup: WorkgroupPath<'_>, id: &str) -> Result<RunDetail, Error> {
        self.get(&run_path(workgroup, id, "")).await
    }

    /// A run by its number in its experiment, with what it logged.
    pub async fn run_by_number(
        &self,
        project: ProjectPath<'_>,
        experiment: &str,
        number: i64,
    ) -> Result<RunDetail, Error> {
        self.get(&format!(
            "{}/{number}",
            experiment_runs(project, experiment)
        ))
        .await
    }

    /// Cancels a run: at once when queued, else when its executor has stopped it.
    pub async fn cancel_run(
        &self,
        workgroup: WorkgroupPath<'_>,
        id: &str,
    ) -> Result<Canceled, Error> {
        self.post(&run_path(workgroup, id, "/cancel"), &serde_json::json!({}))
            .await
    }

    /// A run's log as a response to read chunk by chunk; with `follow`, open until the run
    /// ends.
    pub async fn run_log(
        &self,
        workgroup: WorkgroupPath<'_>,
        id: &str,
        query: &LogQuery,
    ) -> Result<reqwest::Response, Error> {
        let path = run_path(workgroup, id, "/logs");
        let request = self.request(Method::GET, &path).query(query);
        self.send(request, &Method::GET, &path).await
    }

    /// Logs params, metrics and tags to a run, all or none.
    pub async fn log_batch(
        &self,
        workgroup: WorkgroupPath<'_>,
        id: &str,
        batch: &LogBatch,
    ) -> Result<Logged, Error> {
        self.post(&run_path(workgroup, id, "/log-batch"), batch)
            .await
    }

    /// Every value of a run's metric.
    pub async fn metric_history(
        &self,
        workgroup: WorkgroupPath<'_>,
        id: &str,
        key: &str,
    ) -> Result<MetricHistory, Error> {
        let rest = format!("/metrics/{}", segment(key));
        self.get(&run_path(workgroup, id, &rest)).await
    }

    /// A directory of a run's artifacts (`""` for the top).
    pub async fn run_artifacts(
        &self,
        workgroup: WorkgroupPath<'_>,
        id: &str,
        dir: &str,
    ) -> Result<Artifacts, Error> {
        let path = run_path(workgroup, id, "/artifacts");
        let request = self.request(Method::GET, &path).query(&[("path", dir)]);
        self.json(request, &Method::GET, &path).await
    }

    /// Uploads a file to a run's artifacts.
    pub async fn put_run_artifact(
        &self,
        workgroup: WorkgroupPath<'_>,
        id: &str,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> Result<Uploaded, Error> {
        let path = run_path(
            workgroup,
            id,
            &format!("/artifacts/{}", artifact_path(path)),
        );
        let request = self.request(Method::PUT, &path).body(body);
        self.json(request, &Method::PUT, &path).await
    }

    /// A file of a run's artifacts, as a response to read chunk by chunk.
    pub async fn run_artifact(
        &self,
        workgroup: WorkgroupPath<'_>,
        id: &str,
        path: &str,
    ) -> Result<reqwest::Response, Error> {
        let path = run_path(
            workgroup,
            id,
            &format!("/artifacts/{}", artifact_path(path)),
        );
        self.send(self.request(Method::GET, &path), &Method::GET, &path)
            .await
    }
}

//! Projects, their commits, experiments and the runs of an experiment.

use super::Route;
use super::doc::Answer;
use crate::api::{experiments, projects, runs};
use crate::auth::WorkgroupRole as W;

pub(super) fn routes() -> Vec<Route> {
    use crate::access::Access::Workgroup;
    vec![
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects",
            "listProjects",
            "Projects",
            Workgroup(W::Reader),
            Empty,
            get(projects::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects",
            "createProject",
            "A new project",
            Workgroup(W::Contributor),
            Json,
            post(projects::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}",
            "getProject",
            "A project",
            Workgroup(W::Reader),
            Empty,
            get(projects::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}",
            "deleteProject",
            "Delete a project",
            Workgroup(W::Contributor),
            Empty,
            delete(projects::delete)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/commits",
            "pushProject",
            "Commit a tar of the working tree on main",
            Workgroup(W::Contributor),
            Tar,
            post(projects::push)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/commits",
            "listCommits",
            "History of main, newest first",
            Workgroup(W::Reader),
            Empty,
            get(projects::log)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/commits/{commit}",
            "getCommit",
            "The files of a commit",
            Workgroup(W::Reader),
            Empty,
            get(projects::commit)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/experiments",
            "listExperiments",
            "Experiments of a project",
            Workgroup(W::Reader),
            Empty,
            get(experiments::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/experiments",
            "createExperiment",
            "A new experiment (entry point)",
            Workgroup(W::Contributor),
            Json,
            post(experiments::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/experiments/{experiment}",
            "getExperiment",
            "An experiment",
            Workgroup(W::Reader),
            Empty,
            get(experiments::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/experiments/{experiment}",
            "deleteExperiment",
            "Delete an experiment and its runs",
            Workgroup(W::Contributor),
            Empty,
            delete(experiments::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/experiments/{experiment}/runs",
            "listRuns",
            "Runs of an experiment",
            Workgroup(W::Reader),
            Empty,
            get(runs::list_for_experiment)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/experiments/{experiment}/runs",
            "submitRun",
            "Queue a run pinned to a commit",
            Workgroup(W::Contributor),
            Json,
            post(runs::submit)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/experiments/{experiment}/runs/{number}",
            "getRun",
            "A run",
            Workgroup(W::Reader),
            Empty,
            get(runs::get_by_number)
        ),
    ]
}

//! Runs: status, logs, tracking, artifacts, and the MLflow-compatible API.

use super::Route;
use super::doc::Answer;
use crate::api::{mlflow, runs, tracking};
use crate::auth::WorkgroupRole as W;

pub(super) fn routes() -> Vec<Route> {
    use crate::access::Access::Workgroup;
    vec![
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs",
            "listWorkgroupRuns",
            "The work group's runs, newest first (?status=&project=&limit=)",
            Workgroup(W::Reader),
            Empty,
            get(runs::list)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}",
            "getRunById",
            "A run by id, with its params, latest metrics and tags",
            Workgroup(W::Reader),
            Empty,
            get(runs::get)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}/cancel",
            "cancelRun",
            "Cancel a run (queued: at once; running: its executor stops it)",
            Workgroup(W::Contributor),
            Empty,
            post(runs::cancel)
        )
        .answers(Answer::Accepted),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}/logs",
            "getRunLogs",
            "The run's output as text (?offset=&follow=true streams it live until the run ends)",
            Workgroup(W::Reader),
            Empty,
            get(runs::logs)
        )
        .answers(Answer::Text),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}/log-batch",
            "logRunBatch",
            "Log params, metrics and tags (at most 100, 1000 and 100)",
            Workgroup(W::Contributor),
            Json,
            post(tracking::log_batch)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}/metrics/{key}",
            "getRunMetricHistory",
            "Every value of a metric, by step",
            Workgroup(W::Reader),
            Empty,
            get(tracking::metric_history)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}/artifacts",
            "listRunArtifacts",
            "A directory of the run's artifacts (?path=)",
            Workgroup(W::Reader),
            Empty,
            get(tracking::list_artifacts)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}/artifacts/{*path}",
            "putRunArtifact",
            "Upload one artifact of the run",
            Workgroup(W::Contributor),
            Bytes,
            put(tracking::put_artifact)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}/artifacts/{*path}",
            "getRunArtifact",
            "Download one artifact of the run",
            Workgroup(W::Reader),
            Empty,
            get(tracking::get_artifact)
        )
        .answers(Answer::Bytes),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow/{*op}",
            "mlflowGet",
            "MLflow tracking and registry API (reads: reader; writes: contributor, checked per operation)",
            Workgroup(W::Reader),
            Empty,
            get(mlflow::dispatch)
        )
        .answers(Answer::Mlflow),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow/{*op}",
            "mlflowPost",
            "MLflow tracking and registry API (reads: reader; writes: contributor, checked per operation)",
            Workgroup(W::Reader),
            Json,
            post(mlflow::dispatch)
        )
        .answers(Answer::Mlflow),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow/{*op}",
            "mlflowDelete",
            "MLflow registry API: deletes (aliases)",
            Workgroup(W::Contributor),
            Empty,
            delete(mlflow::dispatch)
        )
        .answers(Answer::Mlflow),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow-artifacts/artifacts",
            "mlflowListArtifacts",
            "MLflow artifact proxy: list a directory of a run's artifacts (?path=)",
            Workgroup(W::Reader),
            Empty,
            get(mlflow::list_artifacts)
        )
        .answers(Answer::Mlflow)
        .query::<mlflow::wire::ArtifactsQuery>(),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow-artifacts/artifacts/{*path}",
            "mlflowGetArtifact",
            "MLflow artifact proxy: download a run's artifact",
            Workgroup(W::Reader),
            Empty,
            get(mlflow::artifact)
        )
        .answers(Answer::Bytes),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow-artifacts/artifacts/{*path}",
            "mlflowPutArtifact",
            "MLflow artifact proxy: upload a run's artifact",
            Workgroup(W::Contributor),
            Bytes,
            put(mlflow::artifact)
        )
        .answers(Answer::Mlflow),
    ]
}

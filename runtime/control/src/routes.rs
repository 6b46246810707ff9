//! The route table: every management route with its method, path, operation id, the access it
//! needs and its handler. The router, the authorization layer and the OpenAPI document are all
//! made from this one table, so a route cannot exist without a declared access.

use crate::access::{Access, authorize};
use crate::api::{
    deployments, endpoints, environments, experiments, images, manifests, mlflow, models,
    monitoring, projects, quotas, runs, runtime, teams, tracking, users, workgroups,
};
use crate::auth::{TeamRole as T, WorkgroupRole as W};
use crate::{ControlError, ControlPlane};
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

/// What a route's request body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// None.
    Empty,
    /// A JSON object.
    Json,
    /// A tar archive (`application/x-tar`).
    Tar,
    /// A file, as it is (`application/octet-stream`).
    Bytes,
}

/// One management route.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path, with `{param}` segments.
    pub path: &'static str,
    /// OpenAPI `operationId`.
    pub operation: &'static str,
    /// One line for the API document.
    pub summary: &'static str,
    /// What the caller needs.
    pub access: Access,
    /// The request body.
    pub body: Body,
    handler: MethodRouter<ControlPlane>,
}

const TEAM: &str = "/api/v1/teams/{team}";
const WG: &str = "/api/v1/teams/{team}/workgroups/{workgroup}";

macro_rules! route {
    ($method:ident, $path:expr, $op:literal, $summary:literal, $access:expr, $body:ident, $handler:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            operation: $op,
            summary: $summary,
            access: $access,
            body: Body::$body,
            handler: $handler,
        }
    };
}

/// Every management route.
pub fn table() -> Vec<Route> {
    use Access::{Admin, Open, Runtime, Team, User, Workgroup};
    vec![
        route!(
            GET,
            "/api/v1/health",
            "health",
            "Liveness of the control plane",
            Open,
            Empty,
            get(health)
        ),
        route!(
            GET,
            "/api/v1/openapi.json",
            "openapi",
            "This document",
            Open,
            Empty,
            get(openapi_route)
        ),
        route!(
            GET,
            "/api/v1/whoami",
            "whoami",
            "The caller",
            User,
            Empty,
            get(users::whoami)
        ),
        route!(
            GET,
            "/api/v1/tokens",
            "listTokens",
            "The caller's tokens",
            User,
            Empty,
            get(users::list_tokens)
        ),
        route!(
            POST,
            "/api/v1/tokens",
            "createToken",
            "A new token for the caller (shown once)",
            User,
            Json,
            post(users::create_token)
        ),
        route!(
            DELETE,
            "/api/v1/tokens/{token}",
            "revokeToken",
            "Revoke one of the caller's tokens",
            User,
            Empty,
            delete(users::revoke_token)
        ),
        route!(
            GET,
            "/api/v1/users",
            "listUsers",
            "Users",
            Admin,
            Empty,
            get(users::list)
        ),
        route!(
            POST,
            "/api/v1/users",
            "createUser",
            "A new user and its first token",
            Admin,
            Json,
            post(users::create)
        ),
        route!(
            PATCH,
            "/api/v1/users/{user}",
            "updateUser",
            "Disable or enable a user (a disabled user's tokens answer 401)",
            Admin,
            Json,
            patch(users::update)
        ),
        route!(
            GET,
            "/api/v1/users/{user}/tokens",
            "listUserTokens",
            "A user's tokens (never their values)",
            Admin,
            Empty,
            get(users::list_user_tokens)
        ),
        route!(
            DELETE,
            "/api/v1/users/{user}/tokens/{token}",
            "revokeUserToken",
            "Revoke any user's token",
            Admin,
            Empty,
            delete(users::revoke_user_token)
        ),
        route!(
            GET,
            "/api/v1/teams",
            "listTeams",
            "The caller's teams",
            User,
            Empty,
            get(teams::list)
        ),
        route!(
            POST,
            "/api/v1/teams",
            "createTeam",
            "A new team, owned by the caller",
            User,
            Json,
            post(teams::create)
        ),
        route!(
            GET,
            TEAM,
            "getTeam",
            "A team",
            Team(T::Member),
            Empty,
            get(teams::get)
        ),
        route!(
            DELETE,
            TEAM,
            "deleteTeam",
            "Delete a team and its work groups",
            Team(T::Owner),
            Empty,
            delete(teams::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/members",
            "listTeamMembers",
            "Members of a team",
            Team(T::Member),
            Empty,
            get(teams::members)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/members/{user}",
            "putTeamMember",
            "Add a member or change a role",
            Team(T::Admin),
            Json,
            put(teams::put_member)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/members/{user}",
            "deleteTeamMember",
            "Remove a member",
            Team(T::Admin),
            Empty,
            delete(teams::delete_member)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups",
            "listWorkgroups",
            "Work groups the caller has a role in",
            Team(T::Member),
            Empty,
            get(workgroups::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups",
            "createWorkgroup",
            "A new work group",
            Team(T::Admin),
            Json,
            post(workgroups::create)
        ),
        route!(
            GET,
            WG,
            "getWorkgroup",
            "A work group",
            Workgroup(W::Reader),
            Empty,
            get(workgroups::get)
        ),
        route!(
            DELETE,
            WG,
            "deleteWorkgroup",
            "Delete a work group and its contents",
            Workgroup(W::Owner),
            Empty,
            delete(workgroups::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/quota",
            "getWorkgroupQuota",
            "The work group's quota (deployments, instances, memory, longest deadline)",
            Workgroup(W::Reader),
            Empty,
            get(quotas::get)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/quota",
            "putWorkgroupQuota",
            "Set the work group's quota (null: the installation's default)",
            Admin,
            Json,
            put(quotas::put)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/members",
            "listWorkgroupMembers",
            "Members of a work group",
            Workgroup(W::Reader),
            Empty,
            get(workgroups::members)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/members/{user}",
            "putWorkgroupMember",
            "Give a team member a role",
            Workgroup(W::Owner),
            Json,
            put(workgroups::put_member)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/members/{user}",
            "deleteWorkgroupMember",
            "Remove a member",
            Workgroup(W::Owner),
            Empty,
            delete(workgroups::delete_member)
        ),
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
        ),
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
        ),
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
        ),
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
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/experiments/{experiment}/runs/{run}",
            "getRun",
            "A run",
            Workgroup(W::Reader),
            Empty,
            get(runs::get_by_number)
        ),
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
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}/logs",
            "getRunLogs",
            "The run's output as text (?offset=&follow=true streams it live until the run ends)",
            Workgroup(W::Reader),
            Empty,
            get(runs::logs)
        ),
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
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/runs/{run}/artifacts/{*path}",
            "getRunArtifact",
            "Download one artifact of the run",
            Workgroup(W::Reader),
            Empty,
            get(tracking::get_artifact)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow/{*op}",
            "mlflowGet",
            "MLflow tracking and registry API (reads: reader; writes: contributor, checked per operation)",
            Workgroup(W::Reader),
            Empty,
            get(mlflow::dispatch)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow/{*op}",
            "mlflowPost",
            "MLflow tracking and registry API (reads: reader; writes: contributor, checked per operation)",
            Workgroup(W::Reader),
            Json,
            post(mlflow::dispatch)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow/{*op}",
            "mlflowDelete",
            "MLflow registry API: deletes (aliases)",
            Workgroup(W::Contributor),
            Empty,
            delete(mlflow::dispatch)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow-artifacts/artifacts",
            "mlflowListArtifacts",
            "MLflow artifact proxy: list a directory of a run's artifacts (?path=)",
            Workgroup(W::Reader),
            Empty,
            get(mlflow::list_artifacts)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow-artifacts/artifacts/{*path}",
            "mlflowGetArtifact",
            "MLflow artifact proxy: download a run's artifact",
            Workgroup(W::Reader),
            Empty,
            get(mlflow::artifact)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/projects/{project}/mlflow/api/2.0/mlflow-artifacts/artifacts/{*path}",
            "mlflowPutArtifact",
            "MLflow artifact proxy: upload a run's artifact",
            Workgroup(W::Contributor),
            Bytes,
            put(mlflow::artifact)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models",
            "listModels",
            "Models",
            Workgroup(W::Reader),
            Empty,
            get(models::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models",
            "createModel",
            "A new model",
            Workgroup(W::Contributor),
            Json,
            post(models::create)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}",
            "getModel",
            "A model and its aliases",
            Workgroup(W::Reader),
            Empty,
            get(models::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}",
            "deleteModel",
            "Delete a model, its versions and files",
            Workgroup(W::Contributor),
            Empty,
            delete(models::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions",
            "listModelVersions",
            "Versions of a model",
            Workgroup(W::Reader),
            Empty,
            get(models::list_versions)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions",
            "createModelVersion",
            "Register the next version from a tar of its files",
            Workgroup(W::Contributor),
            Tar,
            post(models::create_version)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions/from-run",
            "createModelVersionFromRun",
            "Register the next version from a run's artifacts (lineage: the run and its commit)",
            Workgroup(W::Contributor),
            Json,
            post(models::create_version_from_run)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions/{version}",
            "getModelVersion",
            "A version (number or alias) and its files",
            Workgroup(W::Reader),
            Empty,
            get(models::get_version)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions/{version}/files/{*path}",
            "getModelFile",
            "A file of a version",
            Workgroup(W::Reader),
            Empty,
            get(models::get_file)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/aliases/{alias}",
            "putModelAlias",
            "Point an alias at a version",
            Workgroup(W::Contributor),
            Json,
            put(models::put_alias)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/aliases/{alias}",
            "deleteModelAlias",
            "Remove an alias",
            Workgroup(W::Contributor),
            Empty,
            delete(models::delete_alias)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/manifests",
            "listManifests",
            "Manifests",
            Workgroup(W::Reader),
            Empty,
            get(manifests::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/manifests",
            "createManifest",
            "A manifest over a model version's files",
            Workgroup(W::Contributor),
            Json,
            post(manifests::create)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/manifests/{manifest}",
            "getManifest",
            "A manifest",
            Workgroup(W::Reader),
            Empty,
            get(manifests::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/manifests/{manifest}",
            "deleteManifest",
            "Delete a manifest no image records",
            Workgroup(W::Contributor),
            Empty,
            delete(manifests::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/images",
            "listImages",
            "Images",
            Workgroup(W::Reader),
            Empty,
            get(images::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/images",
            "createImage",
            "Record an image (local store or registry) or build one from a manifest, pinned by digest",
            Workgroup(W::Contributor),
            Json,
            post(images::create)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/images/{image}",
            "getImage",
            "An image",
            Workgroup(W::Reader),
            Empty,
            get(images::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/images/{image}",
            "deleteImage",
            "Forget an image no deployment uses",
            Workgroup(W::Contributor),
            Empty,
            delete(images::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments",
            "listDeployments",
            "Deployments",
            Workgroup(W::Reader),
            Empty,
            get(deployments::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments",
            "createDeployment",
            "Deploy an image (returns its keys once)",
            Workgroup(W::Contributor),
            Json,
            post(deployments::create)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}",
            "getDeployment",
            "A deployment and its status",
            Workgroup(W::Reader),
            Empty,
            get(deployments::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}",
            "deleteDeployment",
            "Stop and delete a deployment",
            Workgroup(W::Contributor),
            Empty,
            delete(deployments::delete)
        ),
        route!(
            PATCH,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}",
            "updateDeployment",
            "Change a deployment's image, limits, scale or public flag (the old version serves until the new one is ready)",
            Workgroup(W::Contributor),
            Json,
            patch(deployments::update)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints",
            "listEndpoints",
            "Endpoints and their traffic",
            Workgroup(W::Reader),
            Empty,
            get(endpoints::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints",
            "createEndpoint",
            "A stable prediction URL routing to deployments by weight (returns its keys once)",
            Workgroup(W::Contributor),
            Json,
            post(endpoints::create)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}",
            "getEndpoint",
            "An endpoint, its split and each deployment's state",
            Workgroup(W::Reader),
            Empty,
            get(endpoints::get)
        ),
        route!(
            PATCH,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}",
            "updateEndpoint",
            "Change an endpoint's traffic, mirror, rollback policy or public flag",
            Workgroup(W::Contributor),
            Json,
            patch(endpoints::update)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}",
            "deleteEndpoint",
            "Delete an endpoint (its deployments stay)",
            Workgroup(W::Contributor),
            Empty,
            delete(endpoints::delete)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}/keys",
            "regenerateEndpointKey",
            "A new primary or secondary endpoint key (shown once)",
            Workgroup(W::Contributor),
            Json,
            post(endpoints::regenerate_key)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}/events",
            "listEndpointEvents",
            "Traffic changes, mirror and policy changes, rollbacks",
            Workgroup(W::Reader),
            Empty,
            get(endpoints::events)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}/keys",
            "regenerateDeploymentKey",
            "A new primary or secondary key (shown once)",
            Workgroup(W::Contributor),
            Json,
            post(deployments::regenerate_key)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}/monitoring",
            "setDeploymentMonitoring",
            "The monitor component, its config and window, and the retraining policy",
            Workgroup(W::Contributor),
            Json,
            put(monitoring::put)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}/drift",
            "getDeploymentDrift",
            "The drift report of a window (latest, cumulative, or N back)",
            Workgroup(W::Reader),
            Empty,
            get(monitoring::drift)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}/events",
            "listDeploymentEvents",
            "Drift state changes and retraining runs",
            Workgroup(W::Reader),
            Empty,
            get(monitoring::events)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets",
            "listTargets",
            "Execution targets",
            Workgroup(W::Reader),
            Empty,
            get(environments::list_targets)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets",
            "createTarget",
            "A new execution target (local, docker, spark)",
            Workgroup(W::Owner),
            Json,
            post(environments::create_target)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets/{target}",
            "getTarget",
            "An execution target",
            Workgroup(W::Reader),
            Empty,
            get(environments::get_target)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets/{target}",
            "deleteTarget",
            "Delete an execution target",
            Workgroup(W::Owner),
            Empty,
            delete(environments::delete_target)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets/{target}/test",
            "testTarget",
            "Check the target is reachable (Docker API, Spark master, interpreter)",
            Workgroup(W::Reader),
            Empty,
            post(environments::test_target)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/environments",
            "listEnvironments",
            "Environments",
            Workgroup(W::Reader),
            Empty,
            get(environments::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/environments",
            "createEnvironment",
            "A new environment (secrets sealed, never returned)",
            Workgroup(W::Contributor),
            Json,
            post(environments::create)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/environments/{environment}",
            "getEnvironment",
            "An environment, without its secrets",
            Workgroup(W::Reader),
            Empty,
            get(environments::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/environments/{environment}",
            "deleteEnvironment",
            "Delete an environment",
            Workgroup(W::Contributor),
            Empty,
            delete(environments::delete)
        ),
        route!(
            GET,
            "/api/v1/runtime/deployments",
            "runtimeDesired",
            "Deployments runtimes should serve",
            Runtime,
            Empty,
            get(runtime::desired)
        ),
        route!(
            GET,
            "/api/v1/runtime/endpoints",
            "runtimeEndpoints",
            "Endpoints runtimes should route",
            Runtime,
            Empty,
            get(endpoints::desired)
        ),
        route!(
            POST,
            "/api/v1/runtime/endpoints/{endpoint}/rollback",
            "runtimeRollback",
            "A runtime's finding that a rollout breached its endpoint's policy",
            Runtime,
            Json,
            post(endpoints::rollback)
        ),
        route!(
            POST,
            "/api/v1/runtime/deployments/{deployment}/status",
            "runtimeReport",
            "A runtime's status report",
            Runtime,
            Json,
            post(runtime::report)
        ),
        route!(
            POST,
            "/api/v1/runtime/deployments/{deployment}/drift",
            "runtimeDrift",
            "A runtime's drift report on a closed window",
            Runtime,
            Json,
            post(monitoring::upload)
        ),
    ]
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi_route() -> Json<Value> {
    Json(openapi())
}

/// The router of the management API, every route behind [`authorize`] with its access.
pub fn router(control: ControlPlane) -> Router {
    let json_limit = DefaultBodyLimit::max(1 << 20);
    let upload_limit = DefaultBodyLimit::max(control.settings().max_upload_bytes);
    let mut router = Router::new();
    for route in table() {
        let limit = if matches!(route.body, Body::Tar | Body::Bytes) {
            upload_limit
        } else {
            json_limit
        };
        let handler = route
            .handler
            .route_layer(from_fn_with_state(
                (control.clone(), route.access),
                authorize,
            ))
            .layer(limit);
        router = router.route(route.path, handler);
    }
    router
        .fallback(|| async { ControlError::NotFound("no such route".into()).into_response() })
        .method_not_allowed_fallback(|| async {
            (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({ "error": "method not allowed on this route" })),
            )
                .into_response()
        })
        .with_state(control)
}

/// The OpenAPI 3.1 document of the management API, made from the route table. Each operation
/// carries `x-kiln-access`, the access it needs.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in table() {
        let parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({
                    "name": name.trim_start_matches('*'),
                    "in": "path",
                    "required": true,
                    "schema": { "type": "string" },
                })
            })
            .collect();
        let mut operation = json!({
            "operationId": route.operation,
            "summary": route.summary,
            "tags": [route.path.split('/').nth(3).unwrap_or("api")],
            "parameters": parameters,
            "x-kiln-access": route.access.label(),
            "responses": {
                "200": { "description": "OK", "content": { "application/json": {} } },
                "400": { "$ref": "#/components/responses/Error" },
                "401": { "$ref": "#/components/responses/Error" },
                "403": { "$ref": "#/components/responses/Error" },
                "404": { "$ref": "#/components/responses/Error" },
            },
        });
        if route.access == Access::Open {
            operation["security"] = json!([]);
        }
        match route.body {
            Body::Empty => {}
            Body::Json => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/json": { "schema": { "type": "object" } } },
                });
            }
            Body::Tar => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/x-tar": { "schema": { "type": "string", "format": "binary" } } },
                });
            }
            Body::Bytes => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } },
                });
            }
        }
        let entry = paths
            .entry(route.path.replace("{*", "{"))
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kiln control plane",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Teams, work groups, projects, models, images and deployments. Authenticate with `Authorization: Bearer <token>`.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "token": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "properties": { "error": { "type": "string" } },
                        "required": ["error"],
                    } } },
                },
            },
        },
        "security": [{ "token": [] }],
    })
}

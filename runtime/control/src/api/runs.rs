//! Runs: submitted to an experiment (queued, pinned to a commit, executed by the runner in
//! [`crate::runs`]), listed, shown with what they logged, canceled, and their logs read or
//! followed live.

use super::JsonBody;
use super::Query;
use crate::access::Scope;
use crate::domain::runs::{self as domain, Submitter};
use crate::runs::log;
use crate::store::experiments::experiment_id;
use crate::store::projects::project_id;
use crate::store::runs::RunRow;
use crate::{ControlError, ControlPlane};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use kiln_api::Page;
use kiln_api::manage::runs::{Canceled, LogQuery, NewRun, Run, RunDetail, RunFilter};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// The run `run` (its id) if it is in the scope's work group.
pub(crate) async fn run_in_scope(
    control: &ControlPlane,
    scope: &Scope,
    run: &str,
) -> Result<RunRow, ControlError> {
    domain::find(control, &scope.workgroup()?.id, run).await
}

/// `POST .../experiments/{experiment}/runs`: a queued run pinned to a commit.
pub async fn submit(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<NewRun>,
) -> Reply<Run> {
    let at = Submitter {
        workgroup_id: &scope.workgroup()?.id,
        user_id: &scope.principal()?.user_id,
        project_id: &project_id(&control, &scope, &project).await?,
        experiment: &experiment,
    };
    let run = domain::submit(&control, at, body).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// `GET .../experiments/{experiment}/runs`: newest first.
pub async fn list_for_experiment(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
    Query(filter): Query<RunFilter>,
) -> Reply<Page<Run>> {
    let project_id = project_id(&control, &scope, &project).await?;
    let experiment_id = experiment_id(control.db(), &project_id, &experiment).await?;
    let page = domain::list_for_experiment(&control, &experiment_id, &filter).await?;
    Ok((StatusCode::OK, Json(page)))
}

/// `GET .../workgroups/{workgroup}/runs`: the work group's runs, newest first.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(filter): Query<RunFilter>,
) -> Reply<Page<Run>> {
    let page = domain::list_in_workgroup(&control, &scope.workgroup()?.id, &filter).await?;
    Ok((StatusCode::OK, Json(page)))
}

/// `GET .../experiments/{experiment}/runs/{run}`: by number.
pub async fn get_by_number(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment, run)): Path<(String, String, String, String, String)>,
) -> Reply<RunDetail> {
    let project_id = project_id(&control, &scope, &project).await?;
    let experiment_id = experiment_id(control.db(), &project_id, &experiment).await?;
    let row = domain::find_by_number(&control, &experiment_id, &run).await?;
    Ok((StatusCode::OK, Json(domain::detail(&control, row).await?)))
}

/// `GET .../workgroups/{workgroup}/runs/{run}`: a run by id, with what it logged.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
) -> Reply<RunDetail> {
    let row = run_in_scope(&control, &scope, &run).await?;
    Ok((StatusCode::OK, Json(domain::detail(&control, row).await?)))
}

/// `POST .../runs/{run}/cancel`: a queued run is canceled at once; a preparing or running one
/// is stopped by its executor (the answer says `cancel_requested` until it has).
pub async fn cancel(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
) -> Reply<Canceled> {
    let row = run_in_scope(&control, &scope, &run).await?;
    let by = &scope.principal()?.name;
    let canceled = domain::cancel(&control, &scope.workgroup()?.id, row, by).await?;
    Ok((StatusCode::ACCEPTED, Json(canceled)))
}

/// `GET .../runs/{run}/logs`: the run's output as text, streamed; with `follow=true`, live
/// until the run ends.
pub async fn logs(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, run)): Path<(String, String, String)>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ControlError> {
    let row = run_in_scope(&control, &scope, &run).await?;
    let permit = query
        .follow
        .then(|| control.follow_permit(&scope.principal()?.user_id))
        .transpose()?;
    let stream = log::read(control.clone(), row.id, query.offset, permit)
        .map(|item| item.map_err(|e| std::io::Error::other(e.to_string())));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

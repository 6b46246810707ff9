//! Experiments: named entry points of a project (a script, its arguments, a default target).
//! An experiment made by a tracking client (the mlflow package) has no script: its runs are
//! logged to, not executed. Runs are in [`super::runs`].

use super::Query;
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::experiments as domain;
use crate::store::experiments as store;
use crate::store::projects::project_id;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::manage::Deleted;
use kiln_api::manage::experiments::{Experiment, NewExperiment};

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `POST .../projects/{project}/experiments`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<NewExperiment>,
) -> Reply<Experiment> {
    domain::check_new(&body)?;
    let project_id = project_id(&control, &scope, &project).await?;
    let created = domain::create(control.db(), (&project_id, &project), body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET .../projects/{project}/experiments`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Experiment>> {
    let project_id = project_id(&control, &scope, &project).await?;
    let rows = store::list(control.db(), &project_id, page.after(), page.fetch()).await?;
    let experiments = rows
        .into_iter()
        .map(|row| domain::experiment(&project, row))
        .collect();
    Ok((
        StatusCode::OK,
        Json(page.page(experiments, |e: &Experiment| &e.name)),
    ))
}

/// `GET .../experiments/{experiment}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
) -> Reply<Experiment> {
    let project_id = project_id(&control, &scope, &project).await?;
    let row = store::named(control.db(), &project_id, &experiment).await?;
    Ok((StatusCode::OK, Json(domain::experiment(&project, row))))
}

/// `DELETE .../experiments/{experiment}`: with its runs.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, experiment)): Path<(String, String, String, String)>,
) -> Reply<Deleted> {
    let project_id = project_id(&control, &scope, &project).await?;
    let id = store::experiment_id(control.db(), &project_id, &experiment).await?;
    store::delete(control.db(), &id).await?;
    Ok((
        StatusCode::OK,
        Json(Deleted {
            name: experiment,
            deleted: true,
        }),
    ))
}

//! Projects: the logical container for the work of a solution, inside a work group.

use super::Query;
use super::{JsonBody, Page};
use crate::access::Scope;
use crate::domain::listings;
use crate::domain::projects as domain;
use crate::uploads::{require_tar, spool_upload};
use crate::{ControlError, ControlPlane};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use kiln_api::manage::Deleted;
use kiln_api::manage::projects::{Commit, CommitFiles, NewProject, Project, Pushed};
use serde::Deserialize;

type Reply<T> = Result<(StatusCode, Json<T>), ControlError>;

/// `POST .../workgroups/{workgroup}/projects`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewProject>,
) -> Reply<Project> {
    let project = domain::create(&control, scope.workgroup()?, body).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// `GET .../workgroups/{workgroup}/projects`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Project>> {
    let projects = listings::projects(&control, scope.workgroup()?, &page).await?;
    Ok((StatusCode::OK, Json(projects)))
}

/// `GET .../projects/{project}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
) -> Reply<Project> {
    let row = domain::find(&control, scope.workgroup()?, &project).await?;
    Ok((StatusCode::OK, Json(domain::project(row))))
}

/// `DELETE .../projects/{project}`.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
) -> Reply<Deleted> {
    domain::delete(&control, scope.workgroup()?, &project).await?;
    Ok((
        StatusCode::OK,
        Json(Deleted {
            name: project,
            deleted: true,
        }),
    ))
}

/// A push's message.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushInfo {
    /// The commit message.
    #[serde(default)]
    message: Option<String>,
}

/// `POST .../projects/{project}/commits` with a tar of the working tree: one commit on `main`.
pub async fn push(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
    Query(info): Query<PushInfo>,
    headers: HeaderMap,
    body: Body,
) -> Reply<Pushed> {
    require_tar(&headers, "the working tree")?;
    let row = domain::find(&control, scope.workgroup()?, &project).await?;
    // The archive goes to a file, and each of its files from there into the tree git commits:
    // a push is never whole in memory.
    let spooled = spool_upload(&control, body).await?;
    let message = domain::commit_message(info.message)?;
    let author = scope.principal()?.name.clone();
    let pushed = domain::push(&control, row, spooled, message, author).await?;
    Ok((StatusCode::CREATED, Json(pushed)))
}

/// `GET .../projects/{project}/commits`: history of `main`, newest first.
pub async fn log(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
    Query(page): Query<Page>,
) -> Reply<kiln_api::Page<Commit>> {
    let commits = domain::log(&control, scope.workgroup()?, &project, page.limit()).await?;
    Ok((
        StatusCode::OK,
        Json(kiln_api::Page {
            items: commits,
            next: None,
        }),
    ))
}

/// `GET .../projects/{project}/commits/{commit}`: the files of a commit.
pub async fn commit(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, commit)): Path<(String, String, String, String)>,
) -> Reply<CommitFiles> {
    let files = domain::files(&control, scope.workgroup()?, &project, commit).await?;
    Ok((StatusCode::OK, Json(files)))
}

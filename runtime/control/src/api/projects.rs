//! Projects: the logical container for the work of a solution, inside a work group.

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::git::Repository;
use crate::names::check_name;
use crate::store::projects::{project_id, repository, repository_dir};
use crate::uploads::{extract, require_tar, spool_upload, tar_index};
use crate::{ControlError, ControlPlane};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// A new project.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST .../workgroups/{workgroup}/projects`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewProject>,
) -> Reply {
    check_name("project", &body.name)?;
    let wg = scope.workgroup()?;
    let created = now_ms();
    let id = new_id();
    sqlx::query(
        "INSERT INTO projects (id, workgroup_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&wg.id)
    .bind(&body.name)
    .bind(&body.description)
    .bind(created)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("project", &body.name))?;
    let dir = repository_dir(&control, &id);
    let initialized = tokio::task::spawn_blocking(move || Repository::init(dir))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))
        .and_then(|r| r);
    if let Err(e) = initialized {
        let _ = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(&id)
            .execute(control.db().pool())
            .await;
        return Err(e);
    }
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "name": body.name, "description": body.description, "created": time(created) }),
        ),
    ))
}

/// `GET .../workgroups/{workgroup}/projects`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT name, description, created_at FROM projects WHERE workgroup_id = $1 AND name > $2 \
         ORDER BY name LIMIT $3",
    )
    .bind(&scope.workgroup()?.id)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(name, description, created)| {
            json!({ "name": name, "description": description, "created": time(created) })
        })
        .collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// `GET .../projects/{project}`.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
) -> Reply {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT description, created_at FROM projects WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(&scope.workgroup()?.id)
    .bind(&project)
    .fetch_optional(control.db().pool())
    .await?;
    let (description, created) =
        row.ok_or_else(|| ControlError::NotFound(format!("project '{project}' not found")))?;
    Ok((
        StatusCode::OK,
        Json(json!({ "name": project, "description": description, "created": time(created) })),
    ))
}

/// `DELETE .../projects/{project}`.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
) -> Reply {
    let id = project_id(&control, &scope, &project).await?;
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(&id)
        .execute(control.db().pool())
        .await?;
    let _ = std::fs::remove_dir_all(repository_dir(&control, &id));
    Ok((
        StatusCode::OK,
        Json(json!({ "name": project, "deleted": true })),
    ))
}

/// A push's message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushInfo {
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
) -> Reply {
    require_tar(&headers, "the working tree")?;
    let id = project_id(&control, &scope, &project).await?;
    // The archive goes to a file, and each of its files from there into the tree git commits:
    // a push is never whole in memory.
    let spooled = spool_upload(&control, body).await?;
    let message = info
        .message
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "kiln project push".into());
    if message.len() > 4096 || message.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ControlError::Invalid(
            "the message must be printable text of at most 4096 bytes".into(),
        ));
    }
    let author = scope.principal()?.name.clone();
    let repository = repository(&control, &id);
    let scratch = control
        .settings()
        .projects_dir
        .join(".scratch")
        .join(new_id());
    let result = tokio::task::spawn_blocking(move || {
        let index = tar_index(spooled.path())?;
        if let Some((path, _, _)) = index
            .iter()
            .find(|(p, _, _)| p.split('/').any(|segment| segment == ".git"))
        {
            return Err(ControlError::Invalid(format!(
                "'{path}': a pushed tree holds no .git"
            )));
        }
        let count = index.len();
        let extracted = extract(spooled.path(), &index, &scratch.join("tree"));
        let sha = extracted.and_then(|()| repository.commit_work_tree(&author, &message, &scratch));
        let _ = std::fs::remove_dir_all(&scratch);
        sha.map(|sha| (sha, count))
    })
    .await
    .map_err(|e| ControlError::Internal(e.to_string()))?;
    let (sha, count) = result?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "project": project, "commit": sha, "files": count })),
    ))
}

/// `GET .../projects/{project}/commits`: history of `main`, newest first.
pub async fn log(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project)): Path<(String, String, String)>,
    Query(page): Query<Page>,
) -> Reply {
    let id = project_id(&control, &scope, &project).await?;
    let repository = repository(&control, &id);
    let limit = page.limit.unwrap_or(100).clamp(1, 1000) as usize;
    let commits = tokio::task::spawn_blocking(move || repository.log(limit))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))??;
    let items: Vec<Value> = commits
        .into_iter()
        .map(|c| {
            json!({ "commit": c.sha, "author": c.author, "time": time(c.time * 1000), "message": c.message })
        })
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({ "items": items, "next": null })),
    ))
}

/// `GET .../projects/{project}/commits/{commit}`: the files of a commit.
pub async fn commit(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, project, commit)): Path<(String, String, String, String)>,
) -> Reply {
    let id = project_id(&control, &scope, &project).await?;
    let repository = repository(&control, &id);
    let (sha, files) = tokio::task::spawn_blocking(move || repository.files(&commit))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))??;
    Ok((
        StatusCode::OK,
        Json(json!({ "project": project, "commit": sha, "files": files })),
    ))
}

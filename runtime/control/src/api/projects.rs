//! Projects: the logical container for the work of a solution, inside a work group.

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::{ControlError, ControlPlane};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
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
    sqlx::query(
        "INSERT INTO projects (id, workgroup_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(&wg.id)
    .bind(&body.name)
    .bind(&body.description)
    .bind(created)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("project", &body.name))?;
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
    let done = sqlx::query("DELETE FROM projects WHERE workgroup_id = $1 AND name = $2")
        .bind(&scope.workgroup()?.id)
        .bind(&project)
        .execute(control.db().pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!(
            "project '{project}' not found"
        )));
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "name": project, "deleted": true })),
    ))
}

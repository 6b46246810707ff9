//! Projects as stored: a row in the work group, a bare Git repository under the data directory.

use crate::access::Scope;
use crate::git::Repository;
use crate::{ControlError, ControlPlane};
use std::path::PathBuf;

pub(crate) fn repository_dir(control: &ControlPlane, project_id: &str) -> PathBuf {
    control
        .settings()
        .projects_dir
        .join(format!("{project_id}.git"))
}

/// The id of project `name` in the scope's work group.
pub(crate) async fn project_id(
    control: &ControlPlane,
    scope: &Scope,
    name: &str,
) -> Result<String, ControlError> {
    sqlx::query_scalar("SELECT id FROM projects WHERE workgroup_id = $1 AND name = $2")
        .bind(&scope.workgroup()?.id)
        .bind(name)
        .fetch_optional(control.db().pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("project '{name}' not found")))
}

/// The repository of a project.
pub(crate) fn repository(control: &ControlPlane, project_id: &str) -> Repository {
    Repository::open(repository_dir(control, project_id))
}

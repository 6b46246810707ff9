//! Projects: a row in the work group and a bare Git repository under the data directory; a
//! push is a tar of the working tree, committed file by file on `main`.

use super::time;
use crate::access::WorkgroupScope;
use crate::db::{new_id, now_ms};
use crate::git::Repository;
use crate::names::check_name;
use crate::store::projects::{self as store, ProjectRow, repository, repository_dir};
use crate::uploads::{Spooled, extract, tar_index};
use crate::{ControlError, ControlPlane};
use kiln_api::manage::projects::{Commit, CommitFiles, NewProject, Project, Pushed};

/// The longest commit message, bytes.
const MAX_MESSAGE: usize = 4096;

/// A project as the API shows it.
pub fn project(row: ProjectRow) -> Project {
    Project {
        name: row.name,
        description: row.description,
        created: time(row.created_at),
    }
}

/// Creates a project and its repository; a repository that cannot be made leaves no row.
pub async fn create(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    new: NewProject,
) -> Result<Project, ControlError> {
    check_name("project", &new.name)?;
    let row = ProjectRow {
        id: new_id(),
        name: new.name,
        description: new.description,
        created_at: now_ms(),
    };
    store::insert(control.db(), &workgroup.id, &row).await?;
    let dir = repository_dir(control, &row.id);
    let initialized = tokio::task::spawn_blocking(move || Repository::init(dir))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))
        .and_then(|r| r);
    if let Err(e) = initialized {
        let _ = store::delete(control.db(), &row.id).await;
        return Err(e);
    }
    Ok(project(row))
}

/// Deletes a project with its repository.
pub async fn delete(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    name: &str,
) -> Result<(), ControlError> {
    let row = store::named(control.db(), &workgroup.id, name).await?;
    store::delete(control.db(), &row.id).await?;
    let _ = std::fs::remove_dir_all(repository_dir(control, &row.id));
    Ok(())
}

/// A push's commit message: the one given (printable, at most 4096 bytes), else a default.
pub fn commit_message(given: Option<String>) -> Result<String, ControlError> {
    let message = given
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "kiln project push".into());
    if message.len() > MAX_MESSAGE || message.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ControlError::Invalid(
            "the message must be printable text of at most 4096 bytes".into(),
        ));
    }
    Ok(message)
}

/// The project `name` of the work group (404 when there is none).
pub async fn find(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    name: &str,
) -> Result<ProjectRow, ControlError> {
    store::named(control.db(), &workgroup.id, name).await
}

/// Commits a spooled tar of the working tree to the project's `main`, as `author`: the
/// archive's files are extracted one at a time into a scratch tree, never whole in memory.
pub async fn push(
    control: &ControlPlane,
    row: ProjectRow,
    spooled: Spooled,
    message: String,
    author: String,
) -> Result<Pushed, ControlError> {
    let repository = repository(control, &row.id);
    let scratch = control
        .settings()
        .projects_dir
        .join(".scratch")
        .join(new_id());
    let (commit, files) = tokio::task::spawn_blocking(move || {
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
    .map_err(|e| ControlError::Internal(e.to_string()))??;
    Ok(Pushed {
        project: row.name,
        commit,
        files,
    })
}

/// The history of the project's `main`, newest first, at most `limit` commits.
pub async fn log(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    name: &str,
    limit: usize,
) -> Result<Vec<Commit>, ControlError> {
    let row = store::named(control.db(), &workgroup.id, name).await?;
    let repository = repository(control, &row.id);
    let commits = tokio::task::spawn_blocking(move || repository.log(limit))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))??;
    Ok(commits
        .into_iter()
        .map(|c| Commit {
            commit: c.sha,
            author: c.author,
            time: time(c.time * 1000),
            message: c.message,
        })
        .collect())
}

/// The files of a commit (a SHA or a prefix of one, or `main`).
pub async fn files(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    name: &str,
    commit: String,
) -> Result<CommitFiles, ControlError> {
    let row = store::named(control.db(), &workgroup.id, name).await?;
    let repository = repository(control, &row.id);
    let (commit, files) = tokio::task::spawn_blocking(move || repository.files(&commit))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))??;
    Ok(CommitFiles {
        project: row.name,
        commit,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_message_is_printable_and_bounded() {
        assert_eq!(commit_message(None).unwrap(), "kiln project push");
        assert_eq!(
            commit_message(Some("  ".into())).unwrap(),
            "kiln project push"
        );
        assert_eq!(
            commit_message(Some("first\nsecond".into())).unwrap(),
            "first\nsecond"
        );
        for bad in ["a\u{1b}[31mred".to_string(), "x".repeat(MAX_MESSAGE + 1)] {
            let error = commit_message(Some(bad)).unwrap_err();
            assert!(matches!(error, ControlError::Invalid(_)), "{error}");
        }
        assert!(commit_message(Some("x".repeat(MAX_MESSAGE))).is_ok());
    }

    #[tokio::test]
    async fn projects_are_stored_per_work_group_by_name() {
        let db = crate::store::fixture().await;
        let row = |id: &str, name: &str| ProjectRow {
            id: id.into(),
            name: name.into(),
            description: format!("{name}!"),
            created_at: 0,
        };
        // The fixture has project iris (p1) in lab (w1).
        store::insert(&db, "w1", &row("p2", "digits"))
            .await
            .unwrap();
        // The same name in another work group is another project.
        store::insert(&db, "w2", &row("p3", "iris")).await.unwrap();
        let twice = store::insert(&db, "w1", &row("p4", "iris"))
            .await
            .unwrap_err();
        assert_eq!(twice.to_string(), "project 'iris' already exists");
        let names: Vec<String> = store::list(&db, "w1", "", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["digits", "iris"]);
        assert_eq!(store::named(&db, "w2", "iris").await.unwrap().id, "p3");
        let shown = project(store::named(&db, "w1", "iris").await.unwrap());
        assert_eq!(
            (shown.description.as_str(), shown.created.as_str()),
            ("", "1970-01-01T00:00:00.000Z")
        );
        store::delete(&db, "p1").await.unwrap();
        let gone = store::named(&db, "w1", "iris").await.unwrap_err();
        assert!(matches!(gone, ControlError::NotFound(_)), "{gone}");
        assert!(store::named(&db, "w2", "iris").await.is_ok());
    }
}

//! Models as stored: a row per model of a work group, its versions (numbered per model, with
//! their lineage), each version's files (path, size, SHA-256; the bytes are in the artifact
//! store under `models/<model>/<version>/`), and aliases pointing at versions.

use crate::ControlError;
use crate::db::{Backend, Db};

/// A model's row, with its newest version's number.
#[derive(Debug, sqlx::FromRow)]
pub struct ModelRow {
    /// The model's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Created, in ms since the epoch.
    pub created_at: i64,
    /// Its newest version's number.
    pub latest_version: Option<i64>,
}

const MODEL: &str = "SELECT m.id, m.name, m.description, m.created_at, \
    (SELECT MAX(v.version) FROM model_versions v WHERE v.model_id = m.id) AS latest_version \
    FROM models m";

/// A version's row.
#[derive(Debug, sqlx::FromRow)]
pub struct VersionRow {
    /// The version's id.
    pub id: String,
    /// Its number.
    pub version: i64,
    /// What it is.
    pub description: String,
    /// The run it came from.
    pub run_id: Option<String>,
    /// The commit it came from.
    pub commit_sha: Option<String>,
    /// Registered, in ms since the epoch.
    pub created_at: i64,
}

const VERSION: &str =
    "SELECT id, version, description, run_id, commit_sha, created_at FROM model_versions";

/// A file of a version.
#[derive(Debug, sqlx::FromRow)]
pub struct FileRow {
    /// Its path in the version.
    pub path: String,
    /// Its size in bytes.
    pub size: i64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

/// Adds a model to a work group; a name it already has is a conflict naming it.
pub async fn insert(db: &Db, workgroup_id: &str, row: &ModelRow) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO models (id, workgroup_id, name, description, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&row.id)
    .bind(workgroup_id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(row.created_at)
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("model", &row.name))?;
    Ok(())
}

/// Up to `fetch` models of a work group named after `after`, in name order.
pub async fn list(
    db: &Db,
    workgroup_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<ModelRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MODEL} WHERE m.workgroup_id = $1 AND m.name > $2 ORDER BY m.name LIMIT $3"
    )))
    .bind(workgroup_id)
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The model `name` of a work group (404 when there is none).
pub async fn named(db: &Db, workgroup_id: &str, name: &str) -> Result<ModelRow, ControlError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MODEL} WHERE m.workgroup_id = $1 AND m.name = $2"
    )))
    .bind(workgroup_id)
    .bind(name)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("model '{name}' not found")))
}

/// The id of the model `name` of a work group (404 when there is none).
pub async fn model_id(db: &Db, workgroup_id: &str, name: &str) -> Result<String, ControlError> {
    sqlx::query_scalar("SELECT id FROM models WHERE workgroup_id = $1 AND name = $2")
        .bind(workgroup_id)
        .bind(name)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("model '{name}' not found")))
}

/// A model's aliases with the numbers of the versions they point at, by alias.
pub async fn aliases(db: &Db, model_id: &str) -> Result<Vec<(String, i64)>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT a.alias, v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id \
         WHERE a.model_id = $1 ORDER BY a.alias",
    )
    .bind(model_id)
    .fetch_all(db.pool())
    .await?)
}

/// Deletes the model `id` with its versions, files and aliases (their bytes are the caller's).
pub async fn delete(db: &Db, id: &str) -> Result<(), ControlError> {
    sqlx::query("DELETE FROM models WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A version to record, with its files.
pub struct VersionInsert<'a> {
    /// The model.
    pub model_id: &'a str,
    /// The version's id (its files are stored under it already).
    pub id: &'a str,
    /// What it is.
    pub description: &'a str,
    /// The run it came from.
    pub run_id: Option<&'a str>,
    /// The commit it came from.
    pub commit_sha: Option<&'a str>,
    /// When, in ms since the epoch.
    pub created_at: i64,
    /// Its files.
    pub files: &'a [FileRow],
}

/// Records a version under the model's next number, with its files, all or nothing; returns the
/// number. Writers of one model take turns: SQLite's write transactions are exclusive already,
/// and on PostgreSQL the model's row is locked. Should two still pick one number, the unique
/// key refuses one, which tries again.
pub async fn insert_version(db: &Db, version: &VersionInsert<'_>) -> Result<i64, ControlError> {
    for _ in 0..8 {
        let mut tx = db.begin().await?;
        if db.backend() == Backend::Postgres {
            sqlx::query("SELECT id FROM models WHERE id = $1 FOR UPDATE")
                .bind(version.model_id)
                .execute(&mut *tx)
                .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO model_versions (id, model_id, version, description, run_id, commit_sha, created_at) \
             SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6 FROM model_versions WHERE model_id = $2",
        )
        .bind(version.id)
        .bind(version.model_id)
        .bind(version.description)
        .bind(version.run_id)
        .bind(version.commit_sha)
        .bind(version.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => continue,
            other => {
                other?;
            }
        }
        for file in version.files {
            sqlx::query(
                "INSERT INTO model_files (version_id, path, size, sha256) VALUES ($1, $2, $3, $4)",
            )
            .bind(version.id)
            .bind(&file.path)
            .bind(file.size)
            .bind(&file.sha256)
            .execute(&mut *tx)
            .await?;
        }
        let number: i64 = sqlx::query_scalar("SELECT version FROM model_versions WHERE id = $1")
            .bind(version.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(number);
    }
    Err(ControlError::Unavailable(
        "too many concurrent registrations: try again".into(),
    ))
}

/// The version numbered `number` of a model.
pub async fn version_numbered(
    db: &Db,
    model_id: &str,
    number: i64,
) -> Result<Option<VersionRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{VERSION} WHERE model_id = $1 AND version = $2"
    )))
    .bind(model_id)
    .bind(number)
    .fetch_optional(db.pool())
    .await?)
}

/// The version a model's alias points at.
pub async fn version_aliased(
    db: &Db,
    model_id: &str,
    alias: &str,
) -> Result<Option<VersionRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT v.id, v.version, v.description, v.run_id, v.commit_sha, v.created_at \
         FROM model_aliases a JOIN model_versions v ON v.id = a.version_id \
         WHERE a.model_id = $1 AND a.alias = $2",
    )
    .bind(model_id)
    .bind(alias)
    .fetch_optional(db.pool())
    .await?)
}

/// Every version of a model, by number.
pub async fn versions(db: &Db, model_id: &str) -> Result<Vec<VersionRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{VERSION} WHERE model_id = $1 ORDER BY version"
    )))
    .bind(model_id)
    .fetch_all(db.pool())
    .await?)
}

/// The files of a version, by path.
pub async fn files(db: &Db, version_id: &str) -> Result<Vec<FileRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT path, size, sha256 FROM model_files WHERE version_id = $1 ORDER BY path",
    )
    .bind(version_id)
    .fetch_all(db.pool())
    .await?)
}

/// The recorded SHA-256 of a version's file, if it has that file.
pub async fn file_sha(
    db: &Db,
    version_id: &str,
    path: &str,
) -> Result<Option<String>, ControlError> {
    Ok(
        sqlx::query_scalar("SELECT sha256 FROM model_files WHERE version_id = $1 AND path = $2")
            .bind(version_id)
            .bind(path)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Points a model's alias at a version (moving it if it pointed elsewhere).
pub async fn point_alias(
    db: &Db,
    model_id: &str,
    alias: &str,
    version_id: &str,
) -> Result<(), ControlError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM model_aliases WHERE model_id = $1 AND alias = $2")
        .bind(model_id)
        .bind(alias)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO model_aliases (model_id, alias, version_id) VALUES ($1, $2, $3)")
        .bind(model_id)
        .bind(alias)
        .bind(version_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a model's alias; false when it had none of that name.
pub async fn delete_alias(db: &Db, model_id: &str, alias: &str) -> Result<bool, ControlError> {
    let done = sqlx::query("DELETE FROM model_aliases WHERE model_id = $1 AND alias = $2")
        .bind(model_id)
        .bind(alias)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A version as MLflow shows it: with where its files came from.
#[derive(Debug, sqlx::FromRow)]
pub struct SourcedVersion {
    /// What it is.
    pub description: String,
    /// The run it came from.
    pub run_id: Option<String>,
    /// Where its files came from (an MLflow source URI), or empty.
    pub source: String,
    /// Registered, in ms since the epoch.
    pub created_at: i64,
}

/// The version numbered `number` of a model, with its source.
pub async fn sourced_version(
    db: &Db,
    model_id: &str,
    number: i64,
) -> Result<Option<SourcedVersion>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT description, run_id, source, created_at FROM model_versions \
         WHERE model_id = $1 AND version = $2",
    )
    .bind(model_id)
    .bind(number)
    .fetch_optional(db.pool())
    .await?)
}

/// The aliases pointing at the version numbered `number` of a model, by alias.
pub async fn aliases_of_version(
    db: &Db,
    model_id: &str,
    number: i64,
) -> Result<Vec<String>, ControlError> {
    Ok(sqlx::query_scalar(
        "SELECT a.alias FROM model_aliases a JOIN model_versions v ON v.id = a.version_id \
         WHERE a.model_id = $1 AND v.version = $2 ORDER BY a.alias",
    )
    .bind(model_id)
    .bind(number)
    .fetch_all(db.pool())
    .await?)
}

/// Records where the version numbered `number` of a model came from.
pub async fn set_source(
    db: &Db,
    model_id: &str,
    number: i64,
    source: &str,
) -> Result<(), ControlError> {
    sqlx::query("UPDATE model_versions SET source = $1 WHERE model_id = $2 AND version = $3")
        .bind(source)
        .bind(model_id)
        .bind(number)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A version of a work group's model, as a search of every version lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct NumberedVersion {
    /// The model's id.
    pub model_id: String,
    /// The model's name.
    pub name: String,
    /// The version's number.
    pub version: i64,
}

/// Every version of every model of a work group, by model name, newest version first.
pub async fn workgroup_versions(
    db: &Db,
    workgroup_id: &str,
) -> Result<Vec<NumberedVersion>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT m.id AS model_id, m.name, v.version FROM models m \
         JOIN model_versions v ON v.model_id = m.id \
         WHERE m.workgroup_id = $1 ORDER BY m.name, v.version DESC",
    )
    .bind(workgroup_id)
    .fetch_all(db.pool())
    .await?)
}

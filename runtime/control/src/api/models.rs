//! Models, their versions (files in the artifact store, lineage to a run and a commit) and
//! aliases such as `production`.

use super::{JsonBody, Page, time};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::names::{check_artifact_path, check_name};
use crate::uploads::{Spooled, require_tar, spool_upload, tar_index};
use crate::{ControlError, ControlPlane};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// version, description, run, commit, created.
type VersionRow = (i64, String, Option<String>, Option<String>, i64);

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// A new model.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST .../workgroups/{workgroup}/models`.
pub async fn create(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<NewModel>,
) -> Reply {
    check_name("model", &body.name)?;
    let created = now_ms();
    sqlx::query(
        "INSERT INTO models (id, workgroup_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(&scope.workgroup()?.id)
    .bind(&body.name)
    .bind(&body.description)
    .bind(created)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("model", &body.name))?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "name": body.name, "description": body.description, "created": time(created) }),
        ),
    ))
}

/// `GET .../models`.
pub async fn list(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Query(page): Query<Page>,
) -> Reply {
    let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT m.name, m.description, m.created_at, (SELECT MAX(v.version) FROM model_versions v \
         WHERE v.model_id = m.id) FROM models m WHERE m.workgroup_id = $1 AND m.name > $2 \
         ORDER BY m.name LIMIT $3",
    )
    .bind(&scope.workgroup()?.id)
    .bind(page.after())
    .bind(page.fetch())
    .fetch_all(control.db().pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(name, description, created, latest)| {
            json!({ "name": name, "description": description, "latest_version": latest, "created": time(created) })
        })
        .collect();
    Ok((StatusCode::OK, Json(page.respond(items, "name"))))
}

/// The id of model `name` in the scope's work group.
pub(crate) async fn model_id(
    control: &ControlPlane,
    scope: &Scope,
    name: &str,
) -> Result<String, ControlError> {
    sqlx::query_scalar("SELECT id FROM models WHERE workgroup_id = $1 AND name = $2")
        .bind(&scope.workgroup()?.id)
        .bind(name)
        .fetch_optional(control.db().pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("model '{name}' not found")))
}

/// `GET .../models/{model}`: with its aliases.
pub async fn get(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model)): Path<(String, String, String)>,
) -> Reply {
    let id = model_id(&control, &scope, &model).await?;
    let (description, created): (String, i64) =
        sqlx::query_as("SELECT description, created_at FROM models WHERE id = $1")
            .bind(&id)
            .fetch_one(control.db().pool())
            .await?;
    let aliases: Vec<(String, i64)> = sqlx::query_as(
        "SELECT a.alias, v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id \
         WHERE a.model_id = $1 ORDER BY a.alias",
    )
    .bind(&id)
    .fetch_all(control.db().pool())
    .await?;
    let latest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM model_versions WHERE model_id = $1")
            .bind(&id)
            .fetch_one(control.db().pool())
            .await?;
    let aliases: serde_json::Map<String, Value> =
        aliases.into_iter().map(|(a, v)| (a, json!(v))).collect();
    Ok((
        StatusCode::OK,
        Json(json!({
            "name": model,
            "description": description,
            "latest_version": latest,
            "aliases": aliases,
            "created": time(created),
        })),
    ))
}

/// `DELETE .../models/{model}`: its versions and files too.
pub async fn delete(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model)): Path<(String, String, String)>,
) -> Reply {
    let id = model_id(&control, &scope, &model).await?;
    sqlx::query("DELETE FROM models WHERE id = $1")
        .bind(&id)
        .execute(control.db().pool())
        .await?;
    control.artifacts().delete_area(&["models", &id]).await;
    Ok((
        StatusCode::OK,
        Json(json!({ "name": model, "deleted": true })),
    ))
}

/// Lineage and notes of a new version, in the query string (the body is the tar of its files).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionInfo {
    #[serde(default)]
    pub(crate) description: String,
    pub(crate) run: Option<String>,
    pub(crate) commit: Option<String>,
}

fn check_lineage(info: &VersionInfo) -> Result<(), ControlError> {
    if let Some(run) = &info.run
        && (run.is_empty()
            || run.len() > 64
            || !run.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(ControlError::Invalid(format!("invalid run id '{run}'")));
    }
    if let Some(commit) = &info.commit
        && (!(7..=64).contains(&commit.len()) || !commit.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(ControlError::Invalid(format!(
            "invalid commit '{commit}': 7 to 64 hex digits"
        )));
    }
    Ok(())
}

/// `POST .../models/{model}/versions` with `Content-Type: application/x-tar`: registers the
/// next version from the archive's files.
pub async fn create_version(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model)): Path<(String, String, String)>,
    Query(info): Query<VersionInfo>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    check_lineage(&info)?;
    require_tar(&headers, "the model's files")?;
    let id = model_id(&control, &scope, &model).await?;
    // The archive goes to a file, then each of its files to the store in parts: a model is
    // never whole in memory.
    let spooled = spool_upload(&control, body).await?;
    let archive = spooled.path().to_path_buf();
    let index = tokio::task::spawn_blocking(move || tar_index(&archive))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))??;
    let (version, listed) = store_spooled_version(&control, &id, &spooled, &index, &info).await?;
    Ok((
        StatusCode::CREATED,
        Json(version_json(&model, version, &info, &listed)),
    ))
}

fn version_json(
    model: &str,
    version: i64,
    info: &VersionInfo,
    listed: &[(String, i64, String)],
) -> Value {
    json!({
        "model": model,
        "version": version,
        "description": info.description,
        "run": info.run,
        "commit": info.commit,
        "files": listed.iter().map(|(p, s, h)| json!({ "path": p, "size": s, "sha256": h })).collect::<Vec<_>>(),
    })
}

/// [`store_version`] for the files of a spooled archive: each streamed to the store in parts
/// and hashed on the way, off the async workers.
async fn store_spooled_version(
    control: &ControlPlane,
    model_id: &str,
    spooled: &Spooled,
    index: &[(String, u64, u64)],
    info: &VersionInfo,
) -> Result<(i64, Vec<(String, i64, String)>), ControlError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    const PART: u64 = 8 << 20;
    let version_id = new_id();
    let area = ["models", model_id, version_id.as_str()];
    let mut listed = Vec::new();
    for (path, offset, size) in index {
        let stored = async {
            let mut file = tokio::fs::File::open(spooled.path()).await?;
            file.seek(std::io::SeekFrom::Start(*offset)).await?;
            let hasher = std::sync::Arc::new(std::sync::Mutex::new(Some(Sha256::new())));
            let parts = futures_util::stream::unfold(
                (file, *size, hasher.clone()),
                |(mut file, left, hasher)| async move {
                    if left == 0 {
                        return None;
                    }
                    let mut part = vec![0u8; left.min(PART) as usize];
                    if let Err(e) = file.read_exact(&mut part).await {
                        return Some((Err(e), (file, 0, hasher)));
                    }
                    let part = Bytes::from(part);
                    let (h, p) = (hasher.clone(), part.clone());
                    let hashed = tokio::task::spawn_blocking(move || {
                        if let Some(sha) = h
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .as_mut()
                        {
                            sha.update(&p);
                        }
                    })
                    .await;
                    if let Err(e) = hashed {
                        return Some((Err(std::io::Error::other(e)), (file, 0, hasher)));
                    }
                    let taken = part.len() as u64;
                    Some((Ok(part), (file, left - taken, hasher)))
                },
            );
            let written = control
                .artifacts()
                .put_stream(&area, path, Box::pin(parts), u64::MAX)
                .await
                .map_err(std::io::Error::other)?;
            let sha = hasher
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .map(|sha| hex::encode(sha.finalize()))
                .unwrap_or_default();
            Ok::<_, std::io::Error>((written, sha))
        }
        .await;
        match stored {
            Ok((written, sha)) => listed.push((path.clone(), written as i64, sha)),
            Err(e) => {
                control.artifacts().delete_area(&area).await;
                return Err(ControlError::Unavailable(format!("storing '{path}': {e}")));
            }
        }
    }
    match insert_version(control, model_id, &version_id, info, &listed).await {
        Ok(version) => Ok((version, listed)),
        Err(e) => {
            control.artifacts().delete_area(&area).await;
            Err(e)
        }
    }
}

/// The SHA-256 of `bytes` in hex, computed off the async workers (model files are large).
async fn sha256_hex(bytes: &Bytes) -> Result<String, ControlError> {
    let bytes = bytes.clone();
    tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&bytes)))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))
}

/// Stores a new version's files and records it (all or nothing); returns its number and its
/// files with their sizes and digests.
pub(crate) async fn store_version(
    control: &ControlPlane,
    model_id: &str,
    files: &[(String, Bytes)],
    info: &VersionInfo,
) -> Result<(i64, Vec<(String, i64, String)>), ControlError> {
    let version_id = new_id();
    let mut listed = Vec::new();
    for (path, content) in files {
        listed.push((
            path.clone(),
            content.len() as i64,
            sha256_hex(content).await?,
        ));
        if let Err(e) = control
            .artifacts()
            .put(&["models", model_id, &version_id], path, content.clone())
            .await
        {
            control
                .artifacts()
                .delete_area(&["models", model_id, &version_id])
                .await;
            return Err(e);
        }
    }
    match insert_version(control, model_id, &version_id, info, &listed).await {
        Ok(version) => Ok((version, listed)),
        Err(e) => {
            control
                .artifacts()
                .delete_area(&["models", model_id, &version_id])
                .await;
            Err(e)
        }
    }
}

/// A version made from a run's artifacts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionFromRun {
    /// The run's id.
    run: String,
    /// A directory (or file) of the run's artifacts; its contents become the version's files.
    path: String,
    #[serde(default)]
    description: String,
}

/// Most files a version made from a run may hold.
const MAX_RUN_FILES: usize = 10_000;

/// The files under `path` in a run's artifacts, named relative to it (a single file keeps its
/// own name). The total is bounded by the upload limit.
pub(crate) async fn run_files(
    control: &ControlPlane,
    run_id: &str,
    path: &str,
) -> Result<Vec<(String, Bytes)>, ControlError> {
    let path = crate::runs::tracking::check_artifact(path)?;
    let area = crate::runs::tracking::artifact_area(run_id);
    let all = control.artifacts().list(&area).await?;
    let mut chosen: Vec<(String, String, u64)> = Vec::new();
    for (stored, size) in all {
        if stored == path {
            let name = stored.rsplit('/').next().unwrap_or(&stored).to_string();
            chosen.push((stored.clone(), name, size));
        } else if let Some(rest) = stored.strip_prefix(path).and_then(|r| r.strip_prefix('/')) {
            chosen.push((stored.clone(), rest.to_string(), size));
        }
    }
    if chosen.is_empty() {
        return Err(ControlError::Invalid(format!(
            "run {run_id} has no artifacts under '{path}'"
        )));
    }
    let total: u64 = chosen.iter().map(|(_, _, size)| size).sum();
    if chosen.len() > MAX_RUN_FILES || total > control.settings().max_upload_bytes as u64 {
        return Err(ControlError::TooLarge(format!(
            "'{path}' holds {} files of {total} bytes: at most {MAX_RUN_FILES} files and {} bytes",
            chosen.len(),
            control.settings().max_upload_bytes
        )));
    }
    let mut files = Vec::with_capacity(chosen.len());
    for (stored, name, _) in chosen {
        files.push((name, control.artifacts().get(&area, &stored).await?));
    }
    Ok(files)
}

/// `POST .../models/{model}/versions/from-run`: registers the next version from a run's
/// artifacts; its lineage names the run and the run's commit.
pub async fn create_version_from_run(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((team, workgroup, model)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<VersionFromRun>,
) -> Reply {
    let _ = (team, workgroup);
    let id = model_id(&control, &scope, &model).await?;
    let run = super::runs::run_in_scope(&control, &scope, &body.run).await?;
    let files = run_files(&control, &run.id, &body.path).await?;
    let info = VersionInfo {
        description: body.description,
        run: Some(run.id.clone()),
        commit: (!run.commit_sha.is_empty()).then(|| run.commit_sha.clone()),
    };
    let (version, listed) = store_version(&control, &id, &files, &info).await?;
    Ok((
        StatusCode::CREATED,
        Json(version_json(&model, version, &info, &listed)),
    ))
}

async fn insert_version(
    control: &ControlPlane,
    model_id: &str,
    version_id: &str,
    info: &VersionInfo,
    files: &[(String, i64, String)],
) -> Result<i64, ControlError> {
    // Writers of one model take turns: SQLite's write transactions are exclusive already, and on
    // PostgreSQL the model's row is locked. Should two still pick one number, the unique key
    // refuses one, which tries again.
    for _ in 0..8 {
        let mut tx = control.db().begin().await?;
        if control.db().backend() == crate::Backend::Postgres {
            sqlx::query("SELECT id FROM models WHERE id = $1 FOR UPDATE")
                .bind(model_id)
                .execute(&mut *tx)
                .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO model_versions (id, model_id, version, description, run_id, commit_sha, created_at) \
             SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6 FROM model_versions WHERE model_id = $2",
        )
        .bind(version_id)
        .bind(model_id)
        .bind(&info.description)
        .bind(&info.run)
        .bind(&info.commit)
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => continue,
            other => {
                other?;
            }
        }
        for (path, size, sha) in files {
            sqlx::query(
                "INSERT INTO model_files (version_id, path, size, sha256) VALUES ($1, $2, $3, $4)",
            )
            .bind(version_id)
            .bind(path)
            .bind(*size)
            .bind(sha)
            .execute(&mut *tx)
            .await?;
        }
        let version: i64 = sqlx::query_scalar("SELECT version FROM model_versions WHERE id = $1")
            .bind(version_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(version);
    }
    Err(ControlError::Unavailable(
        "too many concurrent registrations: try again".into(),
    ))
}

/// The id and number of a version given as a number or an alias.
pub(crate) async fn version_of(
    control: &ControlPlane,
    model_id: &str,
    version: &str,
) -> Result<(String, i64), ControlError> {
    let row: Option<(String, i64)> = match version.parse::<i64>() {
        Ok(number) => sqlx::query_as("SELECT id, version FROM model_versions WHERE model_id = $1 AND version = $2")
            .bind(model_id)
            .bind(number)
            .fetch_optional(control.db().pool())
            .await?,
        Err(_) => sqlx::query_as(
            "SELECT v.id, v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id \
             WHERE a.model_id = $1 AND a.alias = $2",
        )
        .bind(model_id)
        .bind(version)
        .fetch_optional(control.db().pool())
        .await?,
    };
    row.ok_or_else(|| ControlError::NotFound(format!("version '{version}' not found")))
}

/// `GET .../models/{model}/versions`.
pub async fn list_versions(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model)): Path<(String, String, String)>,
) -> Reply {
    let id = model_id(&control, &scope, &model).await?;
    let rows: Vec<VersionRow> = sqlx::query_as(
        "SELECT version, description, run_id, commit_sha, created_at FROM model_versions \
         WHERE model_id = $1 ORDER BY version",
    )
    .bind(&id)
    .fetch_all(control.db().pool())
    .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(version, description, run, commit, created)| {
            json!({ "version": version, "description": description, "run": run, "commit": commit, "created": time(created) })
        })
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({ "items": items, "next": null })),
    ))
}

/// `GET .../models/{model}/versions/{version}`: a number or an alias.
pub async fn get_version(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model, version)): Path<(String, String, String, String)>,
) -> Reply {
    let id = model_id(&control, &scope, &model).await?;
    let (version_id, number) = version_of(&control, &id, &version).await?;
    let (description, run, commit, created): (String, Option<String>, Option<String>, i64) =
        sqlx::query_as(
            "SELECT description, run_id, commit_sha, created_at FROM model_versions WHERE id = $1",
        )
        .bind(&version_id)
        .fetch_one(control.db().pool())
        .await?;
    let files: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT path, size, sha256 FROM model_files WHERE version_id = $1 ORDER BY path",
    )
    .bind(&version_id)
    .fetch_all(control.db().pool())
    .await?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "model": model,
            "version": number,
            "description": description,
            "run": run,
            "commit": commit,
            "created": time(created),
            "files": files.into_iter().map(|(p, s, h)| json!({ "path": p, "size": s, "sha256": h })).collect::<Vec<_>>(),
        })),
    ))
}

/// `GET .../models/{model}/versions/{version}/files/{*path}`: the file's bytes.
pub async fn get_file(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model, version, path)): Path<(String, String, String, String, String)>,
) -> Result<Response, ControlError> {
    use futures_util::StreamExt;
    check_artifact_path(&path)?;
    let id = model_id(&control, &scope, &model).await?;
    let (version_id, _) = version_of(&control, &id, &version).await?;
    let known: Option<String> =
        sqlx::query_scalar("SELECT sha256 FROM model_files WHERE version_id = $1 AND path = $2")
            .bind(&version_id)
            .bind(&path)
            .fetch_optional(control.db().pool())
            .await?;
    let sha = known.ok_or_else(|| ControlError::NotFound(format!("file '{path}' not found")))?;
    let mismatch = {
        let path = path.clone();
        move || {
            format!(
                "artifact '{path}' of model {model} version {version} does not match its recorded sha256"
            )
        }
    };
    let (size, mut pieces) = control
        .artifacts()
        .get_stream(&["models", &id, &version_id], &path)
        .await?;
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_LENGTH, size.to_string()),
        (header::ETAG, format!("\"sha256:{sha}\"")),
    ];
    if size <= WHOLE_FILE_BYTES {
        // A small file is checked before it is sent: a corrupt one answers 500.
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(piece) = pieces.next().await {
            let piece =
                piece.map_err(|e| ControlError::Unavailable(format!("artifact store: {e}")))?;
            bytes.extend_from_slice(&piece);
        }
        let bytes = Bytes::from(bytes);
        if sha256_hex(&bytes).await? != sha {
            return Err(ControlError::Internal(mismatch()));
        }
        return Ok((headers, bytes).into_response());
    }
    // A large one streams, hashed on the way off the async workers. Its last piece is held
    // back until the digest is known: a mismatch ends the transfer with an error short of its
    // length, so no client takes a corrupt file whole.
    struct Check {
        pieces: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
        hasher: std::sync::Arc<std::sync::Mutex<Sha256>>,
        held: Option<Bytes>,
        sha: String,
        mismatch: Box<dyn Fn() -> String + Send>,
    }
    let check = Check {
        pieces,
        hasher: std::sync::Arc::new(std::sync::Mutex::new(Sha256::new())),
        held: None,
        sha,
        mismatch: Box::new(mismatch),
    };
    let checked = futures_util::stream::unfold(Some(check), |state| async move {
        let mut check = state?;
        loop {
            match check.pieces.next().await {
                Some(Ok(piece)) => {
                    let (h, p) = (check.hasher.clone(), piece.clone());
                    let _ = tokio::task::spawn_blocking(move || {
                        h.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .update(&p)
                    })
                    .await;
                    if let Some(previous) = check.held.replace(piece) {
                        return Some((Ok(previous), Some(check)));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None => {
                    let digest = hex::encode(
                        check
                            .hasher
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .clone()
                            .finalize(),
                    );
                    if digest != check.sha {
                        let message = (check.mismatch)();
                        tracing::error!("{message}");
                        return Some((Err(std::io::Error::other(message)), None));
                    }
                    return check.held.take().map(|last| (Ok(last), None));
                }
            }
        }
    });
    Ok((headers, Body::from_stream(checked)).into_response())
}

/// Model files up to this size are read whole and checked before they are sent.
const WHOLE_FILE_BYTES: u64 = 16 << 20;

/// An alias target.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasTarget {
    version: i64,
}

/// `PUT .../models/{model}/aliases/{alias}`: points an alias at a version.
pub async fn put_alias(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model, alias)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<AliasTarget>,
) -> Reply {
    check_alias(&alias)?;
    let id = model_id(&control, &scope, &model).await?;
    let (version_id, number) = version_of(&control, &id, &body.version.to_string()).await?;
    point_alias(&control, &id, &alias, &version_id).await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "model": model, "alias": alias, "version": number })),
    ))
}

/// Checks an alias: a name that cannot be read as a version number.
pub(crate) fn check_alias(alias: &str) -> Result<(), ControlError> {
    check_name("alias", alias)?;
    if alias.chars().all(|c| c.is_ascii_digit()) {
        return Err(ControlError::Invalid(format!(
            "alias '{alias}' would read as a version number"
        )));
    }
    Ok(())
}

/// Points a model's alias at a version (moving it if it pointed elsewhere).
pub(crate) async fn point_alias(
    control: &ControlPlane,
    model_id: &str,
    alias: &str,
    version_id: &str,
) -> Result<(), ControlError> {
    let mut tx = control.db().begin().await?;
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

/// `DELETE .../models/{model}/aliases/{alias}`.
pub async fn delete_alias(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    Path((_, _, model, alias)): Path<(String, String, String, String)>,
) -> Reply {
    let id = model_id(&control, &scope, &model).await?;
    let done = sqlx::query("DELETE FROM model_aliases WHERE model_id = $1 AND alias = $2")
        .bind(&id)
        .bind(&alias)
        .execute(control.db().pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!("alias '{alias}' not found")));
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "model": model, "alias": alias, "deleted": true })),
    ))
}

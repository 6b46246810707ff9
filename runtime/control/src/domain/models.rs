//! Models: what a valid model, lineage and alias are; how a version's files reach the artifact
//! store (streamed and hashed, all or nothing); which files of a run become a version; and a
//! version's file read back only if it still matches its recorded digest.

use super::time;
use crate::names::{check_artifact_path, check_name};
use crate::runs::tracking::{artifact_area, check_artifact};
use crate::store::models::{self as store, FileRow, ModelRow, VersionInsert, VersionRow};
use crate::uploads::Spooled;
use crate::{ControlError, ControlPlane};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use kiln_api::manage::models::{
    Model, ModelDetail, ModelFile, ModelVersion, NewModel, NewVersion, VersionSummary,
};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError};

/// Most files a version made from a run may hold.
const MAX_RUN_FILES: usize = 10_000;

/// Model files up to this size are read whole and checked before they are sent.
const WHOLE_FILE_BYTES: u64 = 16 << 20;

/// A model as the API shows it.
pub fn model(row: ModelRow) -> Model {
    Model {
        name: row.name,
        description: row.description,
        latest_version: row.latest_version,
        created: time(row.created_at),
    }
}

/// Creates a model in the work group `workgroup_id`.
pub async fn create(
    control: &ControlPlane,
    workgroup_id: &str,
    new: NewModel,
) -> Result<Model, ControlError> {
    check_name("model", &new.name)?;
    let row = ModelRow {
        id: crate::db::new_id(),
        name: new.name,
        description: new.description,
        created_at: crate::db::now_ms(),
        latest_version: None,
    };
    store::insert(control.db(), workgroup_id, &row).await?;
    Ok(model(row))
}

/// The model `name` of a work group with its aliases.
pub async fn detail(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<ModelDetail, ControlError> {
    let row = store::named(control.db(), workgroup_id, name).await?;
    let aliases = store::aliases(control.db(), &row.id).await?;
    Ok(ModelDetail {
        model: model(row),
        aliases: aliases.into_iter().collect(),
    })
}

/// Deletes a model with its versions and their files.
pub async fn delete(control: &ControlPlane, model_id: &str) -> Result<(), ControlError> {
    store::delete(control.db(), model_id).await?;
    control.artifacts().delete_area(&["models", model_id]).await;
    Ok(())
}

/// Checks a version's lineage: a run id and a commit (7 to 64 hex digits), when given.
pub fn check_lineage(info: &NewVersion) -> Result<(), ControlError> {
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

/// Checks an alias: a name that cannot be read as a version number.
pub fn check_alias(alias: &str) -> Result<(), ControlError> {
    check_name("alias", alias)?;
    if alias.chars().all(|c| c.is_ascii_digit()) {
        return Err(ControlError::Invalid(format!(
            "alias '{alias}' would read as a version number"
        )));
    }
    Ok(())
}

/// The version of a model given as a number or an alias (404 when there is none).
pub async fn version_of(
    control: &ControlPlane,
    model_id: &str,
    version: &str,
) -> Result<VersionRow, ControlError> {
    let found = match version.parse::<i64>() {
        Ok(number) => store::version_numbered(control.db(), model_id, number).await?,
        Err(_) => store::version_aliased(control.db(), model_id, version).await?,
    };
    found.ok_or_else(|| ControlError::NotFound(format!("version '{version}' not found")))
}

/// A version as a listing shows it.
pub fn summary(row: VersionRow) -> VersionSummary {
    VersionSummary {
        version: row.version,
        description: row.description,
        run: row.run_id,
        commit: row.commit_sha,
        created: time(row.created_at),
    }
}

/// A version's file as the API shows it.
pub fn file(row: FileRow) -> ModelFile {
    ModelFile {
        path: row.path,
        size: row.size,
        sha256: row.sha256,
    }
}

/// A version of `model` with its files.
pub async fn version(
    control: &ControlPlane,
    model: &str,
    row: VersionRow,
) -> Result<ModelVersion, ControlError> {
    let files = store::files(control.db(), &row.id).await?;
    Ok(ModelVersion {
        model: model.to_string(),
        version: summary(row),
        files: files.into_iter().map(file).collect(),
    })
}

/// A version just stored: its number, when, and its files.
pub struct Stored {
    /// Its number.
    pub number: i64,
    /// When it was registered, in ms since the epoch.
    pub created_at: i64,
    /// Its files.
    pub files: Vec<FileRow>,
}

impl Stored {
    /// The version of `model` as the API shows it.
    pub fn shown(self, model: &str, info: NewVersion) -> ModelVersion {
        ModelVersion {
            model: model.to_string(),
            version: VersionSummary {
                version: self.number,
                description: info.description,
                run: info.run,
                commit: info.commit,
                created: time(self.created_at),
            },
            files: self.files.into_iter().map(file).collect(),
        }
    }
}

/// Records a version whose files are stored under `version_id` already; on failure, removes
/// them.
async fn record(
    control: &ControlPlane,
    model_id: &str,
    version_id: &str,
    info: &NewVersion,
    files: Vec<FileRow>,
) -> Result<Stored, ControlError> {
    let created_at = crate::db::now_ms();
    let insert = VersionInsert {
        model_id,
        id: version_id,
        description: &info.description,
        run_id: info.run.as_deref(),
        commit_sha: info.commit.as_deref(),
        created_at,
        files: &files,
    };
    match store::insert_version(control.db(), &insert).await {
        Ok(number) => Ok(Stored {
            number,
            created_at,
            files,
        }),
        Err(e) => {
            control
                .artifacts()
                .delete_area(&["models", model_id, version_id])
                .await;
            Err(e)
        }
    }
}

/// Stores the files of a spooled archive (`index` from [`crate::uploads::tar_index`]) as the
/// model's next version: each streamed to the artifact store in parts and hashed on the way,
/// off the async workers, so that a model is never whole in memory.
pub async fn store_spooled_version(
    control: &ControlPlane,
    model_id: &str,
    spooled: &Spooled,
    index: &[(String, u64, u64)],
    info: &NewVersion,
) -> Result<Stored, ControlError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    const PART: u64 = 8 << 20;
    let version_id = crate::db::new_id();
    let area = ["models", model_id, version_id.as_str()];
    let mut listed = Vec::new();
    for (path, offset, size) in index {
        let stored = async {
            let mut file = tokio::fs::File::open(spooled.path()).await?;
            file.seek(std::io::SeekFrom::Start(*offset)).await?;
            let hasher = Arc::new(Mutex::new(Some(Sha256::new())));
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
                        if let Some(sha) = h.lock().unwrap_or_else(PoisonError::into_inner).as_mut()
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
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .map(|sha| hex::encode(sha.finalize()))
                .unwrap_or_default();
            Ok::<_, std::io::Error>((written, sha))
        }
        .await;
        match stored {
            Ok((written, sha256)) => listed.push(FileRow {
                path: path.clone(),
                size: written as i64,
                sha256,
            }),
            Err(e) => {
                control.artifacts().delete_area(&area).await;
                return Err(ControlError::Unavailable(format!("storing '{path}': {e}")));
            }
        }
    }
    record(control, model_id, &version_id, info, listed).await
}

/// The SHA-256 of `bytes` in hex, computed off the async workers (model files are large).
async fn sha256_hex(bytes: &Bytes) -> Result<String, ControlError> {
    let bytes = bytes.clone();
    tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&bytes)))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))
}

/// Stores files as the model's next version and records it (all or nothing).
pub async fn store_version(
    control: &ControlPlane,
    model_id: &str,
    files: &[(String, Bytes)],
    info: &NewVersion,
) -> Result<Stored, ControlError> {
    let version_id = crate::db::new_id();
    let mut listed = Vec::new();
    for (path, content) in files {
        listed.push(FileRow {
            path: path.clone(),
            size: content.len() as i64,
            sha256: sha256_hex(content).await?,
        });
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
    record(control, model_id, &version_id, info, listed).await
}

/// Which of a run's artifacts, stored as `(path, size)`, a version made from `path` holds:
/// `(stored path, name in the version, size)`. A file keeps its own name; a directory's files
/// are named relative to it.
pub fn chosen_files(all: Vec<(String, u64)>, path: &str) -> Vec<(String, String, u64)> {
    let mut chosen = Vec::new();
    for (stored, size) in all {
        if stored == path {
            let name = stored.rsplit('/').next().unwrap_or(&stored).to_string();
            chosen.push((stored.clone(), name, size));
        } else if let Some(rest) = stored.strip_prefix(path).and_then(|r| r.strip_prefix('/')) {
            chosen.push((stored.clone(), rest.to_string(), size));
        }
    }
    chosen
}

/// The files under `path` in a run's artifacts, named as [`chosen_files`] says. The total is
/// bounded by the upload limit.
pub async fn run_files(
    control: &ControlPlane,
    run_id: &str,
    path: &str,
) -> Result<Vec<(String, Bytes)>, ControlError> {
    let path = check_artifact(path)?;
    let area = artifact_area(run_id);
    let chosen = chosen_files(control.artifacts().list(&area).await?, path);
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

/// A version's file to send: its size, its recorded SHA-256, and its bytes.
pub struct VerifiedFile {
    /// Its size in bytes.
    pub size: u64,
    /// Its recorded SHA-256, in hex.
    pub sha256: String,
    /// Its bytes: a small file checked whole before it is given; a large one hashed on the
    /// way, its last piece held back until the digest is known, so that a mismatch ends the
    /// stream with an error short of its length and no client takes a corrupt file whole.
    pub bytes: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

/// The file `path` of a version, read from the artifact store and checked against its recorded
/// digest; `label` names it in the error a mismatch gives.
pub async fn verified_file(
    control: &ControlPlane,
    model_id: &str,
    version_id: &str,
    path: &str,
    label: String,
) -> Result<VerifiedFile, ControlError> {
    check_artifact_path(path)?;
    let sha = store::file_sha(control.db(), version_id, path)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("file '{path}' not found")))?;
    let mismatch = format!("artifact {label} does not match its recorded sha256");
    let (size, mut pieces) = control
        .artifacts()
        .get_stream(&["models", model_id, version_id], path)
        .await?;
    if size <= WHOLE_FILE_BYTES {
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(piece) = pieces.next().await {
            let piece =
                piece.map_err(|e| ControlError::Unavailable(format!("artifact store: {e}")))?;
            bytes.extend_from_slice(&piece);
        }
        let bytes = Bytes::from(bytes);
        if sha256_hex(&bytes).await? != sha {
            return Err(ControlError::Internal(mismatch));
        }
        return Ok(VerifiedFile {
            size,
            sha256: sha,
            bytes: Box::pin(futures_util::stream::once(async move { Ok(bytes) })),
        });
    }
    struct Check {
        pieces: BoxStream<'static, Result<Bytes, std::io::Error>>,
        hasher: Arc<Mutex<Sha256>>,
        held: Option<Bytes>,
        sha: String,
        mismatch: String,
    }
    let check = Check {
        pieces,
        hasher: Arc::new(Mutex::new(Sha256::new())),
        held: None,
        sha: sha.clone(),
        mismatch,
    };
    let checked = futures_util::stream::unfold(Some(check), |state| async move {
        let mut check = state?;
        loop {
            match check.pieces.next().await {
                Some(Ok(piece)) => {
                    let (h, p) = (check.hasher.clone(), piece.clone());
                    let _ = tokio::task::spawn_blocking(move || {
                        h.lock().unwrap_or_else(PoisonError::into_inner).update(&p)
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
                            .unwrap_or_else(PoisonError::into_inner)
                            .clone()
                            .finalize(),
                    );
                    if digest != check.sha {
                        tracing::error!("{}", check.mismatch);
                        return Some((Err(std::io::Error::other(check.mismatch)), None));
                    }
                    return check.held.take().map(|last| (Ok(last), None));
                }
            }
        }
    });
    Ok(VerifiedFile {
        size,
        sha256: sha,
        bytes: Box::pin(checked),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_and_aliases_are_checked() {
        let lineage = |run: Option<&str>, commit: Option<&str>| NewVersion {
            description: String::new(),
            run: run.map(str::to_string),
            commit: commit.map(str::to_string),
        };
        assert!(check_lineage(&lineage(None, None)).is_ok());
        assert!(check_lineage(&lineage(Some(&"a".repeat(32)), Some("0123abc"))).is_ok());
        for (run, commit) in [
            (Some(""), None),
            (Some("../x"), None),
            (Some(&*"a".repeat(65)), None),
            (None, Some("abc")),
            (None, Some("xyz1234")),
            (None, Some(&*"a".repeat(65))),
        ] {
            let error = check_lineage(&lineage(run, commit)).unwrap_err();
            assert!(matches!(error, ControlError::Invalid(_)), "{error}");
        }
        assert!(check_alias("production").is_ok());
        assert_eq!(
            check_alias("42").unwrap_err().to_string(),
            "alias '42' would read as a version number"
        );
        assert!(check_alias("Prod!").is_err());
    }

    #[test]
    fn a_version_from_a_run_takes_a_file_or_a_directorys_files() {
        let all = vec![
            ("model/model.onnx".to_string(), 10),
            ("model/meta/schema.json".to_string(), 2),
            ("modelx/other".to_string(), 3),
            ("metrics.json".to_string(), 4),
        ];
        let names = |path| {
            chosen_files(all.clone(), path)
                .into_iter()
                .map(|(_, name, _)| name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("model"), ["model.onnx", "meta/schema.json"]);
        assert_eq!(names("model/model.onnx"), ["model.onnx"]);
        assert_eq!(names("metrics.json"), ["metrics.json"]);
        assert!(names("mode").is_empty());
    }

    #[tokio::test]
    async fn versions_are_numbered_per_model_and_found_by_number_or_alias() {
        let db = crate::store::fixture().await;
        for (id, name) in [("m1", "iris"), ("m2", "wine")] {
            let row = ModelRow {
                id: id.into(),
                name: name.into(),
                description: String::new(),
                created_at: 0,
                latest_version: None,
            };
            store::insert(&db, "w1", &row).await.unwrap();
        }
        let again = ModelRow {
            id: "m3".into(),
            name: "iris".into(),
            description: String::new(),
            created_at: 0,
            latest_version: None,
        };
        let error = store::insert(&db, "w1", &again).await.unwrap_err();
        assert_eq!(error.to_string(), "model 'iris' already exists");
        store::insert(&db, "w2", &again).await.unwrap();
        let files = [FileRow {
            path: "model.onnx".into(),
            size: 3,
            sha256: "ab".into(),
        }];
        for (model_id, id) in [("m1", "v1"), ("m1", "v2"), ("m2", "v3")] {
            let version = VersionInsert {
                model_id,
                id,
                description: "",
                run_id: None,
                commit_sha: Some("0123abc"),
                created_at: 5,
                files: &files,
            };
            store::insert_version(&db, &version).await.unwrap();
        }
        let iris = store::named(&db, "w1", "iris").await.unwrap();
        assert_eq!(iris.latest_version, Some(2));
        let wine = store::named(&db, "w1", "wine").await.unwrap();
        assert_eq!(wine.latest_version, Some(1));
        let numbers: Vec<i64> = store::versions(&db, "m1")
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(numbers, [1, 2]);
        store::point_alias(&db, "m1", "production", "v1")
            .await
            .unwrap();
        store::point_alias(&db, "m1", "production", "v2")
            .await
            .unwrap();
        let aliased = store::version_aliased(&db, "m1", "production").await;
        assert_eq!(aliased.unwrap().unwrap().version, 2);
        assert_eq!(
            store::aliases(&db, "m1").await.unwrap(),
            [("production".to_string(), 2)]
        );
        assert_eq!(
            store::file_sha(&db, "v2", "model.onnx").await.unwrap(),
            Some("ab".into())
        );
        assert_eq!(store::file_sha(&db, "v2", "other").await.unwrap(), None);
        assert!(store::delete_alias(&db, "m1", "production").await.unwrap());
        assert!(!store::delete_alias(&db, "m1", "production").await.unwrap());
        store::delete(&db, "m1").await.unwrap();
        assert!(store::versions(&db, "m1").await.unwrap().is_empty());
    }
}

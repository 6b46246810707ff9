//! Archives uploaded to the control plane (model files, a project's working tree): spooled to
//! a file within the upload limit, indexed with every path checked, and extracted.

use crate::ControlError;
use crate::ControlPlane;
use crate::db::new_id;
use crate::names::check_artifact_path;
use axum::body::Body;
use axum::http::{HeaderMap, header};

/// Refuses an upload that is not `application/x-tar`, saying what should be sent.
pub(crate) fn require_tar(headers: &HeaderMap, what: &str) -> Result<(), ControlError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/x-tar" {
        return Err(ControlError::UnsupportedMedia(format!(
            "send {what} as a tar archive with Content-Type: application/x-tar"
        )));
    }
    Ok(())
}

/// An upload written to a file under the data directory; removed when dropped.
pub struct Spooled {
    path: std::path::PathBuf,
}

impl Spooled {
    /// The file the upload was written to.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Writes the files of a spooled archive (from [`tar_index`]) under `dir`, one at a time.
pub(crate) fn extract(
    archive: &std::path::Path,
    index: &[(String, u64, u64)],
    dir: &std::path::Path,
) -> Result<(), ControlError> {
    use std::io::{Read, Seek};
    let failed = |e: std::io::Error| ControlError::Internal(format!("extracting the archive: {e}"));
    let mut source = std::fs::File::open(archive).map_err(failed)?;
    for (path, offset, size) in index {
        check_artifact_path(path)?;
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        source
            .seek(std::io::SeekFrom::Start(*offset))
            .map_err(failed)?;
        let mut file = std::fs::File::create(&target).map_err(failed)?;
        let copied = std::io::copy(&mut (&mut source).take(*size), &mut file).map_err(failed)?;
        if copied != *size {
            return Err(ControlError::Invalid(format!(
                "archive: '{path}' is cut short"
            )));
        }
    }
    Ok(())
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes a request body to a file, within the installation's upload limit (413 past it).
pub(crate) async fn spool_upload(
    control: &ControlPlane,
    body: Body,
) -> Result<Spooled, ControlError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let limit = control.settings().max_upload_bytes as u64;
    let dir = control.settings().cache_dir.join(".uploads");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ControlError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
    let spooled = Spooled {
        path: dir.join(new_id()),
    };
    let unavailable =
        |e: std::io::Error| ControlError::Unavailable(format!("spooling the upload: {e}"));
    let mut file = tokio::fs::File::create(&spooled.path)
        .await
        .map_err(unavailable)?;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ControlError::Invalid(format!("reading the upload: {e}")))?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(ControlError::TooLarge(format!(
                "the archive is over the {limit}-byte upload limit"
            )));
        }
        file.write_all(&chunk).await.map_err(unavailable)?;
    }
    file.flush().await.map_err(unavailable)?;
    Ok(spooled)
}

/// The regular files of a tar archive on disk, as `(path, data offset, size)`: every path
/// checked, links and devices refused (directories are implied), no path twice.
pub(crate) fn tar_index(
    archive: &std::path::Path,
) -> Result<Vec<(String, u64, u64)>, ControlError> {
    let bad = |m: String| ControlError::Invalid(format!("archive: {m}"));
    let file = std::fs::File::open(archive)
        .map_err(|e| ControlError::Unavailable(format!("spooled upload: {e}")))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut files: Vec<(String, u64, u64)> = Vec::new();
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| bad(e.to_string()))?;
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8(raw).map_err(|_| bad("a path is not UTF-8".into()))?;
        let path = path.strip_prefix("./").unwrap_or(&path).to_string();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            if path.is_empty() || path == "." {
                continue;
            }
            check_artifact_path(path.trim_end_matches('/'))?;
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!(
                "'{path}' is a {kind:?}: only regular files and directories are accepted"
            )));
        }
        check_artifact_path(&path)?;
        if files.iter().any(|(p, _, _)| *p == path) {
            return Err(bad(format!("'{path}' appears twice")));
        }
        files.push((path, entry.raw_file_position(), entry.size()));
    }
    if files.is_empty() {
        return Err(bad(
            "no files: send a tar archive of the model's files".into()
        ));
    }
    Ok(files)
}

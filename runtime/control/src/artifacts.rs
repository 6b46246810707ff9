//! The artifact store: model files and, later, run outputs and logs, behind `object_store`. A
//! local directory by default; every key is built from ids Kiln made and a path that passed
//! [`check_artifact_path`], so nothing lands outside the store's prefix.

use crate::ControlError;
use crate::names::check_artifact_path;
use bytes::Bytes;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;

/// Flushes a written file and the directory entry that names it to the disk.
fn sync_file_and_parent(file: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(parent) = file.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Where artifacts live.
#[derive(Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
    url: String,
    /// The directory of a local store: its writes are fsynced (file and directory) before
    /// they are acknowledged, as the database's are (`synchronous=FULL`).
    local: Option<std::path::PathBuf>,
}

impl ArtifactStore {
    /// Opens the store a URL names: a local directory path or `file:///abs/dir`; other schemes
    /// (`s3://`, `az://`, `gs://`) when this build has their backend.
    pub fn open(location: &str) -> Result<ArtifactStore, ControlError> {
        let url = if location.contains("://") {
            url::Url::parse(location)
                .map_err(|e| ControlError::Invalid(format!("artifact store URL: {e}")))?
        } else {
            let dir = std::path::Path::new(location);
            std::fs::create_dir_all(dir).map_err(|e| {
                ControlError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
            let absolute = std::fs::canonicalize(dir).map_err(|e| {
                ControlError::Unavailable(format!("cannot open {}: {e}", dir.display()))
            })?;
            url::Url::from_directory_path(&absolute).map_err(|()| {
                ControlError::Invalid(format!("artifact store {}: not a directory", dir.display()))
            })?
        };
        if url.scheme() == "file" {
            let dir = url.to_file_path().map_err(|()| {
                ControlError::Invalid(format!("artifact store URL {url}: not a local path"))
            })?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                ControlError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| ControlError::Unavailable(format!("artifact store: {e}")))?;
            return Ok(ArtifactStore {
                store: Arc::new(store),
                prefix: StorePath::default(),
                url: url.to_string(),
                local: Some(dir),
            });
        }
        // Cloud stores take their credentials and endpoints from the usual environment
        // variables (AWS_*, AZURE_*, GOOGLE_*), as their own tools do.
        let fail =
            |e: object_store::Error| ControlError::Invalid(format!("artifact store {url}: {e}"));
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(fail)?,
            ),
            "az" | "azure" | "abfs" | "abfss" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(fail)?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(fail)?,
            ),
            other => {
                return Err(ControlError::Invalid(format!(
                    "artifact store {url}: unknown scheme '{other}' (a directory, file://, s3://, az:// or gs://)"
                )));
            }
        };
        // The bucket or container is in the URL's host; the rest of the path is the prefix.
        let prefix = StorePath::parse(url.path().trim_start_matches('/'))
            .map_err(|e| ControlError::Invalid(format!("artifact store {url}: {e}")))?;
        Ok(ArtifactStore {
            store,
            prefix,
            url: url.to_string(),
            local: None,
        })
    }

    /// The store's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key of `relative` under `area` (made of Kiln ids) and the store's prefix.
    fn key(&self, area: &[&str], relative: &str) -> Result<StorePath, ControlError> {
        check_artifact_path(relative)?;
        let mut parts: Vec<String> = self
            .prefix
            .parts()
            .map(|p| p.as_ref().to_string())
            .collect();
        parts.extend(area.iter().map(|a| a.to_string()));
        parts.extend(relative.split('/').map(str::to_string));
        StorePath::parse(parts.join("/"))
            .map_err(|e| ControlError::Invalid(format!("invalid path '{relative}': {e}")))
    }

    /// For a local store, flushes what was just written at `key` (file and directory entry) to
    /// the disk; other stores acknowledge durable writes themselves.
    async fn sync(&self, key: &StorePath) -> Result<(), ControlError> {
        if let Some(dir) = &self.local {
            let file = dir.join(key.as_ref());
            tokio::task::spawn_blocking(move || sync_file_and_parent(&file))
                .await
                .map_err(|e| ControlError::Internal(e.to_string()))?
                .map_err(|e| ControlError::Unavailable(format!("artifact store: {e}")))?;
        }
        Ok(())
    }

    /// Opens `key` (named `relative` in messages): 404 when it is not there.
    async fn fetch(
        &self,
        key: &StorePath,
        relative: &str,
    ) -> Result<object_store::GetResult, ControlError> {
        self.store.get(key).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                ControlError::NotFound(format!("artifact '{relative}' not found"))
            }
            other => ControlError::Unavailable(format!("artifact store: {other}")),
        })
    }

    /// Stores `bytes` at `area/relative`.
    pub async fn put(
        &self,
        area: &[&str],
        relative: &str,
        bytes: Bytes,
    ) -> Result<(), ControlError> {
        let key = self.key(area, relative)?;
        self.store
            .put(&key, bytes.into())
            .await
            .map_err(|e| ControlError::Unavailable(format!("artifact store: {e}")))?;
        self.sync(&key).await?;
        Ok(())
    }

    /// Stores what `body` streams at `area/relative`, at most `limit` bytes, in parts: the file
    /// is never whole in memory. Returns its size; nothing is stored when the body fails or
    /// goes over the limit.
    pub async fn put_stream<S, E>(
        &self,
        area: &[&str],
        relative: &str,
        mut body: S,
        limit: u64,
    ) -> Result<u64, ControlError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        let key = self.key(area, relative)?;
        let unavailable =
            |e: object_store::Error| ControlError::Unavailable(format!("artifact store: {e}"));
        let upload = self.store.put_multipart(&key).await.map_err(unavailable)?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, 8 << 20);
        let mut total: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(ControlError::Invalid(format!("reading the upload: {e}")));
                }
            };
            total += chunk.len() as u64;
            if total > limit {
                let _ = writer.abort().await;
                return Err(ControlError::TooLarge(format!(
                    "the file is over the {limit}-byte upload limit"
                )));
            }
            writer.wait_for_capacity(2).await.map_err(unavailable)?;
            writer.put(chunk);
        }
        writer.finish().await.map_err(unavailable)?;
        self.sync(&key).await?;
        Ok(total)
    }

    /// Reads `area/relative` as a stream of pieces: `(its size, the stream)`.
    pub async fn get_stream(
        &self,
        area: &[&str],
        relative: &str,
    ) -> Result<
        (
            u64,
            futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
        ),
        ControlError,
    > {
        use futures_util::StreamExt;
        let key = self.key(area, relative)?;
        let found = self.fetch(&key, relative).await?;
        let size = found.meta.size;
        let stream = found
            .into_stream()
            .map(|piece| piece.map_err(std::io::Error::other))
            .boxed();
        Ok((size, stream))
    }

    /// Reads `area/relative`.
    pub async fn get(&self, area: &[&str], relative: &str) -> Result<Bytes, ControlError> {
        let key = self.key(area, relative)?;
        let result = self.fetch(&key, relative).await?;
        result
            .bytes()
            .await
            .map_err(|e| ControlError::Unavailable(format!("artifact store: {e}")))
    }

    /// The key of an area (made of Kiln ids), under the store's prefix.
    fn area_key(&self, area: &[&str]) -> Result<StorePath, ControlError> {
        let mut parts: Vec<String> = self
            .prefix
            .parts()
            .map(|p| p.as_ref().to_string())
            .collect();
        parts.extend(area.iter().map(|a| a.to_string()));
        StorePath::parse(parts.join("/"))
            .map_err(|e| ControlError::Internal(format!("artifact area {area:?}: {e}")))
    }

    /// Every object under `area`: its path relative to the area and its size, in path order.
    pub async fn list(&self, area: &[&str]) -> Result<Vec<(String, u64)>, ControlError> {
        use futures_util::StreamExt;
        let prefix = self.area_key(area)?;
        let depth = prefix.parts().count();
        let mut listing = self.store.list(Some(&prefix));
        let mut items = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta =
                meta.map_err(|e| ControlError::Unavailable(format!("artifact store: {e}")))?;
            let relative: Vec<String> = meta
                .location
                .parts()
                .skip(depth)
                .map(|p| p.as_ref().to_string())
                .collect();
            items.push((relative.join("/"), meta.size));
        }
        items.sort();
        Ok(items)
    }

    /// Reads `length` bytes of `area/relative` from `offset`.
    pub async fn get_range(
        &self,
        area: &[&str],
        relative: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, ControlError> {
        let key = self.key(area, relative)?;
        self.store
            .get_range(&key, offset..offset + length)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    ControlError::NotFound(format!("artifact '{relative}' not found"))
                }
                e => ControlError::Unavailable(format!("artifact store: {e}")),
            })
    }

    /// Deletes everything under `area` (best effort: an already missing object is fine).
    pub async fn delete_area(&self, area: &[&str]) {
        use futures_util::StreamExt;
        let Ok(prefix) = self.area_key(area) else {
            return;
        };
        let mut listing = self.store.list(Some(&prefix));
        let mut keys = Vec::new();
        while let Some(Ok(meta)) = listing.next().await {
            keys.push(meta.location);
        }
        for key in keys {
            if let Err(e) = self.store.delete(&key).await {
                tracing::warn!(%key, "cannot delete artifact: {e}");
            }
        }
    }
}

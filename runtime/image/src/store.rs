//! The local store: an OCI image-layout directory (`oci-layout`, `index.json`, `blobs/sha256/`).
//!
//! Blobs are content-addressed and deduplicated; tags are `org.opencontainers.image.ref.name`
//! annotations in `index.json`. Writes go to a temporary file and are renamed into place, and
//! `index.json` changes under an exclusive lock, so two processes sharing the store never see a
//! half-written file. Reads verify size and digest: a corrupt blob is reported, never served.

use crate::media::{OCI_INDEX, OCI_MANIFEST, REF_NAME};
use crate::{Descriptor, Digest, ImageError, ImageIndex, ImageManifest};
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An OCI image-layout directory.
#[derive(Clone, Debug)]
pub struct OciStore {
    root: PathBuf,
}

/// One tagged image in the store.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoredImage {
    /// The tag (a reference name such as `iris:1` or `127.0.0.1:5000/models/iris:1`).
    pub name: String,
    /// The manifest's descriptor.
    pub manifest: Descriptor,
}

/// What garbage collection removed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GcReport {
    /// Blobs deleted.
    pub removed_blobs: usize,
    /// Bytes freed.
    pub freed_bytes: u64,
}

impl OciStore {
    /// Opens the layout at `root`, creating it when absent.
    pub fn open(root: impl Into<PathBuf>) -> Result<OciStore, ImageError> {
        let root = root.into();
        let store = OciStore { root };
        std::fs::create_dir_all(store.blobs_dir()).map_err(ImageError::io(format!(
            "cannot create {}",
            store.root.display()
        )))?;
        let layout = store.root.join("oci-layout");
        match std::fs::read(&layout) {
            Ok(bytes) => {
                let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if value["imageLayoutVersion"] != "1.0.0" {
                    return Err(ImageError::Invalid(format!(
                        "{} is not an OCI image layout 1.0.0",
                        layout.display()
                    )));
                }
            }
            Err(_) => store.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?,
        }
        if !store.root.join("index.json").exists() {
            store.write_index(&ImageIndex {
                schema_version: 2,
                media_type: Some(OCI_INDEX.into()),
                manifests: vec![],
            })?;
        }
        Ok(store)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where a blob lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Whether the store holds a blob.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
        let tmp = path.with_extension(format!(
            "tmp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let context = format!("cannot write {}", path.display());
        let mut file = File::create(&tmp).map_err(ImageError::io(context.clone()))?;
        file.write_all(bytes)
            .map_err(ImageError::io(context.clone()))?;
        file.sync_all().map_err(ImageError::io(context.clone()))?;
        std::fs::rename(&tmp, path).map_err(ImageError::io(context))
    }

    /// Stores bytes as a blob (once: the same content is written once) and describes them.
    pub fn put_blob(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor, ImageError> {
        let descriptor = Descriptor::of(media_type, bytes);
        self.put_verified(&descriptor, bytes)?;
        Ok(descriptor)
    }

    /// Stores bytes under a descriptor after checking that they match it.
    pub fn put_verified(&self, descriptor: &Descriptor, bytes: &[u8]) -> Result<(), ImageError> {
        descriptor.verify(bytes)?;
        if !self.has_blob(&descriptor.digest) {
            self.write_atomic(&self.blob_path(&descriptor.digest), bytes)?;
        }
        Ok(())
    }

    /// Reads a blob, verified against its descriptor.
    pub fn read_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ImageError> {
        let bytes = match std::fs::read(self.blob_path(&descriptor.digest)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ImageError::MissingBlob(descriptor.digest.clone()));
            }
            Err(e) => {
                return Err(ImageError::io(format!(
                    "cannot read blob {}",
                    descriptor.digest
                ))(e));
            }
        };
        descriptor.verify(&bytes)?;
        Ok(bytes)
    }

    fn read_index(&self) -> Result<ImageIndex, ImageError> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path)
            .map_err(ImageError::io(format!("cannot read {}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Invalid(format!("{} is invalid: {e}", path.display())))
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(index).unwrap_or_default();
        self.write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Runs `change` on `index.json` under an exclusive lock shared by every process.
    fn update_index<T>(
        &self,
        change: impl FnOnce(&mut ImageIndex) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let lock_path = self.root.join("index.json.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(ImageError::io(format!(
                "cannot open {}",
                lock_path.display()
            )))?;
        lock.lock()
            .map_err(ImageError::io("cannot lock the store index"))?;
        let mut index = self.read_index()?;
        let result = change(&mut index)?;
        self.write_index(&index)?;
        Ok(result)
    }

    /// Stores a manifest whose blobs are all present, and tags it `name` (moving the tag if it
    /// named another manifest).
    pub fn put_manifest(
        &self,
        manifest: &ImageManifest,
        name: &str,
    ) -> Result<Descriptor, ImageError> {
        self.put_manifest_bytes(&manifest.to_bytes(), name)
    }

    /// Stores a manifest exactly as given (its digest is that of these bytes), after checking it
    /// parses and that every blob it names is present, and tags it `name`.
    pub fn put_manifest_bytes(&self, bytes: &[u8], name: &str) -> Result<Descriptor, ImageError> {
        let manifest = ImageManifest::parse(bytes)?;
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !self.has_blob(&blob.digest) {
                return Err(ImageError::MissingBlob(blob.digest.clone()));
            }
        }
        let mut descriptor = self.put_blob(OCI_MANIFEST, bytes)?;
        descriptor.artifact_type = manifest.artifact_type.clone();
        self.tag(name, &descriptor)?;
        Ok(descriptor)
    }

    /// The exact bytes of a stored image's manifest, verified.
    pub fn manifest_bytes(&self, reference: &str) -> Result<Vec<u8>, ImageError> {
        let (descriptor, _) = self.resolve(reference)?;
        self.read_blob(&descriptor)
    }

    /// Points tag `name` at a stored manifest.
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<(), ImageError> {
        if name.is_empty()
            || name.len() > 512
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ImageError::Invalid(format!(
                "'{name}' is not a valid image name"
            )));
        }
        let tagged = manifest.clone().annotated(REF_NAME, name);
        self.update_index(|index| {
            index
                .manifests
                .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(name));
            index.manifests.push(tagged);
            Ok(())
        })
    }

    /// Every tagged image, sorted by name.
    pub fn list(&self) -> Result<Vec<StoredImage>, ImageError> {
        let mut images: Vec<StoredImage> = self
            .read_index()?
            .manifests
            .into_iter()
            .filter_map(|m| {
                let name = m.annotations.get(REF_NAME)?.clone();
                Some(StoredImage { name, manifest: m })
            })
            .collect();
        images.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(images)
    }

    /// Finds an image by tag, or by manifest digest (`sha256:...`, or `NAME@sha256:...`), and
    /// reads its manifest, verified. A digest answers only for an image manifest: one the index
    /// lists, or an untagged blob that parses as one. Any other blob (a layer, a config) is
    /// [`ImageError::NotFound`] like a digest the store lacks, so that a reference cannot tell
    /// which files the store holds.
    pub fn resolve(&self, reference: &str) -> Result<(Descriptor, ImageManifest), ImageError> {
        let by_digest = reference
            .rsplit('@')
            .next()
            .filter(|d| d.starts_with("sha256:"));
        let index = self.read_index()?;
        let not_found = || ImageError::NotFound(reference.to_string());
        let listed = match by_digest {
            Some(digest) => {
                let digest: Digest = digest.parse()?;
                match index.manifests.into_iter().find(|m| m.digest == digest) {
                    Some(listed) => listed,
                    None => {
                        let size = std::fs::metadata(self.blob_path(&digest))
                            .map_err(|_| not_found())?
                            .len();
                        let descriptor = Descriptor {
                            media_type: OCI_MANIFEST.into(),
                            digest,
                            size,
                            artifact_type: None,
                            annotations: Default::default(),
                        };
                        if size > crate::MAX_MANIFEST_BYTES as u64 {
                            return Err(not_found());
                        }
                        let bytes = self.read_blob(&descriptor)?;
                        let manifest = ImageManifest::parse(&bytes).map_err(|_| not_found())?;
                        return Ok((descriptor, manifest));
                    }
                }
            }
            None => index
                .manifests
                .into_iter()
                .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(reference))
                .ok_or_else(not_found)?,
        };
        let manifest = ImageManifest::parse(&self.read_blob(&listed)?)?;
        Ok((listed, manifest))
    }

    /// Removes a tag. Blobs stay until [`OciStore::gc`].
    pub fn remove(&self, name: &str) -> Result<Descriptor, ImageError> {
        self.update_index(|index| {
            let position = index
                .manifests
                .iter()
                .position(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(name))
                .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
            Ok(index.manifests.remove(position))
        })
    }

    /// Deletes every blob no tagged manifest reaches.
    pub fn gc(&self) -> Result<GcReport, ImageError> {
        self.update_index(|index| {
            let mut keep: HashSet<Digest> = HashSet::new();
            for descriptor in &index.manifests {
                keep.insert(descriptor.digest.clone());
                if let Ok(bytes) = self.read_blob(descriptor)
                    && let Ok(manifest) = ImageManifest::parse(&bytes)
                {
                    keep.insert(manifest.config.digest.clone());
                    keep.extend(manifest.layers.iter().map(|l| l.digest.clone()));
                }
            }
            let mut report = GcReport::default();
            let entries =
                std::fs::read_dir(self.blobs_dir()).map_err(ImageError::io("cannot list blobs"))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
                    continue;
                };
                if !keep.contains(&digest) {
                    report.freed_bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                    std::fs::remove_file(entry.path())
                        .map_err(ImageError::io(format!("cannot remove blob {digest}")))?;
                    report.removed_blobs += 1;
                }
            }
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{WASM_CONFIG, WASM_LAYER};

    fn temp_store(tag: &str) -> OciStore {
        let dir = std::env::temp_dir().join(format!("kiln-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        OciStore::open(dir).expect("open")
    }

    fn image(store: &OciStore, component: &[u8]) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: None,
            config: store.put_blob(WASM_CONFIG, b"{}").expect("config"),
            layers: vec![store.put_blob(WASM_LAYER, component).expect("layer")],
            annotations: Default::default(),
        }
    }

    #[test]
    fn tags_resolve_move_and_collect_garbage() {
        let store = temp_store("tags");
        let one = store
            .put_manifest(&image(&store, b"component one"), "iris:1")
            .expect("put");
        let (found, manifest) = store.resolve("iris:1").expect("resolve");
        assert_eq!(found.digest, one.digest);
        assert_eq!(
            store.read_blob(&manifest.layers[0]).expect("layer"),
            b"component one"
        );
        assert_eq!(
            store
                .resolve(one.digest.as_str())
                .expect("by digest")
                .0
                .digest,
            one.digest
        );
        assert_eq!(
            store
                .resolve(&format!("iris@{}", one.digest))
                .expect("name@digest")
                .0
                .digest,
            one.digest
        );

        // Moving the tag leaves one entry; the old image's own blobs become garbage.
        let two = store
            .put_manifest(&image(&store, b"component two"), "iris:1")
            .expect("put");
        assert_eq!(store.list().expect("list").len(), 1);
        assert_eq!(
            store.resolve("iris:1").expect("resolve").0.digest,
            two.digest
        );
        let report = store.gc().expect("gc");
        assert_eq!(
            report.removed_blobs, 2,
            "old manifest and old layer; the shared config stays"
        );
        assert!(store.resolve("iris:1").is_ok());

        store.remove("iris:1").expect("remove");
        assert!(matches!(
            store.resolve("iris:1"),
            Err(ImageError::NotFound(_))
        ));
        assert_eq!(store.gc().expect("gc").removed_blobs, 3);
        assert!(matches!(
            store.remove("iris:1"),
            Err(ImageError::NotFound(_))
        ));
    }

    #[test]
    fn a_digest_resolves_only_to_an_image_manifest() {
        let store = temp_store("digests");
        let manifest = image(&store, b"component");
        let tagged = store.put_manifest(&manifest, "iris:1").expect("put");
        // An untagged manifest still resolves by digest (a deployment pinned to it).
        store.remove("iris:1").expect("untag");
        assert_eq!(
            store
                .resolve(&format!("x@{}", tagged.digest))
                .expect("untagged")
                .0
                .digest,
            tagged.digest
        );
        // A layer, a config (JSON, but no manifest) and a digest nobody has: all not found.
        let missing = format!("sha256:{}", "ab".repeat(32));
        for digest in [
            manifest.layers[0].digest.to_string(),
            manifest.config.digest.to_string(),
            store
                .put_blob("application/json", br#"{"weights": [1, 2]}"#)
                .expect("blob")
                .digest
                .to_string(),
            missing,
        ] {
            assert!(
                matches!(
                    store.resolve(&format!("anything@{digest}")),
                    Err(ImageError::NotFound(_))
                ),
                "{digest}: {:?}",
                store.resolve(&format!("anything@{digest}")).map(|r| r.0)
            );
        }
    }

    #[test]
    fn corrupt_blobs_are_reported_not_served() {
        let store = temp_store("corrupt");
        let d = store
            .put_manifest(&image(&store, b"good bytes"), "x")
            .expect("put");
        let (_, manifest) = store.resolve("x").expect("resolve");
        std::fs::write(store.blob_path(&manifest.layers[0].digest), b"evil bytes").expect("tamper");
        let err = store.read_blob(&manifest.layers[0]).expect_err("corrupt");
        assert!(
            err.to_string().contains(manifest.layers[0].digest.as_str()),
            "{err}"
        );
        std::fs::remove_file(store.blob_path(&d.digest)).expect("rm");
        assert!(matches!(
            store.resolve("x"),
            Err(ImageError::MissingBlob(_))
        ));
    }

    #[test]
    fn manifests_need_their_blobs_and_names_are_checked() {
        let store = temp_store("missing");
        let mut manifest = image(&store, b"c");
        manifest
            .layers
            .push(Descriptor::of(WASM_LAYER, b"never stored"));
        assert!(matches!(
            store.put_manifest(&manifest, "m"),
            Err(ImageError::MissingBlob(_))
        ));
        let ok = image(&store, b"c");
        assert!(store.put_manifest(&ok, "bad name").is_err());
        assert!(store.put_manifest(&ok, "").is_err());
    }
}

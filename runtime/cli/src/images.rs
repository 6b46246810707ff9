//! `kiln manifest create|validate` and `kiln image build|list|inspect|rm`.

use crate::transfer::RegistryArgs;
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use kiln_image::{ImageError, ModelManifest, OciStore, SampleTable, open_image};
use std::path::{Path, PathBuf};

/// Output format of commands that list or show.
#[derive(Clone, Copy, Default, ValueEnum)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// For programs.
    Json,
}

/// Where the local image store lives.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The local OCI image-layout store (default: ~/.local/share/kiln/store).
    #[arg(long, env = "KILN_STORE", global = true)]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// The store's directory.
    pub fn dir(&self) -> Result<PathBuf> {
        match &self.store {
            Some(path) => Ok(path.clone()),
            None => default_store().context("set --store or KILN_STORE: no home directory"),
        }
    }

    /// Opens (creating) the store.
    pub fn open(&self) -> Result<OciStore> {
        Ok(OciStore::open(self.dir()?)?)
    }
}

/// Where images come from: the local store, and registries for references that name one.
#[derive(Args, Clone)]
pub struct Sources {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn default_store() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("kiln").join("store"))
}

/// `kiln manifest ...`.
#[derive(Subcommand)]
pub enum ManifestCommand {
    /// Write a manifest from a scoring component, model files and a sample data file: the
    /// schema comes from the component's metadata, the drift baseline from the sample.
    Create {
        /// The scoring component: a built-in scorer (`onnx`), `python` (a script, see
        /// `--script`), a .wasm file, or an image (store tag, registry reference).
        #[arg(long, visible_alias = "scorer")]
        component: String,
        /// With `--scorer python`: the scoring script (`score.py`), compiled at image build.
        #[arg(long)]
        script: Option<PathBuf>,
        /// With `--scorer python`: a pure-Python module (`.py` file or package directory) to
        /// bundle with the script (repeatable).
        #[arg(long = "module", value_name = "PATH")]
        modules: Vec<PathBuf>,
        /// Model files or directories (repeatable).
        #[arg(long = "model")]
        model: Vec<PathBuf>,
        /// Sample rows (CSV with a header, or JSON rows); also the drift baseline.
        #[arg(long)]
        sample: Option<PathBuf>,
        /// Model name (default: the component's metadata name).
        #[arg(long)]
        name: Option<String>,
        /// Model version.
        #[arg(long, default_value = "1")]
        version: String,
        /// Config string passed to the scorer's load.
        #[arg(long, default_value = "")]
        config: String,
        /// A capability to grant the scorer (repeatable): `nn`, model graphs on the host
        /// through wasi:nn. A built-in scorer's own are granted without it.
        #[arg(long = "grant", value_name = "CAPABILITY")]
        grants: Vec<String>,
        /// Where to write the manifest.
        #[arg(long, short = 'o', default_value = "kiln.toml")]
        out: PathBuf,
    },
    /// Check a manifest: keys, files, the component's schema and the sample smoke test.
    Validate {
        /// The manifest file.
        manifest: PathBuf,
    },
    /// Record a manifest with the control plane, over a registered model version's files.
    Register {
        /// Name of the manifest in the work group.
        name: String,
        /// The manifest file (its paths name files of the model version).
        #[arg(long)]
        file: PathBuf,
        /// The model.
        #[arg(long)]
        model: String,
        /// Its version: a number or an alias.
        #[arg(long)]
        version: String,
        #[command(flatten)]
        connection: crate::client::Connection,
    },
    /// List the manifests of the work group.
    List {
        #[command(flatten)]
        connection: crate::client::Connection,
    },
}

/// `kiln image ...`.
#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build an image from a manifest into the local store.
    Build {
        /// The manifest file.
        manifest: PathBuf,
        /// Tag (default NAME:VERSION from the manifest).
        #[arg(long, short = 't')]
        tag: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List images in the local store.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show an image: kind, digests, layers, schema, limits, baseline.
    Inspect {
        /// Tag or digest.
        reference: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Remove a tag and collect blobs no image uses any more.
    Rm {
        /// Tag.
        reference: String,
    },
    /// Record an image with the control plane, pinned by digest, so a deployment can use it:
    /// an existing one (local store tag or registry reference), or one the control plane builds
    /// from a manifest (`--manifest`).
    Register {
        /// Name of the image in the work group.
        name: String,
        /// Store tag, `name@sha256:...`, or registry reference.
        #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
        reference: Option<String>,
        /// A manifest of the work group to build the image from.
        #[arg(long)]
        manifest: Option<String>,
        #[command(flatten)]
        connection: crate::client::Connection,
    },
}

fn path_relative_to(path: &Path, base: &Path) -> String {
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (path, base) = (absolute(path), absolute(base));
    let mut common = 0;
    let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    while common < p.len() && common < b.len() && p[common] == b[common] {
        common += 1;
    }
    let mut parts: Vec<String> = vec!["..".into(); b.len() - common];
    parts.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// Spinner and pull bar of a build, on stderr (hidden when it is not a terminal).
struct Progress {
    spinner: std::sync::Mutex<Option<indicatif::ProgressBar>>,
    pull: indicatif::ProgressBar,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            spinner: std::sync::Mutex::new(None),
            pull: crate::transfer::progress_bar("pull scorer component"),
        }
    }
}

impl kiln_build::BuildObserver for Progress {
    fn compiling_python(&self, script: &str) {
        let spinner = crate::transfer::spinner(&format!(
            "compile Python scorer {script} (componentize-py {})",
            kiln_build::COMPONENTIZE_PY_VERSION
        ));
        *self
            .spinner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(spinner);
    }
    fn compiling(&self, bytes: usize) {
        self.compiled();
        let spinner =
            crate::transfer::spinner(&format!("compile scorer component ({} KiB)", bytes / 1024));
        *self
            .spinner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(spinner);
    }
    fn compiled(&self) {
        if let Some(spinner) = self
            .spinner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            spinner.finish_and_clear();
        }
    }
    fn pulling(&self, _blob: &str, done: u64, total: u64) {
        self.pull.set_length(total);
        self.pull.set_position(done);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.pull.finish_and_clear();
    }
}

/// Checks a manifest with the CLI's store, registry settings and progress display.
async fn check_manifest(
    path: &Path,
    sources: &Sources,
) -> Result<(
    ModelManifest,
    kiln_build::Checked,
    Option<kiln_image::Baseline>,
)> {
    let registry = sources.registry.options();
    let open = || {
        sources
            .store
            .open()
            .map_err(|e| ImageError::Invalid(format!("{e:#}")))
    };
    let build_sources = kiln_build::Sources {
        store: &open,
        registry: &registry,
        store_fallback: true,
        sandbox: None,
    };
    Ok(kiln_build::check_manifest(path, &build_sources, &Progress::new()).await?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs `kiln manifest ...`.
pub fn manifest(command: ManifestCommand, sources: &Sources) -> Result<()> {
    let rt = runtime()?;
    match command {
        ManifestCommand::Register {
            name,
            file,
            model,
            version,
            connection,
        } => crate::client::register_manifest(&name, &file, &model, &version, &connection),
        ManifestCommand::List { connection } => crate::client::list_manifests(&connection),
        ManifestCommand::Create {
            component,
            script,
            modules,
            model,
            sample,
            name,
            version,
            config,
            grants,
            out,
        } => {
            let base = out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            let listed = model
                .iter()
                .map(|path| path_relative_to(path, &base))
                .collect();
            let probe = ModelManifest {
                name: "probe".into(),
                version: "1".into(),
                description: None,
                scorer: kiln_image::ScorerSection {
                    component: if kiln_build::is_component_path(&component, Path::new(".")) {
                        path_relative_to(Path::new(&component), &base)
                    } else {
                        component.clone()
                    },
                    config: config.clone(),
                    script: script.as_ref().map(|s| path_relative_to(s, &base)),
                    modules: modules.iter().map(|m| path_relative_to(m, &base)).collect(),
                },
                model: kiln_image::ModelSection { files: listed },
                schema: None,
                sample: sample.as_ref().map(|s| kiln_image::SampleSection {
                    file: path_relative_to(s, &base),
                    rows: None,
                }),
                baseline: sample.as_ref().map(|_| kiln_image::BaselineSection {
                    file: None,
                    bins: 10,
                }),
                monitoring: None,
                limits: Default::default(),
                capabilities: kiln_build::granted(&component, &grants),
            };
            probe.validate(&base)?;
            let files = probe.model_files(&base)?;
            let table = match &sample {
                Some(path) => Some(SampleTable::read(path, 100)?),
                None => None,
            };
            let checked = rt.block_on(async {
                let registry = sources.registry.options();
                let open = || {
                    sources
                        .store
                        .open()
                        .map_err(|e| ImageError::Invalid(format!("{e:#}")))
                };
                let build_sources = kiln_build::Sources {
                    store: &open,
                    registry: &registry,
                    store_fallback: true,
                    sandbox: None,
                };
                let progress = Progress::new();
                let resolved = if probe.scorer.is_python() {
                    kiln_build::scorer_component(&probe, &base, &build_sources, &progress)
                        .await?
                        .0
                } else {
                    kiln_build::component_bytes(
                        &component,
                        Path::new("."),
                        &build_sources,
                        &progress,
                    )
                    .await?
                };
                kiln_build::load_and_check(
                    resolved.bytes,
                    files,
                    &config,
                    &probe.capabilities,
                    None,
                    table,
                    &progress,
                )
                .await
            })?;
            let manifest = ModelManifest {
                name: name.unwrap_or(checked.name),
                version,
                schema: Some(checked.schema),
                ..probe
            };
            manifest.validate(&base)?;
            std::fs::write(&out, manifest.to_toml())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        ManifestCommand::Validate { manifest } => {
            let (m, checked, _) = rt.block_on(check_manifest(&manifest, sources))?;
            println!(
                "{}: valid ({} {}: {} input(s), {} output(s), {} model file(s){})",
                manifest.display(),
                m.name,
                m.version,
                checked.schema.inputs.len(),
                checked.schema.outputs.len(),
                checked.files.len(),
                if checked.sample.is_some() {
                    ", sample passed"
                } else {
                    ""
                }
            );
            Ok(())
        }
    }
}

/// `kiln scorer ...`.
#[derive(Subcommand)]
pub enum ScorerCommand {
    /// The scorers Kiln ships, their store tags and digests.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Put the built-in scorers into the local store as Wasm OCI artifacts (tagged
    /// kiln/scorers/NAME:VERSION), ready for `kiln push`.
    Install {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// Runs `kiln scorer ...`.
pub fn scorer(command: ScorerCommand, sources: &Sources) -> Result<()> {
    let (output, install) = match command {
        ScorerCommand::List { output } => (output, false),
        ScorerCommand::Install { output } => (output, true),
    };
    let store = sources.store.open()?;
    let mut rows = Vec::new();
    for builtin in kiln_build::BUILTIN_SCORERS {
        let tag = builtin.tag();
        if install {
            let installed = builtin.install(&store)?;
            if matches!(output, Output::Text) {
                println!("installed {}", installed.reference);
            }
        }
        let digest = store.resolve(&tag).ok().map(|(d, _)| d.digest.to_string());
        rows.push(serde_json::json!({
            "name": builtin.name,
            "version": builtin.version,
            "summary": builtin.summary,
            "tag": tag,
            "digest": digest,
            "component": builtin.path(),
        }));
    }
    match output {
        Output::Json => println!("{}", serde_json::json!({ "items": rows })),
        Output::Text if !install => {
            println!("{:<8} {:<9} {:<28} DIGEST", "NAME", "VERSION", "TAG");
            for row in &rows {
                println!(
                    "{:<8} {:<9} {:<28} {}",
                    row["name"].as_str().unwrap_or_default(),
                    row["version"].as_str().unwrap_or_default(),
                    row["tag"].as_str().unwrap_or_default(),
                    row["digest"]
                        .as_str()
                        .unwrap_or(if row["component"].is_null() {
                            "(not built: run sdk/build-components)"
                        } else {
                            "(not in the store yet: kiln scorer install)"
                        })
                );
            }
        }
        Output::Text => {}
    }
    Ok(())
}

/// Runs `kiln image ...`.
pub fn image(command: ImageCommand, sources: &Sources) -> Result<()> {
    let command = match command {
        // Talks to the control plane only: no local store is opened.
        ImageCommand::Register {
            name,
            reference,
            manifest,
            connection,
        } => {
            return crate::client::register_image(
                &name,
                reference.as_deref(),
                manifest.as_deref(),
                &connection,
            );
        }
        other => other,
    };
    let store = sources.store.open()?;
    match command {
        ImageCommand::Build {
            manifest,
            tag,
            output,
        } => {
            let (m, checked, baseline) = runtime()?.block_on(check_manifest(&manifest, sources))?;
            let (tag, descriptor) = kiln_build::build_image(&store, &m, &checked, baseline, tag)?;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::json!({ "tag": tag, "digest": descriptor.digest, "size": descriptor.size })
                ),
                Output::Text => println!("built {tag} {}", descriptor.digest),
            }
            Ok(())
        }
        ImageCommand::List { output } => {
            let images = store.list()?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&images)?),
                Output::Text => {
                    println!("{:<40} {:<32} DIGEST", "NAME", "KIND");
                    for image in images {
                        let kind = image
                            .manifest
                            .artifact_type
                            .as_deref()
                            .unwrap_or("wasm component");
                        println!("{:<40} {:<32} {}", image.name, kind, image.manifest.digest);
                    }
                }
            }
            Ok(())
        }
        ImageCommand::Inspect { reference, output } => {
            let (descriptor, manifest) = store.resolve(&reference)?;
            let image = open_image(&store, &reference)?;
            let report = serde_json::json!({
                "reference": reference,
                "digest": descriptor.digest,
                "kind": image.kind,
                "component": image.component_digest,
                "files": image.files.iter().map(|(n, b)| serde_json::json!({"name": n, "size": b.len()})).collect::<Vec<_>>(),
                "config": image.config,
                "manifest": manifest,
            });
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Text => {
                    println!(
                        "{reference}\n  digest:    {}\n  kind:      {:?}\n  component: {}",
                        descriptor.digest, image.kind, image.component_digest
                    );
                    if let Some(source) =
                        image.config.as_ref().and_then(|c| c.scorer_source.as_ref())
                    {
                        println!("  scorer:    {source}");
                    }
                    for (name, bytes) in &image.files {
                        println!("  file:      {name} ({} bytes)", bytes.len());
                    }
                    if let Some(config) = &image.config {
                        println!("  model:     {} {}", config.name, config.version);
                        for t in &config.schema.inputs {
                            println!("  input:     {} {} {:?}", t.name, t.datatype, t.shape);
                        }
                        for t in &config.schema.outputs {
                            println!("  output:    {} {} {:?}", t.name, t.datatype, t.shape);
                        }
                        if let Some(b) = &config.baseline {
                            println!(
                                "  baseline:  {} features and {} prediction columns over {} rows ({})",
                                b.features.len(),
                                b.predictions.len(),
                                b.rows,
                                b.source
                            );
                        }
                        if let Some(m) = &config.monitoring {
                            println!(
                                "  monitor:   {} {}{}",
                                m.component.as_deref().unwrap_or("default"),
                                m.config,
                                m.window_s
                                    .map(|w| format!(" (windows of {w} s)"))
                                    .unwrap_or_default()
                            );
                        }
                    }
                }
            }
            Ok(())
        }
        ImageCommand::Register {
            name,
            reference,
            manifest,
            connection,
        } => crate::client::register_image(
            &name,
            reference.as_deref(),
            manifest.as_deref(),
            &connection,
        ),
        ImageCommand::Rm { reference } => {
            let removed = store.remove(&reference)?;
            let report = store.gc()?;
            println!(
                "removed {reference} ({}); freed {} blob(s), {} bytes",
                removed.digest, report.removed_blobs, report.freed_bytes
            );
            Ok(())
        }
    }
}

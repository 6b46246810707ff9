//! `kiln image build|list|inspect|rm` and `kiln scorer`, with the store flags and output format
//! the image and manifest commands share.

use crate::args::{Output, Sources};
use anyhow::{Context, Result};
use clap::Subcommand;
use kiln_image::{ImageError, ModelManifest, open_image};
use std::path::{Path, PathBuf};

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
        connection: crate::context::Connection,
    },
}

pub(crate) fn path_relative_to(path: &Path, base: &Path) -> String {
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
pub(crate) struct Progress {
    spinner: std::sync::Mutex<Option<indicatif::ProgressBar>>,
    pull: indicatif::ProgressBar,
}

impl Progress {
    pub(crate) fn new() -> Progress {
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
pub(crate) async fn check_manifest(
    path: &Path,
    sources: &Sources,
) -> Result<(
    ModelManifest,
    kiln_build::Checked,
    Option<kiln_image::Baseline>,
)> {
    let registry = sources.registry.options()?;
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

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
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
            return crate::commands::images::register_image(
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
        } => crate::commands::images::register_image(
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

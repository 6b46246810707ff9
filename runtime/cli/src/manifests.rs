//! `kiln manifest create|validate`: write a model manifest from a model's files, and check one
//! against its component and files as `kiln image build` would.

use crate::args::Sources;
use crate::images::{Progress, check_manifest, path_relative_to, runtime};
use anyhow::{Context, Result};
use clap::Subcommand;
use kiln_image::{ImageError, ModelManifest, SampleTable};
use std::path::{Path, PathBuf};

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
        connection: crate::context::Connection,
    },
    /// List the manifests of the work group.
    List {
        #[command(flatten)]
        connection: crate::context::Connection,
    },
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
        } => {
            crate::commands::images::register_manifest(&name, &file, &model, &version, &connection)
        }
        ManifestCommand::List { connection } => {
            crate::commands::images::list_manifests(&connection)
        }
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
            let registry = sources.registry.options()?;
            let checked = rt.block_on(async {
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

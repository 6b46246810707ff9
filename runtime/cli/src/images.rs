//! `kiln manifest create|validate` and `kiln image build|list|inspect|rm`.

use crate::transfer::{RegistryArgs, pull_into};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use kiln_dataplane::{Dataplane, Deployment, InferRequest, ServerLimits, protocol, tensor};
use kiln_engine::{
    Artifacts, EngineConfig, InstanceLimits, Model, ModelMetadata, ModelSpec, ScoringEngine,
};
use kiln_image::{
    Baseline, KilnConfig, ModelImageParts, ModelManifest, OciStore, SampleTable, Schema,
    TensorSchema, open_image,
};
use kiln_metrics::Metrics;
use kiln_registry::is_registry_reference;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Opens (creating) the store.
    pub fn open(&self) -> Result<OciStore> {
        let path = match &self.store {
            Some(path) => path.clone(),
            None => default_store().context("set --store or KILN_STORE: no home directory")?,
        };
        Ok(OciStore::open(path)?)
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

/// A manifest's scoring component: a `.wasm` file (relative to the manifest), else an image in
/// the local store (a plain component, or a Kiln model whose scorer is reused), else a registry
/// reference pulled into the store and verified first. Returns the component's bytes.
async fn component_bytes(text: &str, base: &Path, sources: &Sources) -> Result<Vec<u8>> {
    let path = base.join(text);
    if is_component_path(text, base) {
        return std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()));
    }
    let store = sources.store.open()?;
    let name = text.strip_prefix("oci://").unwrap_or(text);
    if is_registry_reference(text)
        && let Err(error) = pull_into(&store, text, &sources.registry.options()).await
    {
        if store.resolve(name).is_err() {
            return Err(error.context(format!("cannot pull the scorer component {text}")));
        }
        tracing::warn!("registry unavailable, using the local store's {name}: {error:#}");
    }
    let image = open_image(&store, name).with_context(|| {
        format!("scorer component '{text}' is neither a .wasm file nor a usable image")
    })?;
    Ok(image.component)
}

/// Whether a manifest's `component` names a file rather than an image.
fn is_component_path(text: &str, base: &Path) -> bool {
    text.ends_with(".wasm") || base.join(text).is_file()
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
    /// Write a manifest from a scoring component, model files and a sample data file.
    Create {
        /// The scoring component: a .wasm file, or an image (store tag, registry reference).
        #[arg(long)]
        component: String,
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
        /// Where to write the manifest.
        #[arg(long, short = 'o', default_value = "kiln.toml")]
        out: PathBuf,
    },
    /// Check a manifest: keys, files, the component's schema and the sample smoke test.
    Validate {
        /// The manifest file.
        manifest: PathBuf,
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
    /// Record an image (local store tag or registry reference) with the control plane, pinned
    /// by digest, so a deployment can use it.
    Register {
        /// Name of the image in the work group.
        name: String,
        /// Store tag, `name@sha256:...`, or registry reference.
        reference: String,
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

/// Schema of a model, as an image records it.
pub fn schema_of(metadata: &ModelMetadata) -> Schema {
    let convert = |specs: &[kiln_engine::TensorSpec]| {
        specs
            .iter()
            .map(|s| TensorSchema {
                name: s.name.clone(),
                datatype: tensor::datatype_name(s.datatype).to_string(),
                shape: s.shape.clone(),
            })
            .collect()
    };
    Schema {
        inputs: convert(&metadata.inputs),
        outputs: convert(&metadata.outputs),
    }
}

/// A component checked against its files: loaded, described, and its sample run through it.
struct Checked {
    component: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
    schema: Schema,
    name: String,
    sample: Option<SampleTable>,
}

async fn load_and_check(
    bytes: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
    config: &str,
    expected: Option<&Schema>,
    sample: Option<SampleTable>,
) -> Result<Checked> {
    let engine = Arc::new(ScoringEngine::new(&EngineConfig::default())?);
    let compiled = {
        let spinner = crate::transfer::spinner(&format!(
            "compile scorer component ({} KiB)",
            bytes.len() / 1024
        ));
        let (engine, bytes) = (engine.clone(), bytes.clone());
        let compiled = tokio::task::spawn_blocking(move || engine.compile(&bytes)).await?;
        spinner.finish_and_clear();
        compiled?
    };
    let metrics = Metrics::new();
    let deployment_metrics = Arc::new(metrics.deployment("build", "build"));
    let spec = ModelSpec {
        name: "build".into(),
        compiled,
        artifacts: Artifacts::from_files(files.clone()),
        config: config.to_string(),
        limits: InstanceLimits::default(),
    };
    let model = Model::load(engine, spec, deployment_metrics.clone()).await?;
    let schema = schema_of(model.metadata());
    let name = model.metadata().name.clone();
    if let Some(declared) = expected
        && declared != &schema
    {
        bail!(
            "the manifest's schema does not match the component's metadata:\n  manifest:  {}\n  component: {}",
            serde_json::to_string(declared)?,
            serde_json::to_string(&schema)?
        );
    }
    if let Some(table) = &sample {
        let dataplane = Dataplane::new(ServerLimits::default());
        let deployment = Deployment {
            name: "build".into(),
            version: "build".into(),
            model: model.clone(),
            metrics: deployment_metrics,
            key_digests: None,
        };
        let inputs =
            protocol::table_to_tensors(model.metadata(), &table.columns, &table.rows, usize::MAX)
                .map_err(|e| {
                anyhow::anyhow!("sample does not fit the model's inputs: {}", e.message)
            })?;
        dataplane
            .infer(
                &deployment,
                InferRequest {
                    inputs,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("sample smoke test failed: {}", e.message))?;
    }
    Ok(Checked {
        component: bytes,
        files,
        schema,
        name,
        sample,
    })
}

/// Checks a manifest end to end and returns what an image of it holds.
async fn check_manifest(
    path: &Path,
    sources: &Sources,
) -> Result<(ModelManifest, Checked, Option<Baseline>)> {
    let (manifest, base) = ModelManifest::read(path)?;
    let files = manifest.model_files(&base)?;
    let sample = match &manifest.sample {
        Some(s) => Some(SampleTable::read(
            &base.join(&s.file),
            s.rows.unwrap_or(100),
        )?),
        None => None,
    };
    let component = component_bytes(&manifest.scorer.component, &base, sources).await?;
    let checked = load_and_check(
        component,
        files,
        &manifest.scorer.config,
        manifest.schema.as_ref(),
        sample,
    )
    .await?;
    let baseline = match &manifest.baseline {
        None => None,
        Some(section) => {
            let (table, source) = match &section.file {
                Some(file) => (
                    SampleTable::read(&base.join(file), usize::MAX)?,
                    file.clone(),
                ),
                None => (
                    checked
                        .sample
                        .clone()
                        .context("a baseline needs sample rows")?,
                    "sample".to_string(),
                ),
            };
            Some(Baseline::from_columns(
                &table.columns,
                &table.numeric(),
                section.bins,
                &source,
            ))
        }
    };
    Ok((manifest, checked, baseline))
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
        ManifestCommand::Create {
            component,
            model,
            sample,
            name,
            version,
            config,
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
                    component: if is_component_path(&component, Path::new(".")) {
                        path_relative_to(Path::new(&component), &base)
                    } else {
                        component.clone()
                    },
                    config: config.clone(),
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
                limits: Default::default(),
                capabilities: vec![],
            };
            probe.validate(&base)?;
            let files = probe.model_files(&base)?;
            let table = match &sample {
                Some(path) => Some(SampleTable::read(path, 100)?),
                None => None,
            };
            let checked = rt.block_on(async {
                let bytes = component_bytes(&component, Path::new("."), sources).await?;
                load_and_check(bytes, files, &config, None, table).await
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

/// Runs `kiln image ...`.
pub fn image(command: ImageCommand, sources: &Sources) -> Result<()> {
    let command = match command {
        // Talks to the control plane only: no local store is opened.
        ImageCommand::Register {
            name,
            reference,
            connection,
        } => return crate::client::register_image(&name, &reference, &connection),
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
            let config = KilnConfig {
                name: m.name.clone(),
                version: m.version.clone(),
                description: m.description.clone(),
                scorer_config: m.scorer.config.clone(),
                schema: checked.schema.clone(),
                limits: m.limits.clone(),
                capabilities: m.capabilities.clone(),
                baseline,
            };
            let sample = checked.sample.as_ref().map(SampleTable::to_json);
            let parts = ModelImageParts {
                config: &config,
                component: &checked.component,
                files: &checked.files,
                sample: sample.as_deref(),
            };
            let tag = tag.unwrap_or_else(|| format!("{}:{}", m.name, m.version));
            let descriptor = kiln_image::build_model_image(&store, &parts, &tag)?;
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
                                "  baseline:  {} features over {} rows ({})",
                                b.features.len(),
                                b.rows,
                                b.source
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
            connection,
        } => crate::client::register_image(&name, &reference, &connection),
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

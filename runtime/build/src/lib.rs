//! Kiln's image builder, shared by `kiln image build` and the control plane: a manifest's scoring
//! component is resolved (a `.wasm` file, an image in the local store, or a registry reference),
//! compiled and loaded with the model's files; its schema is compared with the manifest's, the
//! sample rows run through the real dataplane checks, and the drift baseline is computed. Then
//! [`build_image`] writes the model image into the local store.

use kiln_dataplane::{Dataplane, Deployment, SampleError, ServerLimits, protocol, tensor};
use kiln_engine::{
    Artifacts, Capabilities, EngineConfig, InstanceLimits, Model, ModelMetadata, ModelSpec,
    ScoringEngine,
};
use kiln_image::{
    Baseline, Descriptor, ImageError, KilnConfig, ModelImageParts, ModelManifest, OciStore,
    SampleTable, Schema, TensorSchema, open_image,
};
use kiln_metrics::Metrics;
use kiln_registry::{Progress, Registry, RegistryOptions, is_registry_reference, parse_reference};
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

mod builtin;
pub mod python;

pub use builtin::{BUILTIN_SCORERS, BuiltinScorer, Installed, builtin_scorer, shipped_component};
pub use python::COMPONENTIZE_PY_VERSION;

/// Why a build failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The manifest, its files or its sample do not fit the component.
    #[error("{0}")]
    Invalid(String),
    /// The component could not be found or fetched.
    #[error("{0}")]
    Component(String),
    /// Compiling or loading the component failed.
    #[error("{0}")]
    Engine(String),
    /// The store failed.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Hooks for progress display; every method does nothing by default.
pub trait BuildObserver: Sync {
    /// Compilation of a component of `bytes` bytes starts.
    fn compiling(&self, _bytes: usize) {}
    /// Compilation ended.
    fn compiled(&self) {}
    /// componentize-py starts compiling the Python scorer `script`.
    fn compiling_python(&self, _script: &str) {}
    /// Bytes of a registry pull: `(blob, done, total)`.
    fn pulling(&self, _blob: &str, _done: u64, _total: u64) {}
}

impl BuildObserver for () {}

/// Where component images come from.
pub struct Sources<'a> {
    /// Opens the local store (only when a component names an image).
    pub store: &'a (dyn Fn() -> Result<OciStore, ImageError> + Sync),
    /// How registries are reached.
    pub registry: &'a RegistryOptions,
    /// Whether the local store's copy of a registry component serves when the registry cannot
    /// be reached. The CLI allows it (working offline); the control plane does not: a pull is
    /// how a work group shows it may read the image.
    pub store_fallback: bool,
    /// The sandbox that compiles Python scorers (the control plane's); `None` compiles them as
    /// the current user (the CLI).
    pub sandbox: Option<&'a kiln_executor::sandbox::Sandbox>,
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
pub struct Checked {
    /// The component's bytes.
    pub component: Vec<u8>,
    /// The model files, by the names the scorer reads them under.
    pub files: Vec<(String, Vec<u8>)>,
    /// The component's schema.
    pub schema: Schema,
    /// The name in the component's metadata.
    pub name: String,
    /// The sample rows, when the manifest has some.
    pub sample: Option<SampleTable>,
    /// The loaded model, for the prediction baseline.
    pub model: Arc<Model>,
    /// Where the component came from when it is an image (a built-in scorer's is
    /// `kiln/scorers/NAME:VERSION@sha256:...`); `None` for a `.wasm` file.
    pub source: Option<String>,
    /// The capabilities it was loaded with, which its image grants its deployments.
    pub capabilities: Vec<String>,
    /// What a Python scorer's component was built from.
    pub python: Option<kiln_image::PythonBuild>,
}

/// A manifest's scoring component, resolved.
pub struct Component {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The image it came from, pinned by digest; `None` for a `.wasm` file.
    pub source: Option<String>,
}

/// Whether a manifest's `component` names a file rather than an image.
pub fn is_component_path(text: &str, base: &Path) -> bool {
    text.ends_with(".wasm") || base.join(text).is_file()
}

/// A manifest's scoring component: a `.wasm` file (relative to `base`), else a built-in scorer
/// (`onnx`, `onnx@VERSION`), else an image in the local store (a plain component, or a Kiln
/// model whose scorer is reused), else a registry reference pulled into the store and verified
/// first (the store's copy serves when the registry cannot be reached).
pub async fn component_bytes(
    text: &str,
    base: &Path,
    sources: &Sources<'_>,
    observer: &dyn BuildObserver,
) -> Result<Component, BuildError> {
    let path = base.join(text);
    if is_component_path(text, base) {
        let bytes = std::fs::read(&path)
            .map_err(|e| BuildError::Component(format!("cannot read {}: {e}", path.display())))?;
        return Ok(Component {
            bytes,
            source: None,
        });
    }
    let store = (sources.store)()?;
    if let Some(builtin) = builtin_scorer(text) {
        let installed = builtin.map_err(BuildError::Component)?.install(&store)?;
        return Ok(Component {
            bytes: installed.bytes,
            source: Some(installed.reference),
        });
    }
    let name = text.strip_prefix("oci://").unwrap_or(text);
    if is_registry_reference(text) {
        let pulled = async {
            let reference = parse_reference(text).map_err(|e| e.to_string())?;
            let registry = Registry::connect(&reference, sources.registry).await;
            let progress: Progress<'_> = &|blob, done, total| observer.pulling(blob, done, total);
            registry
                .pull(&store, text, progress)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(error) = pulled {
            if !sources.store_fallback || store.resolve(name).is_err() {
                return Err(BuildError::Component(format!(
                    "cannot pull the scorer component {text}: {error}"
                )));
            }
            tracing::warn!("registry unavailable, using the local store's {name}: {error}");
        }
    }
    let image = open_image(&store, name).map_err(|e| {
        BuildError::Component(format!(
            "scorer component '{text}' is neither a .wasm file, nor a built-in scorer ({}), nor a usable image: {e}",
            BUILTIN_SCORERS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let unpinned = name.split('@').next().unwrap_or(name);
    Ok(Component {
        bytes: image.component,
        source: Some(format!("{unpinned}@{}", image.manifest_digest)),
    })
}

/// The capabilities a manifest whose scorer is `component` grants: `grants`, and those a
/// built-in scorer needs (the `onnx` scorer's graphs run through wasi:nn), each once.
pub fn granted(component: &str, grants: &[String]) -> Vec<String> {
    let mut all: Vec<String> = grants.to_vec();
    if let Some(Ok(builtin)) = builtin_scorer(component) {
        all.extend(builtin.capabilities.iter().map(|c| c.to_string()));
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|c| seen.insert(c.clone()));
    all
}

/// How long compiling one component for a build may take.
pub const COMPILE_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Compiles that image builds run at once in this process.
const BUILD_COMPILES: usize = 2;

static COMPILES: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(BUILD_COMPILES)));

/// The one engine of this process's image builds: made once (its pool reserved once), with the
/// machine's compile cache, so that a built-in scorer (large) is compiled once per machine.
fn build_engine() -> Result<Arc<ScoringEngine>, BuildError> {
    static ENGINE: std::sync::OnceLock<Arc<ScoringEngine>> = std::sync::OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let engine = Arc::new(
        ScoringEngine::new(&EngineConfig {
            cache_dir: kiln_engine::default_cache_dir(),
            // A build loads one instance at a time, a few builds at once.
            max_instances: 16,
            ..EngineConfig::default()
        })
        .map_err(|e| BuildError::Engine(e.to_string()))?,
    );
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// Compiles and loads a component with `files` and the `capabilities` its manifest grants,
/// compares its schema with `expected`, and runs the sample through the dataplane's input and
/// output checks. Graphs a component granted `nn` loads are parsed here, so one that does not
/// parse, or that the backend cannot run, fails the build with the reason.
pub async fn load_and_check(
    bytes: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
    config: &str,
    capabilities: &[String],
    expected: Option<&Schema>,
    sample: Option<SampleTable>,
    observer: &dyn BuildObserver,
) -> Result<Checked, BuildError> {
    let engine = build_engine()?;
    let granted = Capabilities::from_names(capabilities).map_err(BuildError::Invalid)?;
    observer.compiling(bytes.len());
    // At most BUILD_COMPILES compiles at once; one that outlives COMPILE_LIMIT fails the build.
    // Its thread cannot be stopped mid-compile, so it keeps its place until it ends: builds
    // that time out cannot pile up compiles.
    let permit = COMPILES
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| BuildError::Engine(e.to_string()))?;
    let compiled = {
        let (engine, bytes) = (engine.clone(), bytes.clone());
        let compiling = tokio::task::spawn_blocking(move || {
            let compiled = engine.compile_granted(&bytes, granted);
            drop(permit);
            compiled
        });
        tokio::time::timeout(COMPILE_LIMIT, compiling).await
    };
    observer.compiled();
    let compiled = compiled
        .map_err(|_| {
            BuildError::Engine(format!(
                "compiling the scorer component took longer than {} s",
                COMPILE_LIMIT.as_secs()
            ))
        })?
        .map_err(|e| BuildError::Engine(e.to_string()))?
        .map_err(|e| BuildError::Engine(format!("cannot compile the scorer component: {e}")))?;
    let metrics = Metrics::new();
    let deployment_metrics = Arc::new(metrics.deployment("build", "build"));
    let spec = ModelSpec {
        name: "build".into(),
        compiled,
        artifacts: Artifacts::from_files(files.clone()),
        config: config.to_string(),
        limits: InstanceLimits::default(),
    };
    let model = Model::load(engine, spec, deployment_metrics.clone())
        .await
        .map_err(|e| BuildError::Engine(format!("the scorer did not load: {e}")))?;
    let schema = schema_of(model.metadata());
    let name = model.metadata().name.clone();
    if let Some(declared) = expected
        && declared != &schema
    {
        return Err(BuildError::Invalid(format!(
            "the manifest's schema does not match the component's metadata:\n  manifest:  {}\n  component: {}",
            serde_json::to_string(declared).unwrap_or_default(),
            serde_json::to_string(&schema).unwrap_or_default()
        )));
    }
    if let Some(table) = &sample {
        let trial = Deployment::new("build", "build", model.clone(), deployment_metrics);
        Dataplane::new(ServerLimits::default())
            .check_sample(&trial, &table.columns, &table.rows)
            .await
            .map_err(|e| match e {
                SampleError::Unfit(e) => BuildError::Invalid(format!(
                    "sample does not fit the model's inputs: {}",
                    e.message
                )),
                SampleError::Failed(e) => {
                    BuildError::Invalid(format!("sample smoke test failed: {}", e.message))
                }
            })?;
    }
    Ok(Checked {
        component: bytes,
        files,
        schema,
        name,
        sample,
        model,
        source: None,
        capabilities: capabilities.to_vec(),
        python: None,
    })
}

/// Linear memory per instance of a Python scorer whose manifest sets none, in MiB: CPython's
/// heap and the snapshot of its modules, with room to score.
pub const PYTHON_MEMORY_MB: usize = 256;

/// A manifest's scorer component: compiled from its Python script (`scorer = "python"`), or
/// as [`component_bytes`] finds it.
pub async fn scorer_component(
    manifest: &ModelManifest,
    base: &Path,
    sources: &Sources<'_>,
    observer: &dyn BuildObserver,
) -> Result<(Component, Option<kiln_image::PythonBuild>), BuildError> {
    let scorer = &manifest.scorer;
    if !scorer.is_python() {
        let component = component_bytes(&scorer.component, base, sources, observer).await?;
        return Ok((component, None));
    }
    let script = scorer.script.as_deref().ok_or_else(|| {
        BuildError::Invalid("[scorer] component = \"python\" needs a script".into())
    })?;
    let modules: Vec<std::path::PathBuf> = scorer.modules.iter().map(|m| base.join(m)).collect();
    let spec = python::Script {
        script: &base.join(script),
        modules: &modules,
        nn: manifest.capabilities.iter().any(|c| c == "nn"),
        schema: manifest.schema.as_ref(),
        name: &manifest.name,
    };
    observer.compiling_python(script);
    let built = python::build(&spec, sources.sandbox).await?;
    let mut record = built.record;
    record.script = script.to_string();
    Ok((
        Component {
            bytes: built.bytes,
            source: None,
        },
        Some(record),
    ))
}

/// Checks a manifest file end to end; returns it, what its image holds, and its baseline.
pub async fn check_manifest(
    path: &Path,
    sources: &Sources<'_>,
    observer: &dyn BuildObserver,
) -> Result<(ModelManifest, Checked, Option<Baseline>), BuildError> {
    let (manifest, base) = ModelManifest::read(path)?;
    let files = manifest.model_files(&base)?;
    let sample = match &manifest.sample {
        Some(s) => Some(SampleTable::read(
            &base.join(&s.file),
            s.rows.unwrap_or(100),
        )?),
        None => None,
    };
    let (component, python) = scorer_component(&manifest, &base, sources, observer).await?;
    let capabilities = granted(&manifest.scorer.component, &manifest.capabilities);
    let mut checked = load_and_check(
        component.bytes,
        files,
        &manifest.scorer.config,
        &capabilities,
        manifest.schema.as_ref(),
        sample,
        observer,
    )
    .await?;
    checked.source = component.source;
    checked.python = python;
    let baseline = match &manifest.baseline {
        None => None,
        Some(section) => {
            let (table, source) = match &section.file {
                Some(file) => (
                    SampleTable::read(&base.join(file), usize::MAX)?,
                    file.clone(),
                ),
                None => (
                    checked.sample.clone().ok_or_else(|| {
                        BuildError::Invalid("a baseline needs sample rows".into())
                    })?,
                    "sample".to_string(),
                ),
            };
            let mut baseline =
                Baseline::from_table(&table.columns, &table.rows, section.bins, &source);
            baseline.predictions = predictions(&checked.model, &table, section.bins)
                .await
                .map_err(|e| {
                    BuildError::Invalid(format!(
                        "the baseline rows ({source}) do not fit the model's inputs; give only its input columns: {e}"
                    ))
                })?;
            Some(baseline)
        }
    };
    Ok((manifest, checked, baseline))
}

/// Rows per prediction call while computing the prediction baseline.
const BASELINE_BATCH: usize = 512;

/// The model's predictions on the baseline rows, binned like the features: the reference of
/// prediction drift.
async fn predictions(
    model: &Model,
    table: &SampleTable,
    bins: usize,
) -> Result<Vec<kiln_image::FeatureBaseline>, String> {
    let metadata = model.metadata();
    let mut outputs = Vec::new();
    for rows in table.rows.chunks(BASELINE_BATCH) {
        let inputs = protocol::table_to_tensors(metadata, &table.columns, rows, usize::MAX)
            .map_err(|e| e.message)?;
        let mut ordered = Vec::with_capacity(metadata.inputs.len());
        for spec in &metadata.inputs {
            let t = inputs
                .iter()
                .find(|t| t.name == spec.name)
                .ok_or_else(|| format!("missing input '{}'", spec.name))?;
            tensor::check(spec, t, "input")?;
            ordered.push(t.clone());
        }
        outputs.push(model.predict(&ordered).await.map_err(|e| e.to_string())?);
    }
    Ok(kiln_monitor::prediction_baseline(metadata, &outputs, bins))
}

/// Writes the model image of a checked manifest into the store, tagged `tag` (default
/// `NAME:VERSION`); returns the tag and the manifest descriptor.
pub fn build_image(
    store: &OciStore,
    manifest: &ModelManifest,
    checked: &Checked,
    baseline: Option<Baseline>,
    tag: Option<String>,
) -> Result<(String, Descriptor), BuildError> {
    let config = KilnConfig {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        description: manifest.description.clone(),
        scorer_config: manifest.scorer.config.clone(),
        scorer_source: checked.source.clone(),
        schema: checked.schema.clone(),
        limits: kiln_api::Limits {
            memory_mb: manifest
                .limits
                .memory_mb
                .or(checked.python.as_ref().map(|_| PYTHON_MEMORY_MB)),
            ..manifest.limits.clone()
        },
        capabilities: checked.capabilities.clone(),
        baseline,
        monitoring: manifest.monitoring.clone(),
        python: checked.python.clone(),
    };
    let sample = checked.sample.as_ref().map(SampleTable::to_json);
    let parts = ModelImageParts {
        config: &config,
        component: &checked.component,
        files: &checked.files,
        sample: sample.as_deref(),
    };
    let tag = tag.unwrap_or_else(|| format!("{}:{}", manifest.name, manifest.version));
    let descriptor = kiln_image::build_model_image(store, &parts, &tag)?;
    Ok((tag, descriptor))
}

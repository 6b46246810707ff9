//! `kiln serve`: load deployments, serve predictions and metrics, shut down gracefully.

use crate::config::{self, DeploymentConfig, FileConfig, LimitsConfig};
use crate::images::StoreArgs;
use anyhow::{Context, Result, bail};
use clap::Args;
use kiln_dataplane::{AppState, Dataplane, Deployment, ServerLimits};
use kiln_engine::{
    Allocation, Artifacts, Capabilities, EngineConfig, InstanceLimits, Model, ModelSpec,
    ScoringEngine,
};
use kiln_image::{ImageError, ImageLimits, OciStore, open_image};
use kiln_metrics::{DeploymentMetrics, Metrics};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Flags of `kiln serve`; they override the config file.
/// Bounds of every listener (`kiln serve`, `kiln up`).
#[derive(Args, Clone, Debug)]
pub struct ListenerArgs {
    /// Seconds a client has to send a request's head; a kept-alive connection that sends no next
    /// request within it is closed too.
    #[arg(long, env = "KILN_HEADER_TIMEOUT_S", default_value_t = 20)]
    header_timeout_s: u64,
    /// Seconds a request may take until its response starts (answered 408 after).
    #[arg(long, env = "KILN_REQUEST_TIMEOUT_S", default_value_t = 300)]
    request_timeout_s: u64,
    /// Connections each listener holds open at once (more wait for one to close).
    #[arg(long, env = "KILN_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// On SIGTERM, seconds open connections have to finish before they are closed.
    #[arg(long, env = "KILN_GRACE_S", default_value_t = 30)]
    grace_s: u64,
    /// A PEM certificate chain: every listener speaks TLS with it (with --tls-key).
    #[arg(long, env = "KILN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "KILN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl ListenerArgs {
    /// The listeners' limits (and TLS, when a certificate is given).
    pub fn limits(&self) -> Result<kiln_dataplane::ListenerLimits> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(
                kiln_dataplane::Tls::acceptor(cert, key)
                    .map_err(|e| anyhow::anyhow!("--tls-cert/--tls-key: {e}"))?,
            ),
            _ => None,
        };
        Ok(kiln_dataplane::ListenerLimits {
            header_timeout: Duration::from_secs(self.header_timeout_s.max(1)),
            request_timeout: Duration::from_secs(self.request_timeout_s.max(1)),
            max_connections: self.max_connections.max(1),
            grace: Duration::from_secs(self.grace_s),
            tls,
        })
    }

    /// `https` with a certificate, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address of the prediction listener.
    #[arg(long, env = "KILN_ADDR")]
    addr: Option<SocketAddr>,
    /// Address of the Prometheus metrics listener.
    #[arg(long, env = "KILN_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// A deployment: NAME=PATH.wasm[,artifacts=DIR][,version=V][,config=TEXT]. Repeatable.
    #[arg(long = "deploy", value_name = "NAME=PATH")]
    deploy: Vec<String>,
    /// A TOML config file (unknown keys are rejected); flags override it.
    #[arg(long, short = 'c', env = "KILN_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the compiled-component cache (default: ~/.cache/kiln/compiled).
    #[arg(long, env = "KILN_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component afresh and write no cache.
    #[arg(long)]
    no_cache: bool,
    /// Allocate instances on demand instead of from the pooling allocator.
    #[arg(long)]
    on_demand: bool,
    /// A key that model and prediction routes require as `Authorization: Bearer <key>`.
    /// Repeatable; without any, those routes are open.
    #[arg(long = "api-key", env = "KILN_API_KEY", value_delimiter = ',')]
    api_keys: Vec<String>,
    /// Largest request body in bytes.
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Most tensor elements in one request.
    #[arg(long)]
    max_elements: Option<usize>,
    /// Linear memory per instance, in MiB.
    #[arg(long)]
    memory_mb: Option<usize>,
    /// Deadline of one prediction inside the component, in ms.
    #[arg(long)]
    deadline_ms: Option<u64>,
    /// Instances (and so concurrent predictions) per deployment.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Requests that may wait for an instance per deployment; more get 503 at once.
    #[arg(long)]
    queue: Option<usize>,
    /// On SIGTERM/SIGINT, how long readiness reads false before the listener closes, in ms.
    #[arg(long)]
    shutdown_delay_ms: Option<u64>,
    /// A control plane to take deployments from (and report their status to), as a runtime node.
    #[arg(long, env = "KILN_CONTROL_URL", requires = "token")]
    control: Option<String>,
    /// The runtime's token for `--control`: a runtime node user's (`kiln user create NODE
    /// --runtime`).
    #[arg(long, env = "KILN_RUNTIME_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A PEM certificate the control plane's TLS certificate must chain to (its own, when it is
    /// self-signed), besides the system's roots. The node verifies it always.
    #[arg(long, env = "KILN_CONTROL_CA", requires = "control")]
    control_ca: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    registry: crate::transfer::RegistryArgs,
    #[command(flatten)]
    monitoring: crate::monitoring::MonitorArgs,
    #[command(flatten)]
    nn: crate::nn::NnArgs,
    #[command(flatten)]
    listeners: ListenerArgs,
}

struct Resolved {
    listeners: kiln_dataplane::ListenerLimits,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    cache_dir: Option<PathBuf>,
    on_demand: bool,
    api_keys: Vec<String>,
    server_limits: ServerLimits,
    shutdown_delay: Duration,
    /// Each deployment with its explicit limits (its own, else the flags').
    deployments: Vec<(DeploymentConfig, LimitsConfig)>,
    /// `[limits]` of the config file: below an image's own defaults.
    file_limits: LimitsConfig,
    store: StoreArgs,
    registry: kiln_registry::RegistryOptions,
    /// `(control plane URL, token)` for a runtime node.
    control: Option<(String, String)>,
    /// The HTTP client of a runtime node, trusting `--control-ca`.
    control_http: reqwest::Client,
    monitoring: crate::monitoring::MonitorArgs,
    nn: kiln_engine::NnConfig,
}

fn resolve(args: ServeArgs) -> Result<Resolved> {
    let file = match &args.config {
        Some(path) => config::read_file(path)?,
        None => FileConfig::default(),
    };
    let flag_limits = LimitsConfig {
        memory_mb: args.memory_mb,
        deadline_ms: args.deadline_ms,
        load_deadline_ms: None,
        concurrency: args.concurrency,
        queue: args.queue,
    };
    let mut deployments = file.deployments.clone();
    for arg in &args.deploy {
        deployments.push(config::parse_deploy(arg)?);
    }
    if deployments.is_empty() && args.control.is_none() {
        anyhow::bail!(
            "nothing to serve: give --deploy NAME=PATH.wasm or [[deployments]] in --config"
        );
    }
    let mut names = std::collections::HashSet::new();
    let mut resolved = Vec::with_capacity(deployments.len());
    for deployment in deployments {
        config::check_deployment(&deployment)?;
        if !names.insert(deployment.name.clone()) {
            anyhow::bail!("deployment '{}' is given twice", deployment.name);
        }
        let explicit = deployment.limits().or(&flag_limits);
        explicit
            .or(&file.limits)
            .resolve()
            .with_context(|| format!("deployment '{}'", deployment.name))?;
        resolved.push((deployment, explicit));
    }
    let server_defaults = ServerLimits::default();
    Ok(Resolved {
        listeners: args.listeners.limits()?,
        addr: args
            .addr
            .or(file.addr)
            .unwrap_or(([127, 0, 0, 1], 8080).into()),
        metrics_addr: args
            .metrics_addr
            .or(file.metrics_addr)
            .unwrap_or(([127, 0, 0, 1], 9090).into()),
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir
                .or(file.cache_dir)
                .or_else(kiln_engine::default_cache_dir)
        },
        on_demand: args.on_demand,
        api_keys: if args.api_keys.is_empty() {
            file.api_keys
        } else {
            args.api_keys
        },
        server_limits: ServerLimits {
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(server_defaults.max_body_bytes),
            max_elements: args
                .max_elements
                .or(file.max_elements)
                .unwrap_or(server_defaults.max_elements),
        },
        shutdown_delay: Duration::from_millis(
            args.shutdown_delay_ms
                .or(file.shutdown_delay_ms)
                .unwrap_or(0),
        ),
        deployments: resolved,
        file_limits: file.limits,
        store: args.store,
        registry: args.registry.options(),
        monitoring: args.monitoring,
        nn: args.nn.config(),
        control_http: {
            let mut builder = reqwest::Client::builder();
            if let Some(path) = &args.control_ca {
                let pem = std::fs::read(path)
                    .with_context(|| format!("--control-ca {}", path.display()))?;
                let certificate = reqwest::Certificate::from_pem(&pem).with_context(|| {
                    format!("--control-ca {}: not a PEM certificate", path.display())
                })?;
                builder = builder.add_root_certificate(certificate);
            }
            builder.build().context("the control plane's HTTP client")?
        },
        control: args.control.map(|url| {
            (
                url.trim_end_matches('/').to_string(),
                args.token.unwrap_or_default(),
            )
        }),
    })
}

/// Runs `kiln serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    let settings = resolve(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kiln-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(settings, started))
}

/// What a deployment serves: a component file with an artifacts directory, or a store image.
struct Source {
    component: Vec<u8>,
    capabilities: Capabilities,
    artifacts: Artifacts,
    config: String,
    version: String,
    limits: ImageLimits,
    pinned: Option<String>,
    baseline: Option<kiln_image::Baseline>,
    monitoring: kiln_image::MonitoringSection,
}

fn image_limits(limits: &ImageLimits) -> LimitsConfig {
    LimitsConfig {
        memory_mb: limits.memory_mb,
        deadline_ms: limits.deadline_ms,
        load_deadline_ms: None,
        concurrency: limits.concurrency,
        queue: None,
    }
}

/// A `.wasm` file when the path is one, else an image (tag or digest) in the local store.
async fn open_source(deployment: &DeploymentConfig, settings: &Resolved) -> Result<Source> {
    let text = deployment.component.to_string_lossy().into_owned();
    if deployment.component.is_file() {
        let component =
            std::fs::read(&deployment.component).with_context(|| format!("cannot read {text}"))?;
        let artifacts = match &deployment.artifacts {
            Some(dir) => Artifacts::from_dir(dir)?,
            None => Artifacts::empty(),
        };
        return Ok(Source {
            component,
            capabilities: Capabilities::from_names(&deployment.capabilities)
                .map_err(anyhow::Error::msg)?,
            artifacts,
            config: deployment.config.clone(),
            version: deployment.version.clone().unwrap_or_else(|| "1".into()),
            limits: ImageLimits::default(),
            pinned: None,
            baseline: None,
            monitoring: Default::default(),
        });
    }
    let reference = text.strip_prefix("oci://").unwrap_or(&text);
    let store: OciStore = settings.store.open()?;
    let mut reference = reference.to_string();
    if kiln_registry::is_registry_reference(&reference) {
        // The registry says what a tag means now; the store's copy serves when it is unreachable.
        match crate::transfer::pull_into(&store, &reference, &settings.registry).await {
            Ok(pulled) => {
                tracing::info!(deployment = %deployment.name, digest = %pulled.digest, "pulled {reference}");
                reference = format!(
                    "{}@{}",
                    reference.split('@').next().unwrap_or(&reference),
                    pulled.digest
                );
            }
            Err(e) if store.resolve(&reference).is_ok() => {
                tracing::warn!(deployment = %deployment.name, "registry unavailable, deploying the local store's {reference}: {e:#}");
            }
            Err(e) => return Err(e).with_context(|| format!("cannot pull {reference}")),
        }
    }
    let reference = reference.as_str();
    let image = match open_image(&store, reference) {
        Ok(image) => image,
        Err(ImageError::NotFound(_)) => bail!(
            "cannot read {text}: no such file, and no image '{reference}' in the local store {}",
            store.root().display()
        ),
        Err(e) => return Err(e).with_context(|| format!("image '{reference}'")),
    };
    if deployment.artifacts.is_some() {
        bail!("artifacts= is for .wasm files; image '{reference}' carries its own files");
    }
    if !deployment.capabilities.is_empty() {
        bail!("grant= is for .wasm files; image '{reference}' carries its manifest's capabilities");
    }
    let config = image.config.clone();
    Ok(Source {
        component: image.component,
        capabilities: image_capabilities(config.as_ref())?,
        artifacts: Artifacts::from_files(image.files),
        config: if deployment.config.is_empty() {
            config
                .as_ref()
                .map(|c| c.scorer_config.clone())
                .unwrap_or_default()
        } else {
            deployment.config.clone()
        },
        version: deployment
            .version
            .clone()
            .or_else(|| config.as_ref().map(|c| c.version.clone()))
            .unwrap_or_else(|| "1".into()),
        baseline: config.as_ref().and_then(|c| c.baseline.clone()),
        monitoring: config
            .as_ref()
            .and_then(|c| c.monitoring.clone())
            .unwrap_or_default(),
        limits: config.map(|c| c.limits).unwrap_or_default(),
        pinned: Some(image.manifest_digest.to_string()),
    })
}

/// The capabilities an image's config grants its scorer.
pub(crate) fn image_capabilities(config: Option<&kiln_image::KilnConfig>) -> Result<Capabilities> {
    let names = config.map_or(&[][..], |c| c.capabilities.as_slice());
    Capabilities::from_names(names).map_err(anyhow::Error::msg)
}

/// A deployment version to load: its component and what its scorer's `load` gets.
pub(crate) struct ModelSource<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The pinned image reference, for the log (none for a bare `.wasm` file).
    pub image: Option<&'a str>,
    pub component: Vec<u8>,
    pub capabilities: Capabilities,
    pub artifacts: Artifacts,
    pub config: String,
    pub limits: InstanceLimits,
}

/// Compiles a deployment version's component (or takes it from the cache), records the compile
/// in its metrics, and loads its instances: the step `kiln serve` and a runtime node reconciling
/// with the control plane share.
pub(crate) async fn compile_and_load(
    engine: &Arc<ScoringEngine>,
    metrics: &Metrics,
    source: ModelSource<'_>,
) -> Result<(Arc<Model>, Arc<DeploymentMetrics>)> {
    let compiled = {
        let engine = engine.clone();
        let (bytes, capabilities) = (source.component, source.capabilities);
        tokio::task::spawn_blocking(move || engine.compile_granted(&bytes, capabilities))
            .await
            .context("compile task failed")??
    };
    let deployment_metrics = Arc::new(metrics.deployment(source.name, source.version));
    deployment_metrics.record_compile(compiled.compile_time.as_secs_f64(), compiled.cached);
    tracing::info!(
        deployment = %source.name,
        digest = %compiled.digest,
        image = source.image.unwrap_or("none"),
        cached = compiled.cached,
        "component ready in {:.1} ms",
        compiled.compile_time.as_secs_f64() * 1e3
    );
    let spec = ModelSpec {
        name: source.name.to_string(),
        compiled,
        artifacts: source.artifacts,
        config: source.config,
        limits: source.limits,
    };
    let model = Model::load(engine.clone(), spec, deployment_metrics.clone()).await?;
    Ok((model, deployment_metrics))
}

async fn load_deployment(
    engine: &Arc<ScoringEngine>,
    metrics: &Metrics,
    monitoring: &crate::monitoring::Monitoring,
    settings: &Resolved,
    deployment: &DeploymentConfig,
    explicit: &LimitsConfig,
) -> Result<Deployment> {
    let name = &deployment.name;
    let source = open_source(deployment, settings).await?;
    let limits = explicit
        .or(&image_limits(&source.limits))
        .or(&settings.file_limits)
        .resolve()?;
    let (model, deployment_metrics) = compile_and_load(
        engine,
        metrics,
        ModelSource {
            name,
            version: &source.version,
            image: source.pinned.as_deref(),
            component: source.component,
            capabilities: source.capabilities,
            artifacts: source.artifacts,
            config: source.config,
            limits,
        },
    )
    .await?;
    let monitor = monitoring
        .attach(
            name,
            &source.version,
            &model,
            source.baseline.as_ref(),
            &source.monitoring,
        )
        .await;
    Ok(Deployment {
        name: name.clone(),
        version: source.version,
        model,
        metrics: deployment_metrics,
        key_digests: None,
        monitor,
    })
}

async fn serve(settings: Resolved, started: Instant) -> Result<()> {
    let engine = Arc::new(ScoringEngine::new(&EngineConfig {
        cache_dir: settings.cache_dir.clone(),
        allocation: if settings.on_demand {
            Allocation::OnDemand
        } else {
            Allocation::Auto
        },
        nn: settings.nn.clone(),
        ..EngineConfig::default()
    })?);
    let metrics = Arc::new(Metrics::new());
    let dataplane = Arc::new(Dataplane::new(settings.server_limits.clone()));
    let monitoring = crate::monitoring::Monitoring::new(
        settings.monitoring.clone(),
        engine.clone(),
        metrics.clone(),
        settings.store.dir().ok(),
        settings.registry.clone(),
    );
    let mut failures = Vec::new();
    for (deployment, explicit) in &settings.deployments {
        match load_deployment(
            &engine,
            &metrics,
            &monitoring,
            &settings,
            deployment,
            explicit,
        )
        .await
        {
            Ok(loaded) => dataplane.registry.insert(loaded),
            Err(error) => {
                let reason = format!("{error:#}");
                tracing::error!(deployment = %deployment.name, "not served: {reason}");
                dataplane.registry.insert_failed(&deployment.name, &reason);
                failures.push(format!("deployment '{}': {reason}", deployment.name));
            }
        }
    }
    if !settings.deployments.is_empty() && failures.len() == settings.deployments.len() {
        bail!(
            "no deployment could be served:\n  {}",
            failures.join("\n  ")
        );
    }

    let reports = monitoring.start(dataplane.clone());
    if let Some((url, token)) = &settings.control {
        let store_dir = settings.store.dir()?;
        // Ready once the control plane's deployments are loaded (or failed with their reason).
        dataplane.set_loaded(false);
        tracing::info!("runtime node of the control plane at {url}");
        tokio::spawn(crate::reconcile::run(
            crate::reconcile::Runtime {
                engine: engine.clone(),
                metrics: metrics.clone(),
                dataplane: dataplane.clone(),
                store_dir,
                registry: settings.registry.clone(),
                monitoring: monitoring.clone(),
            },
            crate::reconcile::Source::Remote {
                url: url.clone(),
                token: token.clone(),
                http: settings.control_http.clone(),
            },
            reports,
        ));
    } else {
        tokio::spawn(crate::reconcile::log_reports(reports));
    }
    let listener = TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.addr))?;
    let metrics_listener = TcpListener::bind(settings.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.metrics_addr))?;
    let addr = listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;
    let scheme = if settings.listeners.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        pooling = engine.pooling(),
        "serving {} deployment(s) on {scheme}://{addr} (metrics on {scheme}://{metrics_addr}/metrics), ready in {:.1} ms",
        settings.deployments.len() - failures.len(),
        started.elapsed().as_secs_f64() * 1e3
    );

    let state = AppState {
        dataplane: dataplane.clone(),
        api_keys: Arc::new(settings.api_keys),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_server = {
        let mut stop = stop_rx.clone();
        let limits = settings.listeners.clone();
        let app = kiln_dataplane::metrics_router(metrics.clone());
        tokio::spawn(async move {
            kiln_dataplane::serve(metrics_listener, app, limits, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        })
    };
    let shutdown = {
        let dataplane = dataplane.clone();
        let delay = settings.shutdown_delay;
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down: readiness is false, finishing in-flight requests");
            dataplane.set_ready(false);
            tokio::time::sleep(delay).await;
        }
    };
    kiln_dataplane::serve(
        listener,
        kiln_dataplane::router(state),
        settings.listeners.clone(),
        shutdown,
    )
    .await
    .context("prediction listener failed")?;
    let _ = stop_tx.send(true);
    let _ = metrics_server.await;
    for deployment in dataplane.registry.all() {
        deployment.model.release_instances();
    }
    tracing::info!("stopped");
    Ok(())
}

pub(crate) async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

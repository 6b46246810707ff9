//! `kiln serve` as a library call: deployments given by the operator (files or images), served
//! with their metrics, optionally as a runtime node of a control plane, until a signal.

use crate::loader::{ModelSource, Wanted};
use crate::{Monitoring, MonitoringConfig, Node, source};
use anyhow::{Context, Result, bail};
use kiln_api::Limits;
use kiln_dataplane::{AppState, Dataplane, Deployment, ListenerLimits, ServerLimits};
use kiln_engine::{Allocation, EngineConfig, NnConfig, ScoringEngine};
use kiln_registry::RegistryOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A deployment the operator gives: a `.wasm` file (with artifacts and granted capabilities)
/// or an image reference.
#[derive(Clone, Debug, Default)]
pub struct StaticDeployment {
    /// The `{model}` of prediction URLs.
    pub name: String,
    /// A `.wasm` file, or an image (tag or digest) in the local store or a registry.
    pub component: PathBuf,
    /// The artifacts directory of a `.wasm` file.
    pub artifacts: Option<PathBuf>,
    /// The scorer's config (an image's own when empty).
    pub config: String,
    /// The version served (an image's own, else `1`, when unset).
    pub version: Option<String>,
    /// Capabilities granted to a `.wasm` file.
    pub capabilities: Vec<String>,
    /// The deployment's own limits.
    pub limits: Limits,
}

/// What `kiln serve` runs with.
pub struct ServeConfig {
    /// The prediction listener.
    pub addr: SocketAddr,
    /// The metrics listener.
    pub metrics_addr: SocketAddr,
    /// Bounds (and TLS) of both listeners.
    pub listeners: ListenerLimits,
    /// The compiled-component cache; none compiles afresh.
    pub cache_dir: Option<PathBuf>,
    /// Instances allocated on demand rather than from the pooling allocator.
    pub on_demand: bool,
    /// Keys the prediction routes take (open without any).
    pub api_keys: Vec<String>,
    /// Request bounds.
    pub server_limits: ServerLimits,
    /// How long readiness reads false before the listener closes on a signal.
    pub shutdown_delay: Duration,
    /// The operator's deployments.
    pub deployments: Vec<StaticDeployment>,
    /// The node's default limits, under a deployment's and its image's.
    pub defaults: Limits,
    /// The local image store.
    pub store_dir: Option<PathBuf>,
    /// How registries are reached.
    pub registry: RegistryOptions,
    /// Drift monitoring.
    pub monitoring: MonitoringConfig,
    /// Graph backends.
    pub nn: NnConfig,
    /// A control plane to take deployments from, as a runtime node.
    pub control: Option<source::Http>,
}

/// Opens an operator's deployment: a file when the path is one, else an image by the node's
/// image policy.
async fn open(node: &Node, deployment: &StaticDeployment) -> Result<ModelSource> {
    let text = deployment.component.to_string_lossy().into_owned();
    if deployment.component.is_file() {
        return ModelSource::from_file(
            &deployment.component,
            deployment.artifacts.as_deref(),
            &deployment.capabilities,
            &deployment.config,
            deployment.version.as_deref(),
        );
    }
    let store = node
        .store_dir
        .as_deref()
        .with_context(|| format!("cannot read {text}: no such file, and no local image store"))?;
    let (image, reference) = crate::images::open(store, &text, &node.registry)
        .await
        .with_context(|| format!("cannot read {text}: no such file"))?;
    if deployment.artifacts.is_some() {
        bail!("artifacts= is for .wasm files; image '{reference}' carries its own files");
    }
    if !deployment.capabilities.is_empty() {
        bail!("grant= is for .wasm files; image '{reference}' carries its manifest's capabilities");
    }
    let mut source = ModelSource::from_image(image, &reference)?;
    if !deployment.config.is_empty() {
        source.config = deployment.config.clone();
    }
    if let Some(version) = &deployment.version {
        source.version = version.clone();
    }
    Ok(source)
}

/// Loads the operator's deployments: each one served, or failed with its reason (503).
/// Returns the failures.
async fn load_static(node: &Node, deployments: &[StaticDeployment]) -> Vec<String> {
    let mut failures = Vec::new();
    for deployment in deployments {
        let wanted = Wanted {
            limits: deployment.limits.clone(),
            ..Wanted::default()
        };
        let loaded = async {
            node.load(&deployment.name, open(node, deployment).await?, wanted)
                .await
        };
        match loaded.await {
            Ok(loaded) => node.dataplane.registry.insert(loaded.deployment),
            Err(error) => {
                let reason = format!("{error:#}");
                tracing::error!(deployment = %deployment.name, "not served: {reason}");
                node.dataplane
                    .registry
                    .insert_failed(&deployment.name, &reason);
                failures.push(format!("deployment '{}': {reason}", deployment.name));
            }
        }
    }
    failures
}

/// Serves until SIGTERM or SIGINT, then drains.
pub async fn serve(config: ServeConfig, started: Instant) -> Result<()> {
    let engine = Arc::new(ScoringEngine::new(&EngineConfig {
        cache_dir: config.cache_dir.clone(),
        allocation: if config.on_demand {
            Allocation::OnDemand
        } else {
            Allocation::Auto
        },
        nn: config.nn.clone(),
        ..EngineConfig::default()
    })?);
    let metrics = Arc::new(kiln_metrics::Metrics::new());
    let dataplane = Arc::new(Dataplane::new(config.server_limits.clone()));
    let node = Node {
        monitoring: Monitoring::new(
            config.monitoring.clone(),
            engine.clone(),
            metrics.clone(),
            config.store_dir.clone(),
            config.registry.clone(),
        ),
        engine: engine.clone(),
        metrics: metrics.clone(),
        dataplane: dataplane.clone(),
        store_dir: config.store_dir.clone(),
        registry: config.registry.clone(),
        defaults: config.defaults.clone(),
    };
    let failures = load_static(&node, &config.deployments).await;
    if !config.deployments.is_empty() && failures.len() == config.deployments.len() {
        bail!(
            "no deployment could be served:\n  {}",
            failures.join("\n  ")
        );
    }

    let reports = node.monitoring.start(dataplane.clone());
    match config.control {
        Some(control) => {
            // Ready once the control plane's deployments are loaded (or failed with their reason).
            dataplane.set_loaded(false);
            tracing::info!("runtime node of the control plane at {}", control.url());
            tokio::spawn(crate::reconcile::run(node, Arc::new(control), reports));
        }
        None => {
            tokio::spawn(crate::reconcile::log_reports(reports));
        }
    }
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let metrics_listener = TcpListener::bind(config.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.metrics_addr))?;
    let addr = listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;
    let scheme = if config.listeners.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        pooling = engine.pooling(),
        "serving {} deployment(s) on {scheme}://{addr} (metrics on {scheme}://{metrics_addr}/metrics), ready in {:.1} ms",
        config.deployments.len() - failures.len(),
        started.elapsed().as_secs_f64() * 1e3
    );

    let state = AppState {
        dataplane: dataplane.clone(),
        api_keys: Arc::new(config.api_keys),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_server = {
        let mut stop = stop_rx.clone();
        let limits = config.listeners.clone();
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
        let delay = config.shutdown_delay;
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
        config.listeners.clone(),
        shutdown,
    )
    .await
    .context("prediction listener failed")?;
    let _ = stop_tx.send(true);
    let _ = metrics_server.await;
    release(&dataplane.registry.all());
    tracing::info!("stopped");
    Ok(())
}

fn release(deployments: &[Arc<Deployment>]) {
    for deployment in deployments {
        deployment.model.release_instances();
    }
}

/// Returns on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
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

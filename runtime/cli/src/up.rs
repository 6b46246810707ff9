//! `kiln up`: the control plane and a runtime in one process, on embedded defaults (SQLite and
//! artifacts in a data directory, the local OCI store), with the management API, prediction
//! endpoints and metrics on their own listeners.

use crate::args::RegistryArgs;
use crate::args::StoreArgs;
use anyhow::{Context, Result};
use clap::Args;
use kiln_control::{ArtifactStore, ControlPlane, Db, SecretBox, Settings};
use kiln_dataplane::{AppState, Dataplane, ServerLimits};
use kiln_engine::{EngineConfig, ScoringEngine};
use kiln_executor::sandbox::Isolation;
use kiln_metrics::Metrics;
use kiln_node::{DesiredState, Node};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Flags of `kiln up`.
#[derive(Args)]
pub struct UpArgs {
    /// Data directory: database, artifacts and image store (default: ~/.local/share/kiln).
    #[arg(long, env = "KILN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite:PATH (default: DATA/kiln.db) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "KILN_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Artifact store: a directory or file:// URL (default: DATA/artifacts).
    #[arg(long, env = "KILN_ARTIFACTS")]
    artifacts: Option<String>,
    /// Address of the management API.
    #[arg(long, env = "KILN_API_ADDR", default_value = "127.0.0.1:8070")]
    api_addr: SocketAddr,
    /// Address of the prediction endpoints.
    #[arg(long, env = "KILN_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Address of the Prometheus metrics listener.
    #[arg(long, env = "KILN_METRICS_ADDR", default_value = "127.0.0.1:8090")]
    metrics_addr: SocketAddr,
    /// Host names the management API answers to, besides its own address and localhost.
    #[arg(long = "api-host")]
    api_hosts: Vec<String>,
    /// The key that seals secrets at rest: a file holding base64 of 32 bytes (default:
    /// DATA/secret.key, created with a random key on the first start).
    #[arg(long, env = "KILN_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// Largest model upload, in MiB.
    #[arg(long, default_value_t = 512)]
    max_upload_mb: usize,
    /// Directory of the compiled-component cache (default: DATA/compiled).
    #[arg(long, env = "KILN_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Run `local` targets' runs (and Spark drivers) without a sandbox when bubblewrap cannot
    /// make one here. They
    /// then execute as this process's own user and can read everything it can: its database,
    /// its secret key, other work groups' data. Off by default: without a sandbox the `local`
    /// target refuses runs.
    #[arg(long, env = "KILN_UNSANDBOXED_LOCAL_RUNS")]
    unsandboxed_local_runs: bool,
    /// An internal network (CIDR or address) that registries, Docker hosts and Spark masters
    /// named by work groups may be on; loopback, private and link-local addresses are refused
    /// otherwise. Repeatable.
    #[arg(long = "allow-network", value_name = "CIDR")]
    allow_networks: Vec<String>,
    /// A Docker host (unix:///PATH or URL) targets may use besides the installation's own
    /// (DOCKER_HOST, else unix:///var/run/docker.sock). Repeatable.
    #[arg(long = "allow-docker-host", value_name = "HOST")]
    allow_docker_hosts: Vec<String>,
    /// A Docker network mode targets may use besides bridge, none and default (host,
    /// container:NAME, a named network). Repeatable.
    #[arg(long = "allow-docker-network", value_name = "NETWORK")]
    allow_docker_networks: Vec<String>,
    /// Deployments a work group may hold, unless an admin set its quota.
    #[arg(long, default_value_t = 50)]
    quota_deployments: u64,
    /// Instances a work group's deployments may run together, unless an admin set its quota.
    #[arg(long, default_value_t = 256)]
    quota_instances: u64,
    /// Memory a work group's deployments may use together (MiB), unless an admin set its quota.
    #[arg(long, default_value_t = 32768)]
    quota_memory_mb: u64,
    /// The longest prediction deadline a deployment may ask for (ms), unless an admin set its
    /// work group's quota.
    #[arg(long, default_value_t = 60000)]
    quota_deadline_ms: u64,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    monitoring: crate::monitoring::MonitorArgs,
    #[command(flatten)]
    nn: crate::nn::NnArgs,
    #[command(flatten)]
    listeners: crate::serve::ListenerArgs,
    /// On SIGTERM/SIGINT, how long readiness reads false before the listeners close, in ms.
    #[arg(long, default_value_t = 0)]
    shutdown_delay_ms: u64,
}

fn default_data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("kiln"))
}

/// Runs `kiln up` until SIGTERM or Ctrl-C.
pub fn run(args: UpArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kiln-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(up(args))
}

async fn up(args: UpArgs) -> Result<()> {
    let limits = args.listeners.limits()?;
    let registry = args.registry.options()?;
    let scheme = args.listeners.scheme();
    let data = match args.data_dir.clone() {
        Some(dir) => dir,
        None => default_data_dir().context("set --data-dir or KILN_DATA_DIR: no home directory")?,
    };
    // Absolute from here on: git runs in other directories (a push's scratch tree), and a
    // relative path would name another place there.
    let data = std::path::absolute(&data)
        .with_context(|| format!("cannot resolve the data directory {}", data.display()))?;
    // What Kiln writes is its own: the data directory is 0700, and files it creates (the
    // database, the key, artifacts) are 0600.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", data.display()))?;
    }
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data.join("kiln.db").display()));
    let db = Db::connect(&database_url).await?;
    let artifacts = ArtifactStore::open(
        &args
            .artifacts
            .clone()
            .unwrap_or_else(|| data.join("artifacts").display().to_string()),
    )?;
    let store_dir = args
        .store
        .store
        .clone()
        .unwrap_or_else(|| data.join("store"));

    let api_listener = TcpListener::bind(args.api_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.api_addr))?;
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let metrics_listener = TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.metrics_addr))?;
    let (api_addr, addr, metrics_addr) = (
        api_listener.local_addr()?,
        listener.local_addr()?,
        metrics_listener.local_addr()?,
    );

    let mut allowed_hosts = vec![
        api_addr.to_string(),
        format!("localhost:{}", api_addr.port()),
    ];
    allowed_hosts.extend(args.api_hosts.iter().cloned());
    let secret_key_file = args
        .secret_key_file
        .clone()
        .unwrap_or_else(|| data.join("secret.key"));
    let secrets = SecretBox::load_or_create(&secret_key_file)?;
    let compiled = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| data.join("compiled"));
    let mut secret_paths = vec![
        data.clone(),
        secret_key_file,
        compiled.clone(),
        store_dir.clone(),
    ];
    if let Some(path) = args.artifacts.as_deref() {
        let path = path.strip_prefix("file://").unwrap_or(path);
        if !path.contains("://") {
            secret_paths.push(PathBuf::from(path));
        }
    }
    let isolation = match kiln_executor::sandbox::Sandbox::detect(secret_paths) {
        Ok(sandbox) => Isolation::Sandboxed(sandbox),
        Err(why) if args.unsandboxed_local_runs => {
            tracing::warn!(
                "local runs and Spark drivers are NOT sandboxed ({why}): they run as this process's user"
            );
            Isolation::Unsandboxed
        }
        Err(why) => {
            tracing::warn!("local and spark targets are off: {why}");
            Isolation::Off(why)
        }
    };
    let control = ControlPlane::new(
        db.clone(),
        artifacts,
        secrets,
        Settings {
            max_upload_bytes: args.max_upload_mb << 20,
            store_dir: store_dir.clone(),
            projects_dir: data.join("projects"),
            // The control plane pulls with a work group's credentials, or the installation's for
            // their one registry host (--registry-host), or none: never with the host's Docker
            // config.json.
            registry: kiln_registry::RegistryOptions {
                docker_config: false,
                ..registry.clone()
            },
            prediction_url: format!("{scheme}://{addr}"),
            allowed_hosts,
            api_url: format!("{scheme}://{api_addr}"),
            runs_dir: data.join("runs"),
            cache_dir: data.join("cache"),
            targets: kiln_control::TargetLimits {
                addresses: Arc::new(
                    kiln_registry::AddressPolicy::new(&args.allow_networks)
                        .map_err(|e| anyhow::anyhow!("--allow-network: {e}"))?,
                ),
                docker_hosts: args.allow_docker_hosts.clone(),
                docker_networks: args.allow_docker_networks.clone(),
            },
            quota: kiln_api::manage::quotas::Quota {
                deployments: args.quota_deployments,
                instances: args.quota_instances,
                memory_mb: args.quota_memory_mb,
                deadline_ms: args.quota_deadline_ms,
            },
            build_sandbox: match &isolation {
                Isolation::Sandboxed(sandbox) => Some(sandbox.clone()),
                _ => None,
            },
        },
        vec![
            Arc::new(kiln_executor_local::LocalExecutor::new(isolation.clone())),
            Arc::new(kiln_executor_docker::DockerExecutor),
            Arc::new(kiln_executor_spark::SparkExecutor::new(isolation)),
        ],
    );
    if let Some(token) = kiln_control::auth::bootstrap(&db).await? {
        println!("bootstrap admin token (shown once, store it now): {token}");
    }

    let engine = Arc::new(ScoringEngine::new(&EngineConfig {
        cache_dir: Some(compiled),
        nn: args.nn.config(),
        ..EngineConfig::default()
    })?);
    let metrics = Arc::new(Metrics::new());
    let dataplane = Arc::new(Dataplane::new(ServerLimits::default()));
    let monitoring = kiln_node::Monitoring::new(
        args.monitoring.config(),
        engine.clone(),
        metrics.clone(),
        Some(store_dir.clone()),
        registry.clone(),
    );
    let reports = monitoring.start(dataplane.clone());
    // Ready once the first reconcile has loaded every desired deployment (or failed it).
    dataplane.set_loaded(false);
    tokio::spawn(kiln_node::reconcile::run(
        Node {
            engine,
            metrics: metrics.clone(),
            dataplane: dataplane.clone(),
            store_dir: Some(store_dir),
            registry,
            monitoring,
            defaults: kiln_api::Limits::default(),
        },
        Arc::new(InProcess(control.clone())),
        reports,
    ));
    kiln_control::runs::start(control.clone());
    tracing::info!(
        database = ?db.backend(),
        "kiln up: API {scheme}://{api_addr}, predictions {scheme}://{addr}, metrics {scheme}://{metrics_addr}/metrics"
    );
    tracing::info!("kiln up: web UI {scheme}://{api_addr}/ (sign in with an API token)");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let api = tokio::spawn(kiln_dataplane::serve(
        api_listener,
        control.app(),
        limits.clone(),
        stopped(stop_rx.clone()),
    ));
    let metrics_server = tokio::spawn(kiln_dataplane::serve(
        metrics_listener,
        kiln_dataplane::metrics_router(metrics),
        limits.clone(),
        stopped(stop_rx.clone()),
    ));
    let predictions = tokio::spawn(kiln_dataplane::serve(
        listener,
        kiln_dataplane::router(AppState {
            dataplane: dataplane.clone(),
            api_keys: Arc::new(Vec::new()),
        }),
        limits.clone(),
        stopped(stop_rx),
    ));
    kiln_node::serve::wait_for_signal().await;
    // Not ready first, so that load balancers stop sending; then the listeners stop accepting
    // and drain what they have within the grace period.
    dataplane.set_ready(false);
    tracing::info!(
        "shutting down: readiness is false; open connections have {} s to finish",
        limits.grace.as_secs()
    );
    tokio::time::sleep(std::time::Duration::from_millis(args.shutdown_delay_ms)).await;
    let _ = stop_tx.send(true);
    for task in [api, metrics_server, predictions] {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The control plane of this process as the node's desired state: changes wake the node at once.
struct InProcess(ControlPlane);

impl DesiredState for InProcess {
    async fn deployments(&self) -> Result<Vec<kiln_api::DesiredDeployment>> {
        Ok(self.0.desired().await?)
    }

    async fn endpoints(&self) -> Result<Vec<kiln_api::DesiredEndpoint>> {
        Ok(self.0.desired_endpoints().await?)
    }

    async fn report_status(&self, deployment: &str, report: &kiln_api::StatusReport) -> Result<()> {
        Ok(self.0.report(deployment, report).await?)
    }

    async fn report_rollback(
        &self,
        endpoint: &str,
        report: &kiln_api::RollbackReport,
    ) -> Result<()> {
        self.0.rollback(endpoint, report).await?;
        Ok(())
    }

    async fn report_drift(&self, deployment: &str, upload: &kiln_api::DriftUpload) -> Result<()> {
        Ok(self.0.record_drift(deployment, upload).await?)
    }

    async fn changed(&self) {
        self.0.changed().await
    }
}

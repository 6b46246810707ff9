//! `kiln serve`: flags and the config file turned into the node's [`ServeConfig`]; the node
//! ([`kiln_node::serve`]) loads, serves and shuts down.

use crate::args::StoreArgs;
use crate::config::{self, FileConfig};
use anyhow::{Context, Result};
use clap::Args;
use kiln_api::Limits;
use kiln_dataplane::ServerLimits;
use kiln_node::serve::ServeConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

/// Flags of `kiln serve`; they override the config file.
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
    registry: crate::args::RegistryArgs,
    #[command(flatten)]
    monitoring: crate::monitoring::MonitorArgs,
    #[command(flatten)]
    nn: crate::nn::NnArgs,
    #[command(flatten)]
    listeners: ListenerArgs,
}

/// Turns the file and flags into the node's config: flags over the file, each deployment's own
/// limits over the flags' (then its image's, then the file's `[limits]`), all checked here.
fn resolve(args: ServeArgs) -> Result<ServeConfig> {
    let registry = args.registry.options()?;
    let file = match &args.config {
        Some(path) => config::read_file(path)?,
        None => FileConfig::default(),
    };
    let flag_limits = Limits {
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
    file.limits.check().context("[limits]")?;
    let mut names = std::collections::HashSet::new();
    let mut resolved = Vec::with_capacity(deployments.len());
    for deployment in deployments {
        config::check_deployment(&deployment)?;
        if !names.insert(deployment.name.clone()) {
            anyhow::bail!("deployment '{}' is given twice", deployment.name);
        }
        let explicit = deployment.limits().or(&flag_limits);
        explicit
            .check()
            .with_context(|| format!("deployment '{}'", deployment.name))?;
        resolved.push(deployment.into_static(explicit));
    }
    let server_defaults = ServerLimits::default();
    // A runtime node needs a store; alone, only deployments named by image do.
    let store_dir = match &args.control {
        Some(_) => Some(
            args.store
                .dir()
                .context("a runtime node needs a local image store")?,
        ),
        None => args.store.dir().ok(),
    };
    Ok(ServeConfig {
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
        defaults: file.limits,
        store_dir,
        registry,
        monitoring: args.monitoring.config(),
        nn: args.nn.config(),
        control: match args.control {
            Some(url) => {
                let mut builder = reqwest::Client::builder();
                if let Some(path) = &args.control_ca {
                    let pem = std::fs::read(path)
                        .with_context(|| format!("--control-ca {}", path.display()))?;
                    let certificate = reqwest::Certificate::from_pem(&pem).with_context(|| {
                        format!("--control-ca {}: not a PEM certificate", path.display())
                    })?;
                    builder = builder.add_root_certificate(certificate);
                }
                let http = builder.build().context("the control plane's HTTP client")?;
                Some(kiln_node::source::Http::new(
                    &url,
                    &args.token.unwrap_or_default(),
                    http,
                ))
            }
            None => None,
        },
    })
}

/// Runs `kiln serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    let config = resolve(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kiln-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(kiln_node::serve::serve(config, started))
}

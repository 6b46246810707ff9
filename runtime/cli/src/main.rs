//! `kiln`: the command line of Kiln, a self-hosted ML lifecycle platform whose scoring logic runs
//! as WebAssembly components. `kiln serve` loads scoring components and serves them as HTTP
//! prediction endpoints, with Prometheus metrics on a separate listener.

mod config;
mod images;
mod serve;
mod transfer;

use clap::{Parser, Subcommand, ValueEnum};

/// Kiln: WebAssembly scoring components served as HTTP prediction endpoints.
#[derive(Parser)]
#[command(name = "kiln", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "KILN_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve scoring components as prediction endpoints (OIP v2, KServe v1, MLflow, Azure ML).
    Serve(Box<serve::ServeArgs>),
    /// Create or validate a model manifest (the recipe of an image).
    Manifest {
        #[command(subcommand)]
        command: images::ManifestCommand,
        #[command(flatten)]
        sources: images::Sources,
    },
    /// Push an image from the local store to an OCI registry.
    Push(transfer::PushArgs),
    /// Pull an image from an OCI registry into the local store, verified.
    Pull(transfer::PullArgs),
    /// Build, list, inspect and remove images in the local store.
    Image {
        #[command(subcommand)]
        command: images::ImageCommand,
        #[command(flatten)]
        sources: images::Sources,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Manifest { command, sources } => images::manifest(command, &sources),
        Command::Push(args) => transfer::push(args),
        Command::Pull(args) => transfer::pull(args),
        Command::Image { command, sources } => images::image(command, &sources),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

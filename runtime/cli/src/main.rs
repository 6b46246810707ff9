//! `kiln`: the command line of Kiln, a self-hosted ML lifecycle platform whose scoring logic runs
//! as WebAssembly components. `kiln serve` loads scoring components and serves them as HTTP
//! prediction endpoints, with Prometheus metrics on a separate listener.

mod args;
mod commands;
mod config;
mod context;
mod images;
mod manifests;
mod monitoring;
mod nn;
mod serve;
mod transfer;
mod up;

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
        command: manifests::ManifestCommand,
        #[command(flatten)]
        sources: args::Sources,
    },
    /// Push an image from the local store to an OCI registry.
    Push(transfer::PushArgs),
    /// Pull an image from an OCI registry into the local store, verified.
    Pull(transfer::PullArgs),
    /// Start the control plane and a runtime on this machine, on embedded defaults.
    Up(Box<up::UpArgs>),
    /// Check a token against a control plane and remember both (and a default team/work group).
    Login(context::LoginArgs),
    /// Users of the control plane (administrators).
    User {
        #[command(subcommand)]
        command: commands::users::UserCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Your API tokens.
    Token {
        #[command(subcommand)]
        command: commands::users::TokenCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Teams and their members.
    Team {
        #[command(subcommand)]
        command: commands::teams::TeamCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Work groups (the security boundary) and their members.
    Workgroup {
        #[command(subcommand)]
        command: commands::workgroups::WorkgroupCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Projects of a work group.
    Project {
        #[command(subcommand)]
        command: commands::projects::ProjectCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Experiments of a project: named entry points.
    Experiment {
        #[command(subcommand)]
        command: commands::experiments::ExperimentCommand,
        #[command(flatten)]
        project: args::ProjectArg,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Runs: submit a script from a project directory, follow its logs, cancel it.
    Run {
        #[command(subcommand)]
        command: commands::runs::RunCommand,
        #[command(flatten)]
        project: args::ProjectArg,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Models, their versions and aliases.
    Model {
        #[command(subcommand)]
        command: commands::models::ModelCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Execution targets of a work group.
    Target {
        #[command(subcommand)]
        command: commands::targets::TargetCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Environments: registry and credentials, artifact store, targets, runtime nodes.
    Env {
        #[command(subcommand)]
        command: commands::targets::EnvCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Endpoints: stable prediction URLs routing to deployments by weight, with mirroring and
    /// automatic rollback.
    Endpoint {
        #[command(subcommand)]
        command: commands::endpoints::EndpointCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Deployments: images served as prediction endpoints.
    Deployment {
        #[command(subcommand)]
        command: commands::deployments::DeploymentCommand,
        #[command(flatten)]
        connection: context::Connection,
    },
    /// Drift monitor components: run one on histograms given as JSON.
    Monitor {
        #[command(subcommand)]
        command: monitoring::MonitorCommand,
    },
    /// The scorers Kiln ships (`scorer = "onnx"` in a manifest): list them, or install them into
    /// the local store to push.
    Scorer {
        #[command(subcommand)]
        command: images::ScorerCommand,
        #[command(flatten)]
        sources: args::Sources,
    },
    /// Build, list, inspect and remove images in the local store; register one with the
    /// control plane.
    Image {
        #[command(subcommand)]
        command: images::ImageCommand,
        #[command(flatten)]
        sources: args::Sources,
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
        Command::Manifest { command, sources } => manifests::manifest(command, &sources),
        Command::Push(args) => transfer::push(args),
        Command::Pull(args) => transfer::pull(args),
        Command::Image { command, sources } => images::image(command, &sources),
        Command::Scorer { command, sources } => images::scorer(command, &sources),
        Command::Up(args) => up::run(*args),
        Command::Monitor { command } => monitoring::command(command),
        Command::Login(args) => context::login(args),
        Command::User {
            command,
            connection,
        } => commands::users::user(command, &connection),
        Command::Token {
            command,
            connection,
        } => commands::users::token(command, &connection),
        Command::Team {
            command,
            connection,
        } => commands::teams::team(command, &connection),
        Command::Workgroup {
            command,
            connection,
        } => commands::workgroups::workgroup(command, &connection),
        Command::Project {
            command,
            connection,
        } => commands::projects::project(command, &connection),
        Command::Model {
            command,
            connection,
        } => commands::models::model(command, &connection),
        Command::Experiment {
            command,
            project,
            connection,
        } => commands::experiments::experiment(command, &project, &connection),
        Command::Run {
            command,
            project,
            connection,
        } => commands::runs::run(command, &project, &connection),
        Command::Endpoint {
            command,
            connection,
        } => commands::endpoints::endpoint(command, &connection),
        Command::Deployment {
            command,
            connection,
        } => commands::deployments::deployment(command, &connection),
        Command::Target {
            command,
            connection,
        } => commands::targets::target(command, &connection),
        Command::Env {
            command,
            connection,
        } => commands::targets::env(command, &connection),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// `docs/cli.md` is the reference of every command and flag, generated from the command
    /// line itself; `KILN_WRITE_DOCS=1 cargo test -p kiln` writes it again after a change.
    #[test]
    fn the_cli_reference_is_the_command_line() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md");
        let options = clap_markdown::MarkdownOptions::new()
            .title("CLI reference".to_string())
            .show_footer(false);
        let generated = format!(
            "<!-- Generated from the command line by the test the_cli_reference_is_the_command_line \
             (runtime/cli/src/main.rs): KILN_WRITE_DOCS=1 cargo test -p kiln writes it again. -->\n\n{}",
            clap_markdown::help_markdown_custom::<super::Cli>(&options)
        );
        if std::env::var_os("KILN_WRITE_DOCS").is_some() {
            std::fs::write(path, &generated).expect("docs/cli.md is writable");
        }
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == generated,
            "docs/cli.md is not the command line's reference: run KILN_WRITE_DOCS=1 cargo test -p kiln"
        );
    }
}

//! `kiln push` and `kiln pull`: images between the local store and OCI registries.

use crate::args::{Output, RegistryArgs, StoreArgs};
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kiln_image::OciStore;
use kiln_registry::{Pulled, Registry, RegistryOptions, parse_reference};

/// `kiln push LOCAL [REMOTE]`.
#[derive(Args)]
pub struct PushArgs {
    /// The image in the local store (a registry reference pushes to itself).
    local: String,
    /// Where to push (default: LOCAL).
    remote: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// `kiln pull REF`.
#[derive(Args)]
pub struct PullArgs {
    /// A registry reference (`host/repo:tag`, `host/repo@sha256:...`, `oci://...`).
    reference: String,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// A byte progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar
}

/// A spinner on stderr for work without a byte count, such as compiling a component (hidden
/// when stderr is not a terminal).
pub fn spinner(label: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(label.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

/// Moves a progress bar as a transfer reports `(blob, bytes done, bytes total)`.
fn follow(bar: &ProgressBar) -> impl Fn(&str, u64, u64) + Sync + '_ {
    move |_, done, total| {
        bar.set_length(total);
        bar.set_position(done);
    }
}

/// Pulls a registry image into the store, with a progress bar.
pub async fn pull_into(
    store: &OciStore,
    reference: &str,
    options: &RegistryOptions,
) -> Result<Pulled> {
    let parsed = parse_reference(reference)?;
    let registry = Registry::connect(&parsed, options).await;
    let bar = progress_bar(&format!("pull {reference}"));
    let update = follow(&bar);
    let pulled = registry.pull(store, reference, &update).await?;
    bar.finish_and_clear();
    Ok(pulled)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs `kiln push`.
pub fn push(args: PushArgs) -> Result<()> {
    let store = args.store.open()?;
    let remote = args.remote.clone().unwrap_or_else(|| args.local.clone());
    let options = args.registry.options_for(&remote)?;
    let digest = runtime()?.block_on(async {
        let reference = parse_reference(&remote)?;
        let registry = Registry::connect(&reference, &options).await;
        let bar = progress_bar(&format!("push {remote}"));
        let update = follow(&bar);
        let digest = registry.push(&store, &args.local, &remote, &update).await;
        bar.finish_and_clear();
        digest
    })?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({ "reference": remote, "digest": digest })
        ),
        Output::Text => println!("pushed {remote} {digest}"),
    }
    Ok(())
}

/// Runs `kiln pull`.
pub fn pull(args: PullArgs) -> Result<()> {
    let store = args.store.open()?;
    let pulled = runtime()?.block_on(pull_into(
        &store,
        &args.reference,
        &args.registry.options_for(&args.reference)?,
    ))?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&pulled)?),
        Output::Text => println!(
            "pulled {} {} ({} bytes fetched)",
            pulled.name, pulled.digest, pulled.fetched_bytes
        ),
    }
    Ok(())
}

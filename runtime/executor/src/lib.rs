//! The executor interface of Kiln's training runs.
//!
//! The control plane moves a run through its states (queued, preparing, running, then completed,
//! failed or canceled); an [`Executor`] does the work on one kind of execution target: a local
//! process, a Docker Engine API, or `spark-submit`. Each executor is a plugin crate under
//! `plugins/executors/`; the `kiln` binary registers them with the control plane.
//!
//! The phases an executor implements:
//! - [`Executor::check`]: is the target reachable (`kiln target test`)?
//! - [`Executor::submit`]: prepare (environment, container, code) and start; returns a handle,
//!   which the control plane persists so that a restarted control plane can reattach.
//! - [`Executor::logs`]: the run's output from a byte offset, ending when the run ends;
//!   resuming at an offset is how a reattached run continues its log without duplicates.
//! - [`Executor::status`], [`Executor::cancel`], [`Executor::clean_up`].
//!
//! [`process`] is the supervised process that the local and Spark executors share: it survives
//! a restart of the control plane and can be found again from its handle.

pub mod process;
pub mod sandbox;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::{Map, Value};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// An execution target as configured in a work group.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its name (`local`, `gpu-box`).
    pub name: String,
    /// Its kind: the executor that runs it (`local`, `docker`, `spark`).
    pub kind: String,
    /// Its settings, already checked against the kind's known keys.
    pub config: Map<String, Value>,
}

impl Target {
    /// A string setting.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }
    /// A positive number setting.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.config.get(key).and_then(Value::as_u64)
    }
}

/// One run to execute.
#[derive(Clone, Debug)]
pub struct Job {
    /// The run's id.
    pub run_id: String,
    /// The entry point, a relative path in the code (`train.py`).
    pub script: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The run's code: the project checked out at the run's commit.
    pub code: PathBuf,
    /// A directory for this run's executor state (output file, exit status).
    pub work: PathBuf,
    /// A directory shared by the runs of one work group for reusable things (virtual
    /// environments).
    pub cache: PathBuf,
    /// Environment variables for the run: tracking URL, token, run id.
    pub env: Vec<(String, String)>,
    /// Python modules Kiln gives every run (its tracking helper), to put on `PYTHONPATH`.
    pub helpers: PathBuf,
    /// The container image the run's environment names (container targets prefer it).
    pub image: Option<String>,
    /// Registry credentials of the run's environment.
    pub registry: Option<RegistryCredentials>,
    /// Whether a container host may pull the run's image from a registry host on the run's
    /// behalf (the installation's address limits); `None`: any.
    pub pulls: Option<RegistryGate>,
}

/// Decides whether an image may be pulled from a registry host (`host[:port]`) on a run's
/// behalf: `Err(why)` refuses. The control plane's holds registries to the installation's
/// address limits, so that no container host pulls from an internal address for a work group.
#[derive(Clone)]
pub struct RegistryGate(
    pub std::sync::Arc<dyn Fn(String) -> BoxFuture<'static, Result<(), String>> + Send + Sync>,
);

impl RegistryGate {
    /// Asks whether `registry` may be pulled from.
    pub async fn check(&self, registry: &str) -> Result<(), String> {
        (self.0)(registry.to_string()).await
    }
}

impl std::fmt::Debug for RegistryGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryGate")
    }
}

/// The registry host a container image reference names, as Docker reads it: the first
/// component when it holds a `.` or a `:` or is `localhost`; `None` for Docker Hub's images.
pub fn image_registry(image: &str) -> Option<&str> {
    let (first, rest) = image.split_once('/')?;
    (!rest.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost"))
        .then_some(first)
}

/// Credentials for a registry, from an environment.
#[derive(Clone)]
pub struct RegistryCredentials {
    /// `host[:port]`.
    pub host: String,
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Where a run is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Still executing.
    Running,
    /// Ended with this exit code.
    Exited(i64),
    /// Not found any more, or ended without an exit code: why.
    Gone(String),
}

/// Why an executor could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The run or the target's settings are wrong (missing script, unknown image): the run
    /// fails with this message.
    #[error("{0}")]
    Invalid(String),
    /// The target cannot be reached (Docker socket, Spark master).
    #[error("{0}")]
    Unreachable(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

/// The run's output so far, as it arrives.
pub type Output = BoxStream<'static, Result<Bytes, ExecError>>;

/// A sink for what preparation prints (installing requirements, pulling an image), shown in the
/// run's log before its own output.
pub type PrepareLog = mpsc::Sender<Bytes>;

/// One kind of execution target.
pub trait Executor: Send + Sync {
    /// The target kind this executor runs (`local`, `docker`, `spark`).
    fn kind(&self) -> &'static str;

    /// Checks the target can run anything: says what answered, or why not.
    fn check<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<String, ExecError>>;

    /// Prepares and starts a run; returns the handle to find it again.
    fn submit<'a>(
        &'a self,
        target: &'a Target,
        job: &'a Job,
        prepare: &'a PrepareLog,
    ) -> BoxFuture<'a, Result<String, ExecError>>;

    /// The run's output from byte `offset` on; the stream ends once the run has ended and all
    /// of its output was given.
    fn logs(&self, target: &Target, handle: &str, offset: u64) -> Output;

    /// Where the run is now.
    fn status<'a>(
        &'a self,
        target: &'a Target,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<Status, ExecError>>;

    /// Stops the run (politely, then by force).
    fn cancel<'a>(
        &'a self,
        target: &'a Target,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecError>>;

    /// Releases what the run held (container, working files); the run has ended.
    fn clean_up<'a>(
        &'a self,
        target: &'a Target,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecError>>;
}

/// Checks that `script` is a file of the job's code, with a message naming it otherwise.
pub fn check_script(job: &Job) -> Result<PathBuf, ExecError> {
    let path = job.code.join(&job.script);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ExecError::Invalid(format!(
            "script '{}' is not in the run's code",
            job.script
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_names_its_registry_as_docker_reads_it() {
        for (image, registry) in [
            ("python:3.12", None),
            ("library/python:3.12", None),
            ("acme/python", None),
            ("ghcr.io/acme/python:3", Some("ghcr.io")),
            ("127.0.0.1:5000/x:1", Some("127.0.0.1:5000")),
            ("localhost/kiln-python:onnx", Some("localhost")),
            ("[::1]:5000/x", Some("[::1]:5000")),
            ("localhost", None),
        ] {
            assert_eq!(image_registry(image), registry, "{image}");
        }
    }
}

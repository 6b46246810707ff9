//! Kiln's `local` executor: a run is a process on the control plane's host.
//!
//! The process runs in the run's checkout of its commit, with the target's interpreter
//! (`python3` unless the target names another) and the run's tracking variables. When the
//! target names a requirements file, the run gets a virtual environment with those requirements
//! installed; environments live in the shared cache under a hash of the interpreter and the
//! file's content, so runs with the same requirements reuse one, and concurrent runs wait for the
//! one that is building it (a file lock) rather than building it twice.
//!
//! Target settings: `interpreter`, `requirements`, `concurrency`.

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use kiln_executor::process;
use kiln_executor::{ExecError, Executor, Job, Output, PrepareLog, Status, Target, check_script};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a canceled run has to stop after `SIGTERM` before `SIGKILL`.
const GRACE: Duration = Duration::from_secs(5);

/// The `local` executor.
#[derive(Clone, Debug, Default)]
pub struct LocalExecutor;

fn interpreter(target: &Target) -> &str {
    target.string("interpreter").unwrap_or("python3")
}

async fn say(log: &PrepareLog, line: String) {
    let _ = log.send(Bytes::from(format!("kiln: {line}\n"))).await;
}

/// The virtual environment for `requirements` under `interpreter`: reused when one with the same
/// hash is complete, built (under a lock) otherwise. Returns its Python.
async fn environment(
    interpreter: &str,
    requirements: &Path,
    cache: &Path,
    log: &PrepareLog,
) -> Result<PathBuf, ExecError> {
    let content = tokio::fs::read(requirements)
        .await
        .map_err(|e| ExecError::Invalid(format!("cannot read the requirements file: {e}")))?;
    let mut hasher = Sha256::new();
    hasher.update(interpreter.as_bytes());
    hasher.update(b"\n");
    hasher.update(&content);
    let hash = hex::encode(&hasher.finalize()[..8]);
    let root = cache.join("venvs");
    tokio::fs::create_dir_all(&root)
        .await
        .map_err(|e| ExecError::Failed(format!("cannot create {}: {e}", root.display())))?;
    let dir = root.join(&hash);
    let ready = dir.join(".kiln-ready");
    let python = dir.join("bin").join("python");
    let lock_path = root.join(format!("{hash}.lock"));
    let lock = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| ExecError::Failed(format!("cannot open {}: {e}", lock_path.display())))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            ExecError::Failed(format!("cannot lock {}: {e}", lock_path.display()))
        })
    })
    .await
    .map_err(|e| ExecError::Failed(e.to_string()))??;
    if ready.is_file() {
        say(
            log,
            format!("reusing environment {hash} (requirements unchanged)"),
        )
        .await;
        drop(lock);
        return Ok(python);
    }
    say(
        log,
        format!("creating environment {hash} with {interpreter}"),
    )
    .await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    let mut venv = tokio::process::Command::new(interpreter);
    venv.args(["-m", "venv"]).arg(&dir);
    let code = process::run_logged(venv, log).await?;
    if code != 0 {
        return Err(ExecError::Invalid(format!(
            "'{interpreter} -m venv' failed with exit code {code}"
        )));
    }
    say(log, "installing requirements".into()).await;
    let mut pip = tokio::process::Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "-r",
    ])
    .arg(requirements)
    .env("PYTHONUNBUFFERED", "1");
    let code = process::run_logged(pip, log).await?;
    if code != 0 {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(ExecError::Invalid(format!(
            "installing the requirements failed (pip exit code {code}): see the run's log"
        )));
    }
    tokio::fs::write(&ready, b"")
        .await
        .map_err(|e| ExecError::Failed(format!("cannot write {}: {e}", ready.display())))?;
    drop(lock);
    Ok(python)
}

impl Executor for LocalExecutor {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn check<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<String, ExecError>> {
        async move {
            let interpreter = interpreter(target);
            let output = tokio::process::Command::new(interpreter)
                .arg("--version")
                .output()
                .await
                .map_err(|e| {
                    ExecError::Unreachable(format!("interpreter '{interpreter}' cannot run: {e}"))
                })?;
            if !output.status.success() {
                return Err(ExecError::Unreachable(format!(
                    "'{interpreter} --version' failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            let version = String::from_utf8_lossy(&output.stdout).trim().to_string()
                + String::from_utf8_lossy(&output.stderr).trim();
            Ok(format!("{version} ({interpreter})"))
        }
        .boxed()
    }

    fn submit<'a>(
        &'a self,
        target: &'a Target,
        job: &'a Job,
        prepare: &'a PrepareLog,
    ) -> BoxFuture<'a, Result<String, ExecError>> {
        async move {
            check_script(job)?;
            let mut program = interpreter(target).to_string();
            if let Some(requirements) = target.string("requirements") {
                let file = job.code.join(requirements);
                if !file.is_file() {
                    return Err(ExecError::Invalid(format!(
                        "requirements file '{requirements}' is not in the run's code"
                    )));
                }
                let python = environment(&program, &file, &job.cache, prepare).await?;
                program = python.to_string_lossy().into_owned();
            }
            let mut args = vec![job.script.clone()];
            args.extend(job.args.iter().cloned());
            process::start_job(job, program, args, vec![]).await
        }
        .boxed()
    }

    fn logs(&self, _target: &Target, handle: &str, offset: u64) -> Output {
        process::follow_handle(handle, offset)
    }

    fn status<'a>(
        &'a self,
        _target: &'a Target,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<Status, ExecError>> {
        async move { process::status_of(handle) }.boxed()
    }

    fn cancel<'a>(
        &'a self,
        _target: &'a Target,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        process::cancel_handle(handle, GRACE).boxed()
    }

    fn clean_up<'a>(
        &'a self,
        _target: &'a Target,
        _handle: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        // The process is gone; its files live in the run's directory, which the control plane
        // removes.
        async { Ok(()) }.boxed()
    }
}

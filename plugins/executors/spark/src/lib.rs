//! Kiln's `spark` executor: a run is `spark-submit` of its script to the target's master.
//!
//! `local[N]` and `spark://host:port` masters are checked before submitting (a standalone master
//! must accept connections, so an unreachable one fails the run at once rather than after
//! Spark's retries); `yarn` and `k8s://` masters are passed through to `spark-submit` as they
//! are. The run's code goes along as `--py-files` (a zip of its checkout), the driver runs in
//! client mode under [`kiln_executor::process`], so its output is the run's log, its exit code
//! ends the run and cancel kills it (and with it the application).
//!
//! Target settings: `master` (required), `spark_submit` (default `spark-submit` on `PATH`),
//! `python` (the driver's and executors' Python, default `python3`), `conf` (Spark properties),
//! `concurrency`.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use kiln_executor::process;
use kiln_executor::{ExecError, Executor, Job, Output, PrepareLog, Status, Target, check_script};
use serde_json::Value;
use std::time::Duration;

/// How long a canceled driver has to stop before `SIGKILL`.
const GRACE: Duration = Duration::from_secs(10);

/// How long a standalone master has to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `spark` executor.
#[derive(Clone, Debug, Default)]
pub struct SparkExecutor;

fn master(target: &Target) -> Result<&str, ExecError> {
    target
        .string("master")
        .ok_or_else(|| ExecError::Invalid(format!("spark target '{}' has no master", target.name)))
}

fn spark_submit(target: &Target) -> &str {
    target.string("spark_submit").unwrap_or("spark-submit")
}

fn python(target: &Target) -> &str {
    target.string("python").unwrap_or("python3")
}

/// Checks a `spark://` master accepts connections (each of its `host:port`s, for masters with
/// standbys); other masters need nothing here.
async fn reach_master(master: &str) -> Result<Option<String>, ExecError> {
    let Some(hosts) = master.strip_prefix("spark://") else {
        return Ok(None);
    };
    let mut last_error = None;
    for address in hosts.split(',') {
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(_)) => return Ok(Some(address.to_string())),
            Ok(Err(e)) => last_error = Some(format!("{address}: {e}")),
            Err(_) => last_error = Some(format!("{address}: no answer within {CONNECT_TIMEOUT:?}")),
        }
    }
    Err(ExecError::Unreachable(format!(
        "Spark master {master} is unreachable ({})",
        last_error.unwrap_or_default()
    )))
}

impl Executor for SparkExecutor {
    fn kind(&self) -> &'static str {
        "spark"
    }

    fn check<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<String, ExecError>> {
        async move {
            let master = master(target)?;
            let reached = reach_master(master).await?;
            let submit = spark_submit(target);
            // pip's spark-submit finds Spark through the Python that has pyspark.
            let output = tokio::process::Command::new(submit)
                .arg("--version")
                .env("PYSPARK_PYTHON", python(target))
                .env("PYSPARK_DRIVER_PYTHON", python(target))
                .output()
                .await
                .map_err(|e| ExecError::Unreachable(format!("'{submit}' cannot run: {e}")))?;
            let text = String::from_utf8_lossy(&output.stderr).to_string()
                + &String::from_utf8_lossy(&output.stdout);
            let version = text
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("/___/ .__/\\_,_/_/ /_/\\_\\   version ")
                        .map(str::to_string)
                })
                .or_else(|| {
                    text.lines()
                        .find(|l| l.contains("version"))
                        .map(|l| l.trim().to_string())
                })
                .unwrap_or_else(|| "unknown version".into());
            if !output.status.success() {
                return Err(ExecError::Unreachable(format!(
                    "'{submit} --version' failed: {}",
                    text.trim()
                )));
            }
            Ok(match reached {
                Some(address) => {
                    format!("Spark {version}; master {master} accepts connections at {address}")
                }
                None => format!("Spark {version}; master {master}"),
            })
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
            let master = master(target)?;
            reach_master(master).await?;
            let python = python(target);

            // The checkout as a zip for --py-files, so that modules of the project import on
            // executors too; Python's zipfile module makes it.
            let archive = job.work.join("code.zip");
            let mut entries: Vec<String> = Vec::new();
            let mut dir = tokio::fs::read_dir(&job.code)
                .await
                .map_err(|e| ExecError::Failed(format!("cannot list the run's code: {e}")))?;
            while let Some(entry) = dir
                .next_entry()
                .await
                .map_err(|e| ExecError::Failed(format!("cannot list the run's code: {e}")))?
            {
                entries.push(entry.file_name().to_string_lossy().into_owned());
            }
            entries.sort();
            let mut zip = tokio::process::Command::new(python);
            zip.current_dir(&job.code)
                .args(["-m", "zipfile", "-c"])
                .arg(&archive)
                .args(&entries);
            let code = process::run_logged(zip, prepare).await?;
            if code != 0 {
                return Err(ExecError::Failed(format!(
                    "zipping the code for --py-files failed (exit code {code})"
                )));
            }

            let mut args = vec![
                "--master".to_string(),
                master.to_string(),
                "--name".into(),
                format!("kiln-run-{}", job.run_id),
            ];
            if let Some(Value::Object(conf)) = target.config.get("conf") {
                for (key, value) in conf {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    args.push("--conf".into());
                    args.push(format!("{key}={value}"));
                }
            }
            args.push("--py-files".into());
            args.push(archive.to_string_lossy().into_owned());
            args.push(job.script.clone());
            args.extend(job.args.iter().cloned());
            let env = vec![
                ("PYSPARK_PYTHON".into(), python.to_string()),
                ("PYSPARK_DRIVER_PYTHON".into(), python.to_string()),
            ];
            process::start_job(job, spark_submit(target).to_string(), args, env).await
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
        async { Ok(()) }.boxed()
    }
}

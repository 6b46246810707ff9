//! Kiln's `spark` executor: a run is `spark-submit` of its script to the target's master.
//!
//! `local[N]` and `spark://host:port` masters are checked before submitting (a standalone master
//! must accept connections, so an unreachable one fails the run at once rather than after
//! Spark's retries); `yarn` and `k8s://` masters are passed through to `spark-submit` as they
//! are. The run's code goes along as `--py-files` (a zip of its checkout), the driver runs in
//! client mode under [`kiln_executor::process`], so its output is the run's log, its exit code
//! ends the run and cancel kills it (and with it the application).
//!
//! The driver (`spark-submit` and the Python it starts), and the zipping of the code before it,
//! run in the same bubblewrap sandbox as local runs ([`kiln_executor::sandbox`]): the checkout,
//! the Python and Spark installations read-only, a private `/tmp`, as an unprivileged user; the
//! network is the host's, to reach the master.
//!
//! Target settings: `master` (required), `spark_submit` (default `spark-submit` on `PATH`),
//! `python` (the driver's and executors' Python, default `python3`), `conf` (Spark properties),
//! `concurrency`.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use kiln_executor::process;
use kiln_executor::sandbox::{Isolation, Jail, find_on_path};
use kiln_executor::{ExecError, Executor, Job, Output, PrepareLog, Status, Target, check_script};
use serde_json::Value;
use std::time::Duration;

/// How long a canceled driver has to stop before `SIGKILL`.
const GRACE: Duration = Duration::from_secs(10);

/// How long a standalone master has to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `spark` executor.
#[derive(Clone, Debug)]
pub struct SparkExecutor {
    isolation: Isolation,
}

impl SparkExecutor {
    /// An executor whose drivers are isolated so.
    pub fn new(isolation: Isolation) -> SparkExecutor {
        SparkExecutor { isolation }
    }
}

/// The installation `spark-submit` belongs to (the directory above its `bin`), when the
/// program is found.
fn spark_home(submit: &str) -> Option<std::path::PathBuf> {
    let path = if submit.contains('/') {
        std::path::PathBuf::from(submit)
    } else {
        find_on_path(submit)?
    };
    let real = std::fs::canonicalize(path).ok()?;
    Some(real.parent()?.parent()?.to_path_buf())
}

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
            self.isolation.python("spark", python(target)).await?;
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
            let spark_dir = job.work.join("spark");
            tokio::fs::create_dir_all(&spark_dir).await.map_err(|e| {
                ExecError::Failed(format!("cannot create {}: {e}", spark_dir.display()))
            })?;
            let archive = spark_dir.join("code.zip");
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
            let jailed = self.isolation.python("spark", python).await?;
            let mut zip_args = vec!["-I".to_string(), "-m".into(), "zipfile".into(), "-c".into()];
            zip_args.push(archive.to_string_lossy().into_owned());
            zip_args.extend(entries.iter().cloned());
            let zip = match &jailed {
                // Zipping reads the run's files only: in the sandbox, writing the archive alone.
                Some((sandbox, found)) => {
                    let mut read_only = found.roots.clone();
                    read_only.push(job.code.clone());
                    let jail = Jail {
                        read_only,
                        writable: vec![spark_dir.clone()],
                        dir: job.code.clone(),
                        network: false,
                    };
                    sandbox.command(&jail, &found.executable.to_string_lossy(), &zip_args)
                }
                None => {
                    let mut command = tokio::process::Command::new(python);
                    command.current_dir(&job.code).args(&zip_args);
                    command
                }
            };
            let code = process::run_logged(zip, prepare).await?;
            if code != 0 {
                return Err(ExecError::Failed(format!(
                    "zipping the code for --py-files failed (exit code {code})"
                )));
            }

            let mut args: Vec<String> = vec![
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
            let mut program = spark_submit(target).to_string();
            let mut python = python.to_string();
            if let Some((sandbox, found)) = &jailed {
                python = found.executable.to_string_lossy().into_owned();
                let mut read_only = found.roots.clone();
                if let Some(home) = spark_home(&program)
                    && !home.starts_with("/usr")
                    && !read_only.iter().any(|root| home.starts_with(root))
                {
                    sandbox.check_bind(&home)?;
                    read_only.push(home);
                }
                read_only.extend([spark_dir.clone(), job.helpers.clone()]);
                let jail = Jail {
                    read_only,
                    writable: vec![job.code.clone()],
                    dir: job.code.clone(),
                    network: true,
                };
                (program, args) = sandbox.wrap(&jail, &program, &args);
            }
            let env = vec![
                ("PYSPARK_PYTHON".into(), python.clone()),
                ("PYSPARK_DRIVER_PYTHON".into(), python),
            ];
            process::start_job(job, program, args, env).await
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

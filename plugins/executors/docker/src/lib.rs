//! Kiln's `docker` executor: a run is a container, driven through the Docker Engine API with
//! `bollard`, on the local socket or a remote `DOCKER_HOST`. It works against Docker and against
//! podman's compatible API.
//!
//! The container is created from the target's image (pulled first when the host lacks it), the
//! run's code is copied in (`PUT /containers/{id}/archive`, so a remote host needs no shared
//! files) under `/kiln/code`, and the run's script runs there with its tracking variables,
//! within the target's memory and CPU limits. Its multiplexed output is the run's log; its exit
//! code ends the run; the container is removed when the run is cleaned up. The container's id is
//! the handle, so a restarted control plane reattaches to a container that still runs.
//!
//! Target settings: `host` (default `DOCKER_HOST`, else the local socket), `image`, `memory_mb`,
//! `cpus`, `network` (a network mode such as `host`), `interpreter`, `concurrency`.

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions, UploadToContainerOptions,
};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use kiln_executor::{
    ExecError, Executor, Job, Output, PrepareLog, Status, Target, check_script, image_registry,
};
use std::collections::HashMap;
use std::path::Path;

/// Where the run's code is copied to in the container.
const CODE_DIR: &str = "/kiln/code";

/// Seconds a canceled container has to stop before it is killed.
const GRACE_SECONDS: i32 = 5;

/// How long removing a container may take before cleaning up fails.
const REMOVE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A container's memory limit when the target sets none, in MiB.
const DEFAULT_MEMORY_MB: u64 = 4096;

/// A container's process limit when the target sets none.
const DEFAULT_PIDS: u64 = 1024;

/// The `docker` executor.
#[derive(Clone, Debug, Default)]
pub struct DockerExecutor;

/// The Docker host a target names: its `host`, else `DOCKER_HOST`, else the local socket.
fn host(target: &Target) -> String {
    target
        .string("host")
        .map(str::to_string)
        .or_else(|| std::env::var("DOCKER_HOST").ok())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

fn connect(target: &Target) -> Result<(Docker, String), ExecError> {
    let host = host(target);
    let docker = Docker::connect_with_host(&host).map_err(|e| {
        ExecError::Unreachable(format!("cannot reach the Docker API at {host}: {e}"))
    })?;
    Ok((docker, host))
}

fn not_found(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A connection failure is the target being unreachable; anything else is the API's answer.
fn api_error(host: &str, what: &str, error: DockerError) -> ExecError {
    match error {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => ExecError::Failed(format!(
            "{what}: the Docker API answered {status_code}: {message}"
        )),
        other => ExecError::Unreachable(format!(
            "cannot reach the Docker API at {host} ({what}): {other}"
        )),
    }
}

/// Remove a container even while it runs.
fn force_remove() -> RemoveContainerOptions {
    RemoveContainerOptions {
        force: true,
        ..Default::default()
    }
}

fn container_name(run_id: &str) -> String {
    format!("kiln-run-{run_id}")
}

/// Where Kiln's Python helpers are copied to in the container (on `PYTHONPATH`).
const HELPERS_DIR: &str = "/kiln/python";

/// The run's code and Kiln's helpers as one tar archive, rooted at [`CODE_DIR`] and
/// [`HELPERS_DIR`].
fn code_archive(code: &Path, helpers: &Path) -> Result<Vec<u8>, ExecError> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder
        .append_dir_all(CODE_DIR.trim_start_matches('/'), code)
        .and_then(|_| builder.append_dir_all(HELPERS_DIR.trim_start_matches('/'), helpers))
        .and_then(|_| builder.into_inner())
        .map_err(|e| ExecError::Failed(format!("cannot archive the run's code: {e}")))
}

/// Makes sure the host has `image`, pulling it when it does not, from a registry the job's
/// gate lets it pull from.
async fn ensure_image(
    docker: &Docker,
    host: &str,
    image: &str,
    job: &Job,
    prepare: &PrepareLog,
) -> Result<(), ExecError> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(e) if not_found(&e) => {}
        Err(e) => return Err(api_error(host, "inspecting the image", e)),
    }
    if let (Some(gate), Some(registry)) = (&job.pulls, image_registry(image)) {
        gate.check(registry).await.map_err(|why| {
            ExecError::Invalid(format!(
                "image '{image}' is not on the Docker host {host}, and its registry is not \
                 pulled from: {why}"
            ))
        })?;
    }
    let _ = prepare
        .send(Bytes::from(format!("kiln: pulling {image}\n")))
        .await;
    let options = CreateImageOptions {
        from_image: Some(image.to_string()),
        ..Default::default()
    };
    // The environment's credentials go only to its own registry.
    let credentials = job
        .registry
        .as_ref()
        .filter(|r| image_registry(image) == Some(r.host.as_str()))
        .map(|r| DockerCredentials {
            username: Some(r.username.clone()),
            password: Some(r.password.clone()),
            serveraddress: Some(r.host.clone()),
            ..Default::default()
        });
    let mut pull = docker.create_image(Some(options), None, credentials);
    while let Some(step) = pull.next().await {
        match step {
            Ok(info) => {
                if let Some(status) = info.status {
                    let _ = prepare.send(Bytes::from(format!("{status}\n"))).await;
                }
            }
            Err(e) => {
                let reason = match e {
                    DockerError::DockerResponseServerError { message, .. } => message,
                    other => other.to_string(),
                };
                return Err(ExecError::Invalid(format!(
                    "image '{image}' is not on the Docker host {host} and cannot be pulled: {reason}"
                )));
            }
        }
    }
    Ok(())
}

impl Executor for DockerExecutor {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn check<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<String, ExecError>> {
        async move {
            let (docker, host) = connect(target)?;
            let version = docker
                .version()
                .await
                .map_err(|e| api_error(&host, "version", e))?;
            let mut line = format!(
                "Docker API {} at {host}",
                version.api_version.unwrap_or_else(|| "?".into())
            );
            if let Some(name) = version
                .components
                .and_then(|c| c.into_iter().next())
                .map(|c| format!("{} {}", c.name, c.version))
            {
                line.push_str(&format!(" ({name})"));
            }
            if let Some(image) = target.string("image") {
                match docker.inspect_image(image).await {
                    Ok(_) => line.push_str(&format!("; image {image} is present")),
                    Err(e) if not_found(&e) => {
                        line.push_str(&format!("; image {image} is not there yet (pulled at run)"))
                    }
                    Err(e) => return Err(api_error(&host, "inspecting the image", e)),
                }
            }
            Ok(line)
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
            // The run's environment says what software it needs; the target, where it runs.
            let image = job.image.as_deref().or(target.string("image")).ok_or_else(|| {
                ExecError::Invalid(format!(
                    "no image for the run: give its environment a run image, or the docker target '{}' one (`kiln target add {} --kind docker --set image=IMAGE`)",
                    target.name, target.name
                ))
            })?;
            let (docker, host) = connect(target)?;
            docker
                .ping()
                .await
                .map_err(|e| api_error(&host, "ping", e))?;
            ensure_image(&docker, &host, image, job, prepare).await?;

            let name = container_name(&job.run_id);
            // A container left by an attempt that never started is replaced.
            let _ = docker
                .remove_container(&name, Some(force_remove()))
                .await;
            let interpreter = target.string("interpreter").unwrap_or("python3");
            let mut cmd = vec![interpreter.to_string(), job.script.clone()];
            cmd.extend(job.args.iter().cloned());
            let mut env: Vec<String> = job.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            env.push("PYTHONUNBUFFERED=1".into());
            env.push(format!("PYTHONPATH={HELPERS_DIR}"));
            // No capability, no privilege gained through setuid files, bounded processes and
            // memory, whatever the target leaves unset.
            let host_config = HostConfig {
                memory: Some(
                    (target.number("memory_mb").unwrap_or(DEFAULT_MEMORY_MB) as i64) << 20,
                ),
                nano_cpus: target.number("cpus").map(|c| c as i64 * 1_000_000_000),
                network_mode: target.string("network").map(str::to_string),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                pids_limit: Some(target.number("pids").unwrap_or(DEFAULT_PIDS) as i64),
                ..Default::default()
            };
            let body = ContainerCreateBody {
                image: Some(image.to_string()),
                cmd: Some(cmd),
                env: Some(env),
                working_dir: Some(CODE_DIR.into()),
                labels: Some(HashMap::from([("kiln.run".to_string(), job.run_id.clone())])),
                host_config: Some(host_config),
                ..Default::default()
            };
            let created = docker
                .create_container(
                    Some(CreateContainerOptions {
                        name: Some(name.clone()),
                        ..Default::default()
                    }),
                    body,
                )
                .await
                .map_err(|e| api_error(&host, "creating the container", e))?;
            let id = created.id;
            let started = async {
                let (code, helpers) = (job.code.clone(), job.helpers.clone());
                let archive = tokio::task::spawn_blocking(move || code_archive(&code, &helpers))
                    .await
                    .map_err(|e| ExecError::Failed(e.to_string()))??;
                docker
                    .upload_to_container(
                        &id,
                        Some(UploadToContainerOptions {
                            path: "/".into(),
                            ..Default::default()
                        }),
                        bollard::body_full(Bytes::from(archive)),
                    )
                    .await
                    .map_err(|e| api_error(&host, "copying the code in", e))?;
                docker
                    .start_container(&id, None)
                    .await
                    .map_err(|e| api_error(&host, "starting the container", e))
            }
            .await;
            if let Err(e) = started {
                let _ = docker
                    .remove_container(&id, Some(force_remove()))
                .await;
                return Err(e);
            }
            let _ = prepare
                .send(Bytes::from(format!(
                    "kiln: container {} ({image}) started on {host}\n",
                    &id[..id.len().min(12)]
                )))
                .await;
            Ok(id)
        }
        .boxed()
    }

    fn logs(&self, target: &Target, handle: &str, offset: u64) -> Output {
        let (docker, host) = match connect(target) {
            Ok(connected) => connected,
            Err(e) => return Box::pin(futures_util::stream::once(async move { Err(e) })),
        };
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut skip = offset;
        let stream = docker.logs(handle, Some(options)).filter_map(move |item| {
            let result = match item {
                Ok(output) => {
                    let bytes = output.into_bytes();
                    // Resuming: what the log already holds is skipped.
                    if skip >= bytes.len() as u64 {
                        skip -= bytes.len() as u64;
                        None
                    } else {
                        let rest = bytes.slice(skip as usize..);
                        skip = 0;
                        Some(Ok(rest))
                    }
                }
                Err(e) => Some(Err(api_error(&host, "reading the logs", e))),
            };
            async move { result }
        });
        Box::pin(stream)
    }

    fn status<'a>(
        &'a self,
        target: &'a Target,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<Status, ExecError>> {
        async move {
            let (docker, host) = connect(target)?;
            let inspected = match docker.inspect_container(handle, None).await {
                Ok(inspected) => inspected,
                Err(e) if not_found(&e) => {
                    return Ok(Status::Gone(format!(
                        "container {handle} is no longer on {host}"
                    )));
                }
                Err(e) => return Err(api_error(&host, "inspecting the container", e)),
            };
            let state = inspected.state.unwrap_or_default();
            if state.running == Some(true) || state.restarting == Some(true) {
                return Ok(Status::Running);
            }
            if state.oom_killed == Some(true) {
                return Ok(Status::Gone(
                    "the container ran out of memory (memory_mb) and was killed".into(),
                ));
            }
            Ok(match state.exit_code {
                Some(code) => Status::Exited(code),
                None => Status::Gone("the container ended without an exit code".into()),
            })
        }
        .boxed()
    }

    fn cancel<'a>(
        &'a self,
        target: &'a Target,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        async move {
            let (docker, host) = connect(target)?;
            match docker
                .stop_container(
                    handle,
                    Some(StopContainerOptions {
                        t: Some(GRACE_SECONDS),
                        ..Default::default()
                    }),
                )
                .await
            {
                Ok(()) => Ok(()),
                Err(e) if not_found(&e) => Ok(()),
                Err(DockerError::DockerResponseServerError {
                    status_code: 304, ..
                }) => Ok(()),
                Err(e) => Err(api_error(&host, "stopping the container", e)),
            }
        }
        .boxed()
    }

    fn clean_up<'a>(
        &'a self,
        target: &'a Target,
        handle: &'a str,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        async move {
            let (docker, host) = connect(target)?;
            // Done only once the API no longer knows the container: podman can answer the
            // removal while the container is still being torn down (an inspect then gets 500),
            // or refuse it while a stop is under way. Whoever reads the run's end must find
            // no container left.
            let deadline = tokio::time::Instant::now() + REMOVE_WAIT;
            loop {
                let refused = match docker.remove_container(handle, Some(force_remove())).await {
                    Ok(()) => None,
                    Err(e) if not_found(&e) => None,
                    Err(e) => Some(api_error(&host, "removing the container", e)),
                };
                match docker.inspect_container(handle, None).await {
                    Err(e) if not_found(&e) => return Ok(()),
                    Err(DockerError::DockerResponseServerError { .. }) | Ok(_) => {}
                    Err(e) => return Err(api_error(&host, "inspecting the container", e)),
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(refused.unwrap_or_else(|| {
                        ExecError::Failed(format!(
                            "container {handle} is still on {host} {} s after its removal",
                            REMOVE_WAIT.as_secs()
                        ))
                    }));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        .boxed()
    }
}

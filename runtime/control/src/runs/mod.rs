//! Runs: the runner that moves executed runs through their states, their logs, and tracking.
//!
//! A run is `queued` when submitted. The runner (one task per control plane process) starts
//! queued runs in submission order as their target's concurrency allows (`concurrency`, 2 by
//! default), claiming each in the database so that two control plane processes never start the
//! same run. A started run is `preparing` (code checked out at its commit, a token of its own,
//! the executor preparing), then `running` once the executor returned its handle, then
//! `completed`, `failed` (with its exit code or a reason) or `canceled`.
//!
//! The process that owns a run records a heartbeat; a run whose owner stopped beating (the
//! control plane was killed or restarted) is adopted by a live one: a running run whose handle
//! still answers is reattached (its log continues where it stopped), anything else fails with
//! the reason "lost on restart". No run is silently forgotten.

pub mod log;
pub mod targets;
pub mod tracking;

use crate::auth::{issue_run_token, revoke_token};
use crate::db::{new_id, now_ms};
use crate::domain::runner::{Stop, ending, prepare_failed, run_env};
use crate::store::runner::{self as store, Claim, RunnerRow};
use crate::{ControlError, ControlPlane};
use bytes::Bytes;
use futures_util::StreamExt;
use kiln_api::manage::runs::RunStatus;
use kiln_executor::{ExecError, Executor, Job, Status, Target};
use log::LogWriter;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use targets::{executor_for, resolve_target};
use tokio::sync::{mpsc, watch};

/// Kiln's Python tracking helper (`sdk/python/kiln_tracking.py`), on every run's `PYTHONPATH`.
const TRACKING_HELPER: &str = include_str!("../../../../sdk/python/kiln_tracking.py");

/// Whether `status` (as stored) is one a run ends in.
pub fn is_final(status: &str) -> bool {
    status.parse::<RunStatus>().is_ok_and(RunStatus::is_final)
}

/// Runs a target starts at once unless its `concurrency` says otherwise.
const DEFAULT_CONCURRENCY: u64 = 2;

/// How often the owner of a run says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// A run whose owner has not said so for this long is adopted by another process.
const STALE: Duration = Duration::from_secs(10);

/// How often the runner looks for runs to adopt.
const ADOPT_EVERY: Duration = Duration::from_secs(3);

/// A run that names no timeout may run this long.
const DEFAULT_TIMEOUT_S: i64 = 7 * 24 * 3600;

/// An executor's error as the control plane's.
pub fn exec_error(error: ExecError) -> ControlError {
    match error {
        ExecError::Invalid(m) => ControlError::Invalid(m),
        ExecError::Unreachable(m) => ControlError::Unavailable(m),
        other => ControlError::Internal(other.to_string()),
    }
}

/// Starts the runner of this control plane process.
pub fn start(control: ControlPlane) -> tokio::task::JoinHandle<()> {
    let runner = Arc::new(Runner {
        control,
        owner: new_id(),
        active: Mutex::new(HashMap::new()),
    });
    tokio::spawn(runner.run())
}

struct Runner {
    control: ControlPlane,
    /// This process, as the owner of the runs it executes.
    owner: String,
    /// The runs this process executes, each with the way to stop it.
    active: Mutex<HashMap<String, watch::Sender<Option<Stop>>>>,
}

impl Runner {
    async fn run(self: Arc<Self>) {
        let mut last_beat = tokio::time::Instant::now();
        let mut last_adopt: Option<tokio::time::Instant> = None;
        loop {
            if last_beat.elapsed() >= HEARTBEAT {
                last_beat = tokio::time::Instant::now();
                if let Err(e) = self.heartbeat().await {
                    tracing::warn!("run heartbeat: {e}");
                }
            }
            if last_adopt.is_none_or(|t| t.elapsed() >= ADOPT_EVERY) {
                last_adopt = Some(tokio::time::Instant::now());
                if let Err(e) = self.clone().adopt().await {
                    tracing::warn!("adopting runs: {e}");
                }
            }
            if let Err(e) = self.check_cancels().await {
                tracing::warn!("run cancellations: {e}");
            }
            if let Err(e) = self.clone().schedule().await {
                tracing::warn!("scheduling runs: {e}");
            }
            tokio::select! {
                _ = self.control.runs_changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Registers a run as executed here and starts its task.
    fn launch(self: &Arc<Self>, run_id: String) {
        let (stop, stopped) = watch::channel(None);
        if let Ok(mut active) = self.active.lock() {
            active.insert(run_id.clone(), stop);
        }
        let runner = self.clone();
        tokio::spawn(async move {
            runner.execute(&run_id, stopped).await;
            if let Ok(mut active) = runner.active.lock() {
                active.remove(&run_id);
            }
            runner.control.notify_runs();
        });
    }

    async fn heartbeat(&self) -> Result<(), ControlError> {
        store::heartbeat(self.control.db(), &self.owner).await
    }

    /// Claims runs whose owner stopped beating, and carries on with them.
    async fn adopt(self: Arc<Self>) -> Result<(), ControlError> {
        let stale = now_ms() - STALE.as_millis() as i64;
        let db = self.control.db();
        for orphan in store::orphans(db, &self.owner, stale).await? {
            if !store::claim_orphan(db, &self.owner, &orphan, stale).await? {
                continue;
            }
            let (run, status) = (orphan.id, orphan.status);
            tracing::info!(run = %run, %status, "adopting a run whose control plane stopped");
            self.launch(run);
        }
        Ok(())
    }

    /// Passes cancellations asked for (through any process) to the runs executed here.
    async fn check_cancels(&self) -> Result<(), ControlError> {
        let asked = store::cancels_asked(self.control.db(), &self.owner).await?;
        if let Ok(active) = self.active.lock() {
            for (run_id, by) in asked {
                if let Some(stop) = active.get(&run_id)
                    && stop.borrow().is_none()
                {
                    let _ = stop.send(Some(Stop::Canceled(by)));
                }
            }
        }
        Ok(())
    }

    /// Starts queued runs, oldest first, as their targets' concurrency allows.
    async fn schedule(self: Arc<Self>) -> Result<(), ControlError> {
        let mut full: Vec<(String, String)> = Vec::new();
        for run in store::queued(self.control.db(), 200).await? {
            let key = (run.workgroup_id.clone(), run.target.clone());
            if full.contains(&key) {
                continue;
            }
            let concurrency =
                match resolve_target(&self.control, &run.workgroup_id, &run.target).await {
                    Ok(target) => target.number("concurrency").unwrap_or(DEFAULT_CONCURRENCY),
                    // The run fails with the reason when it starts.
                    Err(_) => DEFAULT_CONCURRENCY,
                };
            match store::claim_queued(self.control.db(), &self.owner, &run, concurrency).await? {
                Claim::Claimed => self.launch(run.id),
                Claim::Full => full.push(key),
                Claim::Taken => {}
            }
        }
        Ok(())
    }

    /// Executes (or, adopted, carries on with) one run to its end.
    async fn execute(self: &Arc<Self>, run_id: &str, mut stop: watch::Receiver<Option<Stop>>) {
        let run = match store::for_runner(self.control.db(), run_id).await {
            Ok(run) => run,
            Err(e) => {
                tracing::error!(run = %run_id, "cannot load the run: {e}");
                return;
            }
        };
        let mut writer = LogWriter::new(
            self.control.clone(),
            run.id.clone(),
            run.log_bytes.max(0) as u64,
        );
        let target = match self.reachable_target(&run).await {
            Ok(found) => found,
            Err(e) => {
                writer.note(&format!("failed: {e}")).await;
                self.finish(&run, RunStatus::Failed, &e.to_string(), None, None)
                    .await;
                return;
            }
        };
        let (target, executor) = target;
        let work = self.control.settings().runs_dir.join(&run.id);

        let (handle, offset, started_at) = match &run.handle {
            Some(handle) => {
                // Adopted: reattach if the target still knows the run.
                let lost = match executor.status(&target, handle).await {
                    Ok(Status::Gone(why)) => Some(why),
                    Err(e) => Some(format!("the target does not answer: {e}")),
                    Ok(_) => None,
                };
                if let Some(why) = lost {
                    let reason = format!("lost on restart: {why}");
                    writer.note(&format!("failed: {reason}")).await;
                    self.finish(
                        &run,
                        RunStatus::Failed,
                        &reason,
                        None,
                        Some((&target, &executor, handle)),
                    )
                    .await;
                    return;
                }
                tracing::info!(run = %run.id, "reattached");
                let offset = (run.log_bytes - run.log_base).max(0) as u64;
                (
                    handle.clone(),
                    offset,
                    run.started_at.unwrap_or_else(now_ms),
                )
            }
            None if run.token_id.is_some() => {
                // It was being prepared when its control plane stopped.
                let reason = "lost on restart: the control plane stopped while preparing it";
                writer.note(&format!("failed: {reason}")).await;
                self.finish(&run, RunStatus::Failed, reason, None, None)
                    .await;
                return;
            }
            None => {
                // The run's timeout covers its preparation too (a pull that never ends).
                let timeout_s = run.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
                let prepared = tokio::select! {
                    prepared = self.prepare(&run, &target, &executor, &work, &mut writer) => prepared,
                    _ = stop.changed() => Err(ControlError::Conflict(
                        stop.borrow().as_ref().map(Stop::reason).unwrap_or_default(),
                    )),
                    _ = tokio::time::sleep(Duration::from_secs(timeout_s as u64)) => Err(ControlError::Conflict(
                        format!("timed out after {timeout_s} s while preparing"),
                    )),
                };
                match prepared {
                    Ok(handle) => {
                        let started = now_ms();
                        let recorded = store::record_start(
                            self.control.db(),
                            &run.id,
                            &handle,
                            started,
                            writer.len() as i64,
                        )
                        .await;
                        if let Err(e) = recorded {
                            tracing::error!(run = %run.id, "recording the start failed: {e}");
                        }
                        (handle, 0, started)
                    }
                    Err(e) => {
                        let (status, reason) = prepare_failed(e);
                        writer.note(&format!("{status}: {reason}")).await;
                        self.finish(&run, status, &reason, None, None).await;
                        return;
                    }
                }
            }
        };

        // Running: the output goes to the log until the run ends, is canceled or times out.
        let timeout_s = run.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis((started_at + timeout_s * 1000 - now_ms()).max(0) as u64);
        let (sender, mut receiver) = mpsc::channel::<Bytes>(16);
        let mut output = executor.logs(&target, &handle, offset);
        let mut stopped: Option<Stop> = stop.borrow().clone();
        if stopped.is_some() {
            let _ = executor.cancel(&target, &handle).await;
        }
        let mut output_error: Option<ExecError> = None;
        let pump = async {
            loop {
                tokio::select! {
                    chunk = output.next() => match chunk {
                        Some(Ok(bytes)) => {
                            if sender.send(bytes).await.is_err() {
                                break;
                            }
                        }
                        Some(Err(e)) => {
                            output_error = Some(e);
                            break;
                        }
                        None => break,
                    },
                    changed = stop.changed(), if stopped.is_none() => {
                        if changed.is_ok() {
                            stopped = stop.borrow().clone();
                            if let Err(e) = executor.cancel(&target, &handle).await {
                                tracing::warn!(run = %run.id, "cancel: {e}");
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(deadline), if stopped.is_none() => {
                        stopped = Some(Stop::TimedOut(timeout_s));
                        if let Err(e) = executor.cancel(&target, &handle).await {
                            tracing::warn!(run = %run.id, "cancel on timeout: {e}");
                        }
                    }
                }
            }
            drop(sender);
        };
        tokio::join!(pump, writer.drain(&mut receiver));
        drop(output);

        let status = executor.status(&target, &handle).await;
        let exit_code = match &status {
            Ok(Status::Exited(code)) => Some(*code),
            _ => None,
        };
        if stopped.is_none() && matches!(status, Ok(Status::Running)) {
            // Its output ended while it runs: it cannot be followed, so it is stopped.
            let _ = executor.cancel(&target, &handle).await;
        }
        let (state, reason) = ending(stopped.as_ref(), status, output_error);
        if !reason.is_empty() {
            writer.note(&format!("{state}: {reason}")).await;
        }
        self.finish(
            &run,
            state,
            &reason,
            exit_code,
            Some((&target, &executor, &handle)),
        )
        .await;
    }

    /// The run's target with its executor, checked against the installation's limits (at the
    /// start and at every adoption), its Docker host pinned to the checked address.
    async fn reachable_target(
        &self,
        run: &RunnerRow,
    ) -> Result<(Target, Arc<dyn Executor>), ControlError> {
        let target = resolve_target(&self.control, &run.workgroup_id, &run.target).await?;
        let executor = executor_for(&self.control, &target)?;
        let config = targets::check_reach(&self.control, &target.kind, &target.config).await?;
        Ok((Target { config, ..target }, executor))
    }

    /// Checks out the code, issues the run's token and has the executor start it; what the
    /// executor prints while preparing goes to the log. Returns the handle.
    async fn prepare(
        &self,
        run: &RunnerRow,
        target: &Target,
        executor: &Arc<dyn Executor>,
        work: &std::path::Path,
        writer: &mut LogWriter,
    ) -> Result<String, ControlError> {
        let code = work.join("code");
        let _ = tokio::fs::remove_dir_all(&code).await;
        let repository = crate::store::projects::repository(&self.control, &run.project_id);
        let (commit, dir) = (run.commit_sha.clone(), code.clone());
        tokio::task::spawn_blocking(move || repository.checkout(&commit, &dir))
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))??;
        let timeout_s = run.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
        let (token_id, token) = issue_run_token(
            self.control.db(),
            &run.created_by,
            &run.workgroup_id,
            &run.id,
            now_ms() + (timeout_s + 3600) * 1000,
        )
        .await?;
        store::set_token(self.control.db(), &run.id, &token_id).await?;
        let api = target
            .string("tracking_url")
            .unwrap_or(&self.control.settings().api_url)
            .trim_end_matches('/')
            .to_string();
        let env = run_env(&api, run, token);
        let helpers = work.join("python");
        tokio::fs::create_dir_all(&helpers).await.map_err(|e| {
            ControlError::Unavailable(format!("cannot create {}: {e}", helpers.display()))
        })?;
        tokio::fs::write(helpers.join("kiln_tracking.py"), TRACKING_HELPER)
            .await
            .map_err(|e| {
                ControlError::Unavailable(format!("cannot write the tracking helper: {e}"))
            })?;
        let environment = match run.environment.as_str() {
            "" => None,
            name => Some(targets::run_environment(&self.control, &run.workgroup_id, name).await?),
        };
        let (image, registry) = match environment {
            Some(env) => (
                env.image,
                env.credentials
                    .map(|given| kiln_executor::RegistryCredentials {
                        host: given.host,
                        username: given.username,
                        password: given.password,
                    }),
            ),
            None => (None, None),
        };
        let job = Job {
            run_id: run.id.clone(),
            script: run.script.clone(),
            // Kiln writes only arrays of strings.
            args: serde_json::from_str(&run.args).unwrap_or_default(),
            code,
            work: work.to_path_buf(),
            // Per work group: a run may write its environment while it is built, and no work
            // group may hand another a poisoned one.
            cache: self.control.settings().cache_dir.join(&run.workgroup_id),
            env,
            helpers,
            image,
            registry,
            pulls: Some(targets::registry_gate(&self.control)),
        };
        let (sender, mut receiver) = mpsc::channel::<Bytes>(16);
        let submitting = async move {
            let submitted = executor.submit(target, &job, &sender).await;
            drop(sender);
            submitted
        };
        let (submitted, ()) = tokio::join!(submitting, writer.drain(&mut receiver));
        submitted.map_err(exec_error)
    }

    /// Releases what the run held, then records its end and revokes its token.
    async fn finish(
        &self,
        run: &RunnerRow,
        status: RunStatus,
        reason: &str,
        exit_code: Option<i64>,
        held: Option<(&Target, &Arc<dyn Executor>, &String)>,
    ) {
        // What the run held on its target goes first: a client that reads the final status
        // must find the container (or process) already gone, not being removed.
        if let Some((target, executor, handle)) = held
            && let Err(e) = executor.clean_up(target, handle).await
        {
            tracing::warn!(run = %run.id, "cleaning up: {e}");
        }
        let db = self.control.db();
        let recorded = store::record_end(db, &run.id, status.as_str(), reason, exit_code).await;
        if let Err(e) = recorded {
            tracing::error!(run = %run.id, "recording the end failed: {e}");
        }
        tracing::info!(run = %run.id, %status, %reason, "run ended");
        let token = store::token_of(db, &run.id).await.ok().flatten();
        if let Some(token) = token.or_else(|| run.token_id.clone())
            && let Err(e) = revoke_token(self.control.db(), &token).await
        {
            tracing::warn!(run = %run.id, "revoking the run's token: {e}");
        }
        let work = self.control.settings().runs_dir.join(&run.id);
        let _ = tokio::fs::remove_dir_all(&work).await;
        self.control.log_written(&run.id);
    }
}

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
use crate::{ControlError, ControlPlane};
use bytes::Bytes;
use futures_util::StreamExt;
use kiln_executor::{ExecError, Executor, Job, Status, Target};
use log::LogWriter;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use targets::{executor_for, resolve_target};
use tokio::sync::{mpsc, watch};

/// Kiln's Python tracking helper (`sdk/python/kiln_tracking.py`), on every run's `PYTHONPATH`.
const TRACKING_HELPER: &str = include_str!("../../../../sdk/python/kiln_tracking.py");

/// The states a run ends in.
pub const FINAL: &[&str] = &["completed", "failed", "canceled"];

/// Whether `status` is one a run ends in.
pub fn is_final(status: &str) -> bool {
    FINAL.contains(&status)
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

/// Why a running run is being stopped.
#[derive(Clone, Debug)]
enum Stop {
    Canceled(String),
    TimedOut(i64),
}

/// An executor's error as the control plane's.
pub fn exec_error(error: ExecError) -> ControlError {
    match error {
        ExecError::Invalid(m) => ControlError::Invalid(m),
        ExecError::Unreachable(m) => ControlError::Unavailable(m),
        other => ControlError::Internal(other.to_string()),
    }
}

/// What the runner needs of a run.
struct RunRecord {
    id: String,
    script: String,
    args: Vec<String>,
    commit: String,
    target: String,
    timeout_s: Option<i64>,
    created_by: String,
    handle: Option<String>,
    log_bytes: i64,
    log_base: i64,
    started_at: Option<i64>,
    token_id: Option<String>,
    environment: String,
    experiment_id: String,
    project_id: String,
    project: String,
    workgroup_id: String,
    workgroup: String,
    team: String,
}

type RunRow = (
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    String,
    String,
);

async fn load(control: &ControlPlane, run_id: &str) -> Result<RunRecord, ControlError> {
    let pool = control.db().pool();
    let row: RunRow = sqlx::query_as(
        "SELECT id, script, args, commit_sha, target, timeout_s, created_by, handle, log_bytes, \
         log_base, started_at, token_id, experiment_id, environment FROM runs WHERE id = $1",
    )
    .bind(run_id)
    .fetch_one(pool)
    .await?;
    let (project_id, project, workgroup_id, workgroup, team): (
        String,
        String,
        String,
        String,
        String,
    ) = sqlx::query_as(
        "SELECT p.id, p.name, w.id, w.name, t.name FROM experiments e \
             JOIN projects p ON p.id = e.project_id JOIN workgroups w ON w.id = p.workgroup_id \
             JOIN teams t ON t.id = w.team_id WHERE e.id = $1",
    )
    .bind(&row.12)
    .fetch_one(pool)
    .await?;
    Ok(RunRecord {
        id: row.0,
        script: row.1,
        args: serde_json::from_str(&row.2).unwrap_or_default(),
        commit: row.3,
        target: row.4,
        timeout_s: row.5,
        created_by: row.6,
        handle: row.7,
        log_bytes: row.8,
        log_base: row.9,
        started_at: row.10,
        token_id: row.11,
        environment: row.13,
        experiment_id: row.12,
        project_id,
        project,
        workgroup_id,
        workgroup,
        team,
    })
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
        sqlx::query(
            "UPDATE runs SET heartbeat_at = $1 WHERE owner = $2 AND status IN ('preparing', 'running')",
        )
        .bind(now_ms())
        .bind(&self.owner)
        .execute(self.control.db().pool())
        .await?;
        Ok(())
    }

    /// Claims runs whose owner stopped beating, and carries on with them.
    async fn adopt(self: Arc<Self>) -> Result<(), ControlError> {
        let stale = now_ms() - STALE.as_millis() as i64;
        let orphans: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, status FROM runs WHERE status IN ('preparing', 'running') AND executed = 1 \
             AND (owner IS NULL OR owner <> $1) AND (heartbeat_at IS NULL OR heartbeat_at < $2)",
        )
        .bind(&self.owner)
        .bind(stale)
        .fetch_all(self.control.db().pool())
        .await?;
        for (run_id, status) in orphans {
            let claimed = sqlx::query(
                "UPDATE runs SET owner = $1, heartbeat_at = $2 WHERE id = $3 AND status = $4 \
                 AND (heartbeat_at IS NULL OR heartbeat_at < $5)",
            )
            .bind(&self.owner)
            .bind(now_ms())
            .bind(&run_id)
            .bind(&status)
            .bind(stale)
            .execute(self.control.db().pool())
            .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            tracing::info!(run = %run_id, %status, "adopting a run whose control plane stopped");
            self.launch(run_id);
        }
        Ok(())
    }

    /// Passes cancellations asked for (through any process) to the runs executed here.
    async fn check_cancels(&self) -> Result<(), ControlError> {
        let asked: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, cancel_requested_by FROM runs WHERE owner = $1 \
             AND cancel_requested_by IS NOT NULL AND status IN ('preparing', 'running')",
        )
        .bind(&self.owner)
        .fetch_all(self.control.db().pool())
        .await?;
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
        let queued: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT r.id, r.target, p.workgroup_id FROM runs r \
             JOIN experiments e ON e.id = r.experiment_id JOIN projects p ON p.id = e.project_id \
             WHERE r.status = 'queued' AND r.executed = 1 ORDER BY r.created_at, r.id LIMIT 200",
        )
        .fetch_all(self.control.db().pool())
        .await?;
        let mut full: Vec<(String, String)> = Vec::new();
        for (run_id, target_name, workgroup_id) in queued {
            let key = (workgroup_id.clone(), target_name.clone());
            if full.contains(&key) {
                continue;
            }
            let limit = match resolve_target(&self.control, &workgroup_id, &target_name).await {
                Ok(target) => target.number("concurrency").unwrap_or(DEFAULT_CONCURRENCY),
                // The run fails with the reason when it starts.
                Err(_) => DEFAULT_CONCURRENCY,
            };
            let mut tx = self.control.db().begin().await?;
            if self.control.db().backend() == crate::Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(RUNS_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let busy: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id \
                 JOIN projects p ON p.id = e.project_id \
                 WHERE p.workgroup_id = $1 AND r.target = $2 AND r.status IN ('preparing', 'running')",
            )
            .bind(&workgroup_id)
            .bind(&target_name)
            .fetch_one(&mut *tx)
            .await?;
            if busy as u64 >= limit {
                full.push(key);
                continue;
            }
            let claimed = sqlx::query(
                "UPDATE runs SET status = 'preparing', owner = $1, heartbeat_at = $2 \
                 WHERE id = $3 AND status = 'queued'",
            )
            .bind(&self.owner)
            .bind(now_ms())
            .bind(&run_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if claimed.rows_affected() == 1 {
                self.launch(run_id);
            }
        }
        Ok(())
    }

    /// Executes (or, adopted, carries on with) one run to its end.
    async fn execute(self: &Arc<Self>, run_id: &str, mut stop: watch::Receiver<Option<Stop>>) {
        let run = match load(&self.control, run_id).await {
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
                self.finish(&run, "failed", &e.to_string(), None, None)
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
                        "failed",
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
                self.finish(&run, "failed", reason, None, None).await;
                return;
            }
            None => {
                // The run's timeout covers its preparation too (a pull that never ends).
                let timeout_s = run.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
                let prepared = tokio::select! {
                    prepared = self.prepare(&run, &target, &executor, &work, &mut writer) => prepared,
                    _ = stop.changed() => Err(ControlError::Conflict(stop_reason(&stop.borrow()))),
                    _ = tokio::time::sleep(Duration::from_secs(timeout_s as u64)) => Err(ControlError::Conflict(
                        format!("timed out after {timeout_s} s while preparing"),
                    )),
                };
                match prepared {
                    Ok(handle) => {
                        let started = now_ms();
                        let recorded = sqlx::query(
                            "UPDATE runs SET status = 'running', handle = $1, started_at = $2, \
                             log_base = $3 WHERE id = $4",
                        )
                        .bind(&handle)
                        .bind(started)
                        .bind(writer.len() as i64)
                        .bind(&run.id)
                        .execute(self.control.db().pool())
                        .await;
                        if let Err(e) = recorded {
                            tracing::error!(run = %run.id, "recording the start failed: {e}");
                        }
                        (handle, 0, started)
                    }
                    Err(ControlError::Conflict(reason)) => {
                        let status = if reason.starts_with("canceled") {
                            "canceled"
                        } else {
                            "failed"
                        };
                        writer.note(&format!("{status}: {reason}")).await;
                        self.finish(&run, status, &reason, None, None).await;
                        return;
                    }
                    Err(e) => {
                        writer.note(&format!("failed: {e}")).await;
                        self.finish(&run, "failed", &e.to_string(), None, None)
                            .await;
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
        let (state, reason) = match (&stopped, status) {
            (Some(stop), _) => (
                if matches!(stop, Stop::Canceled(_)) {
                    "canceled"
                } else {
                    "failed"
                },
                stop_reason(&Some(stop.clone())),
            ),
            (None, Ok(Status::Exited(0))) => ("completed", String::new()),
            (None, Ok(Status::Exited(code))) => ("failed", format!("exit code {code}")),
            (None, Ok(Status::Gone(why))) => ("failed", why),
            (None, Ok(Status::Running)) => {
                let why = output_error
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "its output ended".into());
                let _ = executor.cancel(&target, &handle).await;
                ("failed", format!("lost the run's output: {why}"))
            }
            (None, Err(e)) => ("failed", format!("the target does not answer: {e}")),
        };
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
        run: &RunRecord,
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
        run: &RunRecord,
        target: &Target,
        executor: &Arc<dyn Executor>,
        work: &std::path::Path,
        writer: &mut LogWriter,
    ) -> Result<String, ControlError> {
        let code = work.join("code");
        let _ = tokio::fs::remove_dir_all(&code).await;
        let repository = crate::store::projects::repository(&self.control, &run.project_id);
        let (commit, dir) = (run.commit.clone(), code.clone());
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
        sqlx::query("UPDATE runs SET token_id = $1 WHERE id = $2")
            .bind(&token_id)
            .bind(&run.id)
            .execute(self.control.db().pool())
            .await?;
        let api = target
            .string("tracking_url")
            .unwrap_or(&self.control.settings().api_url)
            .trim_end_matches('/')
            .to_string();
        let workgroup_url = format!(
            "{api}/api/v1/teams/{}/workgroups/{}",
            run.team, run.workgroup
        );
        let env = vec![
            ("KILN_API_URL".to_string(), api.clone()),
            ("KILN_TOKEN".into(), token.clone()),
            ("KILN_RUN_ID".into(), run.id.clone()),
            (
                "KILN_RUN_URL".into(),
                format!("{workgroup_url}/runs/{}", run.id),
            ),
            (
                "MLFLOW_TRACKING_URI".into(),
                format!("{workgroup_url}/projects/{}/mlflow", run.project),
            ),
            ("MLFLOW_TRACKING_TOKEN".into(), token),
            ("MLFLOW_RUN_ID".into(), run.id.clone()),
            ("MLFLOW_EXPERIMENT_ID".into(), run.experiment_id.clone()),
        ];
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
            args: run.args.clone(),
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
        run: &RunRecord,
        status: &str,
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
        let recorded = sqlx::query(
            "UPDATE runs SET status = $1, reason = $2, exit_code = $3, finished_at = $4, owner = NULL \
             WHERE id = $5",
        )
        .bind(status)
        .bind(reason)
        .bind(exit_code)
        .bind(now_ms())
        .bind(&run.id)
        .execute(self.control.db().pool())
        .await;
        if let Err(e) = recorded {
            tracing::error!(run = %run.id, "recording the end failed: {e}");
        }
        tracing::info!(run = %run.id, %status, %reason, "run ended");
        let token: Option<String> = sqlx::query_scalar("SELECT token_id FROM runs WHERE id = $1")
            .bind(&run.id)
            .fetch_optional(self.control.db().pool())
            .await
            .ok()
            .flatten()
            .flatten();
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

/// An advisory lock key serializing run claims on PostgreSQL ("runs" in ASCII).
const RUNS_LOCK: i64 = 0x7275_6e73;

fn stop_reason(stop: &Option<Stop>) -> String {
    match stop {
        Some(Stop::Canceled(by)) => format!("canceled by {by}"),
        Some(Stop::TimedOut(seconds)) => format!("timed out after {seconds} s"),
        None => String::new(),
    }
}

//! The runner's decisions: how a run ends, by how it was stopped, how its executor answered
//! and how its preparation failed; and what its script is told about itself.

use crate::ControlError;
use crate::store::runner::RunnerRow;
use kiln_api::manage::runs::RunStatus;
use kiln_executor::{ExecError, Status};

/// Why a running run is being stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// A user (named) canceled it.
    Canceled(String),
    /// It ran past its timeout (in seconds).
    TimedOut(i64),
}

impl Stop {
    /// The reason a stopped run shows.
    pub fn reason(&self) -> String {
        match self {
            Stop::Canceled(by) => format!("canceled by {by}"),
            Stop::TimedOut(seconds) => format!("timed out after {seconds} s"),
        }
    }
}

/// How a run whose preparation failed ends: canceled if it was (the error says so), else failed,
/// with the reason.
pub fn prepare_failed(error: ControlError) -> (RunStatus, String) {
    match error {
        ControlError::Conflict(reason) if reason.starts_with("canceled") => {
            (RunStatus::Canceled, reason)
        }
        ControlError::Conflict(reason) => (RunStatus::Failed, reason),
        other => (RunStatus::Failed, other.to_string()),
    }
}

/// How a started run ends once its output has: stopped (canceled, or timed out) whatever it
/// exited with; else by its exit code, or failed with why it could not be followed.
pub fn ending(
    stopped: Option<&Stop>,
    status: Result<Status, ExecError>,
    output_error: Option<ExecError>,
) -> (RunStatus, String) {
    match (stopped, status) {
        (Some(stop @ Stop::Canceled(_)), _) => (RunStatus::Canceled, stop.reason()),
        (Some(stop @ Stop::TimedOut(_)), _) => (RunStatus::Failed, stop.reason()),
        (None, Ok(Status::Exited(0))) => (RunStatus::Completed, String::new()),
        (None, Ok(Status::Exited(code))) => (RunStatus::Failed, format!("exit code {code}")),
        (None, Ok(Status::Gone(why))) => (RunStatus::Failed, why),
        (None, Ok(Status::Running)) => {
            let why = output_error.map_or_else(|| "its output ended".into(), |e| e.to_string());
            (RunStatus::Failed, format!("lost the run's output: {why}"))
        }
        (None, Err(e)) => (
            RunStatus::Failed,
            format!("the target does not answer: {e}"),
        ),
    }
}

/// The environment a run's script gets: where the API is, its token, its own URL, and MLflow's
/// variables pointing at its project's MLflow API.
pub fn run_env(api: &str, run: &RunnerRow, token: String) -> Vec<(String, String)> {
    let workgroup_url = format!(
        "{api}/api/v1/teams/{}/workgroups/{}",
        run.team, run.workgroup
    );
    [
        ("KILN_API_URL", api.to_string()),
        ("KILN_TOKEN", token.clone()),
        ("KILN_RUN_ID", run.id.clone()),
        ("KILN_RUN_URL", format!("{workgroup_url}/runs/{}", run.id)),
        (
            "MLFLOW_TRACKING_URI",
            format!("{workgroup_url}/projects/{}/mlflow", run.project),
        ),
        ("MLFLOW_TRACKING_TOKEN", token),
        ("MLFLOW_RUN_ID", run.id.clone()),
        ("MLFLOW_EXPERIMENT_ID", run.experiment_id.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_ends_as_it_was_stopped_or_exited() {
        let canceled = Stop::Canceled("ada".into());
        let timed_out = Stop::TimedOut(60);
        let cases = [
            (
                Some(&canceled),
                Ok(Status::Exited(0)),
                RunStatus::Canceled,
                "canceled by ada",
            ),
            (
                Some(&timed_out),
                Ok(Status::Exited(0)),
                RunStatus::Failed,
                "timed out after 60 s",
            ),
            (None, Ok(Status::Exited(0)), RunStatus::Completed, ""),
            (
                None,
                Ok(Status::Exited(3)),
                RunStatus::Failed,
                "exit code 3",
            ),
            (
                None,
                Ok(Status::Gone("removed".into())),
                RunStatus::Failed,
                "removed",
            ),
            (
                None,
                Ok(Status::Running),
                RunStatus::Failed,
                "lost the run's output: its output ended",
            ),
            (
                None,
                Err(ExecError::Unreachable("down".into())),
                RunStatus::Failed,
                "the target does not answer: ",
            ),
        ];
        for (stopped, status, expected, reason) in cases {
            let (ended, why) = ending(stopped, status, None);
            assert_eq!(ended, expected);
            assert!(why.starts_with(reason), "{why}");
        }
        let (_, why) = ending(
            None,
            Ok(Status::Running),
            Some(ExecError::Unreachable("cut".into())),
        );
        assert!(why.starts_with("lost the run's output: "), "{why}");
        assert!(why.contains("cut"), "{why}");
        let conflict = |m: &str| ControlError::Conflict(m.into());
        assert_eq!(
            prepare_failed(conflict("canceled by ada")),
            (RunStatus::Canceled, "canceled by ada".into())
        );
        assert_eq!(
            prepare_failed(conflict("timed out after 5 s while preparing")),
            (
                RunStatus::Failed,
                "timed out after 5 s while preparing".into()
            )
        );
        let (status, why) = prepare_failed(ControlError::Invalid("no such image".into()));
        assert_eq!(status, RunStatus::Failed);
        assert!(why.contains("no such image"), "{why}");
    }

    #[test]
    fn a_script_learns_its_run_and_its_mlflow_api() {
        let run = RunnerRow {
            id: "r1".into(),
            script: "train.py".into(),
            args: "[]".into(),
            commit_sha: "c".into(),
            target: "local".into(),
            timeout_s: None,
            created_by: "u1".into(),
            handle: None,
            log_bytes: 0,
            log_base: 0,
            started_at: None,
            token_id: None,
            environment: String::new(),
            experiment_id: "e1".into(),
            project_id: "p1".into(),
            project: "iris".into(),
            workgroup_id: "w1".into(),
            workgroup: "lab".into(),
            team: "acme".into(),
        };
        let env: std::collections::HashMap<String, String> =
            run_env("http://k:8070", &run, "kiln_t".into())
                .into_iter()
                .collect();
        let workgroup = "http://k:8070/api/v1/teams/acme/workgroups/lab";
        assert_eq!(env["KILN_RUN_URL"], format!("{workgroup}/runs/r1"));
        assert_eq!(
            env["MLFLOW_TRACKING_URI"],
            format!("{workgroup}/projects/iris/mlflow")
        );
        assert_eq!(env["KILN_TOKEN"], "kiln_t");
        assert_eq!(env["MLFLOW_TRACKING_TOKEN"], "kiln_t");
        assert_eq!(env["MLFLOW_EXPERIMENT_ID"], "e1");
        assert_eq!(env.len(), 8);
    }
}

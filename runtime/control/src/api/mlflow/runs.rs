//! MLflow experiments and runs over Kiln's experiments and runs; params, metrics, tags and
//! the search of runs ([`crate::domain::search`] holds MLflow's search language).

use super::wire::{
    ArtifactList, Empty, Experiment, ExperimentCreated, ExperimentOne, Experiments, FileInfo,
    KeyValue, Metric, MetricHistory, Run, RunData, RunInfo, RunInfoOne, RunOne, Runs,
};
use super::{MlflowError, Project, Reply, Request, kiln_name, reply};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::domain::search::{Candidate, Field, mlflow_status, parse_filter, sort_candidates};
use crate::names::check_name;
use crate::runs::tracking::{self, MetricValue};
use crate::store::experiments::{self as experiments_store, ExperimentRow};
use crate::store::runs::{self as runs_store, RunInsert, RunRow};
use crate::{ControlError, ControlPlane};
use kiln_api::manage::runs::{MetricNumber, RunStatus};
use serde_json::Value;

/// The name of the experiment MLflow calls `0`.
const DEFAULT_EXPERIMENT: &str = "default";

/// Runs one search returns at most.
const MAX_RESULTS: usize = 1000;

/// An experiment as MLflow shows it.
fn experiment_of(row: &ExperimentRow) -> Experiment {
    Experiment {
        experiment_id: row.id.clone(),
        name: row.name.clone(),
        artifact_location: format!("mlflow-artifacts:/{}", row.id),
        lifecycle_stage: "active",
        creation_time: row.created_at,
        last_update_time: row.created_at,
        tags: Vec::new(),
    }
}

/// Creates an experiment with no script (logged to, not executed).
async fn insert_experiment(
    control: &ControlPlane,
    project: &Project,
    name: &str,
) -> Result<ExperimentRow, ControlError> {
    check_name("experiment", name)?;
    let row = ExperimentRow {
        id: new_id(),
        name: name.to_string(),
        script: String::new(),
        args: "[]".into(),
        target: "local".into(),
        created_at: now_ms(),
    };
    experiments_store::insert(control.db(), &project.id, &row).await?;
    Ok(row)
}

/// The experiment an MLflow id names in the project: `0` is the project's default one,
/// created when first used.
async fn experiment(
    control: &ControlPlane,
    project: &Project,
    id: &str,
) -> Result<ExperimentRow, ControlError> {
    let db = control.db();
    if id == "0" {
        if let Some(found) = experiments_store::find(db, &project.id, DEFAULT_EXPERIMENT).await? {
            return Ok(found);
        }
        return match insert_experiment(control, project, DEFAULT_EXPERIMENT).await {
            Ok(made) => Ok(made),
            // Made by a concurrent request meanwhile.
            Err(ControlError::Conflict(_)) => {
                experiments_store::named(db, &project.id, DEFAULT_EXPERIMENT).await
            }
            Err(e) => Err(e),
        };
    }
    experiments_store::by_id(db, &project.id, id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("experiment with id '{id}' not found")))
}

/// `experiments/create`.
pub async fn create_experiment(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let name = kiln_name(&r.required("name")?);
    let row = insert_experiment(control, project, &name).await?;
    reply(ExperimentCreated {
        experiment_id: row.id,
    })
}

/// `experiments/get`.
pub async fn get_experiment(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let row = experiment(control, project, &r.required("experiment_id")?).await?;
    reply(ExperimentOne {
        experiment: experiment_of(&row),
    })
}

/// `experiments/get-by-name`.
pub async fn get_experiment_by_name(
    control: &ControlPlane,
    project: &Project,
    r: &Request,
) -> Reply {
    let wanted = r.required("experiment_name")?;
    let name = kiln_name(&wanted);
    let row = if name == DEFAULT_EXPERIMENT || wanted == "Default" {
        experiment(control, project, "0").await?
    } else {
        experiments_store::find(control.db(), &project.id, &name)
            .await?
            .ok_or_else(|| {
                ControlError::NotFound(format!("experiment '{wanted}' does not exist"))
            })?
    };
    reply(ExperimentOne {
        experiment: experiment_of(&row),
    })
}

/// `experiments/search`: the project's experiments (by name).
pub async fn search_experiments(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let limit = r.integer("max_results")?.unwrap_or(1000).clamp(1, 50_000);
    let rows = experiments_store::list(control.db(), &project.id, "", limit).await?;
    let filter = r.text("filter").unwrap_or_default();
    let wanted = filter
        .strip_prefix("name = ")
        .or_else(|| filter.strip_prefix("name="))
        .map(|v| kiln_name(v.trim().trim_matches(['\'', '"'])));
    let experiments = rows
        .iter()
        .filter(|row| wanted.as_ref().is_none_or(|w| *w == row.name))
        .map(experiment_of)
        .collect();
    reply(Experiments { experiments })
}

/// MLflow's run state as Kiln's.
fn kiln_status(status: &str) -> Result<RunStatus, ControlError> {
    Ok(match status {
        "RUNNING" => RunStatus::Running,
        "SCHEDULED" => RunStatus::Queued,
        "FINISHED" => RunStatus::Completed,
        "FAILED" => RunStatus::Failed,
        "KILLED" => RunStatus::Canceled,
        other => {
            return Err(ControlError::Invalid(format!(
                "unknown run status '{other}'"
            )));
        }
    })
}

/// A run's identity and state as MLflow shows them.
fn run_info(view: &RunRow) -> RunInfo {
    RunInfo {
        run_id: view.id.clone(),
        run_uuid: view.id.clone(),
        run_name: view.display_name(),
        experiment_id: view.experiment_id.clone(),
        user_id: view.created_by.clone(),
        status: mlflow_status(&view.status),
        start_time: view.started_at.unwrap_or(view.created_at),
        end_time: view.finished_at,
        artifact_uri: format!(
            "mlflow-artifacts:/{}/{}/artifacts",
            view.experiment_id, view.id
        ),
        lifecycle_stage: "active",
    }
}

/// A stored metric value as MLflow shows it.
fn metric(m: &MetricValue) -> Metric {
    Metric {
        key: m.key.clone(),
        value: MetricNumber(m.number()),
        timestamp: m.timestamp,
        step: m.step,
    }
}

/// A run with what it logged, as MLflow shows it.
fn run_of_row(view: &RunRow, data: &tracking::RunData) -> Run {
    let pairs = |items: &[(String, String)]| {
        items
            .iter()
            .map(|(key, value)| KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    };
    Run {
        info: run_info(view),
        data: RunData {
            metrics: data.metrics.iter().map(metric).collect(),
            params: pairs(&data.params),
            tags: pairs(&data.tags),
        },
        inputs: Empty {},
    }
}

/// The run an MLflow request names, in the project.
async fn run_of(
    control: &ControlPlane,
    project: &Project,
    r: &Request,
) -> Result<RunRow, ControlError> {
    let id = r
        .text("run_id")
        .or_else(|| r.text("run_uuid"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ControlError::Invalid("missing value for required parameter 'run_id'".into())
        })?;
    runs_store::in_project(control.db(), &id, &project.id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("run with id '{id}' not found")))
}

/// `runs/create`: a run that a tracking client logs to (Kiln does not execute it).
pub async fn create_run(
    control: &ControlPlane,
    scope: &Scope,
    project: &Project,
    r: &Request,
) -> Reply {
    let experiment_id = r.text("experiment_id").unwrap_or_else(|| "0".into());
    let experiment_id = experiment(control, project, &experiment_id).await?.id;
    let tags = r.pairs("tags")?;
    let run_name = r
        .text("run_name")
        .or_else(|| {
            tags.iter()
                .find(|(k, _)| k == "mlflow.runName")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_default();
    if run_name.len() > 250 || run_name.chars().any(char::is_control) {
        return Err(MlflowError(ControlError::Invalid(
            "run_name: at most 250 printable characters".into(),
        )));
    }
    let commit = tags
        .iter()
        .find(|(k, _)| k == "mlflow.source.git.commit")
        .map(|(_, v)| v.clone())
        .filter(|c| c.len() == 40 && c.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_default();
    let start = r.integer("start_time")?.unwrap_or_else(now_ms);
    let view = runs_store::insert(
        control.db(),
        &RunInsert {
            experiment_id: &experiment_id,
            commit: &commit,
            target: "external",
            args: "[]",
            status: RunStatus::Running.as_str(),
            created_by: &scope.principal()?.user_id,
            created_at: start,
            started_at: Some(start),
            script: "",
            name: &run_name,
            timeout_s: None,
            environment: "",
            executed: false,
        },
    )
    .await?;
    tracking::log_batch(control, &view.id, &[], &[], &tags).await?;
    let data = tracking::run_data(control.db(), &view.id).await?;
    reply(RunOne {
        run: run_of_row(&view, &data),
    })
}

/// `runs/get`.
pub async fn get_run(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let data = tracking::run_data(control.db(), &view.id).await?;
    reply(RunOne {
        run: run_of_row(&view, &data),
    })
}

/// `runs/update`: status and end time of runs a client logs to (a run Kiln executes ends when
/// its process does, whatever the script says), and the name of any run.
pub async fn update_run(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    if let Some(name) = r.text("run_name").filter(|n| !n.is_empty()) {
        runs_store::set_name(control.db(), &view.id, &name).await?;
    }
    if !view.executed()
        && let Some(status) = r.text("status")
    {
        let status = kiln_status(&status)?;
        let end = if status.is_final() {
            Some(r.integer("end_time")?.unwrap_or_else(now_ms))
        } else {
            None
        };
        runs_store::set_status(control.db(), &view.id, status.as_str(), end).await?;
    }
    let view = run_of(control, project, r).await?;
    reply(RunInfoOne {
        run_info: run_info(&view),
    })
}

/// A metric of a request, read as Kiln's tracking API reads one.
fn metric_of(value: &Value) -> Result<tracking::Metric, ControlError> {
    serde_json::from_value(value.clone())
        .map_err(|e| ControlError::Invalid(format!("invalid metric {value}: {e}")))
}

/// `runs/log-metric`.
pub async fn log_metric(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let value = r
        .value("value")
        .ok_or_else(|| ControlError::Invalid("missing 'value'".into()))?;
    let value = serde_json::from_value::<MetricNumber>(value.clone())
        .map_err(|e| ControlError::Invalid(format!("invalid metric value {value}: {e}")))?;
    let metric = tracking::Metric {
        key: r.required("key")?,
        value: value.0,
        timestamp: r.integer("timestamp")?,
        step: r.integer("step")?,
    };
    tracking::log_batch(control, &view.id, &[metric], &[], &[]).await?;
    reply(Empty {})
}

/// `runs/log-parameter`.
pub async fn log_param(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let param = (r.required("key")?, r.text("value").unwrap_or_default());
    tracking::log_batch(control, &view.id, &[], &[param], &[]).await?;
    reply(Empty {})
}

/// `runs/set-tag`.
pub async fn set_tag(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let tag = (r.required("key")?, r.text("value").unwrap_or_default());
    if tag.0 == "mlflow.runName" {
        runs_store::set_name(control.db(), &view.id, &tag.1).await?;
    }
    tracking::log_batch(control, &view.id, &[], &[], &[tag]).await?;
    reply(Empty {})
}

/// `runs/delete-tag`.
pub async fn delete_tag(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    tracking::delete_tag(control.db(), &view.id, &r.required("key")?).await?;
    reply(Empty {})
}

/// `runs/log-batch`.
pub async fn log_batch(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let metrics = match r.value("metrics") {
        Some(Value::Array(items)) => items.iter().map(metric_of).collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(MlflowError(ControlError::Invalid(
                "'metrics' must be a list".into(),
            )));
        }
        None => vec![],
    };
    let params = r.pairs("params")?;
    let tags = r.pairs("tags")?;
    tracking::log_batch(control, &view.id, &metrics, &params, &tags).await?;
    reply(Empty {})
}

/// `metrics/get-history`.
pub async fn metric_history(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let key = r.required("metric_key")?;
    let limit = r
        .integer("max_results")?
        .unwrap_or(100_000)
        .clamp(1, 100_000);
    let history = tracking::metric_history(control.db(), &view.id, &key, limit).await?;
    reply(MetricHistory {
        metrics: history.iter().map(metric).collect(),
    })
}

/// `artifacts/list`: the tracking API's listing of a run's artifacts.
pub async fn list_artifacts(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let path = r.text("path").unwrap_or_default();
    let files = tracking::list_artifacts(control, &view.id, &path)
        .await?
        .into_iter()
        .map(|(path, is_dir, size)| FileInfo::of(path, is_dir, size))
        .collect();
    reply(ArtifactList {
        root_uri: format!(
            "mlflow-artifacts:/{}/{}/artifacts",
            view.experiment_id, view.id
        ),
        files,
    })
}

/// `runs/search`: runs of the given experiments of the project matching the filter, ordered
/// (default: newest first), a page at a time.
pub async fn search_runs(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let mut experiment_ids: Vec<String> = match r.value("experiment_ids") {
        Some(Value::Array(ids)) => ids
            .iter()
            .filter_map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_i64().map(|n| n.to_string()))
            })
            .collect(),
        Some(Value::String(id)) => vec![id.clone()],
        _ => vec![],
    };
    for id in &mut experiment_ids {
        *id = experiment(control, project, id).await?.id;
    }
    let clauses = parse_filter(&r.text("filter").unwrap_or_default())?;
    let limit = (r.integer("max_results")?.unwrap_or(1000).max(1) as usize).min(MAX_RESULTS);
    let offset: usize = r
        .text("page_token")
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| ControlError::Invalid("invalid page_token".into()))
        })
        .transpose()?
        .unwrap_or(0);
    let mut candidates = Vec::new();
    for experiment_id in &experiment_ids {
        for view in runs_store::of_experiment(control.db(), experiment_id, &project.id).await? {
            let data = tracking::run_data(control.db(), &view.id).await?;
            candidates.push(Candidate { view, data });
        }
    }
    let mut order: Vec<(Field, bool)> = Vec::new();
    if let Some(Value::Array(items)) = r.value("order_by") {
        for item in items.iter().filter_map(Value::as_str) {
            let mut words = item.split_whitespace();
            let name = words.next().unwrap_or("");
            let descending = words.next().is_some_and(|w| w.eq_ignore_ascii_case("DESC"));
            order.push((crate::domain::search::field(name)?, descending));
        }
    }
    order.push((Field::Attribute("start_time".into()), true));
    order.push((Field::Attribute("run_id".into()), false));
    // Matching and sorting are CPU work: off the async workers that serve everything else.
    let candidates = tokio::task::spawn_blocking(move || {
        candidates.retain(|c| clauses.iter().all(|clause| c.matches(clause)));
        sort_candidates(&mut candidates, &order);
        candidates
    })
    .await
    .map_err(|e| ControlError::Internal(format!("run search: {e}")))?;
    let total = candidates.len();
    let runs = candidates
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| run_of_row(&c.view, &c.data))
        .collect();
    let next_page_token = (offset + limit < total).then(|| (offset + limit).to_string());
    reply(Runs {
        runs,
        next_page_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_names_map_to_kiln_names() {
        assert_eq!(kiln_name("Iris Classifier"), "iris-classifier");
        assert_eq!(kiln_name("/Users/me/exp"), "users-me-exp");
        assert_eq!(kiln_name("ok-name_1.2"), "ok-name_1.2");
    }

    #[test]
    fn mlflow_statuses_map_both_ways() {
        for (mlflow, kiln) in [
            ("RUNNING", RunStatus::Running),
            ("SCHEDULED", RunStatus::Queued),
            ("FINISHED", RunStatus::Completed),
            ("FAILED", RunStatus::Failed),
            ("KILLED", RunStatus::Canceled),
        ] {
            assert_eq!(kiln_status(mlflow).unwrap(), kiln);
            assert_eq!(mlflow_status(kiln.as_str()), mlflow);
        }
        assert!(kiln_status("DONE").is_err());
    }
}

//! Runs: what a submitted run takes from its experiment and must satisfy, what a row means to
//! a client, how listings page, and what a cancel does.

use super::experiments::{check_args, check_target};
use super::time;
use crate::names::{check_artifact_path, check_name};
use crate::runs::targets;
use crate::runs::tracking;
use crate::store::experiments as experiments_store;
use crate::store::projects::repository;
use crate::store::runs::{self as store, RunInsert, RunRow, WorkgroupRuns};
use crate::{ControlError, ControlPlane, db};
use kiln_api::Page;
use kiln_api::manage::runs::{
    Canceled, LogBatch, MetricNumber, MetricPoint, NewRun, Run, RunData, RunDetail, RunFilter,
    RunStatus,
};
use serde_json::{Map, Value};

/// Longest timeout a run may ask for: 30 days.
pub const MAX_TIMEOUT_S: u64 = 30 * 24 * 3600;

/// A run as the API shows it: empty texts as none, its name given or made.
pub fn run(row: RunRow) -> Result<Run, ControlError> {
    let status: RunStatus = row.status.parse().map_err(ControlError::Internal)?;
    let name = row.display_name();
    let some = |text: String| (!text.is_empty()).then_some(text);
    Ok(Run {
        id: row.id,
        project: row.project,
        experiment: row.experiment,
        number: row.number,
        name,
        script: some(row.script),
        commit: some(row.commit_sha),
        target: row.target,
        // Kiln writes only arrays of strings; anything else shows as none.
        args: serde_json::from_str(&row.args).unwrap_or_default(),
        status,
        reason: some(row.reason),
        exit_code: row.exit_code,
        executed: row.executed != 0,
        log_bytes: row.log_bytes,
        environment: some(row.environment),
        created_by: row.created_by,
        created: time(row.created_at),
        started: row.started_at.map(time),
        finished: row.finished_at.map(time),
    })
}

/// A stored metric value as the API shows it: NaN kept.
pub fn point(m: tracking::MetricValue) -> MetricPoint {
    MetricPoint {
        value: MetricNumber(m.number()),
        key: m.key,
        step: m.step,
        timestamp: m.timestamp,
    }
}

/// What a run logged, as the API shows it.
pub fn data(logged: tracking::RunData) -> RunData {
    RunData {
        params: logged.params.into_iter().collect(),
        metrics: logged
            .metrics
            .into_iter()
            .map(|m| {
                let point = point(m);
                (point.key, point.value)
            })
            .collect(),
        tags: logged.tags.into_iter().collect(),
    }
}

/// The run `id` of the work group `workgroup_id` (404 when there is none, or `id` is not an id).
pub async fn find(
    control: &ControlPlane,
    workgroup_id: &str,
    id: &str,
) -> Result<RunRow, ControlError> {
    let not_found = || ControlError::NotFound(format!("run '{id}' not found"));
    if id.len() != 32 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    store::in_workgroup(control.db(), id, workgroup_id)
        .await?
        .ok_or_else(not_found)
}

/// The run numbered `number` (as the path gives it) in the experiment `experiment_id`.
pub async fn find_by_number(
    control: &ControlPlane,
    experiment_id: &str,
    number: &str,
) -> Result<RunRow, ControlError> {
    let not_found = || ControlError::NotFound(format!("run '{number}' not found"));
    let parsed: i64 = number.parse().map_err(|_| not_found())?;
    store::by_number(control.db(), experiment_id, parsed)
        .await?
        .ok_or_else(not_found)
}

/// A run with what it logged.
pub async fn detail(control: &ControlPlane, row: RunRow) -> Result<RunDetail, ControlError> {
    let logged = tracking::run_data(control.db(), &row.id).await?;
    Ok(RunDetail {
        run: run(row)?,
        data: data(logged),
    })
}

/// Who submits a run, and where.
pub struct Submitter<'a> {
    /// The work group's id.
    pub workgroup_id: &'a str,
    /// The submitting user's id.
    pub user_id: &'a str,
    /// The project's id.
    pub project_id: &'a str,
    /// The experiment's name.
    pub experiment: &'a str,
}

/// Checks a new run against its experiment, its target, its environment and its project's
/// commit, and queues it.
pub async fn submit(
    control: &ControlPlane,
    at: Submitter<'_>,
    new: NewRun,
) -> Result<Run, ControlError> {
    let db = control.db();
    let experiment = experiments_store::named(db, at.project_id, at.experiment).await?;
    let target = new.target.unwrap_or(experiment.target);
    check_target(&target)?;
    targets::resolve_target(control, at.workgroup_id, &target).await?;
    if let Some(environment) = &new.environment {
        let found = targets::run_environment(control, at.workgroup_id, environment).await?;
        if !found.targets.is_empty() && !found.targets.contains(&target) {
            return Err(ControlError::Invalid(format!(
                "target '{target}' is not one of environment '{environment}' ({})",
                found.targets.join(", ")
            )));
        }
    }
    let script = new.script.unwrap_or(experiment.script);
    if script.is_empty() {
        return Err(ControlError::Invalid(format!(
            "the run needs a script: experiment '{}' names none",
            at.experiment
        )));
    }
    check_artifact_path(&script)?;
    let args = match new.args {
        Some(args) => {
            check_args(&args)?;
            serde_json::to_string(&args).map_err(|e| ControlError::Internal(e.to_string()))?
        }
        None => experiment.args,
    };
    if let Some(name) = &new.name {
        check_name("run", name)?;
    }
    check_timeout(new.timeout)?;
    let repository = repository(control, at.project_id);
    let wanted = new.commit.unwrap_or_else(|| "main".into());
    let (commit, files) = tokio::task::spawn_blocking(move || repository.files(&wanted))
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))?
        .map_err(|e| match e {
            ControlError::NotFound(m) => {
                ControlError::Invalid(format!("{m}: push the project first (`kiln project push`)"))
            }
            other => other,
        })?;
    if !files.contains(&script) {
        return Err(ControlError::Invalid(format!(
            "script '{script}' is not in commit {}: push it first",
            &commit[..12]
        )));
    }
    let row = store::insert(
        db,
        &RunInsert {
            experiment_id: &experiment.id,
            commit: &commit,
            target: &target,
            args: &args,
            status: RunStatus::Queued.as_str(),
            created_by: at.user_id,
            created_at: db::now_ms(),
            started_at: None,
            script: &script,
            name: new.name.as_deref().unwrap_or_default(),
            timeout_s: new.timeout.map(|t| t as i64),
            environment: new.environment.as_deref().unwrap_or_default(),
            executed: true,
        },
    )
    .await?;
    control.notify_runs();
    run(row)
}

/// Checks the seconds a run asks to take: 1 to [`MAX_TIMEOUT_S`].
pub fn check_timeout(timeout: Option<u64>) -> Result<(), ControlError> {
    if timeout.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_S) {
        return Err(ControlError::Invalid(format!(
            "timeout: 1 to {MAX_TIMEOUT_S} seconds"
        )));
    }
    Ok(())
}

/// A page of runs fetched one past the page's limit: the cursor of the last shown, when more
/// follow.
fn page(
    mut rows: Vec<RunRow>,
    limit: usize,
    cursor: impl Fn(&RunRow) -> String,
) -> Result<Page<Run>, ControlError> {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor)
    } else {
        None
    };
    let items = rows.into_iter().map(run).collect::<Result<_, _>>()?;
    Ok(Page { items, next })
}

/// A page of an experiment's runs, newest first: the cursor is the number of the last shown.
pub async fn list_for_experiment(
    control: &ControlPlane,
    experiment_id: &str,
    filter: &RunFilter,
) -> Result<Page<Run>, ControlError> {
    let before: i64 = match &filter.after {
        Some(after) => after
            .parse()
            .map_err(|_| ControlError::Invalid(format!("invalid cursor '{after}'")))?,
        None => i64::MAX,
    };
    let status = filter.status.map_or("", RunStatus::as_str);
    let limit = super::page_limit(filter.limit);
    let rows = store::list_for_experiment(
        control.db(),
        experiment_id,
        status,
        before,
        limit as i64 + 1,
    )
    .await?;
    page(rows, limit, |r| r.number.to_string())
}

/// Reads a work group listing's cursor, `CREATED_MS.ID` of the last run shown.
pub fn workgroup_cursor(after: Option<&str>) -> Result<(i64, String), ControlError> {
    match after {
        Some(after) => after
            .split_once('.')
            .and_then(|(c, i)| Some((c.parse::<i64>().ok()?, i.to_string())))
            .ok_or_else(|| ControlError::Invalid(format!("invalid cursor '{after}'"))),
        None => Ok((i64::MAX, String::new())),
    }
}

/// A page of a work group's runs, newest first, then by id.
pub async fn list_in_workgroup(
    control: &ControlPlane,
    workgroup_id: &str,
    filter: &RunFilter,
) -> Result<Page<Run>, ControlError> {
    let (created, id) = workgroup_cursor(filter.after.as_deref())?;
    let which = WorkgroupRuns {
        workgroup_id,
        status: filter.status.map_or("", RunStatus::as_str),
        project: filter.project.as_deref().unwrap_or_default(),
        after: (created, &id),
    };
    let limit = super::page_limit(filter.limit);
    let rows = store::list_in_workgroup(control.db(), &which, limit as i64 + 1).await?;
    page(rows, limit, |r| format!("{}.{}", r.created_at, r.id))
}

/// Cancels a run for `by` (a user's name): a queued run (or a tracking client's) ends at once;
/// an executing one is stopped by its executor, and the answer says so until it has. A run
/// that already ended is a conflict.
pub async fn cancel(
    control: &ControlPlane,
    workgroup_id: &str,
    row: RunRow,
    by: &str,
) -> Result<Canceled, ControlError> {
    let before = run(row)?;
    if before.status.is_final() {
        return Err(ControlError::Conflict(format!(
            "run {} already ended ({})",
            before.id, before.status
        )));
    }
    store::cancel(control.db(), &before.id, by).await?;
    control.notify_runs();
    control.log_written(&before.id);
    let now = run(find(control, workgroup_id, &before.id).await?)?;
    Ok(Canceled {
        cancel_requested: !now.status.is_final(),
        run: now,
    })
}

/// A batch's params or tags as text: strings as they are, numbers and booleans written out.
pub fn text_values(
    kind: &str,
    map: Map<String, Value>,
) -> Result<Vec<(String, String)>, ControlError> {
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(ControlError::Invalid(format!(
                "{kind} '{k}': a value is a string, number or boolean, not {other}"
            ))),
        })
        .collect()
}

/// A batch's metric values as the tracking store records them.
pub fn metrics(batch: &LogBatch) -> Vec<tracking::Metric> {
    batch
        .metrics
        .iter()
        .map(|m| tracking::Metric {
            key: m.key.clone(),
            value: m.value.0,
            timestamp: m.timestamp,
            step: m.step,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str) -> RunRow {
        RunRow {
            id: "a".repeat(32),
            number: 3,
            name: String::new(),
            script: "train.py".into(),
            commit_sha: String::new(),
            target: "local".into(),
            args: r#"["--c","1"]"#.into(),
            status: status.into(),
            reason: String::new(),
            exit_code: None,
            executed: 1,
            log_bytes: 0,
            environment: String::new(),
            created_by: "ada".into(),
            created_at: 0,
            started_at: Some(1000),
            finished_at: None,
            experiment_id: "e1".into(),
            experiment: "train".into(),
            project: "iris".into(),
        }
    }

    #[test]
    fn a_row_shows_empty_texts_as_none_and_a_made_name() {
        let shown = run(row("running")).unwrap();
        assert_eq!(shown.name, "train-3");
        assert_eq!(shown.script.as_deref(), Some("train.py"));
        assert_eq!(shown.commit, None);
        assert_eq!(shown.reason, None);
        assert_eq!(shown.args, ["--c", "1"]);
        assert_eq!(shown.status, RunStatus::Running);
        assert_eq!(shown.started.as_deref(), Some("1970-01-01T00:00:01.000Z"));
        let json = serde_json::to_value(&shown).unwrap();
        assert_eq!(json["commit"], Value::Null);
        assert_eq!(json["status"], "running");
        let error = run(row("lost")).unwrap_err();
        assert!(matches!(error, ControlError::Internal(_)), "{error}");
    }

    #[test]
    fn logged_nan_shows_as_nan() {
        let logged = tracking::RunData {
            params: vec![("lr".into(), "0.1".into())],
            tags: vec![],
            metrics: vec![tracking::MetricValue {
                key: "loss".into(),
                value: 0.0,
                is_nan: true,
                step: 1,
                timestamp: 5,
            }],
        };
        let json = serde_json::to_value(data(logged)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"params": {"lr": "0.1"}, "metrics": {"loss": "NaN"}, "tags": {}})
        );
    }

    #[test]
    fn cursors_timeouts_and_batch_values_are_checked() {
        assert_eq!(workgroup_cursor(None).unwrap(), (i64::MAX, String::new()));
        assert_eq!(
            workgroup_cursor(Some("12.abc")).unwrap(),
            (12, "abc".to_string())
        );
        for bad in ["12", "x.abc", ""] {
            let error = workgroup_cursor(Some(bad)).unwrap_err();
            assert_eq!(error.to_string(), format!("invalid cursor '{bad}'"));
        }
        assert!(check_timeout(None).is_ok());
        assert!(check_timeout(Some(MAX_TIMEOUT_S)).is_ok());
        assert!(check_timeout(Some(0)).is_err());
        assert!(check_timeout(Some(MAX_TIMEOUT_S + 1)).is_err());
        let values = serde_json::json!({"a": "x", "b": 1.5, "c": true});
        let Value::Object(map) = values else {
            unreachable!()
        };
        let mut texts = text_values("param", map).unwrap();
        texts.sort();
        assert_eq!(
            texts,
            [("a", "x"), ("b", "1.5"), ("c", "true")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let Value::Object(map) = serde_json::json!({"a": [1]}) else {
            unreachable!()
        };
        let error = text_values("tag", map).unwrap_err();
        assert_eq!(
            error.to_string(),
            "tag 'a': a value is a string, number or boolean, not [1]"
        );
    }

    #[tokio::test]
    async fn runs_are_numbered_per_experiment_and_listed_newest_first() {
        let db = crate::store::fixture().await;
        for sql in [
            "INSERT INTO users (id, name, is_admin, created_at) VALUES ('u1', 'ada', 0, 0)",
            "INSERT INTO experiments (id, project_id, name, script, args, target, created_at) \
             VALUES ('e1', 'p1', 'train', 'train.py', '[]', 'local', 0)",
        ] {
            sqlx::query(sql).execute(db.pool()).await.unwrap();
        }
        let mut ids = Vec::new();
        for created_at in [10, 20, 20] {
            let row = store::insert(
                &db,
                &RunInsert {
                    experiment_id: "e1",
                    commit: "",
                    target: "local",
                    args: "[]",
                    status: "queued",
                    created_by: "u1",
                    created_at,
                    started_at: None,
                    script: "train.py",
                    name: "",
                    timeout_s: None,
                    environment: "",
                    executed: true,
                },
            )
            .await
            .unwrap();
            ids.push(row.id.clone());
            assert_eq!(row.number as usize, ids.len());
            assert_eq!(row.created_by, "ada");
        }
        let numbers = |rows: Vec<RunRow>| rows.iter().map(|r| r.number).collect::<Vec<_>>();
        let newest = store::list_for_experiment(&db, "e1", "", i64::MAX, 2).await;
        assert_eq!(numbers(newest.unwrap()), [3, 2]);
        let older = store::list_for_experiment(&db, "e1", "", 2, 10).await;
        assert_eq!(numbers(older.unwrap()), [1]);
        let none = store::list_for_experiment(&db, "e1", "running", i64::MAX, 10).await;
        assert!(none.unwrap().is_empty());
        // Same creation time: by id; a cursor past the first of them leaves the second.
        let mut same = ids[1..].to_vec();
        same.sort();
        let which = |after: (i64, &'static str), workgroup_id| WorkgroupRuns {
            workgroup_id,
            status: "",
            project: "",
            after,
        };
        let all = store::list_in_workgroup(&db, &which((i64::MAX, ""), "w1"), 10).await;
        let all: Vec<String> = all.unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(all, [same[0].clone(), same[1].clone(), ids[0].clone()]);
        let other = store::list_in_workgroup(&db, &which((i64::MAX, ""), "w2"), 10).await;
        assert!(other.unwrap().is_empty(), "another work group's runs");
        assert!(
            store::in_workgroup(&db, &ids[0], "w2")
                .await
                .unwrap()
                .is_none()
        );
        assert!(store::cancel(&db, &ids[0], "ada").await.unwrap());
        let canceled = store::in_workgroup(&db, &ids[0], "w1").await.unwrap();
        let canceled = canceled.unwrap();
        assert_eq!(canceled.status, "canceled");
        assert_eq!(canceled.reason, "canceled by ada");
    }
}

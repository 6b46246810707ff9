//! MLflow experiments and runs over Kiln's experiments and runs; params, metrics, tags and
//! the search of runs.

use super::{MlflowError, Project, Reply, Request, kiln_name};
use crate::access::Scope;
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::runs::tracking::{self, Metric, MetricValue, RunData};
use crate::store::runs::{self as runs_store, RUN_SELECT, RunInsert, RunRow};
use crate::{ControlError, ControlPlane};
use axum::Json;
use serde_json::{Value, json};
use std::cmp::Ordering;

/// The name of the experiment MLflow calls `0`.
const DEFAULT_EXPERIMENT: &str = "default";

/// Runs one search returns at most.
const MAX_RESULTS: usize = 1000;

fn experiment_json(id: &str, name: &str, created: i64) -> Value {
    json!({
        "experiment_id": id,
        "name": name,
        "artifact_location": format!("mlflow-artifacts:/{id}"),
        "lifecycle_stage": "active",
        "creation_time": created,
        "last_update_time": created,
        "tags": [],
    })
}

/// Creates an experiment with no script (logged to, not executed).
async fn insert_experiment(
    control: &ControlPlane,
    project: &Project,
    name: &str,
) -> Result<(String, i64), ControlError> {
    check_name("experiment", name)?;
    let id = new_id();
    let created = now_ms();
    sqlx::query(
        "INSERT INTO experiments (id, project_id, name, script, args, target, created_at) \
         VALUES ($1, $2, $3, '', '[]', 'local', $4)",
    )
    .bind(&id)
    .bind(&project.id)
    .bind(name)
    .bind(created)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("experiment", name))?;
    Ok((id, created))
}

/// The experiment an MLflow id names in the project: `0` is the project's default one,
/// created when first used.
async fn experiment(
    control: &ControlPlane,
    project: &Project,
    id: &str,
) -> Result<(String, String, i64), ControlError> {
    if id == "0" {
        let found: Option<(String, i64)> = sqlx::query_as(
            "SELECT id, created_at FROM experiments WHERE project_id = $1 AND name = $2",
        )
        .bind(&project.id)
        .bind(DEFAULT_EXPERIMENT)
        .fetch_optional(control.db().pool())
        .await?;
        let (id, created) = match found {
            Some(found) => found,
            None => match insert_experiment(control, project, DEFAULT_EXPERIMENT).await {
                Ok(made) => made,
                // Made by a concurrent request meanwhile.
                Err(ControlError::Conflict(_)) => sqlx::query_as(
                    "SELECT id, created_at FROM experiments WHERE project_id = $1 AND name = $2",
                )
                .bind(&project.id)
                .bind(DEFAULT_EXPERIMENT)
                .fetch_one(control.db().pool())
                .await?,
                Err(e) => return Err(e),
            },
        };
        return Ok((id, DEFAULT_EXPERIMENT.into(), created));
    }
    let found: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT id, name, created_at FROM experiments WHERE project_id = $1 AND id = $2",
    )
    .bind(&project.id)
    .bind(id)
    .fetch_optional(control.db().pool())
    .await?;
    found.ok_or_else(|| ControlError::NotFound(format!("experiment with id '{id}' not found")))
}

/// `experiments/create`.
pub async fn create_experiment(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let name = kiln_name(&r.required("name")?);
    let (id, _) = insert_experiment(control, project, &name).await?;
    Ok(Json(json!({ "experiment_id": id })))
}

/// `experiments/get`.
pub async fn get_experiment(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let (id, name, created) = experiment(control, project, &r.required("experiment_id")?).await?;
    Ok(Json(
        json!({ "experiment": experiment_json(&id, &name, created) }),
    ))
}

/// `experiments/get-by-name`.
pub async fn get_experiment_by_name(
    control: &ControlPlane,
    project: &Project,
    r: &Request,
) -> Reply {
    let wanted = r.required("experiment_name")?;
    let name = kiln_name(&wanted);
    if name == DEFAULT_EXPERIMENT || wanted == "Default" {
        return get_experiment_by_id(control, project, "0").await;
    }
    let found: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT id, name, created_at FROM experiments WHERE project_id = $1 AND name = $2",
    )
    .bind(&project.id)
    .bind(&name)
    .fetch_optional(control.db().pool())
    .await?;
    let (id, name, created) = found
        .ok_or_else(|| ControlError::NotFound(format!("experiment '{wanted}' does not exist")))?;
    Ok(Json(
        json!({ "experiment": experiment_json(&id, &name, created) }),
    ))
}

async fn get_experiment_by_id(control: &ControlPlane, project: &Project, id: &str) -> Reply {
    let (id, name, created) = experiment(control, project, id).await?;
    Ok(Json(
        json!({ "experiment": experiment_json(&id, &name, created) }),
    ))
}

/// `experiments/search`: the project's experiments (by name).
pub async fn search_experiments(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let limit = r.integer("max_results")?.unwrap_or(1000).clamp(1, 50_000);
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, name, created_at FROM experiments WHERE project_id = $1 ORDER BY name LIMIT $2",
    )
    .bind(&project.id)
    .bind(limit)
    .fetch_all(control.db().pool())
    .await?;
    let filter = r.text("filter").unwrap_or_default();
    let wanted = filter
        .strip_prefix("name = ")
        .or_else(|| filter.strip_prefix("name="))
        .map(|v| kiln_name(v.trim().trim_matches(['\'', '"'])));
    let experiments: Vec<Value> = rows
        .iter()
        .filter(|(_, name, _)| wanted.as_ref().is_none_or(|w| w == name))
        .map(|(id, name, created)| experiment_json(id, name, *created))
        .collect();
    Ok(Json(json!({ "experiments": experiments })))
}

/// Kiln's run states in MLflow's words.
fn mlflow_status(status: &str) -> &'static str {
    match status {
        "queued" | "preparing" => "SCHEDULED",
        "running" => "RUNNING",
        "completed" => "FINISHED",
        "failed" => "FAILED",
        _ => "KILLED",
    }
}

fn kiln_status(status: &str) -> Result<&'static str, ControlError> {
    Ok(match status {
        "RUNNING" => "running",
        "SCHEDULED" => "queued",
        "FINISHED" => "completed",
        "FAILED" => "failed",
        "KILLED" => "canceled",
        other => {
            return Err(ControlError::Invalid(format!(
                "unknown run status '{other}'"
            )));
        }
    })
}

fn run_info(view: &RunRow) -> Value {
    json!({
        "run_id": view.id,
        "run_uuid": view.id,
        "run_name": view.display_name(),
        "experiment_id": view.experiment_id,
        "user_id": view.created_by,
        "status": mlflow_status(&view.status),
        "start_time": view.started_at.unwrap_or(view.created_at),
        "end_time": view.finished_at,
        "artifact_uri": format!("mlflow-artifacts:/{}/{}/artifacts", view.experiment_id, view.id),
        "lifecycle_stage": "active",
    })
}

fn run_json(view: &RunRow, data: &RunData) -> Value {
    let pairs = |items: &[(String, String)]| -> Vec<Value> {
        items
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect()
    };
    let metrics: Vec<Value> = data.metrics.iter().map(MetricValue::json).collect();
    json!({
        "info": run_info(view),
        "data": { "metrics": metrics, "params": pairs(&data.params), "tags": pairs(&data.tags) },
        "inputs": {},
    })
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
    let (experiment_id, _, _) = experiment(control, project, &experiment_id).await?;
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
            status: "running",
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
    let id = view.id.clone();
    tracking::log_batch(control, &id, &[], &[], &tags).await?;
    let data = tracking::run_data(control.db(), &id).await?;
    Ok(Json(json!({ "run": run_json(&view, &data) })))
}

/// `runs/get`.
pub async fn get_run(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let data = tracking::run_data(control.db(), &view.id).await?;
    Ok(Json(json!({ "run": run_json(&view, &data) })))
}

/// `runs/update`: status and end time of runs a client logs to (a run Kiln executes ends when
/// its process does, whatever the script says), and the name of any run.
pub async fn update_run(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    if let Some(name) = r.text("run_name").filter(|n| !n.is_empty()) {
        sqlx::query("UPDATE runs SET name = $1 WHERE id = $2")
            .bind(&name)
            .bind(&view.id)
            .execute(control.db().pool())
            .await?;
    }
    if !view.executed()
        && let Some(status) = r.text("status")
    {
        let status = kiln_status(&status)?;
        let end = if crate::runs::is_final(status) {
            Some(r.integer("end_time")?.unwrap_or_else(now_ms))
        } else {
            None
        };
        sqlx::query("UPDATE runs SET status = $1, finished_at = $2 WHERE id = $3")
            .bind(status)
            .bind(end)
            .bind(&view.id)
            .execute(control.db().pool())
            .await?;
    }
    let view = run_of(control, project, r).await?;
    Ok(Json(json!({ "run_info": run_info(&view) })))
}

fn metric_of(value: &Value) -> Result<Metric, ControlError> {
    serde_json::from_value(value.clone())
        .map_err(|e| ControlError::Invalid(format!("invalid metric {value}: {e}")))
}

/// `runs/log-metric`.
pub async fn log_metric(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let metric = Metric {
        key: r.required("key")?,
        value: match r.value("value") {
            Some(v) => metric_of(&json!({ "key": "k", "value": v }))?.value,
            None => return Err(MlflowError(ControlError::Invalid("missing 'value'".into()))),
        },
        timestamp: r.integer("timestamp")?,
        step: r.integer("step")?,
    };
    tracking::log_batch(control, &view.id, &[metric], &[], &[]).await?;
    Ok(Json(json!({})))
}

/// `runs/log-parameter`.
pub async fn log_param(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let param = (r.required("key")?, r.text("value").unwrap_or_default());
    tracking::log_batch(control, &view.id, &[], &[param], &[]).await?;
    Ok(Json(json!({})))
}

/// `runs/set-tag`.
pub async fn set_tag(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let tag = (r.required("key")?, r.text("value").unwrap_or_default());
    if tag.0 == "mlflow.runName" {
        sqlx::query("UPDATE runs SET name = $1 WHERE id = $2")
            .bind(&tag.1)
            .bind(&view.id)
            .execute(control.db().pool())
            .await?;
    }
    tracking::log_batch(control, &view.id, &[], &[], &[tag]).await?;
    Ok(Json(json!({})))
}

/// `runs/delete-tag`.
pub async fn delete_tag(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    tracking::delete_tag(control.db(), &view.id, &r.required("key")?).await?;
    Ok(Json(json!({})))
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
    Ok(Json(json!({})))
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
    let metrics: Vec<Value> = history.iter().map(MetricValue::json).collect();
    Ok(Json(json!({ "metrics": metrics })))
}

/// `artifacts/list`: the tracking API's listing of a run's artifacts.
pub async fn list_artifacts(control: &ControlPlane, project: &Project, r: &Request) -> Reply {
    let view = run_of(control, project, r).await?;
    let path = r.text("path").unwrap_or_default();
    let files: Vec<Value> = tracking::list_artifacts(control, &view.id, &path)
        .await?
        .into_iter()
        .map(|(path, is_dir, size)| super::file_info(&path, is_dir, size))
        .collect();
    Ok(Json(json!({
        "root_uri": format!("mlflow-artifacts:/{}/{}/artifacts", view.experiment_id, view.id),
        "files": files,
    })))
}

/// What a search clause compares: an attribute, a metric, a param or a tag.
#[derive(Clone, Debug, PartialEq)]
enum Field {
    Attribute(String),
    Metric(String),
    Param(String),
    Tag(String),
}

/// One `field op value` clause of a filter.
#[derive(Clone, Debug)]
struct Clause {
    field: Field,
    op: String,
    values: Vec<Literal>,
}

#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Text(String),
    Number(f64),
}

/// Splits a filter into tokens: identifiers (with backquoted or quoted keys), strings,
/// numbers, operators, parentheses and commas.
fn tokens(filter: &str) -> Result<Vec<String>, ControlError> {
    let bad = |why: &str| ControlError::Invalid(format!("invalid filter '{filter}': {why}"));
    let chars: Vec<char> = filter.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' || c == '`' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or_else(|| bad("an unclosed quote"))?;
            out.push(chars[i..i + end + 2].iter().collect());
            i += end + 2;
        } else if "(),".contains(c) {
            out.push(c.to_string());
            i += 1;
        } else if "=!<>".contains(c) {
            let two = chars.get(i + 1) == Some(&'=');
            out.push(chars[i..i + 1 + usize::from(two)].iter().collect());
            i += 1 + usize::from(two);
        } else {
            let start = i;
            while i < chars.len() {
                let d = chars[i];
                if d.is_whitespace() || "(),=!<>".contains(d) {
                    break;
                }
                if (d == '`' || d == '"' || d == '\'') && i > start {
                    // entity.`key with spaces`
                    let end = chars[i + 1..]
                        .iter()
                        .position(|&e| e == d)
                        .ok_or_else(|| bad("an unclosed quote"))?;
                    i += end + 2;
                    continue;
                }
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    for q in ['\'', '"', '`'] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return t[1..t.len() - 1].to_string();
        }
    }
    t.to_string()
}

fn field(identifier: &str) -> Result<Field, ControlError> {
    let (entity, key) = match identifier.split_once('.') {
        Some((entity, key)) => (entity.to_ascii_lowercase(), unquote(key)),
        None => ("attributes".into(), unquote(identifier)),
    };
    Ok(match entity.as_str() {
        "metrics" | "metric" => Field::Metric(key),
        "params" | "param" | "parameters" | "parameter" => Field::Param(key),
        "tags" | "tag" => Field::Tag(key),
        "attributes" | "attribute" | "attr" | "run" => Field::Attribute(key),
        other => {
            return Err(ControlError::Invalid(format!(
                "invalid filter: unknown entity '{other}' (metrics, params, tags, attributes)"
            )));
        }
    })
}

fn literal(token: &str) -> Result<Literal, ControlError> {
    if token.starts_with('\'') || token.starts_with('"') {
        return Ok(Literal::Text(unquote(token)));
    }
    token
        .parse::<f64>()
        .map(Literal::Number)
        .map_err(|_| ControlError::Invalid(format!("invalid filter: '{token}' is not a value")))
}

/// Parses `clause AND clause ...`.
fn parse_filter(filter: &str) -> Result<Vec<Clause>, ControlError> {
    let tokens = tokens(filter)?;
    let mut clauses = Vec::new();
    let mut i = 0;
    let bad = |why: String| ControlError::Invalid(format!("invalid filter '{filter}': {why}"));
    while i < tokens.len() {
        let field = field(&tokens[i])?;
        i += 1;
        let mut op = tokens
            .get(i)
            .ok_or_else(|| bad("a comparison is missing".into()))?
            .to_ascii_uppercase();
        i += 1;
        if op == "NOT" {
            let next = tokens.get(i).map(|t| t.to_ascii_uppercase());
            if next.as_deref() != Some("IN") {
                return Err(bad("NOT is only NOT IN".into()));
            }
            op = "NOT IN".into();
            i += 1;
        }
        let values = if op == "IN" || op == "NOT IN" {
            if tokens.get(i).map(String::as_str) != Some("(") {
                return Err(bad(format!("{op} needs a list in parentheses")));
            }
            i += 1;
            let mut values = Vec::new();
            while let Some(token) = tokens.get(i) {
                i += 1;
                match token.as_str() {
                    ")" => break,
                    "," => continue,
                    value => values.push(literal(value)?),
                }
            }
            values
        } else {
            if !["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE"].contains(&op.as_str()) {
                return Err(bad(format!("unknown comparison '{op}'")));
            }
            let value = tokens
                .get(i)
                .ok_or_else(|| bad(format!("'{op}' needs a value")))?;
            i += 1;
            let value = literal(value)?;
            if let (true, Literal::Text(pattern)) = (op.ends_with("LIKE"), &value) {
                check_like(pattern)?;
            }
            vec![value]
        };
        clauses.push(Clause { field, op, values });
        match tokens.get(i).map(|t| t.to_ascii_uppercase()) {
            None => {}
            Some(and) if and == "AND" => i += 1,
            Some(other) => return Err(bad(format!("expected AND, found '{other}'"))),
        }
    }
    Ok(clauses)
}

/// The longest `LIKE` pattern a filter may hold, in characters.
pub(super) const MAX_LIKE_CHARS: usize = 256;

/// The most wildcards (`%` and `_`) a `LIKE` pattern may hold.
pub(super) const MAX_LIKE_WILDCARDS: usize = 32;

/// Refuses a `LIKE` pattern longer than [`MAX_LIKE_CHARS`] or with more than
/// [`MAX_LIKE_WILDCARDS`] wildcards, with the limit named.
pub(super) fn check_like(pattern: &str) -> Result<(), ControlError> {
    let chars = pattern.chars().count();
    if chars > MAX_LIKE_CHARS {
        return Err(ControlError::Invalid(format!(
            "a LIKE pattern may hold at most {MAX_LIKE_CHARS} characters, not {chars}"
        )));
    }
    let wildcards = pattern.chars().filter(|c| matches!(c, '%' | '_')).count();
    if wildcards > MAX_LIKE_WILDCARDS {
        return Err(ControlError::Invalid(format!(
            "a LIKE pattern may hold at most {MAX_LIKE_WILDCARDS} wildcards (% and _), not {wildcards}"
        )));
    }
    Ok(())
}

/// SQL `LIKE` with `%` and `_`, in time linear in the text for each `%` of the pattern (the
/// matcher goes back only to the last `%`, never further: O(text x pattern) at worst, not
/// exponential).
pub(super) fn like(text: &str, pattern: &str, fold: bool) -> bool {
    let (text, pattern) = if fold {
        (text.to_lowercase(), pattern.to_lowercase())
    } else {
        (text.to_string(), pattern.to_string())
    };
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    // After the last `%` seen: where the pattern goes on, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if let Some((after, tried)) = star {
            // The last `%` takes one more character.
            star = Some((after, tried + 1));
            pi = after;
            ti = tried + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// A run with what it logged, for search.
struct Candidate {
    view: RunRow,
    data: RunData,
}

impl Candidate {
    fn get(&self, field: &Field) -> Option<Literal> {
        match field {
            Field::Metric(key) => self
                .data
                .metrics
                .iter()
                .find(|m| m.key == *key)
                .map(|m| Literal::Number(if m.is_nan { f64::NAN } else { m.value })),
            Field::Param(key) => self
                .data
                .params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Literal::Text(v.clone())),
            Field::Tag(key) => self
                .data
                .tags
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Literal::Text(v.clone())),
            Field::Attribute(key) => match key.as_str() {
                "status" => Some(Literal::Text(mlflow_status(&self.view.status).into())),
                "run_name" | "runName" => Some(Literal::Text(self.view.display_name())),
                "run_id" | "run_uuid" => Some(Literal::Text(self.view.id.clone())),
                "user_id" => Some(Literal::Text(self.view.created_by.clone())),
                "start_time" => Some(Literal::Number(
                    self.view.started_at.unwrap_or(self.view.created_at) as f64,
                )),
                "end_time" => self.view.finished_at.map(|t| Literal::Number(t as f64)),
                "experiment_id" => Some(Literal::Text(self.view.experiment_id.clone())),
                _ => None,
            },
        }
    }

    fn matches(&self, clause: &Clause) -> bool {
        let Some(actual) = self.get(&clause.field) else {
            return false;
        };
        let order = |expected: &Literal| -> Option<Ordering> {
            match (&actual, expected) {
                (Literal::Number(a), Literal::Number(b)) => a.partial_cmp(b),
                (Literal::Text(a), Literal::Text(b)) => Some(a.cmp(b)),
                (Literal::Number(a), Literal::Text(b)) => {
                    b.parse::<f64>().ok().and_then(|b| a.partial_cmp(&b))
                }
                (Literal::Text(a), Literal::Number(b)) => {
                    a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b))
                }
            }
        };
        let expected = &clause.values;
        match clause.op.as_str() {
            "IN" => expected.iter().any(|e| order(e) == Some(Ordering::Equal)),
            "NOT IN" => !expected.iter().any(|e| order(e) == Some(Ordering::Equal)),
            "LIKE" | "ILIKE" => match (&actual, expected.first()) {
                (Literal::Text(a), Some(Literal::Text(p))) => like(a, p, clause.op == "ILIKE"),
                _ => false,
            },
            op => match expected.first().and_then(order) {
                Some(o) => match op {
                    "=" => o == Ordering::Equal,
                    "!=" => o != Ordering::Equal,
                    "<" => o == Ordering::Less,
                    "<=" => o != Ordering::Greater,
                    ">" => o == Ordering::Greater,
                    ">=" => o != Ordering::Less,
                    _ => false,
                },
                None => false,
            },
        }
    }
}

/// Orders runs by `order` (runs without a value last either way).
fn sort_candidates(candidates: &mut [Candidate], order: &[(Field, bool)]) {
    candidates.sort_by(|a, b| {
        for (field, descending) in order {
            let (x, y) = (a.get(field), b.get(field));
            let o = match (x, y) {
                (Some(Literal::Number(x)), Some(Literal::Number(y))) => {
                    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
                }
                (Some(Literal::Text(x)), Some(Literal::Text(y))) => x.cmp(&y),
                // Runs without the value come last either way.
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                _ => Ordering::Equal,
            };
            let o = if *descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
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
        *id = experiment(control, project, id).await?.0;
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
        let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{RUN_SELECT} WHERE r.experiment_id = $1 AND e.project_id = $2"
        )))
        .bind(experiment_id)
        .bind(&project.id)
        .fetch_all(control.db().pool())
        .await?;
        for view in rows {
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
            order.push((field(name)?, descending));
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
    let runs: Vec<Value> = candidates
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| run_json(&c.view, &c.data))
        .collect();
    let mut reply = json!({ "runs": runs });
    if offset + limit < total {
        reply["next_page_token"] = json!((offset + limit).to_string());
    }
    Ok(Json(reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let clauses = parse_filter(
            "metrics.accuracy > 0.9 AND params.solver = 'lbfgs' and tags.`my tag` IN ('a', 'b') AND attributes.status != 'FAILED'",
        )
        .expect("parses");
        assert_eq!(clauses.len(), 4);
        assert_eq!(clauses[0].field, Field::Metric("accuracy".into()));
        assert_eq!(clauses[0].values, vec![Literal::Number(0.9)]);
        assert_eq!(clauses[2].field, Field::Tag("my tag".into()));
        assert_eq!(clauses[2].op, "IN");
        assert_eq!(clauses[2].values.len(), 2);
        assert!(parse_filter("metrics.a >").is_err());
        assert!(parse_filter("bogus.a = 1").is_err());
        assert!(parse_filter("params.a = 'x' OR params.b = 'y'").is_err());
        assert!(parse_filter("").expect("empty").is_empty());
    }

    #[test]
    fn like_matches_as_sql_does() {
        assert!(like("logistic", "log%", false));
        assert!(like("logistic", "%IST%", true));
        assert!(!like("logistic", "%IST%", false));
        assert!(like("ab", "a_", false));
        assert!(!like("abc", "a_", false));
        assert!(like("abc", "%", false));
        assert!(like("", "%%", false));
        assert!(!like("", "_", false));
        assert!(like("mississippi", "%sis%ip_i", false));
        assert!(!like("mississippi", "%sis%ip_x", false));
        assert!(like("a%b", "a%b", false));
        assert!(like("aaa", "%a%a%a%", false));
        assert!(!like("aa", "%a%a%a%", false));
    }

    #[test]
    fn like_agrees_with_a_plain_backtracking_matcher() {
        fn reference(t: &[char], p: &[char]) -> bool {
            match p.first() {
                None => t.is_empty(),
                Some('%') => (0..=t.len()).any(|i| reference(&t[i..], &p[1..])),
                Some('_') => !t.is_empty() && reference(&t[1..], &p[1..]),
                Some(c) => t.first() == Some(c) && reference(&t[1..], &p[1..]),
            }
        }
        // Every text and pattern over a small alphabet, up to lengths 5 and 4.
        fn all(alphabet: &[char], up_to: usize) -> Vec<String> {
            let mut out = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..up_to {
                last = last
                    .iter()
                    .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                    .collect();
                out.extend(last.iter().cloned());
            }
            out
        }
        for text in all(&['a', 'b'], 5) {
            for pattern in all(&['a', 'b', '%', '_'], 4) {
                let t: Vec<char> = text.chars().collect();
                let p: Vec<char> = pattern.chars().collect();
                assert_eq!(
                    like(&text, &pattern, false),
                    reference(&t, &p),
                    "{text} {pattern}"
                );
            }
        }
    }

    #[test]
    fn pathological_like_patterns_are_fast_or_refused() {
        // 16 pairs of `%_` against a 32-character id: exponential for a backtracking matcher.
        let pattern = format!("{}!", "%_".repeat(16));
        assert!(check_like(&pattern).is_ok());
        assert!(!like(&"a".repeat(32), &pattern, false));
        let long = "%_".repeat(17);
        let refused = check_like(&long).expect_err("too many wildcards");
        assert!(
            refused.to_string().contains("at most 32 wildcards"),
            "{refused}"
        );
        let refused = check_like(&"x".repeat(300)).expect_err("too long");
        assert!(
            refused.to_string().contains("at most 256 characters"),
            "{refused}"
        );
        assert!(parse_filter(&format!("attributes.run_id LIKE '{long}'")).is_err());
    }

    #[test]
    fn mlflow_names_map_to_kiln_names() {
        assert_eq!(kiln_name("Iris Classifier"), "iris-classifier");
        assert_eq!(kiln_name("/Users/me/exp"), "users-me-exp");
        assert_eq!(kiln_name("ok-name_1.2"), "ok-name_1.2");
    }
}

//! MLflow's model registry over the work group's models: registered models, versions made
//! from a run's artifacts (their lineage names the run and its commit), aliases.

use super::{MlflowError, Project, Reply, Request, kiln_name};
use crate::access::Scope;
use crate::api::models::model_id;
use crate::db::{new_id, now_ms};
use crate::domain::models::{run_files, store_version, version_of};
use crate::names::check_name;
use crate::store::models::point_alias;
use crate::{ControlError, ControlPlane};
use axum::Json;
use kiln_api::manage::models::NewVersion;
use serde_json::{Value, json};

/// A model version as MLflow shows it.
async fn version_json(
    control: &ControlPlane,
    model: &str,
    model_id: &str,
    version: i64,
) -> Result<Value, ControlError> {
    let (description, run_id, source, created): (String, Option<String>, String, i64) =
        sqlx::query_as(
            "SELECT description, run_id, source, created_at FROM model_versions \
             WHERE model_id = $1 AND version = $2",
        )
        .bind(model_id)
        .bind(version)
        .fetch_optional(control.db().pool())
        .await?
        .ok_or_else(|| {
            ControlError::NotFound(format!("model version {model} {version} not found"))
        })?;
    let aliases: Vec<String> = sqlx::query_scalar(
        "SELECT a.alias FROM model_aliases a JOIN model_versions v ON v.id = a.version_id \
         WHERE a.model_id = $1 AND v.version = $2 ORDER BY a.alias",
    )
    .bind(model_id)
    .bind(version)
    .fetch_all(control.db().pool())
    .await?;
    Ok(json!({
        "name": model,
        "version": version.to_string(),
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "current_stage": "None",
        "description": description,
        "source": source,
        "run_id": run_id.unwrap_or_default(),
        "status": "READY",
        "aliases": aliases,
        "tags": [],
    }))
}

/// A registered model as MLflow shows it, with its latest version and aliases.
async fn model_json(
    control: &ControlPlane,
    id: &str,
    name: &str,
    description: &str,
    created: i64,
) -> Result<Value, ControlError> {
    let latest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM model_versions WHERE model_id = $1")
            .bind(id)
            .fetch_one(control.db().pool())
            .await?;
    let mut latest_versions = Vec::new();
    if let Some(latest) = latest {
        latest_versions.push(version_json(control, name, id, latest).await?);
    }
    let aliases: Vec<(String, i64)> = sqlx::query_as(
        "SELECT a.alias, v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id \
         WHERE a.model_id = $1 ORDER BY a.alias",
    )
    .bind(id)
    .fetch_all(control.db().pool())
    .await?;
    Ok(json!({
        "name": name,
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "description": description,
        "latest_versions": latest_versions,
        "aliases": aliases.iter().map(|(a, v)| json!({ "alias": a, "version": v.to_string() })).collect::<Vec<_>>(),
        "tags": [],
    }))
}

async fn model_row(
    control: &ControlPlane,
    scope: &Scope,
    name: &str,
) -> Result<(String, String, String, i64), ControlError> {
    let name = kiln_name(name);
    sqlx::query_as(
        "SELECT id, name, description, created_at FROM models WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(&scope.workgroup()?.id)
    .bind(&name)
    .fetch_optional(control.db().pool())
    .await?
    .ok_or_else(|| ControlError::NotFound(format!("registered model with name={name} not found")))
}

/// `registered-models/create`.
pub async fn create_model(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let name = kiln_name(&r.required("name")?);
    check_name("model", &name)?;
    let description = r.text("description").unwrap_or_default();
    let created = now_ms();
    let id = new_id();
    sqlx::query(
        "INSERT INTO models (id, workgroup_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&scope.workgroup()?.id)
    .bind(&name)
    .bind(&description)
    .bind(created)
    .execute(control.db().pool())
    .await
    .map_err(ControlError::exists("registered model", &name))?;
    Ok(Json(json!({
        "registered_model": model_json(control, &id, &name, &description, created).await?,
    })))
}

/// `registered-models/get`.
pub async fn get_model(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let (id, name, description, created) = model_row(control, scope, &r.required("name")?).await?;
    Ok(Json(json!({
        "registered_model": model_json(control, &id, &name, &description, created).await?,
    })))
}

/// `registered-models/search`: by `name = '...'` or `name LIKE '...'` (or all).
pub async fn search_models(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let limit = r.integer("max_results")?.unwrap_or(100).clamp(1, 1000);
    let filter = r.text("filter").unwrap_or_default();
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, name, description, created_at FROM models WHERE workgroup_id = $1 ORDER BY name",
    )
    .bind(&scope.workgroup()?.id)
    .fetch_all(control.db().pool())
    .await?;
    let matcher = name_filter(&filter)?;
    let mut models = Vec::new();
    for (id, name, description, created) in rows.into_iter().filter(|row| matcher(&row.1)) {
        if models.len() as i64 >= limit {
            break;
        }
        models.push(model_json(control, &id, &name, &description, created).await?);
    }
    Ok(Json(json!({ "registered_models": models })))
}

/// A filter on names: `name = 'x'`, `name LIKE 'x%'`, `name ILIKE '%x%'`, or none.
/// A test of a model's name.
type NameFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

fn name_filter(filter: &str) -> Result<NameFilter, ControlError> {
    let filter = filter.trim();
    if filter.is_empty() {
        return Ok(Box::new(|_| true));
    }
    let rest = filter
        .strip_prefix("name")
        .map(str::trim_start)
        .ok_or_else(|| {
            ControlError::Invalid(format!(
                "unsupported filter '{filter}': name = / LIKE / ILIKE"
            ))
        })?;
    let unquote = |v: &str| v.trim().trim_matches(['\'', '"']).to_string();
    if let Some(value) = rest.strip_prefix('=') {
        let wanted = kiln_name(&unquote(value));
        return Ok(Box::new(move |name| name == wanted));
    }
    let upper = rest.to_ascii_uppercase();
    let (fold, pattern) = if upper.starts_with("ILIKE") {
        (true, unquote(&rest[5..]))
    } else if upper.starts_with("LIKE") {
        (false, unquote(&rest[4..]))
    } else {
        return Err(ControlError::Invalid(format!(
            "unsupported filter '{filter}': name = / LIKE / ILIKE"
        )));
    };
    super::runs::check_like(&pattern)?;
    Ok(Box::new(move |name| {
        super::runs::like(name, &pattern, fold)
    }))
}

/// `registered-models/get-latest-versions`: the latest version (Kiln has no stages).
pub async fn latest_versions(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let (id, name, _, _) = model_row(control, scope, &r.required("name")?).await?;
    let latest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM model_versions WHERE model_id = $1")
            .bind(&id)
            .fetch_one(control.db().pool())
            .await?;
    let mut versions = Vec::new();
    if let Some(latest) = latest {
        versions.push(version_json(control, &name, &id, latest).await?);
    }
    Ok(Json(json!({ "model_versions": versions })))
}

/// A source URI's run and path: `runs:/RUN/PATH` or `mlflow-artifacts:/EXPERIMENT/RUN/artifacts/PATH`.
fn parse_source(source: &str) -> Result<(String, String), ControlError> {
    let bad = || {
        ControlError::Invalid(format!(
            "source '{source}': Kiln registers versions from its runs' artifacts (runs:/RUN/PATH or mlflow-artifacts:/...)"
        ))
    };
    if let Some(rest) = source.strip_prefix("runs:/") {
        let (run, path) = rest
            .trim_start_matches('/')
            .split_once('/')
            .ok_or_else(bad)?;
        return Ok((run.to_string(), path.to_string()));
    }
    let rest = source
        .strip_prefix("mlflow-artifacts:")
        .ok_or_else(bad)?
        .trim_start_matches('/');
    // A source may carry the host (mlflow-artifacts://host/...) or the tracking path prefix.
    let rest = match rest.find("/api/2.0/mlflow-artifacts/artifacts/") {
        Some(at) => &rest[at + "/api/2.0/mlflow-artifacts/artifacts/".len()..],
        None => rest,
    };
    let mut parts = rest.splitn(4, '/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_experiment), Some(run), Some("artifacts"), Some(path)) => {
            Ok((run.to_string(), path.to_string()))
        }
        _ => Err(bad()),
    }
}

/// `model-versions/create`: the files under `source` in a run's artifacts become the next
/// version; its lineage names the run and the run's commit.
pub async fn create_version(
    control: &ControlPlane,
    scope: &Scope,
    _project: &Project,
    r: &Request,
) -> Reply {
    let (id, name, _, _) = model_row(control, scope, &r.required("name")?).await?;
    let source = r.required("source")?;
    let (run, path) = parse_source(&source)?;
    let run = crate::api::runs::run_in_scope(control, scope, &run)
        .await
        .map_err(|e| match e {
            ControlError::NotFound(m) => ControlError::Invalid(format!("source '{source}': {m}")),
            other => other,
        })?;
    if let Some(given) = r.text("run_id").filter(|g| !g.is_empty())
        && given != run.id
    {
        return Err(MlflowError(ControlError::Invalid(format!(
            "run_id '{given}' is not the run of source '{source}'"
        ))));
    }
    let files = run_files(control, &run.id, &path).await?;
    let info = NewVersion {
        description: r.text("description").unwrap_or_default(),
        run: Some(run.id.clone()),
        commit: (!run.commit_sha.is_empty()).then(|| run.commit_sha.clone()),
    };
    let version = store_version(control, &id, &files, &info).await?.number;
    sqlx::query("UPDATE model_versions SET source = $1 WHERE model_id = $2 AND version = $3")
        .bind(&source)
        .bind(&id)
        .bind(version)
        .execute(control.db().pool())
        .await?;
    Ok(Json(json!({
        "model_version": version_json(control, &name, &id, version).await?,
    })))
}

fn version_number(r: &Request) -> Result<i64, ControlError> {
    let version = r.required("version")?;
    version
        .parse()
        .map_err(|_| ControlError::Invalid(format!("version '{version}' is not a number")))
}

/// `model-versions/get`.
pub async fn get_version(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let (id, name, _, _) = model_row(control, scope, &r.required("name")?).await?;
    Ok(Json(json!({
        "model_version": version_json(control, &name, &id, version_number(r)?).await?,
    })))
}

/// `model-versions/search`: the versions of `name = '...'` (or of every model).
pub async fn search_versions(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let filter = r.text("filter").unwrap_or_default();
    let matcher = name_filter(&filter)?;
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT m.id, m.name, v.version FROM models m JOIN model_versions v ON v.model_id = m.id \
         WHERE m.workgroup_id = $1 ORDER BY m.name, v.version DESC",
    )
    .bind(&scope.workgroup()?.id)
    .fetch_all(control.db().pool())
    .await?;
    let limit = r.integer("max_results")?.unwrap_or(1000).clamp(1, 10_000);
    let mut versions = Vec::new();
    for (id, name, version) in rows.into_iter().filter(|row| matcher(&row.1)) {
        if versions.len() as i64 >= limit {
            break;
        }
        versions.push(version_json(control, &name, &id, version).await?);
    }
    Ok(Json(json!({ "model_versions": versions })))
}

/// `model-versions/get-download-uri`: where the version came from.
pub async fn download_uri(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let (id, name, _, _) = model_row(control, scope, &r.required("name")?).await?;
    let version = version_json(control, &name, &id, version_number(r)?).await?;
    Ok(Json(json!({ "artifact_uri": version["source"] })))
}

/// `registered-models/alias` (POST): points an alias at a version.
pub async fn set_alias(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let model = kiln_name(&r.required("name")?);
    let alias = r.required("alias")?;
    check_name("alias", &alias)?;
    if alias.parse::<i64>().is_ok() || alias == "latest" {
        return Err(MlflowError(ControlError::Invalid(format!(
            "alias '{alias}' is reserved"
        ))));
    }
    let id = model_id(control, scope, &model).await?;
    let version = version_of(control, &id, &r.required("version")?).await?;
    point_alias(control.db(), &id, &alias, &version.id).await?;
    Ok(Json(json!({})))
}

/// `registered-models/alias` (DELETE).
pub async fn delete_alias(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let model = kiln_name(&r.required("name")?);
    let alias = r.required("alias")?;
    let id = model_id(control, scope, &model).await?;
    let deleted = sqlx::query("DELETE FROM model_aliases WHERE model_id = $1 AND alias = $2")
        .bind(&id)
        .bind(&alias)
        .execute(control.db().pool())
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(MlflowError(ControlError::NotFound(format!(
            "alias '{alias}' of {model} not found"
        ))));
    }
    Ok(Json(json!({})))
}

/// `registered-models/alias` (GET): the version an alias points at.
pub async fn get_by_alias(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let (id, name, _, _) = model_row(control, scope, &r.required("name")?).await?;
    let alias = r.required("alias")?;
    let version = version_of(control, &id, &alias)
        .await
        .map_err(|_| ControlError::NotFound(format!("alias '{alias}' of {name} not found")))?
        .version;
    Ok(Json(json!({
        "model_version": version_json(control, &name, &id, version).await?,
    })))
}

#[cfg(test)]
mod tests {
    use super::parse_source;

    #[test]
    fn sources_name_a_run_and_a_path() {
        let run = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_source(&format!("runs:/{run}/model")).expect("runs"),
            (run.to_string(), "model".to_string())
        );
        assert_eq!(
            parse_source(&format!("mlflow-artifacts:/e1/{run}/artifacts/model/sub"))
                .expect("proxy"),
            (run.to_string(), "model/sub".to_string())
        );
        assert!(parse_source("s3://bucket/model").is_err());
        assert!(parse_source("mlflow-artifacts:/e1/run/other/model").is_err());
    }
}

//! MLflow's model registry over the work group's models: registered models, versions made
//! from a run's artifacts (their lineage names the run and its commit), aliases.

use super::wire::{
    DownloadUri, Empty, ModelAlias, ModelVersion, ModelVersionOne, ModelVersions, RegisteredModel,
    RegisteredModelOne, RegisteredModels,
};
use super::{MlflowError, Project, Reply, Request, kiln_name, reply};
use crate::access::Scope;
use crate::api::models::model_id;
use crate::db::{new_id, now_ms};
use crate::domain::models::{run_files, store_version, version_of};
use crate::names::check_name;
use crate::store::models::{self as store, ModelRow};
use crate::{ControlError, ControlPlane};
use kiln_api::manage::models::NewVersion;

/// A model version as MLflow shows it.
async fn version_of_model(
    control: &ControlPlane,
    model: &str,
    model_id: &str,
    version: i64,
) -> Result<ModelVersion, ControlError> {
    let found = store::sourced_version(control.db(), model_id, version)
        .await?
        .ok_or_else(|| {
            ControlError::NotFound(format!("model version {model} {version} not found"))
        })?;
    let aliases = store::aliases_of_version(control.db(), model_id, version).await?;
    Ok(ModelVersion {
        name: model.to_string(),
        version: version.to_string(),
        creation_timestamp: found.created_at,
        last_updated_timestamp: found.created_at,
        current_stage: "None",
        description: found.description,
        source: found.source,
        run_id: found.run_id.unwrap_or_default(),
        status: "READY",
        aliases,
        tags: Vec::new(),
    })
}

/// A registered model as MLflow shows it, with its latest version and aliases.
async fn registered_model(
    control: &ControlPlane,
    row: ModelRow,
) -> Result<RegisteredModel, ControlError> {
    let mut latest_versions = Vec::new();
    if let Some(latest) = row.latest_version {
        latest_versions.push(version_of_model(control, &row.name, &row.id, latest).await?);
    }
    let aliases = store::aliases(control.db(), &row.id)
        .await?
        .into_iter()
        .map(|(alias, version)| ModelAlias {
            alias,
            version: version.to_string(),
        })
        .collect();
    Ok(RegisteredModel {
        name: row.name,
        creation_timestamp: row.created_at,
        last_updated_timestamp: row.created_at,
        description: row.description,
        latest_versions,
        aliases,
        tags: Vec::new(),
    })
}

/// The work group's model an MLflow name names.
async fn model_row(
    control: &ControlPlane,
    scope: &Scope,
    name: &str,
) -> Result<ModelRow, ControlError> {
    let name = kiln_name(name);
    store::named(control.db(), &scope.workgroup()?.id, &name)
        .await
        .map_err(|e| match e {
            ControlError::NotFound(_) => {
                ControlError::NotFound(format!("registered model with name={name} not found"))
            }
            other => other,
        })
}

/// `registered-models/create`.
pub async fn create_model(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let name = kiln_name(&r.required("name")?);
    check_name("model", &name)?;
    let row = ModelRow {
        id: new_id(),
        name,
        description: r.text("description").unwrap_or_default(),
        created_at: now_ms(),
        latest_version: None,
    };
    store::insert(control.db(), &scope.workgroup()?.id, &row)
        .await
        .map_err(|e| match e {
            ControlError::Conflict(_) => {
                ControlError::Conflict(format!("registered model '{}' already exists", row.name))
            }
            other => other,
        })?;
    reply(RegisteredModelOne {
        registered_model: registered_model(control, row).await?,
    })
}

/// `registered-models/get`.
pub async fn get_model(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let row = model_row(control, scope, &r.required("name")?).await?;
    reply(RegisteredModelOne {
        registered_model: registered_model(control, row).await?,
    })
}

/// `registered-models/search`: by `name = '...'` or `name LIKE '...'` (or all).
pub async fn search_models(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let limit = r.integer("max_results")?.unwrap_or(100).clamp(1, 1000);
    let filter = r.text("filter").unwrap_or_default();
    let rows = store::list(control.db(), &scope.workgroup()?.id, "", i64::MAX).await?;
    let matcher = name_filter(&filter)?;
    let mut registered_models = Vec::new();
    for row in rows.into_iter().filter(|row| matcher(&row.name)) {
        if registered_models.len() as i64 >= limit {
            break;
        }
        registered_models.push(registered_model(control, row).await?);
    }
    reply(RegisteredModels { registered_models })
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
    crate::domain::search::check_like(&pattern)?;
    Ok(Box::new(move |name| {
        crate::domain::search::like(name, &pattern, fold)
    }))
}

/// `registered-models/get-latest-versions`: the latest version (Kiln has no stages).
pub async fn latest_versions(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let row = model_row(control, scope, &r.required("name")?).await?;
    let mut model_versions = Vec::new();
    if let Some(latest) = row.latest_version {
        model_versions.push(version_of_model(control, &row.name, &row.id, latest).await?);
    }
    reply(ModelVersions { model_versions })
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
    let model = model_row(control, scope, &r.required("name")?).await?;
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
    let version = store_version(control, &model.id, &files, &info)
        .await?
        .number;
    store::set_source(control.db(), &model.id, version, &source).await?;
    reply(ModelVersionOne {
        model_version: version_of_model(control, &model.name, &model.id, version).await?,
    })
}

fn version_number(r: &Request) -> Result<i64, ControlError> {
    let version = r.required("version")?;
    version
        .parse()
        .map_err(|_| ControlError::Invalid(format!("version '{version}' is not a number")))
}

/// `model-versions/get`.
pub async fn get_version(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let model = model_row(control, scope, &r.required("name")?).await?;
    let number = version_number(r)?;
    reply(ModelVersionOne {
        model_version: version_of_model(control, &model.name, &model.id, number).await?,
    })
}

/// `model-versions/search`: the versions of `name = '...'` (or of every model).
pub async fn search_versions(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let filter = r.text("filter").unwrap_or_default();
    let matcher = name_filter(&filter)?;
    let rows = store::workgroup_versions(control.db(), &scope.workgroup()?.id).await?;
    let limit = r.integer("max_results")?.unwrap_or(1000).clamp(1, 10_000);
    let mut model_versions = Vec::new();
    for row in rows.into_iter().filter(|row| matcher(&row.name)) {
        if model_versions.len() as i64 >= limit {
            break;
        }
        let version = version_of_model(control, &row.name, &row.model_id, row.version).await?;
        model_versions.push(version);
    }
    reply(ModelVersions { model_versions })
}

/// `model-versions/get-download-uri`: where the version came from.
pub async fn download_uri(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let model = model_row(control, scope, &r.required("name")?).await?;
    let number = version_number(r)?;
    let version = version_of_model(control, &model.name, &model.id, number).await?;
    reply(DownloadUri {
        artifact_uri: version.source,
    })
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
    store::point_alias(control.db(), &id, &alias, &version.id).await?;
    reply(Empty {})
}

/// `registered-models/alias` (DELETE).
pub async fn delete_alias(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let model = kiln_name(&r.required("name")?);
    let alias = r.required("alias")?;
    let id = model_id(control, scope, &model).await?;
    if !store::delete_alias(control.db(), &id, &alias).await? {
        return Err(MlflowError(ControlError::NotFound(format!(
            "alias '{alias}' of {model} not found"
        ))));
    }
    reply(Empty {})
}

/// `registered-models/alias` (GET): the version an alias points at.
pub async fn get_by_alias(control: &ControlPlane, scope: &Scope, r: &Request) -> Reply {
    let model = model_row(control, scope, &r.required("name")?).await?;
    let alias = r.required("alias")?;
    let version = version_of(control, &model.id, &alias)
        .await
        .map_err(|_| {
            ControlError::NotFound(format!("alias '{alias}' of {} not found", model.name))
        })?
        .version;
    reply(ModelVersionOne {
        model_version: version_of_model(control, &model.name, &model.id, version).await?,
    })
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

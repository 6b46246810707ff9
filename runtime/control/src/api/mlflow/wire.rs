//! MLflow's messages, as its REST API writes them (field names and shapes from MLflow's
//! `service.proto` in its JSON form): what the `mlflow` package reads back from Kiln.

use kiln_api::manage::runs::MetricNumber;
use serde::Serialize;

/// An error in MLflow's shape.
#[derive(Serialize)]
pub struct Error {
    /// MLflow's code: `INVALID_PARAMETER_VALUE`, `RESOURCE_DOES_NOT_EXIST`, ...
    pub error_code: &'static str,
    /// What went wrong.
    pub message: String,
}

/// An answer with nothing in it.
#[derive(Serialize)]
pub struct Empty {}

/// An experiment.
#[derive(Serialize)]
pub struct Experiment {
    /// Its id.
    pub experiment_id: String,
    /// Its name.
    pub name: String,
    /// Where its runs' artifacts go: `mlflow-artifacts:/ID`.
    pub artifact_location: String,
    /// Always `active`.
    pub lifecycle_stage: &'static str,
    /// Created, in ms since the epoch.
    pub creation_time: i64,
    /// Last changed, in ms since the epoch.
    pub last_update_time: i64,
    /// Its tags (none).
    pub tags: Vec<KeyValue>,
}

/// `experiments/get` and `experiments/get-by-name`.
#[derive(Serialize)]
pub struct ExperimentOne {
    /// The experiment.
    pub experiment: Experiment,
}

/// `experiments/search`.
#[derive(Serialize)]
pub struct Experiments {
    /// The experiments.
    pub experiments: Vec<Experiment>,
}

/// `experiments/create`.
#[derive(Serialize)]
pub struct ExperimentCreated {
    /// The new experiment's id.
    pub experiment_id: String,
}

/// A param or a tag.
#[derive(Serialize)]
pub struct KeyValue {
    /// Its key.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// A metric value.
#[derive(Serialize)]
pub struct Metric {
    /// The metric's name.
    pub key: String,
    /// The value (`"NaN"` when it is not a number).
    pub value: MetricNumber,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Its step.
    pub step: i64,
}

/// A run's identity and state.
#[derive(Serialize)]
pub struct RunInfo {
    /// Its id.
    pub run_id: String,
    /// Its id, under MLflow's older name.
    pub run_uuid: String,
    /// Its name.
    pub run_name: String,
    /// Its experiment's id.
    pub experiment_id: String,
    /// Who made it (a Kiln user's name).
    pub user_id: String,
    /// `SCHEDULED`, `RUNNING`, `FINISHED`, `FAILED` or `KILLED`.
    pub status: &'static str,
    /// Started, in ms since the epoch.
    pub start_time: i64,
    /// Ended.
    pub end_time: Option<i64>,
    /// Where its artifacts are: `mlflow-artifacts:/EXPERIMENT/RUN/artifacts`.
    pub artifact_uri: String,
    /// Always `active`.
    pub lifecycle_stage: &'static str,
}

/// What a run logged: each metric's latest value, params and tags.
#[derive(Serialize)]
pub struct RunData {
    /// Each metric's latest value.
    pub metrics: Vec<Metric>,
    /// Params.
    pub params: Vec<KeyValue>,
    /// Tags.
    pub tags: Vec<KeyValue>,
}

/// A run.
#[derive(Serialize)]
pub struct Run {
    /// Its identity and state.
    pub info: RunInfo,
    /// What it logged.
    pub data: RunData,
    /// Its inputs (none).
    pub inputs: Empty,
}

/// `runs/create` and `runs/get`.
#[derive(Serialize)]
pub struct RunOne {
    /// The run.
    pub run: Run,
}

/// `runs/update`.
#[derive(Serialize)]
pub struct RunInfoOne {
    /// The run's identity and state, as updated.
    pub run_info: RunInfo,
}

/// `runs/search`.
#[derive(Serialize)]
pub struct Runs {
    /// A page of matching runs.
    pub runs: Vec<Run>,
    /// The token of the next page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `metrics/get-history`.
#[derive(Serialize)]
pub struct MetricHistory {
    /// Every value of the metric, by step then timestamp.
    pub metrics: Vec<Metric>,
}

/// An artifact in a listing: a directory has no size.
#[derive(Serialize)]
pub struct FileInfo {
    /// Its path (or name).
    pub path: String,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Its size in bytes, for a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

impl FileInfo {
    /// An artifact `(path, is_dir, size)` as MLflow lists it.
    pub fn of(path: String, is_dir: bool, size: u64) -> FileInfo {
        FileInfo {
            path,
            is_dir,
            file_size: (!is_dir).then_some(size),
        }
    }
}

/// `artifacts/list` (the tracking API's listing: with the run's root).
#[derive(Serialize)]
pub struct ArtifactList {
    /// The run's artifact root.
    pub root_uri: String,
    /// The entries.
    pub files: Vec<FileInfo>,
}

/// The `mlflow-artifacts` proxy's listing.
#[derive(Serialize)]
pub struct Files {
    /// The entries, by base name.
    pub files: Vec<FileInfo>,
}

/// A model version.
#[derive(Serialize)]
pub struct ModelVersion {
    /// The registered model.
    pub name: String,
    /// The version's number, as text.
    pub version: String,
    /// Registered, in ms since the epoch.
    pub creation_timestamp: i64,
    /// Last changed, in ms since the epoch.
    pub last_updated_timestamp: i64,
    /// Always `None` (Kiln has aliases, not stages).
    pub current_stage: &'static str,
    /// What it is.
    pub description: String,
    /// Where its files came from.
    pub source: String,
    /// The run it came from, or empty.
    pub run_id: String,
    /// Always `READY`.
    pub status: &'static str,
    /// The aliases pointing at it.
    pub aliases: Vec<String>,
    /// Its tags (none).
    pub tags: Vec<KeyValue>,
}

/// An alias of a registered model.
#[derive(Serialize)]
pub struct ModelAlias {
    /// The alias.
    pub alias: String,
    /// The version it points at, as text.
    pub version: String,
}

/// A registered model.
#[derive(Serialize)]
pub struct RegisteredModel {
    /// Its name.
    pub name: String,
    /// Created, in ms since the epoch.
    pub creation_timestamp: i64,
    /// Last changed, in ms since the epoch.
    pub last_updated_timestamp: i64,
    /// What it is.
    pub description: String,
    /// Its latest version, if it has one.
    pub latest_versions: Vec<ModelVersion>,
    /// Its aliases.
    pub aliases: Vec<ModelAlias>,
    /// Its tags (none).
    pub tags: Vec<KeyValue>,
}

/// `registered-models/create` and `registered-models/get`.
#[derive(Serialize)]
pub struct RegisteredModelOne {
    /// The model.
    pub registered_model: RegisteredModel,
}

/// `registered-models/search`.
#[derive(Serialize)]
pub struct RegisteredModels {
    /// The models.
    pub registered_models: Vec<RegisteredModel>,
}

/// `model-versions/create`, `model-versions/get`, `registered-models/alias` (GET).
#[derive(Serialize)]
pub struct ModelVersionOne {
    /// The version.
    pub model_version: ModelVersion,
}

/// `model-versions/search` and `registered-models/get-latest-versions`.
#[derive(Serialize)]
pub struct ModelVersions {
    /// The versions.
    pub model_versions: Vec<ModelVersion>,
}

/// `model-versions/get-download-uri`.
#[derive(Serialize)]
pub struct DownloadUri {
    /// Where the version's files came from.
    pub artifact_uri: String,
}

/// The query of the artifact listing (`GET .../mlflow-artifacts/artifacts?path=`), for the API
/// document: the handler reads it with MLflow's own request rules.
#[derive(schemars::JsonSchema)]
#[expect(dead_code, reason = "only its schema is read")]
pub struct ArtifactsQuery {
    /// The directory: `EXPERIMENT_ID/RUN_ID/artifacts`, then a path under the run's artifacts.
    pub path: String,
}

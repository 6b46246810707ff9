//! Runs: an experiment's script executed on a target, pinned to a commit of its project, or a
//! run a tracking client logs to; what each logged (params, metrics, tags) and its artifacts.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// `POST .../experiments/{experiment}/runs`: a new run; what is left out comes from the
/// experiment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    /// A commit of the project (default: the head of `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The script, a path in the project (default: the experiment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// The target (default: the experiment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The script's arguments (default: the experiment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// A name (default `<experiment>-<number>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seconds the run may take (default seven days, at most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// An environment of the work group: its run image and registry credentials (docker
    /// targets); the run's target must be one it lists, if it lists any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Waiting for its target.
    Queued,
    /// Its code and image are being prepared.
    Preparing,
    /// Executing (or, for a tracking client's run, open for logging).
    Running,
    /// Ended with exit code 0.
    Completed,
    /// Ended otherwise: the reason says why.
    Failed,
    /// Stopped by a user.
    Canceled,
}

impl RunStatus {
    /// Every status, in life order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Preparing,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Canceled,
    ];

    /// The status as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Preparing => "preparing",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
        }
    }

    /// Whether the run has ended (completed, failed or canceled).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Canceled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<RunStatus, String> {
        RunStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                format!("invalid run status '{text}': queued, preparing, running, completed, failed or canceled")
            })
    }
}

/// A run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Run {
    /// The run's id (32 hex digits).
    pub id: String,
    /// Its project.
    pub project: String,
    /// Its experiment.
    pub experiment: String,
    /// Its number in the experiment, from 1.
    pub number: i64,
    /// Its name: the one it was given, else `<experiment>-<number>`.
    pub name: String,
    /// The script it runs; none for a tracking client's run.
    pub script: Option<String>,
    /// The commit it is pinned to; none for a tracking client's run.
    pub commit: Option<String>,
    /// Its target.
    pub target: String,
    /// The script's arguments.
    pub args: Vec<String>,
    /// Where it is in its life.
    pub status: RunStatus,
    /// Why it failed or was canceled.
    pub reason: Option<String>,
    /// The script's exit code, once it exited.
    pub exit_code: Option<i64>,
    /// Whether Kiln executes it (false for a run a tracking client logs to).
    pub executed: bool,
    /// Bytes of log written so far.
    pub log_bytes: i64,
    /// The environment it runs in, if it names one.
    pub environment: Option<String>,
    /// Who submitted it.
    pub created_by: String,
    /// When it was submitted (RFC 3339).
    pub created: String,
    /// When it started (RFC 3339).
    pub started: Option<String>,
    /// When it ended (RFC 3339).
    pub finished: Option<String>,
}

/// A metric's value: a JSON number, or `"NaN"`, `"Infinity"` or `"-Infinity"` (JSON has no
/// such numbers; protobuf's JSON and MLflow write them so).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricNumber(pub f64);

impl Serialize for MetricNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            v if v.is_nan() => serializer.serialize_str("NaN"),
            f64::INFINITY => serializer.serialize_str("Infinity"),
            f64::NEG_INFINITY => serializer.serialize_str("-Infinity"),
            v => serializer.serialize_f64(v),
        }
    }
}

impl<'de> Deserialize<'de> for MetricNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MetricNumber, D::Error> {
        metric_value(deserializer).map(MetricNumber)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for MetricNumber {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MetricNumber".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A number, or \"NaN\", \"Infinity\" or \"-Infinity\"",
            "oneOf": [
                { "type": "number" },
                { "type": "string", "enum": ["NaN", "Infinity", "-Infinity"] },
            ],
        })
    }
}

/// A metric value as a JSON number or as the strings protobuf's JSON uses for non-finite ones
/// (for `#[serde(deserialize_with)]`).
pub fn metric_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => n.as_f64().ok_or_else(|| D::Error::custom("not a number")),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| D::Error::custom(format!("'{other}' is not a number"))),
        },
        other => Err(D::Error::custom(format!(
            "a metric value is a number, not {other}"
        ))),
    }
}

/// What a run logged: its params and tags, and each metric's latest value (highest step,
/// then latest timestamp), each by key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunData {
    /// Parameters.
    pub params: BTreeMap<String, String>,
    /// Each metric's latest value.
    pub metrics: BTreeMap<String, MetricNumber>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A run with what it logged (`GET .../runs/{run}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: Run,
    /// What it logged.
    pub data: RunData,
}

/// The answer to `POST .../runs/{run}/cancel`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Canceled {
    /// The run, as it is now.
    #[serde(flatten)]
    pub run: Run,
    /// Whether its executor has yet to stop it (a queued run ends at once).
    pub cancel_requested: bool,
}

/// `?status=&project=&limit=&after=`: which runs a listing shows, newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    /// Runs per page (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only runs in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// Only runs of this project (the work group's listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The `next` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `?offset=&follow=`: where a run's log starts, and whether to follow it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Start at this byte.
    #[serde(default)]
    pub offset: u64,
    /// Keep the response open and send output as it arrives, until the run ends.
    #[serde(default)]
    pub follow: bool,
}

/// A metric value to log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewMetric {
    /// Its name.
    pub key: String,
    /// Its value.
    pub value: MetricNumber,
    /// Milliseconds since the epoch (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Its step (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
}

/// `POST .../runs/{run}/log-batch`: params and tags (values strings, numbers or booleans,
/// stored as text) and metric values, recorded all together or not at all. A run's params
/// cannot change once set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    /// Parameters (at most 100).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Metric values (at most 1000).
    #[serde(default)]
    pub metrics: Vec<NewMetric>,
    /// Tags (at most 100).
    #[serde(default)]
    pub tags: Map<String, Value>,
}

/// The answer to a batch: how much of each it recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Logged {
    /// The run's id.
    pub run: String,
    /// Parameters recorded.
    pub params: usize,
    /// Metric values recorded.
    pub metrics: usize,
    /// Tags recorded.
    pub tags: usize,
}

/// One logged value of a metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MetricPoint {
    /// The metric's name.
    pub key: String,
    /// Its value.
    pub value: MetricNumber,
    /// Its step.
    pub step: i64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

/// `GET .../runs/{run}/metrics/{key}`: every value of a metric, by step then timestamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MetricHistory {
    /// The metric's name.
    pub key: String,
    /// Its values.
    pub items: Vec<MetricPoint>,
}

/// `?path=`: a directory of a run's artifacts (default: the top).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ArtifactDir {
    /// The directory, relative to the run's artifacts.
    #[serde(default)]
    pub path: String,
}

/// An entry of a run's artifact directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Artifact {
    /// Its path, relative to the run's artifacts.
    pub path: String,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Its size in bytes (0 for a directory).
    pub size: u64,
}

/// `GET .../runs/{run}/artifacts`: a directory's entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Artifacts {
    /// Its entries.
    pub items: Vec<Artifact>,
}

/// The answer to `PUT .../runs/{run}/artifacts/{path}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Uploaded {
    /// The run's id.
    pub run: String,
    /// The artifact's path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_numbers_keep_what_json_cannot_write() {
        for (value, text) in [
            (1.5, "1.5"),
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ] {
            let written = serde_json::to_string(&MetricNumber(value)).unwrap();
            assert_eq!(written, text);
            let read: MetricNumber = serde_json::from_str(&written).unwrap();
            assert!(read.0 == value || (read.0.is_nan() && value.is_nan()));
        }
        let error = serde_json::from_str::<MetricNumber>("\"x\"").unwrap_err();
        assert!(error.to_string().contains("'x' is not a number"), "{error}");
        assert!(serde_json::from_str::<MetricNumber>("true").is_err());
    }

    #[test]
    fn statuses_read_as_they_are_written() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert!("done".parse::<RunStatus>().is_err());
        let filter: RunFilter = serde_json::from_str(r#"{"status":"failed"}"#).unwrap();
        assert_eq!(filter.status, Some(RunStatus::Failed));
    }
}

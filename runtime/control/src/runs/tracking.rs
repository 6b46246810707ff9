//! Tracking of runs: parameters (immutable once set), metrics (every value with its step and
//! timestamp), tags, and artifacts in the artifact store under `runs/<id>/artifacts/`. Kiln's
//! own API and the MLflow-compatible one both write through here, with MLflow's rules: at most
//! 1000 metrics, 100 parameters and 100 tags per batch; NaN kept as NaN and infinities stored as
//! the largest finite doubles.

use crate::names::check_artifact_path;
use crate::store::tracking as store;
use crate::{ControlError, ControlPlane};

/// Most metrics in one batch.
pub const MAX_METRICS: usize = 1000;
/// Most parameters in one batch.
pub const MAX_PARAMS: usize = 100;
/// Most tags in one batch.
pub const MAX_TAGS: usize = 100;
/// Longest key.
pub const MAX_KEY: usize = 250;
/// Longest parameter value.
pub const MAX_PARAM_VALUE: usize = 6000;
/// Longest tag value.
pub const MAX_TAG_VALUE: usize = 8000;

/// A key of a parameter, metric or tag, by MLflow's rule: letters, digits, `_ - . / ` and
/// space, at most 250 characters, not a path that climbs.
pub fn check_key(kind: &str, key: &str) -> Result<(), ControlError> {
    let fits = !key.is_empty()
        && key.len() <= MAX_KEY
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' '))
        && !key.starts_with('/')
        && !key.split('/').any(|part| part == ".." || part == ".");
    if fits {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!(
            "invalid {kind} name '{key}': 1 to {MAX_KEY} letters, digits, '_', '-', '.', ' ' or '/', not a path that climbs"
        )))
    }
}

/// Records one batch in one transaction: all of it or none.
pub async fn log_batch(
    control: &ControlPlane,
    run_id: &str,
    metrics: &[Metric],
    params: &[(String, String)],
    tags: &[(String, String)],
) -> Result<(), ControlError> {
    if metrics.len() > MAX_METRICS || params.len() > MAX_PARAMS || tags.len() > MAX_TAGS {
        return Err(ControlError::Invalid(format!(
            "a batch holds at most {MAX_METRICS} metrics, {MAX_PARAMS} params and {MAX_TAGS} tags; this one has {}, {} and {}",
            metrics.len(),
            params.len(),
            tags.len()
        )));
    }
    for metric in metrics {
        check_key("metric", &metric.key)?;
    }
    for (key, value) in params {
        check_key("param", key)?;
        if value.len() > MAX_PARAM_VALUE {
            return Err(ControlError::Invalid(format!(
                "param '{key}': a value holds at most {MAX_PARAM_VALUE} bytes"
            )));
        }
    }
    for (key, value) in tags {
        check_key("tag", key)?;
        if value.len() > MAX_TAG_VALUE {
            return Err(ControlError::Invalid(format!(
                "tag '{key}': a value holds at most {MAX_TAG_VALUE} bytes"
            )));
        }
    }
    for (i, (key, value)) in params.iter().enumerate() {
        if params[..i].iter().any(|(k, v)| k == key && v != value) {
            return Err(ControlError::Invalid(format!(
                "param '{key}' appears twice in the batch with different values"
            )));
        }
    }
    store::record(control.db(), run_id, metrics, params, tags).await
}

pub use crate::store::tracking::{
    Metric, MetricValue, RunData, delete_tag, metric_history, run_data,
};

/// The artifact store area of a run's artifacts.
pub fn artifact_area(run_id: &str) -> [&str; 3] {
    ["runs", run_id, "artifacts"]
}

/// Checks an artifact path (relative, no climbing, no oddities) and returns it without a
/// trailing `/`.
pub fn check_artifact(path: &str) -> Result<&str, ControlError> {
    let path = path.trim_end_matches('/');
    check_artifact_path(path)?;
    Ok(path)
}

/// The artifacts directly under `dir` ("" for the top): `(path, is_dir, size)`.
pub async fn list_artifacts(
    control: &ControlPlane,
    run_id: &str,
    dir: &str,
) -> Result<Vec<(String, bool, u64)>, ControlError> {
    let dir = if dir.is_empty() {
        ""
    } else {
        check_artifact(dir)?
    };
    let all = control.artifacts().list(&artifact_area(run_id)).await?;
    let mut items: Vec<(String, bool, u64)> = Vec::new();
    for (path, size) in all {
        let rest = if dir.is_empty() {
            path.as_str()
        } else if let Some(rest) = path.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) {
            rest
        } else {
            continue;
        };
        let full = |name: &str| {
            if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            }
        };
        match rest.split_once('/') {
            Some((child, _)) => {
                let child = full(child);
                if !items.iter().any(|(p, d, _)| *d && *p == child) {
                    items.push((child, true, 0));
                }
            }
            None => items.push((full(rest), false, size)),
        }
    }
    Ok(items)
}

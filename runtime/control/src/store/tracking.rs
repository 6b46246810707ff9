//! What runs logged, as stored: params and tags (one row per key), every metric value with
//! its step and timestamp (NaN as a flag, infinities as the largest finite doubles, as MLflow
//! stores them).

use crate::ControlError;
use crate::db::Db;
use kiln_api::manage::runs::metric_value;
use serde::Deserialize;

/// One value of a metric.
#[derive(Clone, Debug, Deserialize)]
pub struct Metric {
    /// Its name.
    pub key: String,
    /// Its value (JSON numbers, or `"NaN"`, `"Infinity"`, `"-Infinity"`).
    #[serde(deserialize_with = "metric_value")]
    pub value: f64,
    /// Milliseconds since the epoch (default: now).
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Its step (default 0).
    #[serde(default)]
    pub step: Option<i64>,
}

/// Records one checked batch in one transaction: all of it or none. A param a run already
/// has with another value is refused (a run's params cannot change).
pub async fn record(
    db: &Db,
    run_id: &str,
    metrics: &[Metric],
    params: &[(String, String)],
    tags: &[(String, String)],
) -> Result<(), ControlError> {
    let now = crate::db::now_ms();
    if params.is_empty() && tags.is_empty() {
        // Metrics alone: one statement, atomic by itself, no transaction to open.
        return insert_metrics(db, run_id, metrics, now).await;
    }
    let mut tx = db.begin().await?;
    for (key, value) in params {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT value FROM run_params WHERE run_id = $1 AND key = $2")
                .bind(run_id)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        match existing {
            Some(old) if old == *value => {}
            Some(old) => {
                return Err(ControlError::Invalid(format!(
                    "param '{key}' is already '{old}': a run's params cannot change (tried '{value}')"
                )));
            }
            None => {
                sqlx::query("INSERT INTO run_params (run_id, key, value) VALUES ($1, $2, $3)")
                    .bind(run_id)
                    .bind(key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    for (key, value) in tags {
        sqlx::query(
            "INSERT INTO run_tags (run_id, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(run_id)
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    }
    if !metrics.is_empty() {
        let (sql, rows) = metrics_insert(metrics, now);
        bind_metrics(sqlx::query(sqlx::AssertSqlSafe(sql)), run_id, &rows)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A metric as stored: key, value (0 for NaN), NaN flag, step, timestamp.
type StoredMetric<'a> = (&'a str, f64, i64, i64, i64);

/// One multi-row `INSERT` for a batch of metrics, with MLflow's storage of non-finite values.
fn metrics_insert(metrics: &[Metric], now: i64) -> (String, Vec<StoredMetric<'_>>) {
    let rows: Vec<StoredMetric> = metrics
        .iter()
        .map(|metric| {
            let (value, is_nan) = if metric.value.is_nan() {
                (0.0, 1i64)
            } else if metric.value == f64::INFINITY {
                (f64::MAX, 0)
            } else if metric.value == f64::NEG_INFINITY {
                (-f64::MAX, 0)
            } else {
                (metric.value, 0)
            };
            (
                metric.key.as_str(),
                value,
                is_nan,
                metric.step.unwrap_or(0),
                metric.timestamp.unwrap_or(now),
            )
        })
        .collect();
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let b = 2 + i * 5;
            format!("($1, ${b}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4)
        })
        .collect();
    (
        format!(
            "INSERT INTO run_metrics (run_id, key, value, is_nan, step, timestamp) VALUES {}",
            values.join(", ")
        ),
        rows,
    )
}

fn bind_metrics<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    run_id: &'q str,
    rows: &[StoredMetric<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query = query.bind(run_id);
    for (key, value, is_nan, step, timestamp) in rows {
        query = query
            .bind(*key)
            .bind(*value)
            .bind(*is_nan)
            .bind(*step)
            .bind(*timestamp);
    }
    query
}

async fn insert_metrics(
    db: &Db,
    run_id: &str,
    metrics: &[Metric],
    now: i64,
) -> Result<(), ControlError> {
    if metrics.is_empty() {
        return Ok(());
    }
    let (sql, rows) = metrics_insert(metrics, now);
    bind_metrics(sqlx::query(sqlx::AssertSqlSafe(sql)), run_id, &rows)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Removes a tag.
pub async fn delete_tag(db: &Db, run_id: &str, key: &str) -> Result<(), ControlError> {
    let deleted = sqlx::query("DELETE FROM run_tags WHERE run_id = $1 AND key = $2")
        .bind(run_id)
        .bind(key)
        .execute(db.pool())
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ControlError::NotFound(format!("tag '{key}' not found")));
    }
    Ok(())
}

/// A metric's latest value (highest step, then latest timestamp) or history entry.
#[derive(Clone, Debug)]
pub struct MetricValue {
    /// Its name.
    pub key: String,
    /// The value (0 when NaN).
    pub value: f64,
    /// Whether the value is NaN.
    pub is_nan: bool,
    /// Its step.
    pub step: i64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

impl MetricValue {
    /// The value as logged: NaN when it was NaN.
    pub fn number(&self) -> f64 {
        if self.is_nan { f64::NAN } else { self.value }
    }
}

type MetricRow = (String, f64, i64, i64, i64);

fn metric_of((key, value, is_nan, step, timestamp): MetricRow) -> MetricValue {
    MetricValue {
        key,
        value,
        is_nan: is_nan != 0,
        step,
        timestamp,
    }
}

/// What a run logged: params, tags, and each metric's latest value.
#[derive(Clone, Debug, Default)]
pub struct RunData {
    /// Parameters in key order.
    pub params: Vec<(String, String)>,
    /// Tags in key order.
    pub tags: Vec<(String, String)>,
    /// Latest value of each metric, in key order.
    pub metrics: Vec<MetricValue>,
}

/// A run's params, tags and latest metrics.
pub async fn run_data(db: &Db, run_id: &str) -> Result<RunData, ControlError> {
    let pool = db.pool();
    let params = sqlx::query_as("SELECT key, value FROM run_params WHERE run_id = $1 ORDER BY key")
        .bind(run_id)
        .fetch_all(pool)
        .await?;
    let tags = sqlx::query_as("SELECT key, value FROM run_tags WHERE run_id = $1 ORDER BY key")
        .bind(run_id)
        .fetch_all(pool)
        .await?;
    // The latest of each key: highest step, then latest timestamp (MLflow's rule).
    let rows: Vec<MetricRow> = sqlx::query_as(
        "SELECT key, value, is_nan, step, timestamp FROM run_metrics WHERE run_id = $1 \
         ORDER BY key, step DESC, timestamp DESC",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    let mut metrics: Vec<MetricValue> = Vec::new();
    for row in rows {
        if metrics.last().is_some_and(|m| m.key == row.0) {
            continue;
        }
        metrics.push(metric_of(row));
    }
    Ok(RunData {
        params,
        tags,
        metrics,
    })
}

/// Every value of one metric, by step then timestamp.
pub async fn metric_history(
    db: &Db,
    run_id: &str,
    key: &str,
    limit: i64,
) -> Result<Vec<MetricValue>, ControlError> {
    let rows: Vec<MetricRow> = sqlx::query_as(
        "SELECT key, value, is_nan, step, timestamp FROM run_metrics WHERE run_id = $1 AND key = $2 \
         ORDER BY step, timestamp LIMIT $3",
    )
    .bind(run_id)
    .bind(key)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(metric_of).collect())
}

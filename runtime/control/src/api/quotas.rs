//! Per work group quotas: how many deployments a work group holds, how many instances and how
//! much memory they may use together, and the longest prediction deadline one may ask for. An
//! installation admin sets them per work group; unset ones take the installation's defaults
//! (`kiln up --quota-*`). A deployment is charged by its own limits (`scale.max_instances`, else
//! `limits.concurrency`; `limits.memory_mb`; `limits.deadline_ms`), else the runtime's defaults.
//! Past a quota, creating or changing a deployment answers 403 with the limit named; other work
//! groups are not affected.

use super::JsonBody;
use crate::access::Scope;
use crate::db::now_ms;
use crate::store::DeploymentSettings;
use crate::{ControlError, ControlPlane};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use kiln_api::{Limits, ScaleSettings};
use serde::{Deserialize, Serialize};
use serde_json::Value;

type Reply = Result<(StatusCode, Json<Value>), ControlError>;

/// Instances a deployment runs when it sets none (the runtime's default concurrency).
pub const DEFAULT_INSTANCES: u64 = 4;
/// Memory per instance when a deployment sets none, MiB (the runtime's default).
pub const DEFAULT_MEMORY_MB: u64 = 128;
/// Deadline of a prediction when a deployment sets none, ms (the runtime's default).
pub const DEFAULT_DEADLINE_MS: u64 = 1000;

/// A work group's quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Deployments it holds.
    pub deployments: u64,
    /// Instances of all its deployments together.
    pub instances: u64,
    /// Memory of all its deployments' instances together, MiB.
    pub memory_mb: u64,
    /// The longest prediction deadline one deployment may ask for, ms.
    pub deadline_ms: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            deployments: 50,
            instances: 256,
            memory_mb: 32 << 10,
            deadline_ms: 60_000,
        }
    }
}

/// A change to a work group's quota: what is given is set (`null` returns it to the default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaChange {
    #[serde(default, with = "serde_with_null")]
    deployments: Option<Option<u64>>,
    #[serde(default, with = "serde_with_null")]
    instances: Option<Option<u64>>,
    #[serde(default, with = "serde_with_null")]
    memory_mb: Option<Option<u64>>,
    #[serde(default, with = "serde_with_null")]
    deadline_ms: Option<Option<u64>>,
}

/// `Option<Option<T>>` from JSON: absent is `None`, `null` is `Some(None)`.
mod serde_with_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

type QuotaRow = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// The quota of a work group: its own settings over the installation's defaults.
pub async fn quota_of(control: &ControlPlane, workgroup_id: &str) -> Result<Quota, ControlError> {
    let row: Option<QuotaRow> = sqlx::query_as(
        "SELECT deployments, instances, memory_mb, deadline_ms FROM workgroup_quotas \
         WHERE workgroup_id = $1",
    )
    .bind(workgroup_id)
    .fetch_optional(control.db().pool())
    .await?;
    let defaults = control.settings().quota;
    let (d, i, m, t) = row.unwrap_or((None, None, None, None));
    let pick = |v: Option<i64>, default: u64| v.map_or(default, |v| v.max(0) as u64);
    Ok(Quota {
        deployments: pick(d, defaults.deployments),
        instances: pick(i, defaults.instances),
        memory_mb: pick(m, defaults.memory_mb),
        deadline_ms: pick(t, defaults.deadline_ms),
    })
}

/// What one deployment is charged: `(instances, memory MiB, deadline ms)`.
pub fn charge(limits: &Limits, scale: &ScaleSettings) -> (u64, u64, u64) {
    let instances = scale
        .max_instances
        .or(limits.concurrency)
        .map_or(DEFAULT_INSTANCES, |n| n as u64);
    let memory = limits.memory_mb.map_or(DEFAULT_MEMORY_MB, |m| m as u64);
    let deadline = limits.deadline_ms.unwrap_or(DEFAULT_DEADLINE_MS);
    (instances, instances * memory, deadline)
}

/// Checks that the work group stays within its quota with deployment `name` charged so (new,
/// or replacing its current charge).
pub async fn check(
    control: &ControlPlane,
    workgroup_id: &str,
    workgroup: &str,
    name: &str,
    limits: &Limits,
    scale: &ScaleSettings,
) -> Result<(), ControlError> {
    let quota = quota_of(control, workgroup_id).await?;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, settings FROM deployments WHERE workgroup_id = $1")
            .bind(workgroup_id)
            .fetch_all(control.db().pool())
            .await?;
    let (instances, memory, deadline) = charge(limits, scale);
    let over = |what: String| {
        Err(ControlError::Forbidden(format!(
            "work group '{workgroup}' is over its quota: {what} (an installation admin sets it: \
             PUT .../workgroups/{workgroup}/quota)"
        )))
    };
    if deadline > quota.deadline_ms {
        return over(format!(
            "a deadline of {deadline} ms is longer than its limit of {} ms",
            quota.deadline_ms
        ));
    }
    let others: Vec<&(String, String)> = rows.iter().filter(|(n, _)| n != name).collect();
    if others.len() as u64 + 1 > quota.deployments {
        return over(format!(
            "it may hold at most {} deployments",
            quota.deployments
        ));
    }
    let (mut total_instances, mut total_memory) = (instances, memory);
    for (other, settings) in others {
        let settings = DeploymentSettings::parse(other, settings)?;
        let (i, m, _) = charge(&settings.limits, &settings.scale);
        total_instances += i;
        total_memory += m;
    }
    if total_instances > quota.instances {
        return over(format!(
            "its deployments would run {total_instances} instances, more than its limit of {}",
            quota.instances
        ));
    }
    if total_memory > quota.memory_mb {
        return over(format!(
            "its deployments would use {total_memory} MiB, more than its limit of {} MiB",
            quota.memory_mb
        ));
    }
    Ok(())
}

/// `GET .../workgroups/{workgroup}/quota`.
pub async fn get(State(control): State<ControlPlane>, Extension(scope): Extension<Scope>) -> Reply {
    let quota = quota_of(&control, &scope.workgroup()?.id).await?;
    Ok((
        StatusCode::OK,
        Json(serde_json::to_value(quota).unwrap_or_default()),
    ))
}

/// `PUT .../workgroups/{workgroup}/quota`: an installation admin sets a work group's quota.
pub async fn put(
    State(control): State<ControlPlane>,
    Extension(scope): Extension<Scope>,
    JsonBody(body): JsonBody<QuotaChange>,
) -> Reply {
    let wg = scope.workgroup()?;
    let row: Option<QuotaRow> = sqlx::query_as(
        "SELECT deployments, instances, memory_mb, deadline_ms FROM workgroup_quotas \
         WHERE workgroup_id = $1",
    )
    .bind(&wg.id)
    .fetch_optional(control.db().pool())
    .await?;
    let (mut d, mut i, mut m, mut t) = row.unwrap_or((None, None, None, None));
    let to_db = |v: Option<u64>| -> Result<Option<i64>, ControlError> {
        v.map(|v| {
            i64::try_from(v).map_err(|_| ControlError::Invalid("a quota is at most 2^63".into()))
        })
        .transpose()
    };
    if let Some(v) = body.deployments {
        d = to_db(v)?;
    }
    if let Some(v) = body.instances {
        i = to_db(v)?;
    }
    if let Some(v) = body.memory_mb {
        m = to_db(v)?;
    }
    if let Some(v) = body.deadline_ms {
        t = to_db(v)?;
    }
    sqlx::query(
        "INSERT INTO workgroup_quotas (workgroup_id, deployments, instances, memory_mb, deadline_ms, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workgroup_id) DO UPDATE SET \
         deployments = $2, instances = $3, memory_mb = $4, deadline_ms = $5, updated_at = $6",
    )
    .bind(&wg.id)
    .bind(d)
    .bind(i)
    .bind(m)
    .bind(t)
    .bind(now_ms())
    .execute(control.db().pool())
    .await?;
    let quota = quota_of(&control, &wg.id).await?;
    Ok((
        StatusCode::OK,
        Json(serde_json::to_value(quota).unwrap_or_default()),
    ))
}

//! Per work group quotas. An installation admin sets them per work group; unset ones take the
//! installation's defaults (`kiln up --quota-*`). A deployment is charged by its own limits
//! (`scale.max_instances`, else `limits.concurrency`; `limits.memory_mb`; `limits.deadline_ms`),
//! else the runtime's defaults. Past a quota, creating or changing a deployment answers 403
//! with the limit named; other work groups are not affected.

use crate::ControlError;
use crate::db::Db;
use crate::store::DeploymentSettings;
use crate::store::quotas::{self as store, QuotaRow};
use kiln_api::manage::quotas::{Quota, QuotaChange};
use kiln_api::{Limits, ScaleSettings};

/// Instances a deployment runs when it sets none (the runtime's default concurrency).
pub const DEFAULT_INSTANCES: u64 = 4;
/// Memory per instance when a deployment sets none, MiB (the runtime's default).
pub const DEFAULT_MEMORY_MB: u64 = 128;
/// Deadline of a prediction when a deployment sets none, ms (the runtime's default).
pub const DEFAULT_DEADLINE_MS: u64 = 1000;

/// The quota that applies: the work group's own settings over `defaults`.
pub fn effective(row: &QuotaRow, defaults: &Quota) -> Quota {
    let pick = |v: Option<i64>, default: u64| v.map_or(default, |v| v.max(0) as u64);
    Quota {
        deployments: pick(row.deployments, defaults.deployments),
        instances: pick(row.instances, defaults.instances),
        memory_mb: pick(row.memory_mb, defaults.memory_mb),
        deadline_ms: pick(row.deadline_ms, defaults.deadline_ms),
    }
}

/// The work group's settings once `change` is applied: given values set, `null` back to the
/// default, absent ones kept.
pub fn apply(mut row: QuotaRow, change: &QuotaChange) -> Result<QuotaRow, ControlError> {
    let stored = |value: Option<u64>| -> Result<Option<i64>, ControlError> {
        value
            .map(|v| {
                i64::try_from(v)
                    .map_err(|_| ControlError::Invalid("a quota is at most 2^63".into()))
            })
            .transpose()
    };
    for (field, given) in [
        (&mut row.deployments, change.deployments),
        (&mut row.instances, change.instances),
        (&mut row.memory_mb, change.memory_mb),
        (&mut row.deadline_ms, change.deadline_ms),
    ] {
        if let Some(value) = given {
            *field = stored(value)?;
        }
    }
    Ok(row)
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

/// Whether deployment `charged` (instances, memory, deadline), with the work group's `others`
/// (their charges), stays within `quota`; the refusal names the limit and who sets it.
pub fn within(
    quota: &Quota,
    workgroup: &str,
    charged: (u64, u64, u64),
    others: &[(u64, u64, u64)],
) -> Result<(), ControlError> {
    let (instances, memory, deadline) = charged;
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
    if others.len() as u64 + 1 > quota.deployments {
        return over(format!(
            "it may hold at most {} deployments",
            quota.deployments
        ));
    }
    let total_instances = instances + others.iter().map(|c| c.0).sum::<u64>();
    let total_memory = memory + others.iter().map(|c| c.1).sum::<u64>();
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

/// The quota of a work group.
pub async fn quota_of(
    db: &Db,
    defaults: &Quota,
    workgroup_id: &str,
) -> Result<Quota, ControlError> {
    Ok(effective(&store::get(db, workgroup_id).await?, defaults))
}

/// Changes a work group's own settings; the quota that then applies.
pub async fn change(
    db: &Db,
    defaults: &Quota,
    workgroup_id: &str,
    change: &QuotaChange,
) -> Result<Quota, ControlError> {
    let row = apply(store::get(db, workgroup_id).await?, change)?;
    store::put(db, workgroup_id, &row).await?;
    Ok(effective(&row, defaults))
}

/// Checks that the work group stays within its quota with deployment `name` charged by
/// `limits` and `scale` (new, or replacing its current charge).
pub async fn check(
    db: &Db,
    defaults: &Quota,
    (workgroup_id, workgroup): (&str, &str),
    name: &str,
    limits: &Limits,
    scale: &ScaleSettings,
) -> Result<(), ControlError> {
    let quota = quota_of(db, defaults, workgroup_id).await?;
    let mut others = Vec::new();
    for (other, settings) in store::deployment_settings(db, workgroup_id).await? {
        if other != name {
            let settings = DeploymentSettings::parse(&other, &settings)?;
            others.push(charge(&settings.limits, &settings.scale));
        }
    }
    within(&quota, workgroup, charge(limits, scale), &others)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_is_charged_by_its_limits_else_the_runtimes_defaults() {
        let none = charge(&Limits::default(), &ScaleSettings::default());
        assert_eq!(
            none,
            (
                DEFAULT_INSTANCES,
                DEFAULT_INSTANCES * DEFAULT_MEMORY_MB,
                1000
            )
        );
        let limits = Limits {
            concurrency: Some(2),
            memory_mb: Some(64),
            deadline_ms: Some(5000),
            ..Limits::default()
        };
        assert_eq!(charge(&limits, &ScaleSettings::default()), (2, 128, 5000));
        // The scale's maximum wins over the concurrency.
        let scale = ScaleSettings {
            max_instances: Some(8),
            ..ScaleSettings::default()
        };
        assert_eq!(charge(&limits, &scale), (8, 512, 5000));
    }

    #[test]
    fn each_limit_is_named_when_passed_and_others_count() {
        let quota = Quota {
            deployments: 2,
            instances: 10,
            memory_mb: 1000,
            deadline_ms: 2000,
        };
        assert!(within(&quota, "lab", (4, 400, 1000), &[(6, 600, 1000)]).is_ok());
        for (charged, others, needle) in [
            (
                (1, 1, 3000),
                vec![],
                "a deadline of 3000 ms is longer than its limit of 2000 ms",
            ),
            (
                (1, 1, 1),
                vec![(1, 1, 1), (1, 1, 1)],
                "at most 2 deployments",
            ),
            (
                (5, 1, 1),
                vec![(6, 1, 1)],
                "would run 11 instances, more than its limit of 10",
            ),
            (
                (1, 500, 1),
                vec![(1, 501, 1)],
                "would use 1001 MiB, more than its limit of 1000 MiB",
            ),
        ] {
            let error = within(&quota, "lab", charged, &others).unwrap_err();
            assert!(matches!(error, ControlError::Forbidden(_)), "{error}");
            let text = error.to_string();
            assert!(
                text.contains(needle) && text.contains("work group 'lab'"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_change_sets_resets_and_keeps() {
        let defaults = Quota::default();
        let row = QuotaRow {
            deployments: Some(3),
            instances: Some(9),
            ..QuotaRow::default()
        };
        let change = QuotaChange {
            deployments: Some(None),
            memory_mb: Some(Some(512)),
            ..QuotaChange::default()
        };
        let changed = apply(row, &change).unwrap();
        assert_eq!(
            changed,
            QuotaRow {
                deployments: None,
                instances: Some(9),
                memory_mb: Some(512),
                deadline_ms: None
            }
        );
        let quota = effective(&changed, &defaults);
        assert_eq!(
            (
                quota.deployments,
                quota.instances,
                quota.memory_mb,
                quota.deadline_ms
            ),
            (defaults.deployments, 9, 512, defaults.deadline_ms)
        );
        let huge = QuotaChange {
            instances: Some(Some(u64::MAX)),
            ..QuotaChange::default()
        };
        assert!(matches!(
            apply(changed, &huge),
            Err(ControlError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn a_quota_is_stored_per_work_group_and_charges_the_others() {
        let db = crate::store::fixture().await;
        let defaults = Quota::default();
        // No row: the defaults.
        assert_eq!(quota_of(&db, &defaults, "w1").await.unwrap(), defaults);
        let one = QuotaChange {
            deployments: Some(Some(1)),
            ..QuotaChange::default()
        };
        let quota = change(&db, &defaults, "w1", &one).await.unwrap();
        assert_eq!(quota.deployments, 1);
        assert_eq!(quota_of(&db, &defaults, "w1").await.unwrap(), quota);
        // The other work group keeps the defaults.
        assert_eq!(quota_of(&db, &defaults, "w2").await.unwrap(), defaults);
        // With no deployment yet, one fits.
        let (limits, scale) = (Limits::default(), ScaleSettings::default());
        check(&db, &defaults, ("w1", "lab"), "iris", &limits, &scale)
            .await
            .unwrap();
    }
}

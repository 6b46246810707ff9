//! Deployments: what a valid new deployment or change is (limits, scale, an image and an
//! endpoint of the work group, a free name, the work group's quota), what a row means to a
//! client (a status reported for an older generation says nothing about the current one), and
//! keys, shown once.

use super::endpoints::{attach_deployment, check_free, release_deployment};
use super::{quotas, shown_status, time, urls};
use crate::access::WorkgroupScope;
use crate::auth::{KEY_PREFIX, digest, new_secret};
use crate::names::check_name;
use crate::store::DeploymentSettings;
use crate::store::deployments::{
    self as store, DeploymentInsert, DeploymentRow, Keyed, PinnedImage,
};
use crate::store::endpoints::Named;
use crate::{ControlError, ControlPlane};
use kiln_api::manage::SHOWN_ONCE;
use kiln_api::manage::deployments::{
    Deployment, DeploymentCreated, DeploymentStatus, DeploymentUpdate, Joined, KeyName, Keys,
    NewDeployment, NewKey,
};
use kiln_api::{DesiredDeployment, ServingState, StatusReport};

/// The image `name` of the work group, or a clear error naming both.
async fn image(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    name: &str,
) -> Result<PinnedImage, ControlError> {
    store::image(control.db(), &workgroup.id, name)
        .await?
        .ok_or_else(|| {
            ControlError::Invalid(format!(
                "no image '{name}' in work group '{}'",
                workgroup.name
            ))
        })
}

/// Creates a deployment in the work group: checked, within the quota, with two new keys shown
/// this once; it joins an endpoint when it names one.
pub async fn create(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    new: NewDeployment,
) -> Result<DeploymentCreated, ControlError> {
    check_name("deployment", &new.name)?;
    new.limits.check().map_err(|e| ControlError::Invalid(e.0))?;
    new.scale.check().map_err(ControlError::Invalid)?;
    let pinned = image(control, workgroup, &new.image).await?;
    if let Some(endpoint) = &new.endpoint
        && !store::has_endpoint(control.db(), &workgroup.id, endpoint).await?
    {
        return Err(ControlError::Invalid(format!(
            "no endpoint '{endpoint}' in work group '{}'",
            workgroup.name
        )));
    }
    check_free(control, Named::Endpoints, &new.name).await?;
    quotas::check(
        control.db(),
        &control.settings().quota,
        (&workgroup.id, &workgroup.name),
        &new.name,
        &new.limits,
        &new.scale,
    )
    .await?;
    let (primary, secondary) = (new_secret(KEY_PREFIX), new_secret(KEY_PREFIX));
    let settings = DeploymentSettings {
        limits: new.limits.clone(),
        scale: new.scale.clone(),
        ..Default::default()
    }
    .to_column()?;
    let insert = DeploymentInsert {
        id: &crate::db::new_id(),
        workgroup_id: &workgroup.id,
        name: &new.name,
        image: &pinned,
        settings: &settings,
        public: new.public,
        key_digests: (&digest(&primary), &digest(&secondary)),
        created_at: crate::db::now_ms(),
    };
    store::insert(control.db(), &insert).await?;
    let joined = match new.endpoint {
        Some(endpoint) => {
            let weight = attach_deployment(control, &workgroup.id, &endpoint, &new.name).await?;
            Some(Joined {
                name: endpoint,
                weight,
            })
        }
        None => None,
    };
    control.notify_runtime();
    Ok(DeploymentCreated {
        urls: urls(control, &new.name),
        name: new.name,
        image: new.image,
        digest: pinned.digest,
        public: new.public,
        limits: new.limits,
        scale: new.scale,
        status: DeploymentStatus::Pending,
        endpoint: joined,
        keys: Keys {
            primary,
            secondary,
            note: "shown once: store them now".into(),
        },
    })
}

/// A deployment as the API shows it.
pub fn deployment(control: &ControlPlane, row: DeploymentRow) -> Result<Deployment, ControlError> {
    let settings = DeploymentSettings::parse(&row.name, &row.settings)?;
    let reported: DeploymentStatus = row.status.parse().map_err(ControlError::Internal)?;
    Ok(Deployment {
        status: shown_status(reported, row.status_generation, row.generation),
        urls: urls(control, &row.name),
        name: row.name,
        image: row.image,
        digest: row.image_digest,
        public: row.public != 0,
        limits: settings.limits,
        scale: settings.scale,
        monitoring: settings.monitoring.unwrap_or_default(),
        retrain: settings.retrain,
        reason: (!row.reason.is_empty()).then_some(row.reason),
        generation: row.generation,
        updated: time(row.updated_at),
    })
}

/// Changes a deployment: the given limits and scale fields over the stored ones (within the
/// quota), another image, public or not; the change is its next generation.
pub async fn update(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    name: &str,
    change: DeploymentUpdate,
) -> Result<Deployment, ControlError> {
    let current = store::changeable(control.db(), &workgroup.id, name).await?;
    let mut settings = DeploymentSettings::parse(name, &current.settings)?;
    if let Some(limits) = &change.limits {
        let limits = limits.or(&settings.limits);
        limits.check().map_err(|e| ControlError::Invalid(e.0))?;
        settings.limits = limits;
    }
    if let Some(scale) = &change.scale {
        let scale = scale.or(&settings.scale);
        scale.check().map_err(ControlError::Invalid)?;
        settings.scale = scale;
    }
    if change.limits.is_some() || change.scale.is_some() {
        quotas::check(
            control.db(),
            &control.settings().quota,
            (&workgroup.id, &workgroup.name),
            name,
            &settings.limits,
            &settings.scale,
        )
        .await?;
    }
    let pinned = match &change.image {
        Some(image_name) => image(control, workgroup, image_name).await?,
        None => store::image_by_id(control.db(), &current.image_id).await?,
    };
    let public = change.public.unwrap_or(current.public != 0);
    store::change(
        control.db(),
        &current.id,
        &pinned,
        &settings.to_column()?,
        public,
    )
    .await?;
    control.notify_runtime();
    deployment(
        control,
        store::named(control.db(), &workgroup.id, name).await?,
    )
}

/// Deletes a deployment no endpoint routes traffic to; the runtime stops serving it.
pub async fn delete(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<(), ControlError> {
    release_deployment(control, workgroup_id, name).await?;
    if !store::delete(control.db(), workgroup_id, name).await? {
        return Err(ControlError::NotFound(format!(
            "deployment '{name}' not found"
        )));
    }
    control.notify_runtime();
    Ok(())
}

/// A new `key` for a work group's deployment or endpoint `name`, shown once; the other key
/// keeps working, so clients move over without a failed request.
pub async fn rotate_key(
    control: &ControlPlane,
    (kind, workgroup_id, name): (Keyed, &str, &str),
    key: KeyName,
) -> Result<NewKey, ControlError> {
    let value = new_secret(KEY_PREFIX);
    if !store::set_key(
        control.db(),
        (kind, workgroup_id, name),
        key,
        &digest(&value),
    )
    .await?
    {
        return Err(ControlError::NotFound(format!(
            "{} '{name}' not found",
            kind.as_str()
        )));
    }
    control.notify_runtime();
    Ok(NewKey {
        name: name.to_string(),
        key,
        value,
        note: SHOWN_ONCE.into(),
    })
}

impl ControlPlane {
    /// Every deployment, as runtimes should serve it. A deployment whose stored settings do
    /// not parse fails alone: it is left out, and its status reads `failed` with the reason,
    /// while every other deployment is served as usual.
    pub async fn desired(&self) -> Result<Vec<DesiredDeployment>, ControlError> {
        let rows = store::desired(self.db()).await?;
        let mut desired = Vec::with_capacity(rows.len());
        for row in rows {
            let settings = match DeploymentSettings::parse(&row.name, &row.settings) {
                Ok(settings) => settings,
                Err(_) if row.status == "failed" && row.status_generation == row.generation => {
                    continue;
                }
                Err(error) => {
                    tracing::error!(deployment = %row.name, "not served: {error}");
                    let report = StatusReport {
                        generation: row.generation,
                        state: ServingState::Failed,
                        reason: Some(error.to_string()),
                    };
                    self.report(&row.name, &report).await?;
                    continue;
                }
            };
            desired.push(DesiredDeployment {
                name: row.name,
                generation: row.generation,
                reference: row.image_reference,
                digest: row.image_digest,
                limits: settings.limits,
                public: row.public != 0,
                key_digests: vec![row.primary_key_digest, row.secondary_key_digest],
                monitoring: settings.monitoring.unwrap_or_default(),
                scale: settings.scale,
            });
        }
        Ok(desired)
    }

    /// Records a runtime's report on one deployment's generation; a report about an older
    /// generation than the stored one is ignored.
    pub async fn report(&self, name: &str, report: &StatusReport) -> Result<(), ControlError> {
        let status = match report.state {
            ServingState::Ready => DeploymentStatus::Ready,
            ServingState::Failed => DeploymentStatus::Failed,
        };
        let reason: String = report
            .reason
            .clone()
            .unwrap_or_default()
            .chars()
            .take(2000)
            .collect();
        let at = (name, report.generation);
        if !store::report_status(self.db(), at, status.as_str(), &reason).await? {
            tracing::debug!(
                deployment = name,
                generation = report.generation,
                "stale status report ignored"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_about_an_older_generation_shows_as_pending() {
        use DeploymentStatus::{Failed, Pending, Ready};
        assert_eq!(shown_status(Ready, 3, 3), Ready);
        assert_eq!(shown_status(Failed, 3, 3), Failed);
        assert_eq!(shown_status(Ready, 2, 3), Pending);
        assert_eq!(shown_status(Failed, 2, 3), Pending);
        assert_eq!(shown_status(Pending, 0, 1), Pending);
    }

    #[tokio::test]
    async fn keys_and_changes_reach_only_the_named_deployment_of_the_work_group() {
        let db = crate::store::fixture().await;
        sqlx::query(
            "INSERT INTO images (id, workgroup_id, name, reference, digest, registry, kind, created_at) \
             VALUES ('i1', 'w1', 'iris', 'iris@sha256:aa', 'sha256:aa', NULL, 'kiln-model', 0)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        let pinned = store::image(&db, "w1", "iris").await.unwrap().unwrap();
        assert_eq!(pinned.digest, "sha256:aa");
        assert!(store::image(&db, "w2", "iris").await.unwrap().is_none());
        let insert = DeploymentInsert {
            id: "d1",
            workgroup_id: "w1",
            name: "iris",
            image: &pinned,
            settings: "{}",
            public: false,
            key_digests: ("p", "s"),
            created_at: 7,
        };
        store::insert(&db, &insert).await.unwrap();
        let again = store::insert(&db, &DeploymentInsert { id: "d2", ..insert }).await;
        assert_eq!(
            again.unwrap_err().to_string(),
            "deployment 'iris' already exists"
        );
        let at = |wg| (Keyed::Deployment, wg, "iris");
        assert!(
            !store::set_key(&db, at("w2"), KeyName::Primary, "x")
                .await
                .unwrap()
        );
        assert!(
            store::set_key(&db, at("w1"), KeyName::Secondary, "x")
                .await
                .unwrap()
        );
        let row = store::named(&db, "w1", "iris").await.unwrap();
        assert_eq!((row.generation, row.status.as_str()), (2, "pending"));
        store::change(&db, "d1", &pinned, r#"{"limits": {"memory_mb": 64}}"#, true)
            .await
            .unwrap();
        let row = store::named(&db, "w1", "iris").await.unwrap();
        assert_eq!((row.generation, row.public), (3, 1));
        let settings = DeploymentSettings::parse("iris", &row.settings).unwrap();
        assert_eq!(settings.limits.memory_mb, Some(64));
        assert!(!store::delete(&db, "w2", "iris").await.unwrap());
        assert!(store::delete(&db, "w1", "iris").await.unwrap());
    }
}

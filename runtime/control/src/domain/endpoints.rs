//! Endpoints: what a valid traffic split, mirror and policy are; how a change is applied (a
//! generation at a time, optimistically, each recorded as an event); what a deployment joining
//! or leaving does to the endpoints that route it; and a rollout rolled back when a runtime
//! finds it breached its endpoint's policy.
//!
//! Endpoint and deployment names share the prediction URLs, so neither may take the other's.

use super::{shown_status, time, urls};
use crate::auth::{KEY_PREFIX, digest, new_secret};
use crate::names::check_name;
use crate::store::endpoints::{
    self as store, EndpointInsert, EndpointRow, EndpointSettings, Named,
};
use crate::{ControlError, ControlPlane};
use kiln_api::endpoint::{MAX_MIRROR_PERCENT, Traffic};
use kiln_api::manage::deployments::{DeploymentStatus, Keys};
use kiln_api::manage::endpoints::{
    Endpoint, EndpointCreated, EndpointEvent, EndpointUpdate, NewEndpoint, Routed, RoutedStatus,
};
use kiln_api::{DesiredEndpoint, RollbackReport, Weighted};

impl EndpointSettings {
    /// Checks weights (0 to 100, summing to 100 once any deployment is routed), the mirror and
    /// the policy; `known` are the work group's deployments.
    pub fn check(&self, known: &[String]) -> Result<(), ControlError> {
        let bad = |m: String| Err(ControlError::Invalid(m));
        for (name, weight) in &self.traffic {
            if !known.contains(name) {
                return bad(format!("no deployment '{name}' in this work group"));
            }
            if *weight > 100 {
                return bad(format!("weight of '{name}' must be 0 to 100, not {weight}"));
            }
        }
        let sum: u32 = self.traffic.values().sum();
        if !self.traffic.is_empty() && sum != 100 {
            return bad(format!("weights must sum to 100, they sum to {sum}"));
        }
        if let Some(mirror) = &self.mirror {
            if !self.traffic.contains_key(&mirror.deployment) {
                return bad(format!(
                    "mirror deployment '{}' is not in the endpoint's traffic (add it with weight 0)",
                    mirror.deployment
                ));
            }
            if !(1..=MAX_MIRROR_PERCENT).contains(&mirror.percent) {
                return bad(format!("mirror percent must be 1 to {MAX_MIRROR_PERCENT}"));
            }
        }
        if let Some(policy) = &self.rollback {
            policy.check().map_err(ControlError::Invalid)?;
        }
        Ok(())
    }

    /// Sets new weights, remembering the old ones and which deployments gained.
    pub fn set_traffic(&mut self, traffic: Traffic) {
        if traffic == self.traffic {
            return;
        }
        self.watch = traffic
            .iter()
            .filter(|(name, w)| **w > self.traffic.get(*name).copied().unwrap_or(0))
            .map(|(name, _)| name.clone())
            .collect();
        self.previous = Some(std::mem::replace(&mut self.traffic, traffic));
    }

    /// Forgets a deployment that is no longer routed (removed from the endpoint).
    pub fn forget(&mut self, name: &str) {
        self.traffic.remove(name);
        if let Some(previous) = &mut self.previous {
            previous.remove(name);
        }
        self.watch.retain(|w| w != name);
        if self.mirror.as_ref().is_some_and(|m| m.deployment == name) {
            self.mirror = None;
        }
    }

    /// The weights a rollback of `bad` returns to: the previous ones, with `bad` at 0 and its
    /// weight given to the heaviest other deployment; `None` when no other one can take it.
    pub fn rolled_back(&self, bad: &str) -> Option<Traffic> {
        let mut traffic: Traffic = self
            .traffic
            .keys()
            .map(|name| {
                let before = self.previous.as_ref().and_then(|p| p.get(name)).copied();
                (name.clone(), before.unwrap_or(0))
            })
            .collect();
        traffic.insert(bad.to_string(), 0);
        let heaviest = traffic
            .iter()
            .filter(|(name, _)| name.as_str() != bad)
            .max_by_key(|(name, w)| (**w, std::cmp::Reverse((*name).clone())))
            .map(|(name, _)| name.clone())?;
        let sum: u32 = traffic.values().sum();
        if let Some(w) = traffic.get_mut(&heaviest) {
            *w += 100 - sum.min(100);
        }
        Some(traffic)
    }
}

/// Weights as an event says them: `blue 90%, green 10%`, or `none`.
pub fn describe(traffic: &Traffic) -> String {
    if traffic.is_empty() {
        return "none".into();
    }
    traffic
        .iter()
        .map(|(n, w)| format!("{n} {w}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses a name that a deployment (`among` deployments) or an endpoint already has: the two
/// share prediction URLs.
pub async fn check_free(
    control: &ControlPlane,
    among: Named,
    name: &str,
) -> Result<(), ControlError> {
    if !store::name_taken(control.db(), among, name).await? {
        return Ok(());
    }
    Err(ControlError::Conflict(format!(
        "'{name}' is already the name of {}: endpoints and deployments share prediction URLs",
        match among {
            Named::Deployments => "a deployment",
            Named::Endpoints => "an endpoint",
        }
    )))
}

/// Before a deployment is deleted: refused while an endpoint sends it traffic or mirrors to it;
/// otherwise it leaves the endpoints that list it at weight 0.
pub async fn release_deployment(
    control: &ControlPlane,
    workgroup_id: &str,
    deployment: &str,
) -> Result<(), ControlError> {
    for row in store::of_workgroup(control.db(), workgroup_id).await? {
        let mut settings = EndpointSettings::parse(&row.name, &row.settings)?;
        let Some(&weight) = settings.traffic.get(deployment) else {
            continue;
        };
        if weight > 0
            || settings
                .mirror
                .as_ref()
                .is_some_and(|m| m.deployment == deployment)
        {
            return Err(ControlError::Conflict(format!(
                "endpoint '{}' routes {weight}% of its traffic{} to deployment '{deployment}': \
                 set its weight to 0 first",
                row.name,
                if settings.mirror.is_some() {
                    " or its mirror"
                } else {
                    ""
                }
            )));
        }
        settings.forget(deployment);
        let at = (row.id.as_str(), row.generation);
        if !store::store_settings(control.db(), at, &settings, None).await? {
            return Err(ControlError::Conflict(format!(
                "endpoint '{}' changed meanwhile: try again",
                row.name
            )));
        }
        let message = format!("deployment {deployment} removed");
        store::event(control.db(), &row.id, "traffic", &message).await?;
    }
    Ok(())
}

/// Adds a new deployment to an endpoint: at 100% when the endpoint routes nothing yet,
/// otherwise at 0% (shift traffic to it afterwards). Returns its weight.
pub async fn attach_deployment(
    control: &ControlPlane,
    workgroup_id: &str,
    endpoint: &str,
    deployment: &str,
) -> Result<u32, ControlError> {
    for _ in 0..5 {
        let row = store::named(control.db(), workgroup_id, endpoint).await?;
        let mut settings = EndpointSettings::parse(endpoint, &row.settings)?;
        let weight = if settings.traffic.values().sum::<u32>() == 0 {
            100
        } else {
            0
        };
        let mut traffic = settings.traffic.clone();
        traffic.insert(deployment.to_string(), weight);
        settings.set_traffic(traffic);
        let at = (row.id.as_str(), row.generation);
        if store::store_settings(control.db(), at, &settings, None).await? {
            let message = format!("deployment {deployment} added at {weight}%");
            store::event(control.db(), &row.id, "traffic", &message).await?;
            return Ok(weight);
        }
    }
    Err(ControlError::Conflict(format!(
        "endpoint '{endpoint}' kept changing: try again"
    )))
}

/// An endpoint as the API shows it: its split, with each routed deployment's state.
pub async fn endpoint(
    control: &ControlPlane,
    workgroup_id: &str,
    row: EndpointRow,
) -> Result<Endpoint, ControlError> {
    let states = store::deployment_states(control.db(), workgroup_id).await?;
    shown(control, row, &states)
}

/// Endpoints of the work group as the API shows them, its deployments' states read once.
pub async fn endpoints(
    control: &ControlPlane,
    workgroup_id: &str,
    rows: Vec<EndpointRow>,
) -> Result<Vec<Endpoint>, ControlError> {
    let states = store::deployment_states(control.db(), workgroup_id).await?;
    rows.into_iter()
        .map(|row| shown(control, row, &states))
        .collect()
}

/// An endpoint with its split, given the states of its work group's deployments.
fn shown(
    control: &ControlPlane,
    row: EndpointRow,
    states: &[store::DeploymentState],
) -> Result<Endpoint, ControlError> {
    let settings = EndpointSettings::parse(&row.name, &row.settings)?;
    let mut deployments = Vec::with_capacity(settings.traffic.len());
    for (deployment, weight) in &settings.traffic {
        let mirror_percent = settings
            .mirror
            .as_ref()
            .filter(|m| &m.deployment == deployment)
            .map(|m| m.percent);
        let routed = match states.iter().find(|s| &s.name == deployment) {
            Some(state) => {
                let reported: DeploymentStatus =
                    state.status.parse().map_err(ControlError::Internal)?;
                let shown = shown_status(reported, state.status_generation, state.generation);
                Routed {
                    name: deployment.clone(),
                    weight: *weight,
                    mirror_percent,
                    image: Some(state.image.clone()),
                    status: match shown {
                        DeploymentStatus::Pending => RoutedStatus::Pending,
                        DeploymentStatus::Ready => RoutedStatus::Ready,
                        DeploymentStatus::Failed => RoutedStatus::Failed,
                    },
                    reason: (!state.reason.is_empty()).then(|| state.reason.clone()),
                }
            }
            None => Routed {
                name: deployment.clone(),
                weight: *weight,
                mirror_percent,
                image: None,
                status: RoutedStatus::Missing,
                reason: None,
            },
        };
        deployments.push(routed);
    }
    Ok(Endpoint {
        urls: urls(control, &row.name),
        name: row.name,
        public: row.public != 0,
        traffic: settings.traffic,
        mirror: settings.mirror,
        rollback: settings.rollback,
        watching: settings.watch,
        deployments,
        generation: row.generation,
        updated: time(row.updated_at),
    })
}

/// Creates an endpoint in the work group, with two new keys shown this once.
pub async fn create(
    control: &ControlPlane,
    workgroup_id: &str,
    new: NewEndpoint,
) -> Result<EndpointCreated, ControlError> {
    check_name("endpoint", &new.name)?;
    let mut settings = EndpointSettings {
        mirror: new.mirror,
        rollback: new.rollback,
        ..Default::default()
    };
    settings.set_traffic(new.traffic);
    settings.previous = None;
    settings.check(&store::workgroup_deployments(control.db(), workgroup_id).await?)?;
    check_free(control, Named::Deployments, &new.name).await?;
    let (primary, secondary) = (new_secret(KEY_PREFIX), new_secret(KEY_PREFIX));
    let id = crate::db::new_id();
    let insert = EndpointInsert {
        id: &id,
        workgroup_id,
        name: &new.name,
        public: new.public,
        key_digests: (&digest(&primary), &digest(&secondary)),
        settings: &settings.to_column()?,
        created_at: crate::db::now_ms(),
    };
    store::insert(control.db(), &insert).await?;
    let message = format!("traffic: {}", describe(&settings.traffic));
    store::event(control.db(), &id, "created", &message).await?;
    control.notify_runtime();
    let row = store::named(control.db(), workgroup_id, &new.name).await?;
    Ok(EndpointCreated {
        endpoint: endpoint(control, workgroup_id, row).await?,
        keys: Keys {
            primary,
            secondary,
            note: "shown once: store them now".into(),
        },
    })
}

/// Changes an endpoint: weights, mirror, rollback policy, public flag. A concurrent change
/// makes the generation move, and this one is tried again; each change is an event, and
/// runtimes apply it without dropping a request.
pub async fn update(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
    change: EndpointUpdate,
) -> Result<Endpoint, ControlError> {
    let db = control.db();
    let known = store::workgroup_deployments(db, workgroup_id).await?;
    for _ in 0..5 {
        let row = store::named(db, workgroup_id, name).await?;
        let mut settings = EndpointSettings::parse(name, &row.settings)?;
        let before = settings.clone();
        if let Some(traffic) = change.traffic.clone() {
            settings.set_traffic(traffic);
        }
        if let Some(mirror) = change.mirror.clone() {
            settings.mirror = mirror;
        }
        if let Some(rollback) = change.rollback.clone() {
            settings.rollback = rollback;
        }
        // A mirror of a deployment taken out of the traffic goes with it.
        if change.mirror.is_none()
            && settings
                .mirror
                .as_ref()
                .is_some_and(|m| !settings.traffic.contains_key(&m.deployment))
        {
            settings.mirror = None;
        }
        settings.check(&known)?;
        let public = change.public.unwrap_or(row.public != 0);
        let at = (row.id.as_str(), row.generation);
        if !store::store_settings(db, at, &settings, Some(public)).await? {
            continue;
        }
        if settings.traffic != before.traffic {
            let message = format!(
                "traffic: {} (was {})",
                describe(&settings.traffic),
                describe(&before.traffic)
            );
            store::event(db, &row.id, "traffic", &message).await?;
        }
        if settings.mirror != before.mirror {
            let message = match &settings.mirror {
                Some(m) => format!("mirroring {}% to {}", m.percent, m.deployment),
                None => "mirroring off".to_string(),
            };
            store::event(db, &row.id, "mirror", &message).await?;
        }
        if settings.rollback != before.rollback {
            let policy = serde_json::to_string(&settings.rollback)
                .map_err(|e| ControlError::Internal(e.to_string()))?;
            store::event(db, &row.id, "policy", &format!("rollback policy: {policy}")).await?;
        }
        control.notify_runtime();
        let row = store::named(db, workgroup_id, name).await?;
        return endpoint(control, workgroup_id, row).await;
    }
    Err(ControlError::Conflict(format!(
        "endpoint '{name}' kept changing: try again"
    )))
}

/// Deletes an endpoint: its URL stops answering; its deployments stay.
pub async fn delete(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<(), ControlError> {
    if !store::delete(control.db(), workgroup_id, name).await? {
        return Err(ControlError::NotFound(format!(
            "endpoint '{name}' not found"
        )));
    }
    control.notify_runtime();
    Ok(())
}

/// An endpoint's latest 100 events, newest first.
pub async fn events(
    control: &ControlPlane,
    workgroup_id: &str,
    name: &str,
) -> Result<Vec<EndpointEvent>, ControlError> {
    let row = store::named(control.db(), workgroup_id, name).await?;
    let events = store::events(control.db(), &row.id, 100).await?;
    Ok(events
        .into_iter()
        .map(|e| EndpointEvent {
            kind: e.kind,
            message: e.message,
            time: time(e.created_at),
        })
        .collect())
}

impl ControlPlane {
    /// Every endpoint, as runtimes should route it.
    pub async fn desired_endpoints(&self) -> Result<Vec<DesiredEndpoint>, ControlError> {
        store::desired(self.db())
            .await?
            .into_iter()
            .map(|row| {
                let settings = EndpointSettings::parse(&row.name, &row.settings)?;
                Ok(DesiredEndpoint {
                    name: row.name,
                    generation: row.generation,
                    public: row.public != 0,
                    key_digests: vec![row.primary_key_digest, row.secondary_key_digest],
                    traffic: settings
                        .traffic
                        .into_iter()
                        .map(|(deployment, weight)| Weighted { deployment, weight })
                        .collect(),
                    mirror: settings.mirror,
                    rollback: settings.rollback,
                    watch: settings.watch,
                })
            })
            .collect()
    }

    /// Rolls a watched deployment back to weight 0 (see [`EndpointSettings::rolled_back`]) and
    /// records why. A report about an older generation, or an unwatched deployment, changes
    /// nothing: the traffic moved meanwhile.
    pub async fn rollback(
        &self,
        endpoint: &str,
        report: &RollbackReport,
    ) -> Result<bool, ControlError> {
        let row = store::anywhere(self.db(), endpoint).await?;
        let mut settings = EndpointSettings::parse(endpoint, &row.settings)?;
        if row.generation != report.generation || !settings.watch.contains(&report.deployment) {
            return Ok(false);
        }
        let reason: String = report.reason.chars().take(500).collect();
        let at = (row.id.as_str(), row.generation);
        let Some(traffic) = settings.rolled_back(&report.deployment) else {
            settings.watch.retain(|w| w != &report.deployment);
            store::store_watch(self.db(), at, &settings).await?;
            let message = format!(
                "{} breached the rollback policy ({reason}) but no other deployment can take its traffic",
                report.deployment
            );
            store::event(self.db(), &row.id, "rollback_failed", &message).await?;
            return Ok(false);
        };
        let before = settings.traffic.clone();
        settings.set_traffic(traffic);
        settings.watch.clear();
        if !store::store_settings(self.db(), at, &settings, None).await? {
            return Ok(false);
        }
        let message = format!(
            "rolled back {}: {reason}; traffic: {} (was {})",
            report.deployment,
            describe(&settings.traffic),
            describe(&before)
        );
        store::event(self.db(), &row.id, "rollback", &message).await?;
        tracing::warn!(endpoint, deployment = %report.deployment, "rolled back: {reason}");
        self.notify_runtime();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_api::MirrorSettings;

    fn traffic(pairs: &[(&str, u32)]) -> Traffic {
        pairs.iter().map(|(n, w)| (n.to_string(), *w)).collect()
    }

    #[test]
    fn weights_must_name_known_deployments_and_sum_to_100() {
        let known = vec!["blue".to_string(), "green".to_string()];
        let mut s = EndpointSettings::default();
        assert!(s.check(&known).is_ok(), "no traffic yet is fine");
        s.traffic = traffic(&[("blue", 90), ("green", 10)]);
        assert!(s.check(&known).is_ok());
        s.traffic = traffic(&[("blue", 90), ("green", 20)]);
        assert!(
            s.check(&known)
                .unwrap_err()
                .to_string()
                .contains("sum to 110")
        );
        s.traffic = traffic(&[("blue", 100), ("red", 0)]);
        assert!(
            s.check(&known)
                .unwrap_err()
                .to_string()
                .contains("no deployment 'red'")
        );
        s.traffic = traffic(&[("blue", 100), ("green", 0)]);
        s.mirror = Some(MirrorSettings {
            deployment: "green".into(),
            percent: 51,
        });
        assert!(s.check(&known).unwrap_err().to_string().contains("1 to 50"));
    }

    #[test]
    fn a_change_watches_what_it_raised_and_a_rollback_returns() {
        let mut s = EndpointSettings {
            traffic: traffic(&[("blue", 100), ("green", 0)]),
            ..Default::default()
        };
        s.set_traffic(traffic(&[("blue", 50), ("green", 50)]));
        assert_eq!(s.watch, vec!["green".to_string()]);
        assert_eq!(
            s.rolled_back("green"),
            Some(traffic(&[("blue", 100), ("green", 0)]))
        );
        // Green had taken everything: its 100 goes back to blue.
        s.set_traffic(traffic(&[("blue", 0), ("green", 100)]));
        assert_eq!(
            s.rolled_back("green"),
            Some(traffic(&[("blue", 100), ("green", 0)]))
        );
        // Nothing else to send traffic to.
        let lone = EndpointSettings {
            traffic: traffic(&[("green", 100)]),
            ..Default::default()
        };
        assert_eq!(lone.rolled_back("green"), None);
    }
}

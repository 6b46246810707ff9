//! An endpoint's `settings` column: its traffic split, mirror, rollback policy, and what a
//! rollback returns to.

use crate::db::{new_id, now_ms};
use crate::{ControlError, ControlPlane};
use kiln_api::endpoint::{MAX_MIRROR_PERCENT, Traffic};
use kiln_api::manage::deployments::Urls;
use kiln_api::{MirrorSettings, RollbackPolicy};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What an endpoint stores besides its name and keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointSettings {
    /// Weights of its deployments.
    #[serde(default)]
    pub traffic: Traffic,
    /// The mirrored deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorSettings>,
    /// The automatic rollback policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackPolicy>,
    /// The traffic before the last change: where a rollback returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Traffic>,
    /// Deployments whose weight the last change raised: what the rollback policy watches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<String>,
}

impl EndpointSettings {
    /// Parses the stored column of `endpoint`; text that does not parse is the store's
    /// corruption, reported as such, and nothing is written over it.
    pub fn parse(endpoint: &str, stored: &str) -> Result<Self, ControlError> {
        super::settings::parse_column("endpoint", endpoint, stored)
    }

    /// Checks weights (0 to 100, summing to 100 once any deployment is routed), the mirror and
    /// the policy; `known` are the work group's deployments.
    pub(crate) fn check(&self, known: &[String]) -> Result<(), ControlError> {
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
    pub(crate) fn set_traffic(&mut self, traffic: Traffic) {
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
    pub(crate) fn forget(&mut self, name: &str) {
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

/// Prediction URLs of an endpoint or deployment named `name`.
pub fn urls(control: &ControlPlane, name: &str) -> Urls {
    Urls::of(&control.settings().prediction_url, name)
}

pub(crate) async fn workgroup_deployments(
    control: &ControlPlane,
    workgroup: &str,
) -> Result<Vec<String>, ControlError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM deployments WHERE workgroup_id = $1")
            .bind(workgroup)
            .fetch_all(control.db().pool())
            .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

/// Refuses a name a deployment (for endpoints) or an endpoint (for deployments) already has.
pub async fn check_free(
    control: &ControlPlane,
    table: &'static str,
    name: &str,
) -> Result<(), ControlError> {
    let sql = match table {
        "deployments" => "SELECT name FROM deployments WHERE name = $1",
        _ => "SELECT name FROM endpoints WHERE name = $1",
    };
    let taken: Option<(String,)> = sqlx::query_as(sql)
        .bind(name)
        .fetch_optional(control.db().pool())
        .await?;
    match taken {
        Some(_) => Err(ControlError::Conflict(format!(
            "'{name}' is already the name of {}: endpoints and deployments share prediction URLs",
            if table == "deployments" {
                "a deployment"
            } else {
                "an endpoint"
            }
        ))),
        None => Ok(()),
    }
}

pub(crate) async fn event(
    control: &ControlPlane,
    endpoint_id: &str,
    kind: &str,
    message: &str,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO endpoint_events (id, endpoint_id, kind, message, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(endpoint_id)
    .bind(kind)
    .bind(message)
    .bind(now_ms())
    .execute(control.db().pool())
    .await?;
    Ok(())
}

/// id, name, public, settings, generation, updated.
pub(crate) type Row = (String, String, i64, String, i64, i64);

pub(crate) async fn endpoint_row(
    control: &ControlPlane,
    workgroup: &str,
    name: &str,
) -> Result<Row, ControlError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, name, public, settings, generation, updated_at FROM endpoints \
         WHERE workgroup_id = $1 AND name = $2",
    )
    .bind(workgroup)
    .bind(name)
    .fetch_optional(control.db().pool())
    .await?;
    row.ok_or_else(|| ControlError::NotFound(format!("endpoint '{name}' not found")))
}

pub(crate) fn parse(endpoint: &str, settings: &str) -> Result<EndpointSettings, ControlError> {
    EndpointSettings::parse(endpoint, settings)
}

/// Writes an endpoint's settings (and its public flag, when given) as a new generation, provided
/// nobody changed it since `generation` was read: optimistic concurrency, where `false` means
/// somebody did and the caller reads again or gives up.
pub(crate) async fn store_settings(
    control: &ControlPlane,
    id: &str,
    generation: i64,
    settings: &EndpointSettings,
    public: Option<i64>,
) -> Result<bool, ControlError> {
    let sql = if public.is_some() {
        "UPDATE endpoints SET settings = $1, updated_at = $2, public = $3, \
         generation = generation + 1 WHERE id = $4 AND generation = $5"
    } else {
        "UPDATE endpoints SET settings = $1, updated_at = $2, \
         generation = generation + 1 WHERE id = $3 AND generation = $4"
    };
    let mut query = sqlx::query(sql)
        .bind(json!(settings).to_string())
        .bind(now_ms());
    if let Some(public) = public {
        query = query.bind(public);
    }
    let done = query
        .bind(id)
        .bind(generation)
        .execute(control.db().pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Before a deployment is deleted: refused while an endpoint sends it traffic or mirrors to it;
/// otherwise it leaves the endpoints that list it at weight 0.
pub async fn release_deployment(
    control: &ControlPlane,
    workgroup: &str,
    deployment: &str,
) -> Result<(), ControlError> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, name, settings, generation FROM endpoints WHERE workgroup_id = $1",
    )
    .bind(workgroup)
    .fetch_all(control.db().pool())
    .await?;
    for (id, name, stored, generation) in rows {
        let mut settings = parse(&name, &stored)?;
        if !settings.traffic.contains_key(deployment) {
            continue;
        }
        let weight = settings.traffic[deployment];
        if weight > 0
            || settings
                .mirror
                .as_ref()
                .is_some_and(|m| m.deployment == deployment)
        {
            return Err(ControlError::Conflict(format!(
                "endpoint '{name}' routes {weight}% of its traffic{} to deployment '{deployment}': \
                 set its weight to 0 first",
                if settings.mirror.is_some() {
                    " or its mirror"
                } else {
                    ""
                }
            )));
        }
        settings.forget(deployment);
        if !store_settings(control, &id, generation, &settings, None).await? {
            return Err(ControlError::Conflict(format!(
                "endpoint '{name}' changed meanwhile: try again"
            )));
        }
        event(
            control,
            &id,
            "traffic",
            &format!("deployment {deployment} removed"),
        )
        .await?;
    }
    Ok(())
}

/// Adds a new deployment to an endpoint: at 100% when the endpoint routes nothing yet,
/// otherwise at 0% (shift traffic to it afterwards).
pub async fn attach_deployment(
    control: &ControlPlane,
    workgroup: &str,
    endpoint: &str,
    deployment: &str,
) -> Result<u32, ControlError> {
    for _ in 0..5 {
        let (id, _, _, stored, generation, _) = endpoint_row(control, workgroup, endpoint).await?;
        let mut settings = parse(endpoint, &stored)?;
        let weight = if settings.traffic.values().sum::<u32>() == 0 {
            100
        } else {
            0
        };
        let mut traffic = settings.traffic.clone();
        traffic.insert(deployment.to_string(), weight);
        settings.set_traffic(traffic);
        if store_settings(control, &id, generation, &settings, None).await? {
            event(
                control,
                &id,
                "traffic",
                &format!("deployment {deployment} added at {weight}%"),
            )
            .await?;
            return Ok(weight);
        }
    }
    Err(ControlError::Conflict(format!(
        "endpoint '{endpoint}' kept changing: try again"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

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

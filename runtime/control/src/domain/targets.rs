//! Execution targets and environments: which settings a target kind takes, what a valid
//! registry, artifact store, run image and runtime node are, and what an environment shows
//! (never its password).

use super::time;
use crate::access::WorkgroupScope;
use crate::db::{new_id, now_ms};
use crate::names::check_name;
use crate::runs::targets::check_reach;
use crate::store::targets::{self as store, EnvironmentRow, TargetRow};
use crate::{ControlError, ControlPlane};
use kiln_api::manage::targets::{
    Environment, EnvironmentRegistry, NewEnvironment, NewTarget, Target,
};
use serde_json::{Map, Value};

/// Checks a target's settings: a known kind, only its known keys, each of the right type.
pub fn check_config(kind: &str, config: &Map<String, Value>) -> Result<(), ControlError> {
    let known: &[(&str, &str)] = match kind {
        "local" => &[
            ("interpreter", "string"),
            ("requirements", "string"),
            ("concurrency", "number"),
            ("tracking_url", "string"),
        ],
        "docker" => &[
            ("host", "string"),
            ("image", "string"),
            ("memory_mb", "number"),
            ("cpus", "number"),
            ("network", "string"),
            ("interpreter", "string"),
            ("concurrency", "number"),
            ("tracking_url", "string"),
        ],
        "spark" => &[
            ("master", "string"),
            ("spark_submit", "string"),
            ("python", "string"),
            ("conf", "object"),
            ("concurrency", "number"),
            ("tracking_url", "string"),
        ],
        other => {
            return Err(ControlError::Invalid(format!(
                "unknown target kind '{other}': local, docker or spark"
            )));
        }
    };
    for (key, value) in config {
        let Some((_, expected)) = known.iter().find(|(k, _)| k == key) else {
            return Err(ControlError::Invalid(format!(
                "unknown {kind} target setting '{key}' (known: {})",
                known.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            )));
        };
        let fits = match *expected {
            "string" => value
                .as_str()
                .is_some_and(|s| !s.is_empty() && s.len() <= 1024),
            "number" => value.as_u64().is_some_and(|n| n > 0),
            _ => value.is_object(),
        };
        if !fits {
            return Err(ControlError::Invalid(format!(
                "{kind} target setting '{key}' must be a {expected}"
            )));
        }
    }
    if kind == "spark" && !config.contains_key("master") {
        return Err(ControlError::Invalid(
            "a spark target needs a master".into(),
        ));
    }
    Ok(())
}

/// A target as the API shows it.
pub fn target(row: TargetRow) -> Target {
    Target {
        name: row.name,
        kind: row.kind,
        config: serde_json::from_str(&row.config).unwrap_or_default(),
        created: time(row.created_at),
    }
}

/// Adds a target to the work group: its settings checked, and where it reaches held to the
/// installation's limits.
pub async fn create_target(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    new: NewTarget,
) -> Result<Target, ControlError> {
    check_name("target", &new.name)?;
    check_config(&new.kind, &new.config)?;
    check_reach(control, &new.kind, &new.config).await?;
    let row = TargetRow {
        id: new_id(),
        name: new.name,
        kind: new.kind,
        config: Value::Object(new.config).to_string(),
        created_at: now_ms(),
    };
    store::insert_target(control.db(), &workgroup.id, &row).await?;
    Ok(target(row))
}

/// Checks a new environment's settings, apart from its targets (which the work group must
/// have): a `host[:port]` registry, no password without a user name, an artifact store URL of
/// a known scheme, a printable run image, http(s) runtime nodes.
pub fn check_environment(new: &NewEnvironment) -> Result<(), ControlError> {
    check_name("environment", &new.name)?;
    if let Some(registry) = &new.registry {
        let valid = !registry.host.is_empty()
            && registry.host.len() <= 255
            && registry
                .host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
        if !valid {
            return Err(ControlError::Invalid(format!(
                "invalid registry host '{}': host[:port]",
                registry.host
            )));
        }
        if registry.password.is_some() && registry.username.is_none() {
            return Err(ControlError::Invalid(
                "a registry password needs a username".into(),
            ));
        }
    }
    if let Some(store) = &new.artifact_store {
        url::Url::parse(store)
            .ok()
            .filter(|u| ["file", "s3", "az", "azure", "gs", "abfs"].contains(&u.scheme()))
            .ok_or_else(|| {
                ControlError::Invalid(format!(
                    "invalid artifact store '{store}': a file://, s3://, az:// or gs:// URL"
                ))
            })?;
    }
    if let Some(image) = &new.run_image
        && (image.is_empty() || image.len() > 512 || !image.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(ControlError::Invalid(format!(
            "invalid run image '{image}'"
        )));
    }
    for node in &new.runtime_nodes {
        url::Url::parse(node)
            .ok()
            .filter(|u| u.scheme() == "http" || u.scheme() == "https")
            .ok_or_else(|| ControlError::Invalid(format!("invalid runtime node URL '{node}'")))?;
    }
    Ok(())
}

/// An environment as the API shows it: whether a password is set, never the password.
pub fn environment(row: EnvironmentRow) -> Environment {
    let password = if row.registry_password_sealed.is_some() {
        "set"
    } else {
        "none"
    };
    Environment {
        name: row.name,
        description: row.description,
        registry: row.registry.map(|host| EnvironmentRegistry {
            host,
            username: row.registry_username,
            password: password.into(),
        }),
        artifact_store: row.artifact_store,
        targets: serde_json::from_str(&row.targets).unwrap_or_default(),
        runtime_nodes: serde_json::from_str(&row.runtime_nodes).unwrap_or_default(),
        run_image: row.run_image,
        created: time(row.created_at),
    }
}

/// Adds an environment to the work group; its registry password is sealed, bound to it.
pub async fn create_environment(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    new: NewEnvironment,
) -> Result<Environment, ControlError> {
    check_environment(&new)?;
    for target in &new.targets {
        if store::find_target(control.db(), &workgroup.id, target)
            .await?
            .is_none()
        {
            return Err(ControlError::Invalid(format!(
                "no execution target '{target}' in work group '{}'",
                workgroup.name
            )));
        }
    }
    let id = new_id();
    let registry = new.registry.as_ref();
    let sealed = match registry.and_then(|r| r.password.as_deref()) {
        Some(password) => Some(
            control
                .secrets()
                .seal(password, &format!("environment:{id}:registry_password"))?,
        ),
        None => None,
    };
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let row = EnvironmentRow {
        id,
        name: new.name.clone(),
        description: new.description.clone(),
        registry: registry.map(|r| r.host.clone()),
        registry_username: registry.and_then(|r| r.username.clone()),
        registry_password_sealed: sealed,
        artifact_store: new.artifact_store.clone(),
        targets: json(&new.targets),
        runtime_nodes: json(&new.runtime_nodes),
        created_at: now_ms(),
        run_image: new.run_image.clone(),
    };
    store::insert_environment(control.db(), &workgroup.id, &row).await?;
    Ok(environment(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_api::manage::targets::RegistrySettings;
    use serde_json::json;

    fn config(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn each_kind_takes_its_own_settings_of_their_own_type() {
        assert!(
            check_config(
                "local",
                &config(json!({"interpreter": "python3", "concurrency": 2}))
            )
            .is_ok()
        );
        assert!(
            check_config(
                "docker",
                &config(json!({"host": "tcp://h:2375", "cpus": 1}))
            )
            .is_ok()
        );
        assert!(check_config("spark", &config(json!({"master": "local[2]", "conf": {}}))).is_ok());
        for (kind, settings, needle) in [
            ("k8s", json!({}), "unknown target kind 'k8s'"),
            (
                "local",
                json!({"host": "x"}),
                "unknown local target setting 'host'",
            ),
            ("docker", json!({"cpus": 0}), "'cpus' must be a number"),
            ("docker", json!({"image": ""}), "'image' must be a string"),
            (
                "local",
                json!({"interpreter": "x".repeat(1025)}),
                "must be a string",
            ),
            (
                "spark",
                json!({"conf": "a=b", "master": "m"}),
                "'conf' must be a object",
            ),
            ("spark", json!({}), "a spark target needs a master"),
        ] {
            let error = check_config(kind, &config(settings))
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{kind}: {error}");
        }
    }

    #[test]
    fn an_environment_names_one_registry_host_and_real_urls() {
        let base = NewEnvironment {
            name: "prod".into(),
            ..NewEnvironment::default()
        };
        assert!(check_environment(&base).is_ok());
        let registry = |host: &str, user: Option<&str>, password: Option<&str>| NewEnvironment {
            registry: Some(RegistrySettings {
                host: host.into(),
                username: user.map(Into::into),
                password: password.map(Into::into),
            }),
            ..base.clone()
        };
        assert!(check_environment(&registry("reg.example:5000", Some("u"), Some("p"))).is_ok());
        assert!(check_environment(&registry("[::1]:5000", None, None)).is_ok());
        for bad in [
            registry("", None, None),
            registry("reg/path", None, None),
            registry("u:p@reg", None, None),
            registry("reg", None, Some("p")),
            NewEnvironment {
                artifact_store: Some("ftp://x".into()),
                ..base.clone()
            },
            NewEnvironment {
                artifact_store: Some("not a url".into()),
                ..base.clone()
            },
            NewEnvironment {
                run_image: Some("img with space".into()),
                ..base.clone()
            },
            NewEnvironment {
                run_image: Some(String::new()),
                ..base.clone()
            },
            NewEnvironment {
                runtime_nodes: vec!["file:///x".into()],
                ..base.clone()
            },
        ] {
            let error = check_environment(&bad).unwrap_err();
            assert!(matches!(error, ControlError::Invalid(_)), "{error}");
        }
        assert!(
            check_environment(&NewEnvironment {
                artifact_store: Some("s3://b/p".into()),
                ..base
            })
            .is_ok()
        );
    }

    #[test]
    fn an_environment_shows_whether_a_password_is_set_never_the_password() {
        let row = EnvironmentRow {
            id: "e1".into(),
            name: "prod".into(),
            description: String::new(),
            registry: Some("reg:5000".into()),
            registry_username: Some("u".into()),
            registry_password_sealed: Some("sealed-bytes".into()),
            artifact_store: None,
            targets: r#"["py"]"#.into(),
            runtime_nodes: "[]".into(),
            created_at: 0,
            run_image: None,
        };
        let shown = serde_json::to_value(environment(row)).unwrap();
        assert_eq!(
            shown["registry"],
            json!({"host": "reg:5000", "username": "u", "password": "set"})
        );
        assert_eq!(shown["targets"], json!(["py"]));
        assert!(!shown.to_string().contains("sealed-bytes"), "{shown}");
    }
}

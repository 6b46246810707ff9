//! Instance limits: one type, one set of bounds, one layering rule.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Limits of a deployment's instances and requests. Each is optional: an unset one comes from
/// the next layer down, deployment over image over node defaults ([`Limits::or`]), and what is
/// unset at the bottom takes the runtime's built-in default.
///
/// The same type is a deployment's `limits` in the REST API, an image manifest's `[limits]`,
/// `kiln serve`'s `[limits]` and flags, and what a node resolves; [`Limits::check`] holds its
/// bounds for all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory per instance, MiB (1 to 65536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<usize>,
    /// Deadline of one prediction inside the component, ms (1 to 600000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Deadline of instantiating an instance and loading its model, ms (1 to 600000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_deadline_ms: Option<u64>,
    /// Instances, and so predictions served at once (1 to 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Requests that may wait for an instance; past it they are refused at once (0 to 65536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<usize>,
}

/// Limits out of their bounds: which one, and the bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsError(pub String);

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitsError {}

/// Most linear memory per instance, MiB.
pub const MAX_MEMORY_MB: usize = 65_536;
/// Longest deadline (of a prediction, or of a load), ms.
pub const MAX_DEADLINE_MS: u64 = 600_000;
/// Most instances of one deployment.
pub const MAX_CONCURRENCY: usize = 1024;
/// Most requests waiting for an instance of one deployment.
pub const MAX_QUEUE: usize = 65_536;

impl Limits {
    /// These limits where set, else `fallback`'s: the one layering rule.
    #[must_use]
    pub fn or(&self, fallback: &Limits) -> Limits {
        Limits {
            memory_mb: self.memory_mb.or(fallback.memory_mb),
            deadline_ms: self.deadline_ms.or(fallback.deadline_ms),
            load_deadline_ms: self.load_deadline_ms.or(fallback.load_deadline_ms),
            concurrency: self.concurrency.or(fallback.concurrency),
            queue: self.queue.or(fallback.queue),
        }
    }

    /// Checks the limits that are set against their bounds.
    pub fn check(&self) -> Result<(), LimitsError> {
        fn within<T: PartialOrd + fmt::Display + Copy>(
            name: &str,
            value: Option<T>,
            low: T,
            high: T,
        ) -> Result<(), LimitsError> {
            match value {
                Some(v) if v < low || v > high => Err(LimitsError(format!(
                    "{name} must be {low} to {high}, not {v}"
                ))),
                _ => Ok(()),
            }
        }
        within("memory_mb", self.memory_mb, 1, MAX_MEMORY_MB)?;
        within("deadline_ms", self.deadline_ms, 1, MAX_DEADLINE_MS)?;
        within(
            "load_deadline_ms",
            self.load_deadline_ms,
            1,
            MAX_DEADLINE_MS,
        )?;
        within("concurrency", self.concurrency, 1, MAX_CONCURRENCY)?;
        within("queue", self.queue, 0, MAX_QUEUE)
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self == &Limits::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(text: &str) -> Limits {
        serde_json::from_str(text).expect("limits")
    }

    #[test]
    fn a_layer_takes_what_it_does_not_set_from_the_one_below() {
        let deployment = limits(r#"{"deadline_ms": 50}"#);
        let image = limits(r#"{"memory_mb": 256, "deadline_ms": 1000}"#);
        let node = limits(r#"{"memory_mb": 64, "concurrency": 2, "queue": 8}"#);
        let resolved = deployment.or(&image).or(&node);
        assert_eq!(
            resolved,
            Limits {
                memory_mb: Some(256),
                deadline_ms: Some(50),
                load_deadline_ms: None,
                concurrency: Some(2),
                queue: Some(8),
            }
        );
        // Layering is associative: the image over the node first gives the same.
        assert_eq!(deployment.or(&image.or(&node)), resolved);
        assert_eq!(Limits::default().or(&node), node);
        assert_eq!(node.or(&Limits::default()), node);
    }

    #[test]
    fn bounds_are_the_same_for_every_path() {
        for good in [
            r#"{}"#,
            r#"{"memory_mb": 1, "deadline_ms": 1, "load_deadline_ms": 1, "concurrency": 1, "queue": 0}"#,
            r#"{"memory_mb": 65536, "deadline_ms": 600000, "concurrency": 1024, "queue": 65536}"#,
        ] {
            assert_eq!(limits(good).check(), Ok(()), "{good}");
        }
        for (bad, message) in [
            (r#"{"memory_mb": 0}"#, "memory_mb must be 1 to 65536, not 0"),
            (r#"{"memory_mb": 65537}"#, "memory_mb must be 1 to 65536"),
            (r#"{"deadline_ms": 0}"#, "deadline_ms must be 1 to 600000"),
            (
                r#"{"deadline_ms": 600001}"#,
                "deadline_ms must be 1 to 600000",
            ),
            (
                r#"{"load_deadline_ms": 0}"#,
                "load_deadline_ms must be 1 to 600000",
            ),
            (r#"{"concurrency": 0}"#, "concurrency must be 1 to 1024"),
            (r#"{"concurrency": 1025}"#, "concurrency must be 1 to 1024"),
            (r#"{"queue": 65537}"#, "queue must be 0 to 65536"),
        ] {
            let error = limits(bad).check().expect_err(bad);
            assert!(error.0.starts_with(message), "{bad}: {error}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_and_unset_ones_are_not_written() {
        let error = serde_json::from_str::<Limits>(r#"{"memory": 5}"#).expect_err("unknown");
        assert!(
            error.to_string().contains("unknown field `memory`"),
            "{error}"
        );
        let text = serde_json::to_string(&limits(r#"{"concurrency": 3}"#)).expect("json");
        assert_eq!(text, r#"{"concurrency":3}"#);
        // Images written before limits skipped unset fields still read.
        let old = limits(r#"{"memory_mb": null, "deadline_ms": null, "concurrency": 4}"#);
        assert_eq!(old.concurrency, Some(4));
        assert!(limits("{}").is_empty());
    }
}

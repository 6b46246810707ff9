//! A monitor's inputs and reports as JSON, for `kiln monitor analyze`.

use crate::{finite_or_null, severity_name};
use kiln_engine::{FeatureKind as WitKind, FeatureReport, MonitorFeature, Role as WitRole};
use kiln_image::FeatureKind;
use serde_json::{Value, json};

/// A monitor input given as JSON (for `kiln monitor analyze`): the fields of the WIT record.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureInput {
    /// Feature name.
    pub name: String,
    /// `input` (default) or `output`.
    #[serde(default)]
    pub role: Option<String>,
    /// `numeric` or `categorical`.
    pub kind: FeatureKind,
    /// Interior bin edges (numeric).
    #[serde(default)]
    pub edges: Vec<f64>,
    /// Category labels (categorical).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Smallest reference value.
    #[serde(default)]
    pub reference_min: Option<f64>,
    /// Largest reference value.
    #[serde(default)]
    pub reference_max: Option<f64>,
    /// Reference counts.
    pub reference: Vec<u64>,
    /// Current counts.
    pub current: Vec<u64>,
}

impl FeatureInput {
    /// The WIT record.
    pub fn into_feature(self) -> MonitorFeature {
        MonitorFeature {
            name: self.name,
            role: if self.role.as_deref() == Some("output") {
                WitRole::Output
            } else {
                WitRole::Input
            },
            kind: match self.kind {
                FeatureKind::Numeric => WitKind::Numeric,
                FeatureKind::Categorical => WitKind::Categorical,
            },
            edges: self.edges,
            categories: self.categories,
            reference_min: self.reference_min.unwrap_or(f64::NAN),
            reference_max: self.reference_max.unwrap_or(f64::NAN),
            reference: self.reference,
            current: self.current,
        }
    }
}

/// Monitor reports as JSON: name, role, severity, reason and statistics by name.
pub fn reports_json(reports: &[FeatureReport]) -> Value {
    Value::Array(
        reports
            .iter()
            .map(|r| {
                let stats: serde_json::Map<String, Value> = r
                    .statistics
                    .iter()
                    .map(|s| (s.name.clone(), json!(finite_or_null(s.value))))
                    .collect();
                json!({
                    "name": r.name,
                    "role": if matches!(r.role, WitRole::Output) { "output" } else { "input" },
                    "severity": severity_name(r.severity),
                    "reason": r.reason,
                    "statistics": stats,
                })
            })
            .collect(),
    )
}

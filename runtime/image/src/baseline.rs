//! The drift baseline: per-feature quantile bin edges and counts over reference data.
//!
//! Built at image build time from the sample (or a training data file), together with the model's
//! predictions on the same rows, and stored in the image config; the monitoring runtime folds live
//! traffic into the same bins.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most categories a categorical feature keeps; rarer ones share the [`OTHER`] bin.
pub const MAX_CATEGORIES: usize = 50;

/// The label of the bin for categories outside a categorical feature's list.
pub const OTHER: &str = "__other__";

/// Reference distributions of a model's features and of its predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Rows the baseline was computed from.
    pub rows: usize,
    /// Where the rows came from (`sample` or a file name).
    pub source: String,
    /// One entry per input feature (data column), in column order.
    pub features: Vec<FeatureBaseline>,
    /// One entry per tabular output column: the model's predictions on the same rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predictions: Vec<FeatureBaseline>,
}

/// How a feature is binned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// Numbers, in quantile bins.
    #[default]
    Numeric,
    /// Labels (strings, booleans, class ids), one bin per category plus [`OTHER`].
    Categorical,
}

/// One feature's reference distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureBaseline {
    /// Feature (column) name.
    pub name: String,
    /// Numeric or categorical.
    #[serde(default)]
    pub kind: FeatureKind,
    /// Numeric: interior bin edges, ascending: `edges.len() + 1` bins, the first and last
    /// open-ended. Categorical: empty.
    #[serde(default)]
    pub edges: Vec<f64>,
    /// Categorical: the category of each bin, the last one [`OTHER`]. Numeric: empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Reference counts per bin.
    pub counts: Vec<u64>,
    /// Smallest value seen (numeric features with at least one value).
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest value seen.
    #[serde(default)]
    pub max: Option<f64>,
    /// Values that were missing or not numbers.
    pub missing: u64,
}

/// The bin a value falls in for these interior edges (values equal to an edge go right).
pub fn bin_of(edges: &[f64], value: f64) -> usize {
    edges.partition_point(|&edge| edge <= value)
}

impl FeatureBaseline {
    /// Quantile bins (at most `bins`) over `values`; non-finite values count as missing.
    pub fn numeric(name: &str, values: impl IntoIterator<Item = Option<f64>>, bins: usize) -> Self {
        let bins = bins.max(2);
        let mut missing = 0u64;
        let mut values: Vec<f64> = values
            .into_iter()
            .filter_map(|v| {
                let v = v.filter(|v| v.is_finite());
                if v.is_none() {
                    missing += 1;
                }
                v
            })
            .collect();
        values.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = (1..bins)
            .filter_map(|i| {
                if values.is_empty() {
                    return None;
                }
                let q = i as f64 / bins as f64 * (values.len() - 1) as f64;
                let (lo, hi) = (q.floor() as usize, q.ceil() as usize);
                Some(values[lo] + (values[hi] - values[lo]) * (q - lo as f64))
            })
            .collect();
        edges.dedup();
        let mut counts = vec![0u64; edges.len() + 1];
        for &v in &values {
            counts[bin_of(&edges, v)] += 1;
        }
        FeatureBaseline {
            name: name.to_string(),
            kind: FeatureKind::Numeric,
            edges,
            categories: Vec::new(),
            counts,
            min: values.first().copied(),
            max: values.last().copied(),
            missing,
        }
    }

    /// Category frequencies: the [`MAX_CATEGORIES`] most frequent (ties by name), then [`OTHER`].
    pub fn categorical(name: &str, values: impl IntoIterator<Item = Option<String>>) -> Self {
        let mut missing = 0u64;
        let mut frequency: std::collections::BTreeMap<String, u64> = Default::default();
        for value in values {
            match value {
                Some(v) => *frequency.entry(v).or_default() += 1,
                None => missing += 1,
            }
        }
        let mut ranked: Vec<(String, u64)> = frequency.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let other: u64 = ranked.iter().skip(MAX_CATEGORIES).map(|c| c.1).sum();
        ranked.truncate(MAX_CATEGORIES);
        let (mut categories, mut counts): (Vec<String>, Vec<u64>) = ranked.into_iter().unzip();
        categories.push(OTHER.to_string());
        counts.push(other);
        FeatureBaseline {
            name: name.to_string(),
            kind: FeatureKind::Categorical,
            edges: Vec::new(),
            categories,
            counts,
            min: None,
            max: None,
            missing,
        }
    }

    /// Values counted over every bin.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A cell as a category label: strings as they are, booleans and numbers as JSON writes them.
pub fn category_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Baseline {
    /// One feature per column: categorical when a cell holds a string or a boolean, numeric
    /// (at most `bins` quantile bins) otherwise.
    pub fn from_table(columns: &[String], rows: &[Vec<Value>], bins: usize, source: &str) -> Self {
        let features = columns
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let cells = || rows.iter().map(move |r| r.get(c).unwrap_or(&Value::Null));
                if cells().any(|v| v.is_string() || v.is_boolean()) {
                    FeatureBaseline::categorical(name, cells().map(category_of))
                } else {
                    FeatureBaseline::numeric(name, cells().map(Value::as_f64), bins)
                }
            })
            .collect();
        Baseline {
            rows: rows.len(),
            source: source.to_string(),
            features,
            predictions: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_bins_split_the_reference_evenly() {
        let rows: Vec<Vec<Value>> = (0..100)
            .map(|i| {
                vec![
                    Value::from(i),
                    if i % 10 == 0 {
                        Value::Null
                    } else {
                        Value::from(1.0)
                    },
                    Value::from(if i % 4 == 0 { "red" } else { "blue" }),
                ]
            })
            .collect();
        let columns = ["x".into(), "constant".into(), "colour".into()];
        let b = Baseline::from_table(&columns, &rows, 4, "sample");
        let x = &b.features[0];
        assert_eq!(x.edges, vec![24.75, 49.5, 74.25]);
        assert_eq!(x.counts, vec![25, 25, 25, 25]);
        assert_eq!((x.min, x.max, x.missing), (Some(0.0), Some(99.0), 0));
        let c = &b.features[1];
        assert_eq!(c.edges, vec![1.0], "equal quantiles collapse into one edge");
        assert_eq!(c.counts, vec![0, 90]);
        assert_eq!(c.missing, 10);
        assert_eq!(bin_of(&x.edges, -5.0), 0);
        assert_eq!(bin_of(&x.edges, 1e9), 3);
        let colour = &b.features[2];
        assert_eq!(colour.kind, FeatureKind::Categorical);
        assert_eq!(colour.categories, vec!["blue", "red", OTHER]);
        assert_eq!(colour.counts, vec![75, 25, 0]);
        let json = serde_json::to_string(&b).expect("json");
        assert_eq!(serde_json::from_str::<Baseline>(&json).expect("parse"), b);
    }

    #[test]
    fn an_empty_column_has_no_bounds_and_round_trips() {
        let b = Baseline::from_table(&["x".into()], &[vec![Value::Null]], 10, "sample");
        assert_eq!((b.features[0].min, b.features[0].missing), (None, 1));
        let json = serde_json::to_string(&b).expect("json");
        assert_eq!(serde_json::from_str::<Baseline>(&json).expect("parse"), b);
    }

    #[test]
    fn rare_categories_share_the_other_bin() {
        let values = (0..60).map(|i| Some(format!("c{i:02}")));
        let f = FeatureBaseline::categorical("c", values.chain([Some("c00".into())]));
        assert_eq!(f.categories.len(), MAX_CATEGORIES + 1);
        assert_eq!(f.categories[0], "c00");
        assert_eq!(f.counts[0], 2);
        assert_eq!(*f.counts.last().expect("other"), 10);
    }
}

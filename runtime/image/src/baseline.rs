//! The drift baseline: per-feature quantile bin edges and counts over reference data.
//!
//! Built at image build time from the sample (or a training data file) and stored in the image
//! config; the monitoring runtime folds live traffic into the same bins.

use serde::{Deserialize, Serialize};

/// Reference distributions of a model's features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Rows the baseline was computed from.
    pub rows: usize,
    /// Where the rows came from (`sample` or a file name).
    pub source: String,
    /// One entry per feature, in column order.
    pub features: Vec<FeatureBaseline>,
}

/// One feature's reference distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureBaseline {
    /// Feature (column) name.
    pub name: String,
    /// Interior bin edges, ascending: `edges.len() + 1` bins, the first and last open-ended.
    pub edges: Vec<f64>,
    /// Reference counts per bin.
    pub counts: Vec<u64>,
    /// Smallest and largest value seen.
    pub min: f64,
    /// Largest value seen.
    pub max: f64,
    /// Values that were missing or not numbers.
    pub missing: u64,
}

/// The bin a value falls in for these interior edges (values equal to an edge go right).
pub fn bin_of(edges: &[f64], value: f64) -> usize {
    edges.partition_point(|&edge| edge <= value)
}

impl Baseline {
    /// Computes quantile bins (at most `bins` per feature) over numeric columns.
    pub fn from_columns(
        columns: &[String],
        rows: &[Vec<Option<f64>>],
        bins: usize,
        source: &str,
    ) -> Baseline {
        let bins = bins.max(2);
        let features = columns
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let mut values: Vec<f64> = rows
                    .iter()
                    .filter_map(|r| r.get(c).copied().flatten())
                    .filter(|v| v.is_finite())
                    .collect();
                let missing = (rows.len() - values.len()) as u64;
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
                    name: name.clone(),
                    edges,
                    counts,
                    min: values.first().copied().unwrap_or(f64::NAN),
                    max: values.last().copied().unwrap_or(f64::NAN),
                    missing,
                }
            })
            .collect();
        Baseline {
            rows: rows.len(),
            source: source.to_string(),
            features,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_bins_split_the_reference_evenly() {
        let rows: Vec<Vec<Option<f64>>> = (0..100)
            .map(|i| vec![Some(i as f64), if i % 10 == 0 { None } else { Some(1.0) }])
            .collect();
        let b = Baseline::from_columns(&["x".into(), "constant".into()], &rows, 4, "sample");
        let x = &b.features[0];
        assert_eq!(x.edges, vec![24.75, 49.5, 74.25]);
        assert_eq!(x.counts, vec![25, 25, 25, 25]);
        assert_eq!((x.min, x.max, x.missing), (0.0, 99.0, 0));
        let c = &b.features[1];
        assert_eq!(c.edges, vec![1.0], "equal quantiles collapse into one edge");
        assert_eq!(c.counts, vec![0, 90]);
        assert_eq!(c.missing, 10);
        assert_eq!(bin_of(&x.edges, -5.0), 0);
        assert_eq!(bin_of(&x.edges, 1e9), 3);
    }
}

//! Which values of a request are monitored, and on which bins: the baseline's features mapped
//! onto the model's tensors.

use kiln_engine::{Datatype, ModelMetadata, TensorSpec};
use kiln_image::{Baseline, FeatureBaseline};

/// Whether a feature is a model input or a prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A model input.
    Input,
    /// A model output.
    Output,
}

impl Role {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Output => "output",
        }
    }
}

/// One monitored feature: a column of a tensor, with its reference.
#[derive(Clone, Debug)]
pub struct Slot {
    /// Input or output.
    pub role: Role,
    /// Index of the tensor among the model's inputs (or outputs), in metadata order.
    pub tensor: usize,
    /// Column within a row of that tensor.
    pub column: usize,
    /// Elements per row of that tensor.
    pub width: usize,
    /// The reference distribution.
    pub baseline: FeatureBaseline,
    /// Category lookup (categorical features).
    pub categories: Categories,
    /// Index of this feature's first counter in the sketch.
    pub offset: usize,
}

impl Slot {
    /// Bins of this feature.
    pub fn bins(&self) -> usize {
        self.baseline.counts.len()
    }
}

/// Counters after a feature's bins: missing, NaN and out-of-range values.
pub const QUALITY: usize = 3;
/// Index of the missing counter after the bins.
pub const MISSING: usize = 0;
/// Index of the NaN counter after the bins.
pub const NAN: usize = 1;
/// Index of the out-of-range counter after the bins.
pub const OUT_OF_RANGE: usize = 2;

/// Category labels of a categorical feature, by the forms a tensor element takes.
#[derive(Clone, Debug, Default)]
pub struct Categories {
    /// Byte-string labels, sorted, with their bin.
    pub bytes: Vec<(Vec<u8>, usize)>,
    /// Integer labels (booleans as 0 and 1), sorted, with their bin.
    pub ints: Vec<(i64, usize)>,
    /// The bin of unlisted categories.
    pub other: usize,
}

impl Categories {
    fn new(baseline: &FeatureBaseline) -> Self {
        let other = baseline.counts.len().saturating_sub(1);
        let listed = || {
            baseline
                .categories
                .iter()
                .enumerate()
                .filter(|(_, c)| c.as_str() != kiln_image::OTHER)
        };
        let mut bytes: Vec<(Vec<u8>, usize)> =
            listed().map(|(i, c)| (c.as_bytes().to_vec(), i)).collect();
        bytes.sort();
        let mut ints: Vec<(i64, usize)> = listed()
            .filter_map(|(i, c)| {
                let v = match c.as_str() {
                    "true" => 1,
                    "false" => 0,
                    text => text.parse::<i64>().ok()?,
                };
                Some((v, i))
            })
            .collect();
        ints.sort();
        Categories { bytes, ints, other }
    }

    /// The bin of an integer (or boolean) label, and whether it is listed.
    pub fn of_int(&self, value: i64) -> (usize, bool) {
        match self.ints.binary_search_by_key(&value, |c| c.0) {
            Ok(i) => (self.ints[i].1, true),
            Err(_) => (self.other, false),
        }
    }

    /// The bin of a byte-string label, and whether it is listed.
    pub fn of_bytes(&self, value: &[u8]) -> (usize, bool) {
        match self.bytes.binary_search_by(|c| c.0.as_slice().cmp(value)) {
            Ok(i) => (self.bytes[i].1, true),
            Err(_) => (self.other, false),
        }
    }
}

/// A wide input tensor (an image, an embedding): summary statistics only.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Index among the model's inputs.
    pub tensor: usize,
    /// Tensor name.
    pub name: String,
}

/// What a deployment version monitors.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Monitored features, inputs first.
    pub slots: Vec<Slot>,
    /// Wide numeric inputs, summarized.
    pub summaries: Vec<Summary>,
    /// Features of the baseline (or outputs) not monitored, with why.
    pub unmonitored: Vec<(String, String)>,
    /// Counters in the sketch.
    pub counters: usize,
}

/// Most columns a rank-2 tensor may have to count as tabular (one feature per column).
pub const MAX_TABULAR_WIDTH: usize = 64;

/// The feature names of a tabular tensor (`[-1]`, `[-1, k]` with `k` fixed and small), one
/// per column: `name` for one column, `name[i]` for several. `None` for wide tensors.
pub fn tabular_columns(spec: &TensorSpec) -> Option<Vec<String>> {
    match spec.shape.as_slice() {
        [_] | [_, 1] => Some(vec![spec.name.clone()]),
        [_, k] if *k > 1 && (*k as usize) <= MAX_TABULAR_WIDTH => Some(
            (0..*k)
                .map(|i| format!("{}[{i}]", spec.name))
                .collect::<Vec<_>>(),
        ),
        _ => None,
    }
}

/// Whether a datatype's values are labels (binned by category) rather than numbers, for outputs.
pub fn is_label(datatype: Datatype) -> bool {
    !matches!(datatype, Datatype::Fp16 | Datatype::Fp32 | Datatype::Fp64)
}

impl Plan {
    /// Maps `baseline` onto `metadata`, keeping at most `max_features` features.
    pub fn new(metadata: &ModelMetadata, baseline: &Baseline, max_features: usize) -> Plan {
        let mut plan = Plan::default();
        let add = |plan: &mut Plan,
                   role: Role,
                   tensor: usize,
                   column: usize,
                   width: usize,
                   fb: &FeatureBaseline| {
            let datatype = match role {
                Role::Input => metadata.inputs[tensor].datatype,
                Role::Output => metadata.outputs[tensor].datatype,
            };
            let fb = &at_precision(fb, datatype);
            if plan.slots.len() >= max_features {
                plan.unmonitored.push((
                    fb.name.clone(),
                    format!("over the limit of {max_features} monitored features"),
                ));
                return;
            }
            let offset = plan.counters;
            plan.counters += fb.counts.len() + QUALITY;
            plan.slots.push(Slot {
                role,
                tensor,
                column,
                width,
                categories: Categories::new(fb),
                baseline: fb.clone(),
                offset,
            });
        };
        // Inputs: a column per input named like it, or the columns of the one tabular input as
        // wide as the baseline.
        let inputs = &metadata.inputs;
        let by_name = !baseline.features.is_empty()
            && baseline
                .features
                .iter()
                .all(|f| inputs.iter().any(|s| s.name == f.name));
        if by_name {
            for fb in &baseline.features {
                let (index, spec) = inputs
                    .iter()
                    .enumerate()
                    .find(|(_, s)| s.name == fb.name)
                    .expect("matched by name above");
                match tabular_columns(spec) {
                    Some(columns) if columns.len() == 1 => {
                        add(&mut plan, Role::Input, index, 0, 1, fb)
                    }
                    _ => plan
                        .unmonitored
                        .push((fb.name.clone(), "its input is not one column".into())),
                }
            }
        } else if let [(index, width)] = inputs
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| Some((i, tabular_columns(spec)?.len())))
            .filter(|(_, width)| *width == baseline.features.len())
            .collect::<Vec<_>>()
            .as_slice()
        {
            // The one tabular input with a column per baseline feature.
            for (column, fb) in baseline.features.iter().enumerate() {
                add(&mut plan, Role::Input, *index, column, *width, fb);
            }
        } else {
            for fb in &baseline.features {
                plan.unmonitored.push((
                    fb.name.clone(),
                    "the baseline's columns do not map onto the model's inputs".into(),
                ));
            }
        }
        for (index, spec) in inputs.iter().enumerate() {
            if tabular_columns(spec).is_none() && !is_label(spec.datatype) {
                plan.summaries.push(Summary {
                    tensor: index,
                    name: spec.name.clone(),
                });
            }
        }
        // Outputs: every column of a tabular output that the baseline's predictions describe.
        for (index, spec) in metadata.outputs.iter().enumerate() {
            let Some(columns) = tabular_columns(spec) else {
                continue;
            };
            for (column, name) in columns.iter().enumerate() {
                match baseline.predictions.iter().find(|p| &p.name == name) {
                    Some(fb) => add(&mut plan, Role::Output, index, column, columns.len(), fb),
                    None => plan
                        .unmonitored
                        .push((name.clone(), "no prediction baseline".into())),
                }
            }
        }
        plan
    }

    /// Whether nothing is monitored.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.summaries.is_empty()
    }
}

/// The baseline with its bin edges and bounds rounded to the tensor's precision, so that a
/// reference value equal to an edge, sent as FP32, still falls in the bin it was counted in.
fn at_precision(fb: &FeatureBaseline, datatype: Datatype) -> FeatureBaseline {
    let round: fn(f64) -> f64 = match datatype {
        Datatype::Fp32 => |v| f64::from(v as f32),
        _ => |v| v,
    };
    let mut fb = fb.clone();
    fb.edges.iter_mut().for_each(|e| *e = round(*e));
    fb.min = fb.min.map(round);
    fb.max = fb.max.map(round);
    fb
}

/// Prediction baselines from the outputs a model gave on the baseline rows: one feature per
/// column of each tabular output, categorical for labels, `bins` quantile bins for numbers.
pub fn prediction_baseline(
    metadata: &ModelMetadata,
    outputs: &[Vec<kiln_engine::Tensor>],
    bins: usize,
) -> Vec<FeatureBaseline> {
    let mut features = Vec::new();
    for spec in &metadata.outputs {
        let Some(columns) = tabular_columns(spec) else {
            continue;
        };
        let width = columns.len();
        for (column, name) in columns.iter().enumerate() {
            let tensors = || {
                outputs
                    .iter()
                    .filter_map(|batch| batch.iter().find(|t| t.name == spec.name))
            };
            if is_label(spec.datatype) {
                let values = tensors().flat_map(|t| {
                    crate::values::labels(&t.data)
                        .into_iter()
                        .skip(column)
                        .step_by(width)
                        .map(Some)
                        .collect::<Vec<_>>()
                });
                features.push(FeatureBaseline::categorical(name, values));
            } else {
                let values = tensors().flat_map(|t| {
                    crate::values::numbers(&t.data)
                        .into_iter()
                        .skip(column)
                        .step_by(width)
                        .map(Some)
                        .collect::<Vec<_>>()
                });
                features.push(FeatureBaseline::numeric(name, values, bins));
            }
        }
    }
    features
}

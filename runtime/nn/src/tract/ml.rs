//! ONNX-ML operators tract 0.23 does not register, added to its operator register:
//! `TreeEnsembleRegressor` (random forests, gradient boosting and decision trees for regression
//! from skl2onnx) over tract's own tree evaluator, and `Scaler` (`StandardScaler` and friends in
//! a scikit-learn pipeline) as `(X - offset) * scale`.
//!
//! The tree parsing follows tract's `TreeEnsembleClassifier` (tract-onnx, MIT OR Apache-2.0),
//! which keeps it private; it reads the ONNX spec's `aggregate_function` attribute.

use std::iter;
use tract_onnx::Onnx;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::pb_helpers::AttrTVecType;
use tract_onnx::tract_hir::internal::*;
use tract_onnx_opl::ml::tree::{Aggregate, Cmp, TreeEnsemble, TreeEnsembleData};
use tract_onnx_opl::ml::tree_ensemble_classifier::TreeEnsembleClassifier as TreeScores;

/// Adds the operators to the parser's register.
pub fn register(onnx: &mut Onnx) {
    onnx.op_register
        .insert("TreeEnsembleRegressor", tree_regressor);
    onnx.op_register.insert("Scaler", scaler);
}

/// `TreeEnsembleRegressor`: per row, the aggregate of each target's leaf weights over the trees,
/// plus `base_values`.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct TreeEnsembleRegressor {
    ensemble: TreeEnsemble,
    base_values: Option<Arc<Tensor>>,
}

fn tree_regressor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let post_transform: &str = node.get_attr_opt("post_transform")?.unwrap_or("NONE");
    node.expect_attr("post_transform", post_transform == "NONE", || {
        format!("NONE (Kiln serves regressors without a post transform), got {post_transform}")
    })?;
    let ensemble = parse_trees(node)?;
    let base_values =
        vec_attr_opt::<f32>(node, "base_values", ensemble.n_classes())?.map(|v| rctensor1(&v));
    Ok((
        expand(TreeEnsembleRegressor {
            ensemble,
            base_values,
        }),
        vec![],
    ))
}

impl Expansion for TreeEnsembleRegressor {
    fn name(&self) -> StaticName {
        "TreeEnsembleRegressor".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], self.ensemble.n_classes().to_dim())?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let mut x = inputs[0];
        if model.outlet_fact(x)?.rank() == 1 {
            x = model.wire_node(format!("{prefix}.add_batch_axis"), AxisOp::Add(0), &[x])?[0];
        }
        let mut scores = model.wire_node(
            format!("{prefix}.trees"),
            TreeScores {
                ensemble: self.ensemble.clone(),
            },
            &[x],
        )?;
        if let Some(base) = self.base_values.as_deref() {
            let base = base.clone().broadcast_into_rank(2)?.into_arc_tensor();
            let base = model.add_const(format!("{prefix}.base_values"), base)?;
            scores = model.wire_node(
                format!("{prefix}.add_base"),
                tract_core::ops::math::add(),
                &[scores[0], base],
            )?;
        }
        Ok(scores)
    }
}

/// The trees of a regressor: `nodes_*` describe the splits, `target_*` the leaves' weights.
fn parse_trees(node: &NodeProto) -> TractResult<TreeEnsemble> {
    let n_targets: usize = node.get_attr("n_targets")?;
    let n_nodes = node.get_attr_slice::<i64>("nodes_featureids")?.len();
    node.expect_attr("nodes_featureids", n_nodes != 0, "at least one node")?;
    let node_ids = vec_attr::<usize>(node, "nodes_nodeids", n_nodes)?;
    let tree_ids = vec_attr::<usize>(node, "nodes_treeids", n_nodes)?;
    let feature_ids = vec_attr::<usize>(node, "nodes_featureids", n_nodes)?;
    let true_ids = vec_attr::<usize>(node, "nodes_truenodeids", n_nodes)?;
    let false_ids = vec_attr::<usize>(node, "nodes_falsenodeids", n_nodes)?;
    let values = vec_attr::<f32>(node, "nodes_values", n_nodes)?;
    let nan_is_true = vec_attr_opt::<bool>(node, "nodes_missing_value_tracks_true", n_nodes)?
        .unwrap_or_else(|| iter::repeat_n(false, n_nodes).collect());
    let modes: Vec<Option<Cmp>> = vec_attr::<&str>(node, "nodes_modes", n_nodes)?
        .iter()
        .map(|s| node_mode(s))
        .collect::<TractResult<_>>()?;
    let aggregate = match node
        .get_attr_opt::<&str>("aggregate_function")?
        .unwrap_or("SUM")
    {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Avg,
        // tract starts every total at 0, which is wrong for MIN and MAX of negative weights.
        other => bail!("aggregate_function {other} is not supported (SUM and AVERAGE are)"),
    };

    let n_leaves = node.get_attr_slice::<i64>("target_ids")?.len();
    node.expect_attr("target_ids", n_leaves != 0, "at least one leaf")?;
    let leaf_node_ids = vec_attr::<usize>(node, "target_nodeids", n_leaves)?;
    let leaf_tree_ids = vec_attr::<usize>(node, "target_treeids", n_leaves)?;
    let leaf_targets = vec_attr::<usize>(node, "target_ids", n_leaves)?;
    let leaf_weights = vec_attr::<f32>(node, "target_weights", n_leaves)?;
    node.expect_attr(
        "target_ids",
        leaf_targets.iter().all(|&t| t < n_targets),
        "every target id below n_targets",
    )?;

    for (attr, ids) in [
        ("nodes_treeids", &tree_ids),
        ("target_treeids", &leaf_tree_ids),
    ] {
        let by_one = ids.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1);
        node.expect_attr(
            attr,
            ids[0] == 0 && by_one,
            "tree ids from 0, increasing by 1",
        )?;
    }
    let n_trees = tree_ids[n_nodes - 1] + 1;
    node.expect(
        leaf_tree_ids.last() == Some(&(n_trees - 1)),
        "as many trees in the nodes as in the leaves",
    )?;

    let mut node_order: Vec<usize> = (0..n_nodes).collect();
    node_order.sort_by_key(|&ix| (tree_ids[ix], node_ids[ix]));
    // tract follows child ids without bounds checks: each tree's node ids must be 0, 1, 2, ...
    // and every child one of them.
    let mut sizes = vec![0usize; n_trees];
    for &ix in &node_order {
        node.expect_attr("nodes_nodeids", node_ids[ix] == sizes[tree_ids[ix]], || {
            format!("tree {}: node ids 0, 1, 2, ...", tree_ids[ix])
        })?;
        sizes[tree_ids[ix]] += 1;
    }
    for ix in 0..n_nodes {
        let size = sizes[tree_ids[ix]];
        node.expect_attr(
            "nodes_truenodeids",
            modes[ix].is_none() || (true_ids[ix] < size && false_ids[ix] < size),
            || format!("tree {}: children among its {size} nodes", tree_ids[ix]),
        )?;
    }
    let mut leaf_order: Vec<usize> = (0..n_leaves).collect();
    leaf_order.sort_by_key(|&ix| (leaf_tree_ids[ix], leaf_node_ids[ix]));

    // tract's layout: per tree its first row; per node [feature, true row, false row, value
    // bits, nan flag | mode], or for a leaf [first leaf entry, end]; per leaf entry
    // [target, weight bits].
    let mut trees: Vec<u32> = vec![];
    let mut nodes: Vec<u32> = vec![];
    let mut leaves: Vec<u32> = vec![];
    let mut current_tree = None;
    let mut next_leaf = 0;
    for n in node_order {
        if Some(tree_ids[n]) != current_tree {
            current_tree = Some(tree_ids[n]);
            trees.push(nodes.len() as u32 / 5);
        }
        let first_row = trees.last().copied().unwrap_or(0);
        let row = match modes[n] {
            Some(mode) => [
                feature_ids[n] as u32,
                true_ids[n] as u32 + first_row,
                false_ids[n] as u32 + first_row,
                values[n].to_bits(),
                (0x0100u32 * nan_is_true[n] as u32) | mode as u32,
            ],
            None => {
                let first = leaves.len() as u32 / 2;
                while next_leaf < n_leaves
                    && leaf_tree_ids[leaf_order[next_leaf]] == tree_ids[n]
                    && leaf_node_ids[leaf_order[next_leaf]] == node_ids[n]
                {
                    let leaf = leaf_order[next_leaf];
                    leaves.push(leaf_targets[leaf] as u32);
                    leaves.push(leaf_weights[leaf].to_bits());
                    next_leaf += 1;
                }
                [first, leaves.len() as u32 / 2, 0, 0, 0]
            }
        };
        nodes.extend(row);
    }
    let data = TreeEnsembleData {
        trees: rctensor1(&trees),
        nodes: tensor1(&nodes)
            .into_shape(&[nodes.len() / 5, 5])?
            .into_arc_tensor(),
        leaves: tensor1(&leaves)
            .into_shape(&[leaves.len() / 2, 2])?
            .into_arc_tensor(),
    };
    let max_feature = feature_ids.iter().max().copied().unwrap_or(0);
    TreeEnsemble::build(data, max_feature, n_targets, aggregate)
}

fn node_mode(s: &str) -> TractResult<Option<Cmp>> {
    Ok(Some(match s {
        "BRANCH_LEQ" => Cmp::LessEqual,
        "BRANCH_LT" => Cmp::Less,
        "BRANCH_GTE" => Cmp::GreaterEqual,
        "BRANCH_GT" => Cmp::Greater,
        "BRANCH_EQ" => Cmp::Equal,
        "BRANCH_NEQ" => Cmp::NotEqual,
        "LEAF" => return Ok(None),
        _ => bail!("unsupported tree node mode {s}"),
    }))
}

fn vec_attr<'a, T: AttrTVecType<'a>>(
    node: &'a NodeProto,
    attr: &str,
    n: usize,
) -> TractResult<Vec<T>> {
    let vec = node.get_attr_vec(attr)?;
    node.expect_attr(attr, vec.len() == n, || {
        format!("length {n}, got {}", vec.len())
    })?;
    Ok(vec)
}

fn vec_attr_opt<'a, T: AttrTVecType<'a>>(
    node: &'a NodeProto,
    attr: &str,
    n: usize,
) -> TractResult<Option<Vec<T>>> {
    match node.get_attr_opt_vec(attr)? {
        Some(vec) => {
            node.expect_attr(attr, vec.len() == n, || {
                format!("length {n}, got {}", vec.len())
            })?;
            Ok(Some(vec))
        }
        None => Ok(None),
    }
}

/// `Scaler`: `(X - offset) * scale` along the last axis, as floats.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Scaler {
    offset: Arc<Tensor>,
    scale: Arc<Tensor>,
}

fn scaler(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let offset: Vec<f32> = node
        .get_attr_opt_vec("offset")?
        .unwrap_or_else(|| vec![0.0]);
    let scale: Vec<f32> = node.get_attr_opt_vec("scale")?.unwrap_or_else(|| vec![1.0]);
    node.expect_attr("offset", !offset.is_empty(), "at least one value")?;
    node.expect_attr("scale", !scale.is_empty(), "at least one value")?;
    Ok((
        expand(Scaler {
            offset: rctensor1(&offset),
            scale: rctensor1(&scale),
        }),
        vec![],
    ))
}

impl Expansion for Scaler {
    fn name(&self) -> StaticName {
        "Scaler".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let fact = model.outlet_fact(inputs[0])?.clone();
        let rank = fact.rank();
        ensure!(rank >= 1, "Scaler takes a tensor of rank 1 or more");
        let features = &fact.shape[rank - 1];
        for (attr, values) in [("offset", &self.offset), ("scale", &self.scale)] {
            ensure!(
                values.len() == 1 || features.to_usize().ok() == Some(values.len()),
                "Scaler's {attr} has {} values for {features} features",
                values.len()
            );
        }
        let mut x = inputs[0];
        if fact.datum_type != f32::datum_type() {
            x = model.wire_node(
                format!("{prefix}.to_f32"),
                tract_core::ops::cast::cast(f32::datum_type()),
                &[x],
            )?[0];
        }
        let offset = Tensor::clone(&self.offset)
            .broadcast_into_rank(rank)?
            .into_arc_tensor();
        let offset = model.add_const(format!("{prefix}.offset"), offset)?;
        let scale = Tensor::clone(&self.scale)
            .broadcast_into_rank(rank)?
            .into_arc_tensor();
        let scale = model.add_const(format!("{prefix}.scale"), scale)?;
        let centred = model.wire_node(
            format!("{prefix}.sub"),
            tract_core::ops::math::sub(),
            &[x, offset],
        )?;
        model.wire_node(
            format!("{prefix}.mul"),
            tract_core::ops::math::mul(),
            &[centred[0], scale],
        )
    }
}

//! From ONNX bytes to an optimized tract plan: decoding, the operator check, the rewrites of
//! operators tract lacks into ones it has, and the input facts with a variable batch.

use super::Spec;
use super::tensors::datatype_of;
use crate::NnSpec;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// A model ready to run.
pub struct Loaded {
    pub plan: Arc<TypedRunnableModel>,
    pub inputs: Vec<Spec>,
    pub outputs: Vec<Spec>,
}

/// Why a graph cannot be loaded: it is not a readable graph, or tract cannot (or should not)
/// run it.
pub enum LoadError {
    Invalid(String),
    Unsupported(String),
}

impl From<String> for LoadError {
    fn from(message: String) -> Self {
        LoadError::Invalid(message)
    }
}

impl From<&str> for LoadError {
    fn from(message: &str) -> Self {
        LoadError::Invalid(message.to_string())
    }
}

/// Operators tract runs, but hundreds of times slower than ONNX Runtime (measured on a
/// 100-tree forest: 2,353 us against 4.0 us for one row).
const SLOW: &[&str] = &["TreeEnsembleClassifier", "TreeEnsembleRegressor"];

/// Decodes, checks, rewrites and optimizes an ONNX model. Tree ensembles are refused unless
/// `allow_slow`.
pub fn load(bytes: &[u8], allow_slow: bool) -> Result<Loaded, LoadError> {
    let mut onnx = tract_onnx::onnx();
    super::ml::register(&mut onnx);
    let mut proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| format!("not a readable ONNX model (truncated or corrupt?): {e:#}"))?;
    let graph = proto
        .graph
        .as_mut()
        .ok_or("not an ONNX model: it has no graph")?;
    if graph.node.is_empty() && graph.output.is_empty() {
        return Err("not an ONNX model: its graph is empty".into());
    }
    check_operators(&onnx, graph).map_err(LoadError::Unsupported)?;
    if !allow_slow
        && let Some(slow) = graph
            .node
            .iter()
            .find(|n| SLOW.contains(&n.op_type.as_str()))
    {
        return Err(LoadError::Unsupported(format!(
            "tract runs {} hundreds of times slower than ONNX Runtime: install ONNX Runtime \
             (sdk/install-onnxruntime, or KILN_ONNXRUNTIME=PATH/libonnxruntime.so), or force \
             the tract backend (--nn-backend tract)",
            slow.op_type
        )));
    }
    rewrite_array_feature_extractor(graph);
    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let sources: Vec<pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(&i.name.as_str()))
        .cloned()
        .collect();
    let output_names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();

    let mut model = onnx
        .model_for_proto_model(&proto)
        .map_err(|e| format!("cannot translate the ONNX graph: {e:#}"))?;
    let batch = model.symbols.sym("batch");
    let mut inputs = Vec::with_capacity(sources.len());
    for (ix, source) in sources.iter().enumerate() {
        let (datum, dims) = input_type(source)?;
        let shape: Vec<TDim> = dims
            .iter()
            .enumerate()
            .map(|(axis, d)| match d {
                Some(n) => TDim::from(*n),
                None if axis == 0 => TDim::from(batch.clone()),
                None => TDim::from(model.symbols.sym(&format!("{}_{axis}", source.name))),
            })
            .collect();
        model
            .set_input_fact(ix, InferenceFact::dt_shape(datum, shape))
            .map_err(|e| format!("input '{}': {e:#}", source.name))?;
        inputs.push(Spec {
            datum,
            nn: NnSpec {
                name: source.name.clone(),
                ty: datatype_of(datum).ok_or_else(|| {
                    LoadError::Unsupported(format!("input '{}' has type {datum:?}", source.name))
                })?,
                shape: dims.iter().map(|d| d.map_or(-1, |n| n as i64)).collect(),
            },
        });
    }
    let typed = model
        .into_optimized()
        .map_err(|e| format!("cannot plan the model: {e:#}"))?;
    let mut outputs = Vec::with_capacity(output_names.len());
    for (ix, name) in output_names.iter().enumerate() {
        let fact = typed
            .output_fact(ix)
            .map_err(|e| format!("output '{name}': {e:#}"))?;
        outputs.push(Spec {
            datum: fact.datum_type,
            nn: NnSpec {
                name: name.clone(),
                ty: datatype_of(fact.datum_type).ok_or_else(|| {
                    LoadError::Unsupported(format!(
                        "output '{name}' has type {:?}, which no Open Inference Protocol datatype holds",
                        fact.datum_type
                    ))
                })?,
                shape: fact
                    .shape
                    .dims()
                    .iter()
                    .map(|d| d.as_i64().unwrap_or(-1))
                    .collect(),
            },
        });
    }
    let plan = typed
        .into_runnable()
        .map_err(|e| format!("cannot plan the model: {e:#}"))?;
    Ok(Loaded {
        plan,
        inputs,
        outputs,
    })
}

/// Operators Kiln rewrites into ones tract has before parsing.
const REWRITTEN: &[&str] = &["ArrayFeatureExtractor"];

/// Fails with every operator of the graph that tract cannot run, named with its domain.
fn check_operators(onnx: &tract_onnx::Onnx, graph: &pb::GraphProto) -> Result<(), String> {
    let mut missing: Vec<String> = Vec::new();
    for node in &graph.node {
        let known =
            onnx.op_register.0.contains_key(&node.op_type) || REWRITTEN.contains(&&*node.op_type);
        let domain = if node.domain.is_empty() {
            "ai.onnx"
        } else {
            &node.domain
        };
        let named = format!("{} ({domain})", node.op_type);
        if !known && !missing.contains(&named) {
            missing.push(named);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let hint = if missing.iter().any(|m| m.starts_with("ZipMap ")) {
        "; export classifiers without ZipMap (skl2onnx: options={'zipmap': False})"
    } else {
        ""
    };
    Err(format!(
        "unsupported ONNX operator{}: {}{hint}",
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", ")
    ))
}

/// `ArrayFeatureExtractor(X, Y)` (ai.onnx.ml) picks elements of X's last axis at the indices in
/// Y: the same as `Gather(X, Reshape(Y, [-1]), axis=-1)`, reshaped to `[1, n]` when X is a
/// vector (as onnxruntime does). skl2onnx emits it to map a classifier's argmax to its labels.
fn rewrite_array_feature_extractor(graph: &mut pb::GraphProto) {
    let rank_of = |graph: &pb::GraphProto, name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.dims.len())
    };
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut constants = Vec::new();
    for (ix, node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        if node.op_type != "ArrayFeatureExtractor" || node.input.len() != 2 {
            nodes.push(node);
            continue;
        }
        let prefix = format!("kiln_afe_{ix}");
        let flat_shape = format!("{prefix}_flat_shape");
        let flat = format!("{prefix}_indices");
        constants.push(int64_vector(&flat_shape, &[-1]));
        nodes.push(simple_node(
            &format!("{prefix}_reshape"),
            "Reshape",
            &[&node.input[1], &flat_shape],
            &flat,
            vec![],
        ));
        let vector = rank_of(graph, &node.input[0]) == Some(1);
        let gathered = if vector {
            format!("{prefix}_gathered")
        } else {
            node.output[0].clone()
        };
        let axis = pb::AttributeProto {
            name: "axis".into(),
            r#type: pb::attribute_proto::AttributeType::Int as i32,
            i: -1,
            ..Default::default()
        };
        nodes.push(simple_node(
            &format!("{prefix}_gather"),
            "Gather",
            &[&node.input[0], &flat],
            &gathered,
            vec![axis],
        ));
        if vector {
            let row_shape = format!("{prefix}_row_shape");
            constants.push(int64_vector(&row_shape, &[1, -1]));
            nodes.push(simple_node(
                &format!("{prefix}_row"),
                "Reshape",
                &[&gathered, &row_shape],
                &node.output[0],
                vec![],
            ));
        }
    }
    graph.node = nodes;
    graph.initializer.extend(constants);
}

fn simple_node(
    name: &str,
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn int64_vector(name: &str, values: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![values.len() as i64],
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

/// An input's element type and dimensions (`None` where variable) from the graph.
fn input_type(input: &pb::ValueInfoProto) -> Result<(DatumType, Vec<Option<usize>>), String> {
    use pb::type_proto::Value;
    let tensor = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(Value::TensorType(t)) => t,
        _ => return Err(format!("input '{}' is not a tensor", input.name)),
    };
    let datum = pb::tensor_proto::DataType::try_from(tensor.elem_type)
        .ok()
        .and_then(|dt| DatumType::try_from(dt).ok())
        .ok_or_else(|| {
            format!(
                "input '{}' has ONNX element type {}, which Kiln does not serve",
                input.name, tensor.elem_type
            )
        })?;
    let shape = tensor
        .shape
        .as_ref()
        .ok_or_else(|| format!("input '{}' has no shape", input.name))?;
    let dims = shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) if n > 0 => {
                Some(n as usize)
            }
            _ => None,
        })
        .collect();
    Ok((datum, dims))
}

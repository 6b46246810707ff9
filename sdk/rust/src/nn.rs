//! Model graphs run natively on the host, for scorers whose manifest grants `nn`
//! (`capabilities = ["nn"]`): the component keeps the logic (pre- and post-processing, the
//! tensor contract), the host runs the graph with ONNX Runtime or tract.
//!
//! ```ignore
//! let graph = kiln_sdk::nn::Graph::load("model.onnx")?;   // the image's model file
//! let outputs = graph.compute(vec![Tensor::fp32("X", vec![1, 4], features)])?;
//! ```
//!
//! [`Graph::load`] asks for the graph by file name (`wasi:nn/graph.load-by-name`): the host
//! parses it once per deployment version and every instance shares it. [`Graph::compute`] takes
//! and returns Kiln tensors of every datatype (`kiln:scoring/graphs.compute`); the standard
//! `wasi:nn` execution context is there too, through [`Graph::raw`], for its own tensor types.

use crate::bindings::kiln::scoring::graphs;
use crate::bindings::wasi::nn::errors::{Error, ErrorCode};
use crate::bindings::wasi::nn::graph as wasi_graph;
pub use crate::bindings::wasi::nn::tensor::{Tensor as WasiTensor, TensorType};
use crate::{PredictError, Tensor, TensorSpec};

/// A graph loaded by the host.
pub struct Graph {
    graph: wasi_graph::Graph,
}

/// Why a graph call failed: the `wasi:nn` error code and the host's message.
#[derive(Debug, Clone)]
pub struct GraphError {
    /// The code.
    pub code: ErrorCode,
    /// What the host said.
    pub message: String,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for GraphError {
    fn from(error: Error) -> Self {
        GraphError {
            code: error.code(),
            message: error.data(),
        }
    }
}

impl From<GraphError> for PredictError {
    /// Inputs that do not fit the graph are the caller's fault (400); anything else is the
    /// model's (500).
    fn from(error: GraphError) -> Self {
        match error.code {
            ErrorCode::InvalidArgument => PredictError::InvalidInput(error.message),
            _ => PredictError::Internal(error.message),
        }
    }
}

impl From<GraphError> for String {
    fn from(error: GraphError) -> Self {
        error.message
    }
}

impl Graph {
    /// The graph in the image's model file `name` (for instance `model.onnx`).
    pub fn load(name: &str) -> Result<Graph, GraphError> {
        let graph = wasi_graph::load_by_name(name)?;
        Ok(Graph { graph })
    }

    /// Its inputs, in the graph's order: names, datatypes and shapes (-1 where variable).
    pub fn inputs(&self) -> Vec<TensorSpec> {
        graphs::inputs(&self.graph)
    }

    /// Its outputs, in the graph's order.
    pub fn outputs(&self) -> Vec<TensorSpec> {
        graphs::outputs(&self.graph)
    }

    /// The backend that runs it: `onnxruntime` or `tract`.
    pub fn backend(&self) -> String {
        graphs::backend(&self.graph)
    }

    /// Runs the graph on named inputs; returns every output, in the graph's order.
    pub fn compute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, GraphError> {
        Ok(graphs::compute(&self.graph, &inputs)?)
    }

    /// Runs the graph through the standard `wasi:nn` execution context, on its own tensor types
    /// (FP16/32/64, U8, I32, I64); returns the outputs by name.
    pub fn compute_wasi(
        &self,
        inputs: Vec<(String, WasiTensor)>,
    ) -> Result<Vec<(String, WasiTensor)>, GraphError> {
        let context = self.graph.init_execution_context()?;
        Ok(context.compute(inputs)?)
    }

    /// The standard `wasi:nn` graph, for its own execution context and tensors.
    pub fn raw(&self) -> &wasi_graph::Graph {
        &self.graph
    }
}

/// A `wasi:nn` FP32 tensor of `dimensions` (row-major, little-endian bytes).
pub fn fp32_tensor(dimensions: &[u32], values: &[f32]) -> WasiTensor {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    WasiTensor::new(dimensions, TensorType::Fp32, &bytes)
}

fn elements<const N: usize, T>(
    tensor: &WasiTensor,
    want: TensorType,
    from: fn([u8; N]) -> T,
) -> Result<Vec<T>, PredictError> {
    if tensor.ty() != want {
        return Err(PredictError::Internal(format!(
            "the graph gave a {:?} tensor where {want:?} was expected",
            tensor.ty()
        )));
    }
    let bytes = tensor.data();
    Ok(bytes
        .chunks_exact(N)
        .map(|c| {
            let mut array = [0u8; N];
            array.copy_from_slice(c);
            from(array)
        })
        .collect())
}

/// The elements of a `wasi:nn` FP32 tensor.
pub fn tensor_f32(tensor: &WasiTensor) -> Result<Vec<f32>, PredictError> {
    elements(tensor, TensorType::Fp32, f32::from_le_bytes)
}

/// The elements of a `wasi:nn` I64 tensor.
pub fn tensor_i64(tensor: &WasiTensor) -> Result<Vec<i64>, PredictError> {
    elements(tensor, TensorType::I64, i64::from_le_bytes)
}

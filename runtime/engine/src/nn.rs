//! `wasi:nn` for scorers granted `nn`: the standard interfaces (`graph`, `tensor`, `inference`,
//! `errors`) and Kiln's `graphs` addition, over the backends of `kiln-nn`.
//!
//! A deployment version's [`GraphSet`] parses each graph file of its image once, on the first
//! `load-by-name`, and every instance shares it; calls run concurrently on the backend. Time in
//! graphs is recorded per deployment (and subtracted from the component's time), graphs loaded
//! and their native memory too. A call past the request's deadline traps with an interrupt, so
//! the request answers 504 as a guest that runs too long does.

use crate::bindings::kiln::scoring::graphs;
use crate::bindings::kiln::scoring::types::{Datatype, Tensor, TensorData, TensorSpec};
use crate::bindings::wasi::nn::{errors, graph, inference, tensor};
use crate::{Artifacts, HostState};
use kiln_metrics::{DeploymentMetrics, GraphMetrics};
use kiln_nn::{Backends, Graph, NnData, NnError, NnSpec, NnTensor, NnType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use wasmtime::component::Resource;

/// A graph loaded for a deployment version, with its metrics.
pub struct LoadedGraph {
    name: String,
    graph: Arc<dyn Graph>,
    metrics: GraphMetrics,
}

impl Drop for LoadedGraph {
    fn drop(&mut self) {
        self.metrics.memory.sub(self.graph.memory_bytes() as i64);
    }
}

/// The graphs of one deployment version, by file name, parsed once and shared by its instances.
pub struct GraphSet {
    backends: Arc<Backends>,
    artifacts: Artifacts,
    deployment: Arc<str>,
    metrics: Arc<DeploymentMetrics>,
    loaded: Mutex<HashMap<String, Arc<LoadedGraph>>>,
}

impl GraphSet {
    pub(crate) fn new(
        backends: Arc<Backends>,
        artifacts: Artifacts,
        deployment: Arc<str>,
        metrics: Arc<DeploymentMetrics>,
    ) -> Self {
        GraphSet {
            backends,
            artifacts,
            deployment,
            metrics,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The graph in the image's file `name`, parsed on first use.
    pub fn load_by_name(&self, name: &str) -> Result<Arc<LoadedGraph>, NnError> {
        let key = name.trim_start_matches("./");
        // Held while parsing: instances starting together parse a graph once between them.
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(graph) = loaded.get(key) {
            return Ok(graph.clone());
        }
        let bytes = self.artifacts.get(key).ok_or_else(|| {
            NnError::NotFound(format!(
                "no model file named '{name}' in the image (its files: {})",
                self.artifacts.names().join(", ")
            ))
        })?;
        let graph = Arc::new(self.parse(key, bytes)?);
        loaded.insert(key.to_string(), graph.clone());
        Ok(graph)
    }

    /// Parses graph bytes the guest passed (`wasi:nn/graph.load`); not shared.
    fn parse(&self, name: &str, bytes: &[u8]) -> Result<LoadedGraph, NnError> {
        let started = Instant::now();
        let graph = self.backends.load(bytes).map_err(|e| with_name(name, e))?;
        let backend = graph.backend().name();
        let metrics = self.metrics.graph(backend);
        metrics.loaded.inc();
        metrics.memory.add(graph.memory_bytes() as i64);
        tracing::info!(
            deployment = &*self.deployment,
            graph = name,
            backend,
            native_bytes = graph.memory_bytes(),
            "graph loaded in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(LoadedGraph {
            name: name.to_string(),
            graph,
            metrics,
        })
    }
}

fn with_name(name: &str, error: NnError) -> NnError {
    match error {
        NnError::InvalidGraph(m) => NnError::InvalidGraph(format!("{name}: {m}")),
        NnError::Unsupported(m) => NnError::Unsupported(format!("{name}: {m}")),
        other => other,
    }
}

/// A `wasi:nn` error, as the guest sees it.
pub struct NnErrorResource {
    code: errors::ErrorCode,
    data: String,
}

/// A `wasi:nn` tensor: dimensions, element type and little-endian bytes.
#[derive(Debug)]
pub struct TensorResource {
    dimensions: Vec<u32>,
    ty: tensor::TensorType,
    data: Vec<u8>,
}

/// A graph as the guest holds it: `graph` and `graph-execution-context` resources.
pub type GraphHandle = Arc<LoadedGraph>;

type NnResult<T> = wasmtime::Result<Result<T, Resource<NnErrorResource>>>;

impl HostState {
    fn graphs(&self) -> wasmtime::Result<&Arc<GraphSet>> {
        // The linker offers wasi:nn only to components granted `nn`, and those get a set.
        self.graphs
            .as_ref()
            .ok_or_else(|| wasmtime::format_err!("wasi:nn called without the nn capability"))
    }

    fn fail<T>(&mut self, error: NnError) -> NnResult<T> {
        let code = match &error {
            NnError::InvalidInput(_) => errors::ErrorCode::InvalidArgument,
            NnError::InvalidGraph(_) => errors::ErrorCode::InvalidEncoding,
            NnError::Unsupported(_) => errors::ErrorCode::UnsupportedOperation,
            NnError::TooLarge { .. } => errors::ErrorCode::TooLarge,
            NnError::NotFound(_) => errors::ErrorCode::NotFound,
            NnError::Deadline => errors::ErrorCode::Timeout,
            NnError::Runtime(_) => errors::ErrorCode::RuntimeError,
            _ => errors::ErrorCode::Unknown,
        };
        let resource = self.table.push(NnErrorResource {
            code,
            data: error.to_string(),
        })?;
        Ok(Err(resource))
    }

    /// Runs a graph for the current call, within its deadline; the time counts as graph time.
    fn run_graph(
        &mut self,
        graph: &LoadedGraph,
        inputs: Vec<NnTensor>,
    ) -> wasmtime::Result<Result<Vec<NnTensor>, NnError>> {
        let started = Instant::now();
        let result = graph.graph.run(inputs, self.deadline);
        let spent = started.elapsed();
        self.graph_time += spent;
        graph.metrics.duration.observe(spent.as_secs_f64());
        match result {
            Err(NnError::Deadline) => {
                tracing::debug!(graph = %graph.name, "graph stopped at the request's deadline");
                Err(wasmtime::Trap::Interrupt.into())
            }
            other => Ok(other),
        }
    }
}

impl graph::Host for HostState {
    fn load(
        &mut self,
        builder: Vec<graph::GraphBuilder>,
        encoding: graph::GraphEncoding,
        _target: graph::ExecutionTarget,
    ) -> NnResult<Resource<GraphHandle>> {
        if !matches!(
            encoding,
            graph::GraphEncoding::Onnx | graph::GraphEncoding::Autodetect
        ) {
            return self.fail(NnError::Unsupported(format!(
                "Kiln runs ONNX graphs, not {encoding:?}"
            )));
        }
        let [bytes] = builder.as_slice() else {
            return self.fail(NnError::InvalidInput(format!(
                "an ONNX graph is one builder, got {}",
                builder.len()
            )));
        };
        let parsed = self.graphs()?.parse("graph", bytes);
        match parsed {
            Ok(graph) => Ok(Ok(self.table.push(Arc::new(graph))?)),
            Err(e) => self.fail(e),
        }
    }

    fn load_by_name(&mut self, name: String) -> NnResult<Resource<GraphHandle>> {
        let found = self.graphs()?.load_by_name(&name);
        match found {
            Ok(graph) => Ok(Ok(self.table.push(graph)?)),
            Err(e) => self.fail(e),
        }
    }
}

impl graph::HostGraph for HostState {
    fn init_execution_context(
        &mut self,
        graph: Resource<GraphHandle>,
    ) -> NnResult<Resource<inference::GraphExecutionContext>> {
        let graph = self.table.get(&graph)?.clone();
        Ok(Ok(self.table.push(ExecutionContext(graph))?))
    }

    fn drop(&mut self, graph: Resource<GraphHandle>) -> wasmtime::Result<()> {
        self.table.delete(graph)?;
        Ok(())
    }
}

/// A `graph-execution-context`: the graph it runs.
pub struct ExecutionContext(GraphHandle);

impl inference::Host for HostState {}

impl inference::HostGraphExecutionContext for HostState {
    fn compute(
        &mut self,
        context: Resource<ExecutionContext>,
        inputs: Vec<inference::NamedTensor>,
    ) -> NnResult<Vec<inference::NamedTensor>> {
        let graph = self.table.get(&context)?.0.clone();
        let mut tensors = Vec::with_capacity(inputs.len());
        for (name, resource) in inputs {
            let tensor = self.table.delete(resource)?;
            match from_wasi(name, tensor) {
                Ok(t) => tensors.push(t),
                Err(e) => return self.fail(e),
            }
        }
        let outputs = match self.run_graph(&graph, tensors)? {
            Ok(outputs) => outputs,
            Err(e) => return self.fail(e),
        };
        let mut named = Vec::with_capacity(outputs.len());
        for output in outputs {
            let name = output.name.clone();
            match to_wasi(output) {
                Ok(t) => named.push((name, self.table.push(t)?)),
                Err(e) => return self.fail(e),
            }
        }
        Ok(Ok(named))
    }

    fn drop(&mut self, context: Resource<ExecutionContext>) -> wasmtime::Result<()> {
        self.table.delete(context)?;
        Ok(())
    }
}

impl tensor::Host for HostState {}

impl tensor::HostTensor for HostState {
    fn new(
        &mut self,
        dimensions: tensor::TensorDimensions,
        ty: tensor::TensorType,
        data: tensor::TensorData,
    ) -> wasmtime::Result<Resource<TensorResource>> {
        Ok(self.table.push(TensorResource {
            dimensions,
            ty,
            data,
        })?)
    }

    fn dimensions(
        &mut self,
        tensor: Resource<TensorResource>,
    ) -> wasmtime::Result<tensor::TensorDimensions> {
        Ok(self.table.get(&tensor)?.dimensions.clone())
    }

    fn ty(&mut self, tensor: Resource<TensorResource>) -> wasmtime::Result<tensor::TensorType> {
        Ok(self.table.get(&tensor)?.ty)
    }

    fn data(&mut self, tensor: Resource<TensorResource>) -> wasmtime::Result<tensor::TensorData> {
        Ok(self.table.get(&tensor)?.data.clone())
    }

    fn drop(&mut self, tensor: Resource<TensorResource>) -> wasmtime::Result<()> {
        self.table.delete(tensor)?;
        Ok(())
    }
}

impl errors::Host for HostState {}

impl errors::HostError for HostState {
    fn code(&mut self, error: Resource<NnErrorResource>) -> wasmtime::Result<errors::ErrorCode> {
        Ok(self.table.get(&error)?.code)
    }

    fn data(&mut self, error: Resource<NnErrorResource>) -> wasmtime::Result<String> {
        Ok(self.table.get(&error)?.data.clone())
    }

    fn drop(&mut self, error: Resource<NnErrorResource>) -> wasmtime::Result<()> {
        self.table.delete(error)?;
        Ok(())
    }
}

impl graphs::Host for HostState {
    fn inputs(&mut self, graph: Resource<GraphHandle>) -> wasmtime::Result<Vec<TensorSpec>> {
        Ok(specs(self.table.get(&graph)?.graph.inputs()))
    }

    fn outputs(&mut self, graph: Resource<GraphHandle>) -> wasmtime::Result<Vec<TensorSpec>> {
        Ok(specs(self.table.get(&graph)?.graph.outputs()))
    }

    fn backend(&mut self, graph: Resource<GraphHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&graph)?.graph.backend().name().to_string())
    }

    fn compute(
        &mut self,
        graph: Resource<GraphHandle>,
        inputs: Vec<Tensor>,
    ) -> NnResult<Vec<Tensor>> {
        let graph = self.table.get(&graph)?.clone();
        let tensors = inputs.into_iter().map(from_kiln).collect();
        match self.run_graph(&graph, tensors)? {
            Ok(outputs) => Ok(Ok(outputs.into_iter().map(to_kiln).collect())),
            Err(e) => self.fail(e),
        }
    }
}

fn specs(specs: &[NnSpec]) -> Vec<TensorSpec> {
    specs
        .iter()
        .map(|s| TensorSpec {
            name: s.name.clone(),
            datatype: datatype(s.ty),
            shape: s.shape.clone(),
        })
        .collect()
}

fn datatype(ty: NnType) -> Datatype {
    match ty {
        NnType::Bool => Datatype::Bool,
        NnType::U8 => Datatype::Uint8,
        NnType::U16 => Datatype::Uint16,
        NnType::U32 => Datatype::Uint32,
        NnType::U64 => Datatype::Uint64,
        NnType::I8 => Datatype::Int8,
        NnType::I16 => Datatype::Int16,
        NnType::I32 => Datatype::Int32,
        NnType::I64 => Datatype::Int64,
        NnType::F16 => Datatype::Fp16,
        NnType::F32 => Datatype::Fp32,
        NnType::F64 => Datatype::Fp64,
        NnType::Bytes => Datatype::Bytes,
    }
}

/// A Kiln tensor as a graph input (the vectors move, nothing is copied).
fn from_kiln(tensor: Tensor) -> NnTensor {
    let data = match tensor.data {
        TensorData::Bool(v) => NnData::Bool(v),
        TensorData::Uint8(v) => NnData::U8(v),
        TensorData::Uint16(v) => NnData::U16(v),
        TensorData::Uint32(v) => NnData::U32(v),
        TensorData::Uint64(v) => NnData::U64(v),
        TensorData::Int8(v) => NnData::I8(v),
        TensorData::Int16(v) => NnData::I16(v),
        TensorData::Int32(v) => NnData::I32(v),
        TensorData::Int64(v) => NnData::I64(v),
        TensorData::Fp16(v) => NnData::F16(v),
        TensorData::Fp32(v) => NnData::F32(v),
        TensorData::Fp64(v) => NnData::F64(v),
        TensorData::Bytes(v) => NnData::Bytes(v),
    };
    NnTensor {
        name: tensor.name,
        shape: tensor.shape,
        data,
    }
}

/// A graph output as a Kiln tensor.
fn to_kiln(tensor: NnTensor) -> Tensor {
    let data = match tensor.data {
        NnData::Bool(v) => TensorData::Bool(v),
        NnData::U8(v) => TensorData::Uint8(v),
        NnData::U16(v) => TensorData::Uint16(v),
        NnData::U32(v) => TensorData::Uint32(v),
        NnData::U64(v) => TensorData::Uint64(v),
        NnData::I8(v) => TensorData::Int8(v),
        NnData::I16(v) => TensorData::Int16(v),
        NnData::I32(v) => TensorData::Int32(v),
        NnData::I64(v) => TensorData::Int64(v),
        NnData::F16(v) => TensorData::Fp16(v),
        NnData::F32(v) => TensorData::Fp32(v),
        NnData::F64(v) => TensorData::Fp64(v),
        NnData::Bytes(v) => TensorData::Bytes(v),
    };
    Tensor {
        name: tensor.name,
        shape: tensor.shape,
        data,
    }
}

/// Decodes little-endian elements of `N` bytes each.
fn decode<const N: usize, T>(bytes: &[u8], from: fn([u8; N]) -> T) -> Option<Vec<T>> {
    let chunks = bytes.chunks_exact(N);
    if !chunks.remainder().is_empty() {
        return None;
    }
    Some(
        chunks
            .map(|c| from(c.try_into().unwrap_or([0; N])))
            .collect(),
    )
}

/// A `wasi:nn` tensor as a graph input.
fn from_wasi(name: String, tensor: TensorResource) -> Result<NnTensor, NnError> {
    use tensor::TensorType as T;
    let bytes = &tensor.data;
    let data = match tensor.ty {
        T::U8 => Some(NnData::U8(tensor.data.clone())),
        T::I32 => decode(bytes, i32::from_le_bytes).map(NnData::I32),
        T::I64 => decode(bytes, i64::from_le_bytes).map(NnData::I64),
        T::Fp16 => decode(bytes, u16::from_le_bytes).map(NnData::F16),
        T::Fp32 => decode(bytes, f32::from_le_bytes).map(NnData::F32),
        T::Fp64 => decode(bytes, f64::from_le_bytes).map(NnData::F64),
        T::Bf16 => {
            return Err(NnError::Unsupported(format!(
                "input '{name}' is BF16, which Kiln does not serve"
            )));
        }
    }
    .ok_or_else(|| {
        NnError::InvalidInput(format!(
            "input '{name}': {} bytes do not make whole {:?} elements",
            bytes.len(),
            tensor.ty
        ))
    })?;
    Ok(NnTensor {
        name,
        shape: tensor.dimensions.iter().map(|&d| i64::from(d)).collect(),
        data,
    })
}

/// A graph output as a `wasi:nn` tensor, for the element types wasi:nn has.
fn to_wasi(tensor: NnTensor) -> Result<TensorResource, NnError> {
    use tensor::TensorType as T;
    fn encode<T, const N: usize>(values: &[T], to: fn(&T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(to).collect()
    }
    let (ty, data) = match &tensor.data {
        NnData::U8(v) => (T::U8, v.clone()),
        NnData::I32(v) => (T::I32, encode(v, |x| x.to_le_bytes())),
        NnData::I64(v) => (T::I64, encode(v, |x| x.to_le_bytes())),
        NnData::F16(v) => (T::Fp16, encode(v, |x| x.to_le_bytes())),
        NnData::F32(v) => (T::Fp32, encode(v, |x| x.to_le_bytes())),
        NnData::F64(v) => (T::Fp64, encode(v, |x| x.to_le_bytes())),
        other => {
            return Err(NnError::Unsupported(format!(
                "output '{}' is {}, which wasi:nn tensors cannot hold: call \
                 kiln:scoring/graphs.compute instead",
                tensor.name,
                other.ty().name()
            )));
        }
    };
    let dimensions = tensor
        .shape
        .iter()
        .map(|&d| u32::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| NnError::Runtime(format!("output '{}' is too large", tensor.name)))?;
    Ok(TensorResource {
        dimensions,
        ty,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_tensors_round_trip_and_ragged_bytes_are_refused() {
        let tensor = NnTensor {
            name: "y".into(),
            shape: vec![2, 2],
            data: NnData::F32(vec![1.0, -2.5, 3.25, 0.0]),
        };
        let wasi = to_wasi(tensor.clone()).expect("fits wasi:nn");
        assert_eq!(wasi.dimensions, vec![2, 2]);
        assert_eq!(wasi.data.len(), 16);
        assert_eq!(from_wasi("y".into(), wasi).expect("decodes"), tensor);
        let ragged = TensorResource {
            dimensions: vec![1],
            ty: tensor::TensorType::I64,
            data: vec![0; 7],
        };
        let err = from_wasi("x".into(), ragged).expect_err("ragged");
        assert!(err.to_string().contains("7 bytes"), "{err}");
        let strings = NnTensor {
            name: "label".into(),
            shape: vec![1],
            data: NnData::Bytes(vec![b"setosa".to_vec()]),
        };
        let err = to_wasi(strings).expect_err("no strings in wasi:nn");
        assert!(
            err.to_string().contains("kiln:scoring/graphs.compute"),
            "{err}"
        );
    }
}

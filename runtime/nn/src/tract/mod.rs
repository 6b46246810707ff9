//! The tract backend: tract-onnx compiled into the binary, for the graphs it runs well (linear
//! models, MLPs, convolutions) where ONNX Runtime is absent.
//!
//! `load` decodes the graph, checks that tract has every operator it uses (Kiln adds
//! `TreeEnsembleRegressor` and `Scaler`, and rewrites `ArrayFeatureExtractor`), fixes the inputs
//! with a variable batch and optimizes the plan. Tree ensembles are refused unless the tract
//! backend is forced: tract evaluates them hundreds of times slower than ONNX Runtime.
//!
//! tract cannot be interrupted inside a graph: a call that starts before its deadline runs to
//! its end, and is reported past its deadline when it ends after it.

mod graph;
mod ml;
mod tensors;

use crate::{BackendKind, Graph, NnError, NnSpec, NnTensor, order_inputs};
use std::sync::Arc;
use std::time::Instant;
use tract_onnx::prelude::{DatumType, IntoTValue, TVec, TypedRunnableModel};

/// One input or output: Kiln's spec and tract's datum type.
#[derive(Clone, Debug)]
struct Spec {
    nn: NnSpec,
    datum: DatumType,
}

/// A graph planned by tract.
pub struct TractGraph {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<Spec>,
    outputs: Vec<Spec>,
    input_specs: Vec<NnSpec>,
    output_specs: Vec<NnSpec>,
    memory: u64,
}

impl TractGraph {
    /// Parses and plans a graph; tree ensembles only when `allow_slow`.
    pub fn load(bytes: &[u8], allow_slow: bool) -> Result<TractGraph, NnError> {
        let (loaded, memory) = crate::measured(bytes.len(), || {
            graph::load(bytes, allow_slow).map_err(|e| match e {
                graph::LoadError::Invalid(m) => NnError::InvalidGraph(m),
                graph::LoadError::Unsupported(m) => NnError::Unsupported(m),
            })
        })?;
        Ok(TractGraph {
            input_specs: loaded.inputs.iter().map(|s| s.nn.clone()).collect(),
            output_specs: loaded.outputs.iter().map(|s| s.nn.clone()).collect(),
            plan: loaded.plan,
            inputs: loaded.inputs,
            outputs: loaded.outputs,
            memory,
        })
    }
}

impl Graph for TractGraph {
    fn backend(&self) -> BackendKind {
        BackendKind::Tract
    }

    fn inputs(&self) -> &[NnSpec] {
        &self.input_specs
    }

    fn outputs(&self) -> &[NnSpec] {
        &self.output_specs
    }

    fn run(&self, inputs: Vec<NnTensor>, deadline: Instant) -> Result<Vec<NnTensor>, NnError> {
        let ordered = order_inputs(&self.input_specs, inputs)?;
        let mut values = TVec::with_capacity(ordered.len());
        for (spec, tensor) in self.inputs.iter().zip(ordered) {
            values.push(tensors::to_tract(spec, tensor)?.into_tvalue());
        }
        if Instant::now() >= deadline {
            return Err(NnError::Deadline);
        }
        let outputs = self
            .plan
            .run(values)
            .map_err(|e| NnError::Runtime(format!("tract: {e:#}")))?;
        if Instant::now() >= deadline {
            return Err(NnError::Deadline);
        }
        outputs
            .iter()
            .zip(&self.outputs)
            .map(|(value, spec)| tensors::from_tract(spec, value))
            .collect()
    }

    fn memory_bytes(&self) -> u64 {
        self.memory
    }
}

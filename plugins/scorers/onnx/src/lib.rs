//! Kiln's built-in ONNX scorer: serves the `.onnx` file among an image's model files with
//! [tract](https://github.com/sonos/tract), so a data scientist deploys a model exported from
//! scikit-learn, PyTorch or XGBoost without writing code.
//!
//! `load` reads the model once per instance, checks that tract has every operator it uses (an
//! unsupported one is named, and the image build fails there), fixes the inputs' shapes with a
//! variable batch, and optimizes the plan; `metadata` describes the graph's inputs and outputs;
//! `predict` runs the plan on one request.
//!
//! Config (the manifest's `[scorer] config`): `model=FILE.onnx` picks the file when the image
//! holds more than one; empty otherwise.

mod graph;
mod ml;
mod tensors;

use kiln_sdk::*;
use std::cell::RefCell;
use tract_onnx::prelude::{DatumType, IntoTValue, TVec, TypedFact, TypedOp};
use tract_onnx::tract_core::plan::SimpleState;

/// A loaded ONNX model: its optimized plan, a reusable run state, and its tensor specs.
struct OnnxScorer {
    name: String,
    state: RefCell<TypedSimpleState>,
    inputs: Vec<Spec>,
    outputs: Vec<Spec>,
}

type TypedSimpleState = SimpleState<TypedFact, Box<dyn TypedOp>>;

/// One input or output: its name, tract and Kiln datatypes, and shape (-1 where variable).
#[derive(Clone, Debug)]
struct Spec {
    name: String,
    datum: DatumType,
    datatype: Datatype,
    shape: Vec<i64>,
}

impl Scorer for OnnxScorer {
    fn load(config: &str) -> Result<Self, String> {
        let file = model_file(config)?;
        let bytes = artifacts::read(&file)?;
        let loaded = graph::load(&bytes).map_err(|e| format!("{file}: {e}"))?;
        let stem = file
            .rsplit('/')
            .next()
            .unwrap_or(&file)
            .trim_end_matches(".onnx");
        log::debug(&format!(
            "loaded {file}: {} input(s), {} output(s)",
            loaded.inputs.len(),
            loaded.outputs.len()
        ));
        let state = SimpleState::new(&loaded.plan).map_err(|e| format!("{file}: {e:#}"))?;
        Ok(OnnxScorer {
            name: stem.to_string(),
            state: RefCell::new(state),
            inputs: loaded.inputs,
            outputs: loaded.outputs,
        })
    }

    fn metadata(&self) -> Metadata {
        let spec = |s: &Spec| TensorSpec::new(s.name.clone(), s.datatype, &s.shape);
        let mut metadata = Metadata::new(self.name.clone()).platform("onnx");
        for s in &self.inputs {
            metadata = metadata.input(spec(s));
        }
        for s in &self.outputs {
            metadata = metadata.output(spec(s));
        }
        metadata
    }

    fn predict(&self, inputs: Inputs) -> Result<Vec<Tensor>, PredictError> {
        let mut values = TVec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let tensor = inputs.get(&spec.name)?;
            values.push(tensors::to_tract(spec, tensor)?.into_tvalue());
        }
        let outputs = self
            .state
            .borrow_mut()
            .run(values)
            .map_err(|e| PredictError::Internal(format!("{e:#}")))?;
        outputs
            .iter()
            .zip(&self.outputs)
            .map(|(value, spec)| tensors::from_tract(spec, value))
            .collect()
    }
}

/// The model file: `model=NAME` from the config, else the one `.onnx` file of the image.
fn model_file(config: &str) -> Result<String, String> {
    for pair in config
        .split([',', ' ', '\n'])
        .filter(|p| !p.trim().is_empty())
    {
        match pair.trim().split_once('=') {
            Some(("model", name)) => return Ok(name.trim().to_string()),
            _ => {
                return Err(format!(
                    "unknown config '{pair}': the onnx scorer takes model=FILE.onnx"
                ));
            }
        }
    }
    let files = artifacts::list();
    let onnx: Vec<&String> = files
        .iter()
        .filter(|f| f.to_ascii_lowercase().ends_with(".onnx"))
        .collect();
    match onnx.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!(
            "no .onnx file among the image's model files ({})",
            if files.is_empty() {
                "it has none".to_string()
            } else {
                files.join(", ")
            }
        )),
        many => Err(format!(
            "several .onnx files ({}): choose one with the scorer config model=FILE",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

export_scorer!(OnnxScorer);

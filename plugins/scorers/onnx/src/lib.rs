//! Kiln's built-in ONNX scorer: serves the `.onnx` file among an image's model files, so a data
//! scientist deploys a model exported from scikit-learn, PyTorch or XGBoost without writing code.
//!
//! The graph runs on the host (`wasi:nn`, granted as `nn`), on ONNX Runtime where it is
//! installed and on tract otherwise; this component only picks the file, describes the graph's
//! tensors and hands requests to it. `load` asks the host for the graph by name, so a graph that
//! does not parse, or that the backend cannot run, fails there (and the image build with it);
//! `metadata` is the graph's inputs and outputs, with the platform naming the backend
//! (`onnxruntime_onnx` or `tract_onnx`); `predict` calls the graph.
//!
//! Config (the manifest's `[scorer] config`): `model=FILE.onnx` picks the file when the image
//! holds more than one; empty otherwise.

use kiln_sdk::nn::Graph;
use kiln_sdk::*;

/// A loaded ONNX model: the host's graph and its tensor specs.
struct OnnxScorer {
    name: String,
    platform: String,
    graph: Graph,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl Scorer for OnnxScorer {
    fn load(config: &str) -> Result<Self, String> {
        let file = model_file(config)?;
        let graph = Graph::load(&file).map_err(|e| e.message)?;
        let stem = file
            .rsplit('/')
            .next()
            .unwrap_or(&file)
            .trim_end_matches(".onnx");
        let backend = graph.backend();
        let (inputs, outputs) = (graph.inputs(), graph.outputs());
        log::debug(&format!(
            "loaded {file} on {backend}: {} input(s), {} output(s)",
            inputs.len(),
            outputs.len()
        ));
        Ok(OnnxScorer {
            name: stem.to_string(),
            platform: format!("{backend}_onnx"),
            graph,
            inputs,
            outputs,
        })
    }

    fn metadata(&self) -> Metadata {
        let mut metadata = Metadata::new(self.name.clone()).platform(self.platform.clone());
        for s in &self.inputs {
            metadata = metadata.input(s.clone());
        }
        for s in &self.outputs {
            metadata = metadata.output(s.clone());
        }
        metadata
    }

    fn predict(&self, inputs: Inputs) -> Result<Vec<Tensor>, PredictError> {
        Ok(self.graph.compute(inputs.into_vec())?)
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

//! A scorer with its own logic around a model graph: the graph (`model.onnx`, a logistic
//! regression trained on standardized features) runs on the host through the standard
//! `wasi:nn` interface; this component does what the graph does not:
//!
//! - **before**: takes raw measurements in centimetres and standardizes them with the training
//!   set's mean and scale (`scaler.json`), rejecting negative or non-finite ones with a 400;
//! - **after**: maps the graph's class ids to species names (`labels.json`) and returns them as
//!   strings beside the probabilities.
//!
//! Its manifest grants `nn` (`capabilities = ["nn"]`): without it the build refuses the
//! component, which imports `wasi:nn`.

use kiln_sdk::nn::{Graph, fp32_tensor, tensor_f32, tensor_i64};
use kiln_sdk::*;
use serde::Deserialize;

/// The scaler's parameters, as `train.py` writes them.
#[derive(Deserialize)]
struct Scaler {
    mean: Vec<f32>,
    scale: Vec<f32>,
}

struct Species {
    graph: Graph,
    scaler: Scaler,
    labels: Vec<String>,
}

const FEATURES: usize = 4;

impl Scorer for Species {
    fn load(_config: &str) -> Result<Self, String> {
        let scaler: Scaler = serde_json::from_str(&artifacts::read_to_string("scaler.json")?)
            .map_err(|e| format!("scaler.json: {e}"))?;
        if scaler.mean.len() != FEATURES || scaler.scale.len() != FEATURES {
            return Err(format!("scaler.json must give {FEATURES} means and scales"));
        }
        let labels: Vec<String> = serde_json::from_str(&artifacts::read_to_string("labels.json")?)
            .map_err(|e| format!("labels.json: {e}"))?;
        let graph = Graph::load("model.onnx")?;
        log::info(&format!("model.onnx runs on {}", graph.backend()));
        Ok(Species {
            graph,
            scaler,
            labels,
        })
    }

    fn metadata(&self) -> Metadata {
        Metadata::new("species")
            .input(TensorSpec::new(
                "measurements",
                Datatype::Fp32,
                &[-1, FEATURES as i64],
            ))
            .output(TensorSpec::new("species", Datatype::Bytes, &[-1]))
            .output(TensorSpec::new(
                "probabilities",
                Datatype::Fp32,
                &[-1, self.labels.len() as i64],
            ))
    }

    fn predict(&self, inputs: Inputs) -> Result<Vec<Tensor>, PredictError> {
        let (rows, raw) = inputs.get("measurements")?.as_f32_matrix(FEATURES)?;
        if let Some(bad) = raw.iter().find(|v| !v.is_finite() || **v < 0.0) {
            return Err(PredictError::InvalidInput(format!(
                "measurements are lengths in centimetres, not {bad}"
            )));
        }
        let scaled: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, v)| (v - self.scaler.mean[i % FEATURES]) / self.scaler.scale[i % FEATURES])
            .collect();
        let outputs = self.graph.compute_wasi(vec![(
            "X".to_string(),
            fp32_tensor(&[rows as u32, FEATURES as u32], &scaled),
        )])?;
        let find = |name: &str| {
            outputs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| PredictError::Internal(format!("the graph gave no '{name}'")))
        };
        let ids = tensor_i64(find("label")?)?;
        let probabilities = tensor_f32(find("probabilities")?)?;
        let species = ids
            .iter()
            .map(|&id| {
                self.labels
                    .get(id as usize)
                    .map(|name| name.clone().into_bytes())
                    .ok_or_else(|| PredictError::Internal(format!("class id {id} has no label")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vec![
            Tensor::bytes("species", vec![rows as i64], species),
            Tensor::fp32(
                "probabilities",
                vec![rows as i64, self.labels.len() as i64],
                probabilities,
            ),
        ])
    }
}

export_scorer!(Species);

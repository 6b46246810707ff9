//! Iris multinomial logistic regression: weights from `weights.json`, written by `train.py`.
use kiln_sdk::*;

#[derive(serde::Deserialize)]
struct Iris {
    coef: Vec<[f64; 4]>,
    intercept: Vec<f64>,
    classes: Vec<i64>,
}

impl Scorer for Iris {
    fn load(_config: &str) -> Result<Self, String> {
        let text = artifacts::read_to_string("weights.json")?;
        serde_json::from_str(&text).map_err(|e| format!("weights.json: {e}"))
    }

    fn metadata(&self) -> Metadata {
        Metadata::new("iris")
            .input(TensorSpec::new("input", Datatype::Fp32, &[-1, 4]))
            .output(TensorSpec::new("label", Datatype::Int64, &[-1]))
            .output(TensorSpec::new(
                "probabilities",
                Datatype::Fp32,
                &[-1, self.classes.len() as i64],
            ))
    }

    fn predict(&self, inputs: Inputs) -> Result<Vec<Tensor>, PredictError> {
        let (rows, x) = inputs.get("input")?.as_f32_matrix(4)?;
        let (mut labels, mut probabilities) = (Vec::with_capacity(rows), Vec::new());
        for row in x.chunks_exact(4) {
            let z: Vec<f64> = (self.coef.iter().zip(&self.intercept))
                .map(|(w, b)| b + w.iter().zip(row).map(|(w, x)| w * *x as f64).sum::<f64>())
                .collect();
            let max = z.iter().cloned().fold(f64::MIN, f64::max);
            let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
            let best = (0..z.len())
                .max_by(|&a, &b| z[a].total_cmp(&z[b]))
                .unwrap_or(0);
            labels.push(self.classes[best]);
            probabilities.extend(z.iter().map(|v| ((v - max).exp() / sum) as f32));
        }
        let k = self.classes.len() as i64;
        Ok(vec![
            Tensor::int64("label", vec![rows as i64], labels),
            Tensor::fp32("probabilities", vec![rows as i64, k], probabilities),
        ])
    }
}

export_scorer!(Iris);

//! A prediction request and its answer as every protocol adapter hands them to the dataplane.

use kiln_engine::Tensor;

/// A prediction request once a protocol adapter has translated it.
#[derive(Debug, Default)]
pub struct InferRequest {
    /// The client's request id, echoed back.
    pub id: Option<String>,
    /// Input tensors.
    pub inputs: Vec<Tensor>,
    /// Outputs to return, all when `None`.
    pub outputs: Option<Vec<String>>,
    /// A shorter deadline the client asked for (`kiln-deadline-ms`).
    pub deadline: Option<std::time::Duration>,
}

/// The model's answer.
#[derive(Debug)]
pub struct InferResponse {
    /// Deployment name.
    pub model_name: String,
    /// Deployment version.
    pub model_version: String,
    /// The request's id.
    pub id: Option<String>,
    /// Output tensors, in metadata order (or the requested order).
    pub outputs: Vec<Tensor>,
}

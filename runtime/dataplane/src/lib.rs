//! Kiln's data plane: prediction endpoints over HTTP.
//!
//! It reads the way MLServer and KServe do: thin protocol adapters (`protocol::v2` for the Open
//! Inference Protocol with Triton's binary tensors, `v1` for KServe v1, `mlflow` for MLflow
//! scoring, `score` for Azure ML style) only translate; one [`Dataplane`] decides (deployment
//! lookup, tensor checks against metadata, the call, output checks, metrics); the
//! [`DeploymentRegistry`] owns what is served and the [`Endpoint`]s that route to it; the engine's
//! `Model` owns load and predict.

mod dataplane;
mod error;
mod infer;
pub mod listener;
pub mod protocol;
mod registry;
mod server;
pub mod tensor;

pub use dataplane::{Dataplane, SampleError, ServerLimits};
pub use error::ApiError;
pub use infer::{InferRequest, InferResponse};
pub use listener::{ListenerLimits, Tls, serve};
pub use registry::endpoint::{DEPLOYMENT_HEADER, Endpoint, Route};
pub use registry::{Deployment, DeploymentRegistry};
pub use server::{AppState, metrics_router, router};

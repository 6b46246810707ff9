//! A deployment version's model: its compiled component and a pool of loaded instances.
//!
//! Each instance is instantiated and its model loaded once, then serves many predictions one at a
//! time. At most `concurrency` instances exist; further requests wait in a bounded queue and past
//! it are rejected at once. An instance that trapped or hit its deadline is dropped, never reused.

use crate::bindings::ScorerNn as Scorer;
use crate::bindings::kiln::scoring::types::{ModelMetadata, PredictError, Tensor};
use crate::nn::GraphSet;
use crate::{
    Artifacts, CompiledScorer, EngineError, HostState, InstanceLimits, ScoreError, ScoringEngine,
};
use kiln_metrics::DeploymentMetrics;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::Semaphore;
use wasmtime::{Store, Trap, UpdateDeadline};

/// What a deployment version serves.
pub struct ModelSpec {
    /// Deployment name, used in logs.
    pub name: String,
    /// The compiled component.
    pub compiled: CompiledScorer,
    /// The image's files, readable by the guest.
    pub artifacts: Artifacts,
    /// The config string passed to the guest's `load`.
    pub config: String,
    /// Limits of instances and requests.
    pub limits: InstanceLimits,
}

/// A loaded deployment version: metadata, limits and the instance pool.
pub struct Model {
    engine: Arc<ScoringEngine>,
    spec: ModelSpec,
    name: Arc<str>,
    metadata: ModelMetadata,
    metrics: Arc<DeploymentMetrics>,
    /// The image's graphs, shared by every instance (components granted `nn`).
    graphs: Option<Arc<GraphSet>>,
    idle: Mutex<Vec<Instance>>,
    permits: Semaphore,
    waiting: AtomicUsize,
    /// When the model was loaded; `last_used_ms` counts from it.
    born: Instant,
    /// Milliseconds after `born` when a prediction last started or ended.
    last_used_ms: AtomicU64,
    /// Instances kept warm ([`Model::warm`]): a full pool never takes these for another
    /// deployment.
    kept: AtomicUsize,
}

struct Instance {
    store: Store<HostState>,
    scorer: Scorer,
    metrics: Arc<DeploymentMetrics>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.metrics.instances.dec();
    }
}

/// How a guest call ended when it did not return: stopped at its deadline, or trapped.
pub(crate) enum CallError {
    Deadline,
    Trap(String),
}

/// Tells a deadline interrupt from a trap; shared by scorer and monitor calls.
pub(crate) fn classify(error: wasmtime::Error) -> CallError {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Deadline,
        Some(trap) => CallError::Trap(trap.to_string()),
        None => CallError::Trap(error.root_cause().to_string()),
    }
}

impl Model {
    /// Starts the first instance (instantiate, load the model, read its metadata).
    /// A model that fails to load here is never served.
    pub async fn load(
        engine: Arc<ScoringEngine>,
        spec: ModelSpec,
        metrics: Arc<DeploymentMetrics>,
    ) -> Result<Arc<Model>, EngineError> {
        let permits = Semaphore::new(spec.limits.concurrency.max(1));
        let name: Arc<str> = Arc::from(spec.name.as_str());
        let graphs = spec.compiled.capabilities.nn.then(|| {
            Arc::new(GraphSet::new(
                kiln_nn::Backends::shared(&engine.nn),
                spec.artifacts.clone(),
                name.clone(),
                metrics.clone(),
            ))
        });
        let mut model = Model {
            engine,
            spec,
            name,
            metadata: ModelMetadata {
                name: String::new(),
                platform: String::new(),
                inputs: vec![],
                outputs: vec![],
            },
            metrics,
            graphs,
            idle: Mutex::new(Vec::new()),
            permits,
            waiting: AtomicUsize::new(0),
            born: Instant::now(),
            last_used_ms: AtomicU64::new(0),
            kept: AtomicUsize::new(0),
        };
        let mut first = model.start_instance().await?;
        first.store.data_mut().deadline = Instant::now() + model.spec.limits.load_deadline;
        first.store.set_epoch_deadline(1);
        let metadata = first
            .scorer
            .kiln_scoring_model()
            .call_metadata(&mut first.store)
            .await
            .map_err(|e| EngineError::Load(format!("metadata trapped: {}", error_text(e))))?;
        check_metadata(&metadata)?;
        model.metadata = metadata;
        model.idle_instances().push(first);
        let model = Arc::new(model);
        model.engine.register(&model);
        Ok(model)
    }

    /// The model's self-description.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// This version's limits.
    pub fn limits(&self) -> &InstanceLimits {
        &self.spec.limits
    }

    /// sha256 of the component.
    pub fn digest(&self) -> &str {
        &self.spec.compiled.digest
    }

    /// Scores one request on a pooled instance, within the deployment's deadline and queue.
    pub async fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ScoreError> {
        self.predict_within(inputs, None).await
    }

    /// [`Model::predict`] with a deadline the client asked for: it can only shorten the
    /// deployment's. Waiting for an instance counts against it too.
    pub async fn predict_within(
        &self,
        inputs: &[Tensor],
        requested: Option<std::time::Duration>,
    ) -> Result<Vec<Tensor>, ScoreError> {
        let limit = self.spec.limits.deadline;
        let deadline = requested.map_or(limit, |d| d.min(limit));
        let arrived = Instant::now();
        self.touch();
        let _touch_at_end = Touch(self);
        let _permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.spec.limits.queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    self.metrics.queue_rejections.inc();
                    return Err(ScoreError::QueueFull);
                }
                let acquired = tokio::time::timeout(deadline, self.permits.acquire()).await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                match acquired {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => return Err(ScoreError::QueueFull),
                    Err(_) => return Err(ScoreError::QueueTimeout),
                }
            }
        };
        let pooled = self.idle_instances().pop();
        let mut instance = match pooled {
            Some(instance) => instance,
            None => self
                .start_instance()
                .await
                .map_err(|e| ScoreError::InstanceStart(e.to_string()))?,
        };
        // What is left of the deadline after waiting for an instance.
        instance.store.data_mut().deadline = arrived + deadline;
        instance.store.data_mut().graph_time = std::time::Duration::ZERO;
        instance.store.set_epoch_deadline(1);
        let started = Instant::now();
        // The epoch deadline stops guest code; a guest waiting in a host call (a WASI sleep or
        // poll) is stopped here, a little after it, and its instance dropped with the call.
        let remaining = (arrived + deadline).saturating_duration_since(started);
        let call = instance
            .scorer
            .kiln_scoring_model()
            .call_predict(&mut instance.store, inputs);
        let Ok(result) = tokio::time::timeout(remaining + HOST_WAIT_GRACE, call).await else {
            drop(instance);
            self.metrics.deadline_exceeded.inc();
            return Err(ScoreError::DeadlineExceeded(deadline.as_millis()));
        };
        let spent = started.elapsed();
        self.metrics.inference_duration.observe(spent.as_secs_f64());
        self.metrics.component_duration.observe(
            spent
                .saturating_sub(instance.store.data().graph_time)
                .as_secs_f64(),
        );
        match result {
            Ok(answer) => {
                self.idle_instances().push(instance);
                answer.map_err(|e| match e {
                    PredictError::InvalidInput(m) => ScoreError::InvalidInput(m),
                    PredictError::Internal(m) => ScoreError::Model(m),
                })
            }
            Err(error) => {
                drop(instance);
                match classify(error) {
                    CallError::Deadline => {
                        self.metrics.deadline_exceeded.inc();
                        Err(ScoreError::DeadlineExceeded(deadline.as_millis()))
                    }
                    CallError::Trap(message) => {
                        self.metrics.traps.inc();
                        tracing::warn!(
                            deployment = &*self.name,
                            "instance trapped and was discarded: {message}"
                        );
                        Err(ScoreError::Trap(message))
                    }
                }
            }
        }
    }

    /// Starts instances until `n` (at most the concurrency) are idle and ready: a deployment's
    /// minimum, warm before it takes traffic. Returns how many it started.
    pub async fn warm(&self, n: usize) -> Result<usize, EngineError> {
        let target = n.min(self.spec.limits.concurrency.max(1));
        self.kept.store(target, Ordering::Relaxed);
        let mut started = 0;
        while self.idle_instances().len() < target {
            let instance = self.start_instance().await?;
            self.idle_instances().push(instance);
            started += 1;
        }
        Ok(started)
    }

    /// Drops every idle instance (on undeploy or shutdown).
    pub fn release_instances(&self) {
        self.idle_instances().clear();
    }

    /// How long since a prediction last started or ended.
    pub fn idle_for(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }

    /// The instances kept warm, which other deployments' starts never take.
    pub fn kept(&self) -> usize {
        self.kept.load(Ordering::Relaxed)
    }

    /// Drops idle instances beyond `keep` (scale down); returns how many went. The next request
    /// past the kept ones starts a new instance (a cold start, counted).
    pub fn release_idle(&self, keep: usize) -> usize {
        let mut idle = self.idle_instances();
        let released = idle.len().saturating_sub(keep);
        idle.truncate(keep);
        released
    }

    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last_used_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn idle_instances(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        // An instance list is never left half-updated, so a poisoned lock is still consistent.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn start_instance(&self) -> Result<Instance, EngineError> {
        let started = Instant::now();
        let limits = &self.spec.limits;
        let state = HostState::new(
            self.spec.artifacts.clone(),
            self.name.clone(),
            limits.memory,
            self.graphs.clone(),
        );
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Give the executor back to other requests while a long call runs.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.data_mut().deadline = started + limits.load_deadline;
        store.set_epoch_deadline(1);
        let scorer = match self.spec.compiled.pre.instantiate_async(&mut store).await {
            Err(e)
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some()
                    && self.engine.evict_idle(8) > 0 =>
            {
                // Slots were freed from idle instances of other deployments: try once more.
                self.spec.compiled.pre.instantiate_async(&mut store).await
            }
            other => other,
        }
        .map_err(|e| EngineError::Load(format!("instantiation failed: {}", error_text(e))))?;
        scorer
            .kiln_scoring_model()
            .call_load(&mut store, &self.spec.config)
            .await
            .map_err(|e| EngineError::Load(format!("load trapped: {}", error_text(e))))?
            .map_err(EngineError::Load)?;
        self.metrics.instance_starts.inc();
        self.metrics.instances.inc();
        self.metrics
            .instance_start_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(Instance {
            store,
            scorer,
            metrics: self.metrics.clone(),
        })
    }
}

/// How long past its deadline a call blocked in a host wait may run before it is dropped.
const HOST_WAIT_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

/// Marks the model used when a prediction ends, however it ends.
struct Touch<'a>(&'a Model);

impl Drop for Touch<'_> {
    fn drop(&mut self) {
        self.0.touch();
    }
}

fn error_text(error: wasmtime::Error) -> String {
    match classify(error) {
        CallError::Deadline => "deadline exceeded".to_string(),
        CallError::Trap(message) => message,
    }
}

fn check_metadata(metadata: &ModelMetadata) -> Result<(), EngineError> {
    for list in [&metadata.inputs, &metadata.outputs] {
        let mut seen = std::collections::HashSet::new();
        for spec in list.iter() {
            if spec.name.is_empty() || !seen.insert(spec.name.as_str()) {
                return Err(EngineError::Load(format!(
                    "metadata names tensor '{}' more than once or with an empty name",
                    spec.name
                )));
            }
            if spec.shape.iter().any(|&d| d < -1) {
                return Err(EngineError::Load(format!(
                    "metadata gives tensor '{}' an invalid shape {:?}",
                    spec.name, spec.shape
                )));
            }
        }
    }
    if metadata.inputs.is_empty() {
        return Err(EngineError::Load("metadata declares no inputs".into()));
    }
    Ok(())
}

//! The wasmtime engine: configuration, the epoch ticker, the linker and compilation.

use crate::bindings::kiln::scoring::{artifacts, logging, types};
use crate::bindings::{ScorerNn, ScorerNnPre as ScorerPre};
use crate::cache::CompileCache;
use crate::{Allocation, EngineConfig, EngineError, HostState};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// What a component is granted beyond read-only artifacts and logging, from its manifest's
/// `capabilities`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// `nn`: `wasi:nn` and `kiln:scoring/graphs`, model graphs run on the host.
    pub nn: bool,
}

impl Capabilities {
    /// The capabilities named in a manifest or image config; an unknown name is an error.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Capabilities, String> {
        let mut capabilities = Capabilities::default();
        for name in names {
            match name.as_ref() {
                "nn" => capabilities.nn = true,
                other => {
                    return Err(format!(
                        "capability '{other}' is not available: scorers get read-only artifacts and \
                         logging, and `nn` (model graphs on the host through wasi:nn) when granted"
                    ));
                }
            }
        }
        Ok(capabilities)
    }
}

/// Interfaces only a component granted `nn` may import.
const NN_IMPORTS: &[&str] = &["wasi:nn/", "kiln:scoring/graphs"];

/// A compiled scoring component, ready to instantiate many times. Clones share the code.
#[derive(Clone)]
pub struct CompiledScorer {
    /// Shared by every deployment of the same component.
    pub(crate) pre: Arc<ScorerPre<HostState>>,
    /// What it was linked with.
    pub capabilities: Capabilities,
    /// sha256 of the component bytes, hex.
    pub digest: String,
    /// Whether the compiled code came from the disk cache.
    pub cached: bool,
    /// Time spent compiling or loading from the cache.
    pub compile_time: Duration,
}

/// A compiled component's instantiation recipe, shared by the deployments that use it.
type SharedScorer = Arc<ScorerPre<HostState>>;

/// One wasmtime engine shared by every deployment, with its epoch ticker thread.
pub struct ScoringEngine {
    pub(crate) engine: Engine,
    /// Artifacts and logging: what every scorer gets.
    linker: Linker<HostState>,
    /// Those and `wasi:nn` with `kiln:scoring/graphs`, for scorers granted `nn`.
    nn_linker: Linker<HostState>,
    /// Inference settings for graphs.
    pub(crate) nn: kiln_nn::NnConfig,
    pub(crate) monitor_linker: Linker<crate::MonitorState>,
    pub(crate) cache: CompileCache,
    /// Components in use, by sha256 and grant: a component deployed many times is loaded once,
    /// and its code and memory image are shared. An entry goes once no deployment holds it.
    loaded: Mutex<HashMap<(String, Capabilities), SharedScorer>>,
    /// Every loaded model, to free pool slots from idle instances when the pool is full.
    models: Mutex<Vec<std::sync::Weak<crate::Model>>>,
    /// Monitor components in use, the same way.
    pub(crate) monitors:
        Mutex<HashMap<String, Arc<crate::monitor_bindings::MonitorPre<crate::MonitorState>>>>,
    pooling: bool,
    ticker: Option<Ticker>,
}

struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn base_config(cfg: &EngineConfig) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(cfg.max_wasm_stack)
        // Host calls run on the instance's stack too; a graph call runs a native inference
        // backend there, so it gets room beyond the wasm stack.
        .async_stack_size(cfg.max_wasm_stack + (4 << 20))
        .memory_init_cow(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    config
}

fn pooling_config(cfg: &EngineConfig) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    let instances = cfg.max_instances;
    pool.total_component_instances(instances)
        .total_core_instances(instances * 16)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        // CPython's component (componentize-py) has about forty core instances, two memories
        // and a few tables; a Rust scorer has one of each.
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_core_instances_per_component(64)
        .max_memory_size(cfg.max_instance_memory)
        .max_unused_warm_slots(instances / 4);
    pool
}

impl ScoringEngine {
    /// Creates the engine: the pooling allocator when the host allows its address-space
    /// reservation, on-demand allocation otherwise; and starts the epoch ticker.
    pub fn new(cfg: &EngineConfig) -> Result<Self, EngineError> {
        let on_demand = || Engine::new(&base_config(cfg));
        let (engine, pooling) = match cfg.allocation {
            Allocation::OnDemand => (on_demand(), false),
            Allocation::Auto => {
                let mut config = base_config(cfg);
                config
                    .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(cfg)));
                match Engine::new(&config) {
                    Ok(engine) => (Ok(engine), true),
                    Err(e) => {
                        tracing::warn!("pooling allocator unavailable, allocating on demand: {e}");
                        (on_demand(), false)
                    }
                }
            }
        };
        let engine = engine.map_err(|e| EngineError::Config(e.to_string()))?;
        let config_error = |e: wasmtime::Error| EngineError::Config(e.to_string());
        let mut linker = Linker::new(&engine);
        types::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(config_error)?;
        artifacts::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(config_error)?;
        logging::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(config_error)?;
        let mut nn_linker = Linker::new(&engine);
        ScorerNn::add_to_linker::<HostState, HasSelf<HostState>>(&mut nn_linker, |state| state)
            .map_err(config_error)?;
        // WASI, with the empty context of `host::empty_wasi`, for components that import it.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(config_error)?;
        wasmtime_wasi::p2::add_to_linker_async(&mut nn_linker).map_err(config_error)?;
        let cache = CompileCache::new(&engine, cfg.cache_dir.clone());
        let ticker = Some(start_ticker(engine.clone(), cfg.epoch_tick));
        Ok(ScoringEngine {
            monitor_linker: Linker::new(&engine),
            engine,
            linker,
            nn_linker,
            nn: cfg.nn.clone(),
            cache,
            loaded: Mutex::new(HashMap::new()),
            models: Mutex::new(Vec::new()),
            monitors: Mutex::new(HashMap::new()),
            pooling,
            ticker,
        })
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Compiles a component granted nothing beyond artifacts and logging.
    pub fn compile(&self, bytes: &[u8]) -> Result<CompiledScorer, EngineError> {
        self.compile_granted(bytes, Capabilities::default())
    }

    /// Compiles a component (or loads it from the compile cache) and checks that it is a
    /// `kiln:scoring/scorer` whose imports its grant allows and the host can satisfy.
    pub fn compile_granted(
        &self,
        bytes: &[u8],
        capabilities: Capabilities,
    ) -> Result<CompiledScorer, EngineError> {
        let started = Instant::now();
        let digest = hex::encode(Sha256::digest(bytes));
        let key = (digest.clone(), capabilities);
        {
            let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            loaded.retain(|_, pre| Arc::strong_count(pre) > 1);
            if let Some(pre) = loaded.get(&key) {
                return Ok(CompiledScorer {
                    pre: pre.clone(),
                    capabilities,
                    digest,
                    cached: true,
                    compile_time: started.elapsed(),
                });
            }
        }
        let (component, cached) = self
            .cache
            .load(&self.engine, bytes, &digest)
            .map_err(|e| EngineError::InvalidComponent(format!("{e:#}")))?;
        if !capabilities.nn {
            let ty = component.component_type();
            if let Some((name, _)) = ty
                .imports(&self.engine)
                .find(|(name, _)| NN_IMPORTS.iter().any(|p| name.starts_with(p)))
            {
                return Err(EngineError::InvalidComponent(format!(
                    "it imports {name}, which needs the nn capability: grant it with \
                     capabilities = [\"nn\"] in its manifest"
                )));
            }
        }
        let linker = if capabilities.nn {
            &self.nn_linker
        } else {
            &self.linker
        };
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            EngineError::InvalidComponent(format!(
                "it imports something Kiln does not grant (only kiln:scoring/artifacts, \
                 kiln:scoring/logging, WASI 0.2 with an empty context, and wasi:nn with \
                 kiln:scoring/graphs when granted nn): {e:#}"
            ))
        })?;
        let pre = ScorerPre::new(instance_pre).map_err(|e| {
            EngineError::InvalidComponent(format!(
                "it does not export kiln:scoring/model@0.1.0: {e:#}"
            ))
        })?;
        let pre = Arc::new(pre);
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, pre.clone());
        Ok(CompiledScorer {
            pre,
            capabilities,
            digest,
            cached,
            compile_time: started.elapsed(),
        })
    }

    pub(crate) fn register(&self, model: &Arc<crate::Model>) {
        let mut models = self.models.lock().unwrap_or_else(PoisonError::into_inner);
        models.retain(|m| m.strong_count() > 0);
        models.push(Arc::downgrade(model));
    }

    /// The pool is full: releases idle instances of the models idle the longest, until `want`
    /// slots are free or no idle instance is left. Returns how many it released.
    pub(crate) fn evict_idle(&self, want: usize) -> usize {
        let mut models: Vec<Arc<crate::Model>> = self
            .models
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        models.sort_by_key(|m| std::cmp::Reverse(m.idle_for()));
        let mut released = 0;
        for model in models {
            if released >= want {
                break;
            }
            // A deployment keeps its `min_instances` slots whoever needs one.
            released += model.release_idle(model.kept());
        }
        if released > 0 {
            tracing::info!(
                released,
                "instance pool full: idle instances of the least recently used deployments released"
            );
        }
        released
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for ScoringEngine {
    fn drop(&mut self) {
        self.ticker.take();
    }
}

fn start_ticker(engine: Engine, tick: Duration) -> Ticker {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("kiln-epoch".into())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .ok();
    Ticker { stop, thread }
}

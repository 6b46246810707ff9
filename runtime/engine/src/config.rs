//! Engine-wide settings and per-deployment instance limits.

use std::path::PathBuf;
use std::time::Duration;

/// How the engine allocates instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// The pooling allocator when the host grants its address-space reservation, else on-demand.
    Auto,
    /// Always on-demand (no up-front reservation).
    OnDemand,
}

/// Settings shared by every deployment on one engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Where compiled components are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Pooling or on-demand allocation.
    pub allocation: Allocation,
    /// The largest linear memory any instance may have, in bytes (a pool slot's size).
    pub max_instance_memory: usize,
    /// Instances the pool holds at most, over all deployments.
    pub max_instances: u32,
    /// Wasm stack per call, in bytes: unbounded recursion traps past it.
    pub max_wasm_stack: usize,
    /// How often the epoch ticker thread advances the epoch (the deadline granularity).
    pub epoch_tick: Duration,
    /// Inference backends of components granted `nn`.
    pub nn: kiln_nn::NnConfig,
}

/// The compile cache's default directory: `$XDG_CACHE_HOME/kiln/compiled`, else
/// `~/.cache/kiln/compiled`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("kiln").join("compiled"))
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cache_dir: None,
            allocation: Allocation::Auto,
            max_instance_memory: 1 << 30,
            max_instances: 256,
            max_wasm_stack: 512 * 1024,
            epoch_tick: Duration::from_millis(1),
            nn: kiln_nn::NnConfig::from_env(),
        }
    }
}

/// Limits of one deployment version's instances and requests.
#[derive(Clone, Debug)]
pub struct InstanceLimits {
    /// Linear memory per instance, in bytes.
    pub memory: usize,
    /// Deadline of one prediction inside the guest.
    pub deadline: Duration,
    /// Deadline of instantiating and loading the model.
    pub load_deadline: Duration,
    /// Predictions served at once (and so instances kept at most).
    pub concurrency: usize,
    /// Requests allowed to wait for an instance; past it requests are rejected at once.
    pub queue: usize,
}

impl Default for InstanceLimits {
    fn default() -> Self {
        InstanceLimits {
            memory: 128 << 20,
            deadline: Duration::from_secs(1),
            load_deadline: Duration::from_secs(30),
            concurrency: 4,
            queue: 64,
        }
    }
}

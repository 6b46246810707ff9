//! The loader: a [`ModelSource`] (a `.wasm` file with its artifacts, or an image) compiled,
//! loaded, checked on its sample and given its monitor, as a dataplane [`Deployment`].

use crate::Node;
use anyhow::{Context, Result};
use kiln_api::{Limits, MonitoringSettings};
use kiln_dataplane::{Dataplane, Deployment};
use kiln_engine::{Artifacts, Capabilities, InstanceLimits, Model, ModelSpec, ScoringEngine};
use kiln_image::{Baseline, DeployableImage};
use kiln_metrics::{DeploymentMetrics, Metrics};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a deployment version is made of.
pub struct ModelSource {
    /// The component's bytes.
    pub component: Vec<u8>,
    /// Capabilities granted to it.
    pub capabilities: Capabilities,
    /// The files its scorer's `load` reads.
    pub artifacts: Artifacts,
    /// The string its scorer's `load` gets.
    pub config: String,
    /// The version served.
    pub version: String,
    /// The image reference pinned by digest, for the log; none for a bare `.wasm` file.
    pub pinned: Option<String>,
    /// The image's default limits.
    pub limits: Limits,
    /// The image's drift baseline.
    pub baseline: Option<Baseline>,
    /// The image's `[monitoring]`.
    pub monitoring: MonitoringSettings,
    /// The image's sample rows (`{"columns", "data"}` JSON): the readiness gate's input.
    pub sample: Option<Vec<u8>>,
}

impl ModelSource {
    /// A `.wasm` file, with an artifacts directory and the capabilities the operator grants.
    pub fn from_file(
        path: &Path,
        artifacts: Option<&Path>,
        capabilities: &[String],
        config: &str,
        version: Option<&str>,
    ) -> Result<ModelSource> {
        let component =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(ModelSource {
            component,
            capabilities: Capabilities::from_names(capabilities).map_err(anyhow::Error::msg)?,
            artifacts: match artifacts {
                Some(dir) => Artifacts::from_dir(dir)?,
                None => Artifacts::empty(),
            },
            config: config.to_string(),
            version: version.unwrap_or("1").to_string(),
            pinned: None,
            limits: Limits::default(),
            baseline: None,
            monitoring: MonitoringSettings::default(),
            sample: None,
        })
    }

    /// An image opened by `reference`; what its manifest says.
    pub fn from_image(image: DeployableImage, reference: &str) -> Result<ModelSource> {
        let pinned = format!(
            "{}@{}",
            reference.split('@').next().unwrap_or(reference),
            image.manifest_digest
        );
        let config = image.config;
        let names = config
            .as_ref()
            .map_or(&[][..], |c| c.capabilities.as_slice());
        let capabilities = Capabilities::from_names(names).map_err(anyhow::Error::msg)?;
        Ok(ModelSource {
            component: image.component,
            capabilities,
            artifacts: Artifacts::from_files(image.files),
            version: config
                .as_ref()
                .map_or_else(|| "1".to_string(), |c| c.version.clone()),
            baseline: config.as_ref().and_then(|c| c.baseline.clone()),
            monitoring: config
                .as_ref()
                .and_then(|c| c.monitoring.clone())
                .unwrap_or_default(),
            limits: config
                .as_ref()
                .map(|c| c.limits.clone())
                .unwrap_or_default(),
            config: config.map(|c| c.scorer_config).unwrap_or_default(),
            pinned: Some(pinned),
            sample: image.sample,
        })
    }
}

/// What the deployment itself asks of a version, over its source's defaults.
#[derive(Clone, Debug, Default)]
pub struct Wanted {
    /// The deployment's limits (its scale's `max_instances` already applied).
    pub limits: Limits,
    /// The deployment's monitoring settings.
    pub monitoring: MonitoringSettings,
    /// Instances started before the version takes traffic.
    pub min_instances: Option<usize>,
    /// SHA-256 digests of the keys it accepts; `None` when it is open (or `--api-key` applies).
    pub key_digests: Option<Vec<[u8; 32]>>,
    /// Whether the image's sample rows go through the version before it serves: yes for a
    /// rollout from the desired state (an old version keeps serving if they fail); `kiln serve`
    /// of an operator's image leaves it out, as the image passed the same check at build and
    /// the rows would count in the deployment's metrics.
    pub check_sample: bool,
}

/// A loaded version, with the image's monitoring defaults (what a later change of the
/// deployment's own settings falls back to).
pub struct Loaded {
    /// The deployment, ready to insert.
    pub deployment: Deployment,
    /// The source's `[monitoring]`.
    pub image_monitoring: MonitoringSettings,
}

/// Instance limits from layered [`Limits`]: checked against their bounds, with the engine's
/// built-in defaults for what no layer sets.
pub fn instance_limits(limits: &Limits) -> Result<InstanceLimits> {
    limits.check()?;
    let defaults = InstanceLimits::default();
    Ok(InstanceLimits {
        memory: limits.memory_mb.map_or(defaults.memory, |mb| mb << 20),
        deadline: limits
            .deadline_ms
            .map_or(defaults.deadline, Duration::from_millis),
        load_deadline: limits
            .load_deadline_ms
            .map_or(defaults.load_deadline, Duration::from_millis),
        concurrency: limits.concurrency.unwrap_or(defaults.concurrency),
        queue: limits.queue.unwrap_or(defaults.queue),
    })
}

/// Compiles a component (or takes it from the cache), records the compile in the version's
/// metrics, and loads its instances.
pub async fn compile_and_load(
    engine: &Arc<ScoringEngine>,
    metrics: &Metrics,
    name: &str,
    source: &mut ModelSource,
    limits: InstanceLimits,
) -> Result<(Arc<Model>, Arc<DeploymentMetrics>)> {
    let compiled = {
        let engine = engine.clone();
        let bytes = std::mem::take(&mut source.component);
        let capabilities = source.capabilities;
        tokio::task::spawn_blocking(move || engine.compile_granted(&bytes, capabilities))
            .await
            .context("compile task failed")??
    };
    let deployment_metrics = Arc::new(metrics.deployment(name, &source.version));
    deployment_metrics.record_compile(compiled.compile_time.as_secs_f64(), compiled.cached);
    tracing::info!(
        deployment = %name,
        digest = %compiled.digest,
        image = source.pinned.as_deref().unwrap_or("none"),
        cached = compiled.cached,
        "component ready in {:.1} ms",
        compiled.compile_time.as_secs_f64() * 1e3
    );
    let spec = ModelSpec {
        name: name.to_string(),
        compiled,
        artifacts: std::mem::replace(&mut source.artifacts, Artifacts::empty()),
        config: std::mem::take(&mut source.config),
        limits,
    };
    let model = Model::load(engine.clone(), spec, deployment_metrics.clone()).await?;
    Ok((model, deployment_metrics))
}

/// The readiness gate on an image's sample rows (see [`Dataplane::check_sample`]).
pub async fn check_sample(dataplane: &Dataplane, trial: &Deployment, sample: &[u8]) -> Result<()> {
    let table = kiln_image::SampleTable::from_json(sample)?;
    dataplane
        .check_sample(trial, &table.columns, &table.rows)
        .await
        .map_err(|e| anyhow::anyhow!("sample check failed: {}", e.message()))?;
    tracing::info!(deployment = %trial.name, version = %trial.version, rows = table.rows.len(), "sample check passed");
    Ok(())
}

impl Node {
    /// Loads `source` as deployment `name`: limits layered (the deployment's over the source's
    /// over the node's defaults) and checked, the component compiled and its instances loaded,
    /// the sample rows checked (when asked), the minimum of instances started, the monitor attached.
    pub async fn load(
        &self,
        name: &str,
        mut source: ModelSource,
        wanted: Wanted,
    ) -> Result<Loaded> {
        let limits = instance_limits(&wanted.limits.or(&source.limits).or(&self.defaults))?;
        let (model, metrics) =
            compile_and_load(&self.engine, &self.metrics, name, &mut source, limits).await?;
        let mut deployment = Deployment::new(name, source.version.clone(), model, metrics);
        if let Some(sample) = source.sample.as_ref().filter(|_| wanted.check_sample) {
            check_sample(&self.dataplane, &deployment, sample).await?;
        }
        if let Some(min) = wanted.min_instances {
            deployment.model.warm(min).await?;
        }
        deployment.monitor = self
            .monitoring
            .attach(
                name,
                &source.version,
                &deployment.model,
                source.baseline.as_ref(),
                &wanted.monitoring.or(&source.monitoring),
            )
            .await;
        deployment.key_digests = wanted.key_digests;
        Ok(Loaded {
            deployment,
            image_monitoring: source.monitoring,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_limits_take_the_engine_defaults_and_bounds_hold() {
        let defaults = InstanceLimits::default();
        let resolved = instance_limits(&Limits::default()).expect("defaults");
        assert_eq!(resolved.memory, defaults.memory);
        assert_eq!(resolved.concurrency, defaults.concurrency);
        let deployment = Limits {
            memory_mb: Some(32),
            ..Limits::default()
        };
        let image = Limits {
            memory_mb: Some(256),
            deadline_ms: Some(250),
            ..Limits::default()
        };
        let node = Limits {
            concurrency: Some(2),
            deadline_ms: Some(5000),
            ..Limits::default()
        };
        let resolved = instance_limits(&deployment.or(&image).or(&node)).expect("layered");
        assert_eq!(resolved.memory, 32 << 20);
        assert_eq!(resolved.deadline, Duration::from_millis(250));
        assert_eq!(resolved.concurrency, 2);
        let too_many = Limits {
            concurrency: Some(5000),
            ..Limits::default()
        };
        let error = instance_limits(&too_many).expect_err("bounds");
        assert!(
            error.to_string().contains("concurrency must be 1 to 1024"),
            "{error}"
        );
    }
}

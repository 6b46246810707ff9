//! `kiln-bench-rollout`: the serverless and rollout benchmark (run it through `tests/bench`, or
//! alone with `tests/bench --rollout`).
//!
//! In one run, on this machine:
//! 1. cold start: a deployment with no instance left answers its next request (instance start
//!    with a warm compile cache, plus the prediction), in process and over HTTP on `kiln up`,
//!    against a warm answer;
//! 2. density: 1,000 then 10,000 deployments of the iris image in one runtime (each with its
//!    model loaded and checked, its drift monitor and metrics, then scaled to zero), resident
//!    memory per idle deployment and the time to deploy them all; and 1,000 through the control
//!    plane of `kiln up`, end to end;
//! 3. requests/s of an endpoint during a traffic shift (weights changed every 250 ms between two
//!    deployments) against steady state, with wrk, in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use anyhow::{Context, Result, bail};
use kiln_dataplane::{Deployment, DeploymentRegistry};
use kiln_engine::{Artifacts, EngineConfig, InstanceLimits, Model, ModelSpec, ScoringEngine};
use kiln_metrics::Metrics;
use kiln_tests::runs::{Lab, WG};
use kiln_tests::{Up, build_iris_image, repo, temp_dir};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BODY: &str =
    r#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

fn iris_input() -> Vec<kiln_engine::Tensor> {
    vec![kiln_engine::Tensor {
        name: "input".into(),
        shape: vec![1, 4],
        data: kiln_engine::TensorData::Fp32(vec![5.1, 3.5, 1.4, 0.2]),
    }]
}

struct Iris {
    engine: Arc<ScoringEngine>,
    image: kiln_image::DeployableImage,
}

impl Iris {
    fn spec(&self, name: &str) -> Result<ModelSpec> {
        let config = self.image.config.as_ref().context("iris image config")?;
        Ok(ModelSpec {
            name: name.into(),
            compiled: self.engine.compile(&self.image.component)?,
            artifacts: Artifacts::from_files(self.image.files.clone()),
            config: config.scorer_config.clone(),
            limits: InstanceLimits::default(),
        })
    }
}

/// Cold against warm answers of one deployment, in process.
async fn cold_start(iris: &Iris) -> Result<()> {
    let metrics = Metrics::new();
    let dm = Arc::new(metrics.deployment("cold", "1"));
    let model = Model::load(iris.engine.clone(), iris.spec("cold")?, dm).await?;
    let input = iris_input();
    let mut warm = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        model.predict(&input).await?;
        warm.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut cold = Vec::new();
    for _ in 0..300 {
        model.release_idle(0);
        let t = Instant::now();
        model.predict(&input).await?;
        cold.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (w50, w99) = summary(warm);
    let (c50, c99) = summary(cold);
    println!(
        "\ncold start, in process (iris, pooling: {})",
        iris.engine.pooling()
    );
    println!("  warm answer            p50 {w50:>8.3} ms   p99 {w99:>8.3} ms   (2000)");
    println!(
        "  from zero instances    p50 {c50:>8.3} ms   p99 {c99:>8.3} ms   (300; target < 10 ms)"
    );
    Ok(())
}

/// `n` more deployments in `registry`, each loaded, checked, monitored, then scaled to zero.
async fn deploy_many(
    iris: &Iris,
    metrics: &Metrics,
    registry: &DeploymentRegistry,
    from: usize,
    n: usize,
) -> Result<Duration> {
    let config = iris.image.config.as_ref().context("iris image config")?;
    let baseline = config.baseline.clone();
    let started = Instant::now();
    for i in from..from + n {
        let name = format!("d{i:05}");
        let dm = Arc::new(metrics.deployment(&name, "1"));
        let model = Model::load(iris.engine.clone(), iris.spec(&name)?, dm.clone()).await?;
        // The readiness check every deployment passes: one prediction.
        model.predict(&iris_input()).await?;
        let monitor = Arc::new(kiln_monitor::Monitor::new(
            &name,
            "1",
            model.metadata(),
            baseline.as_ref(),
            kiln_monitor::MonitorSettings::default(),
            metrics.monitor(&name, "1"),
        ));
        model.release_idle(0);
        registry.insert(Deployment {
            name,
            version: "1".into(),
            model,
            metrics: dm,
            key_digests: Some(vec![[7; 32], [9; 32]]),
            monitor: Some(monitor),
        });
    }
    Ok(started.elapsed())
}

async fn density(iris: &Iris) -> Result<()> {
    let metrics = Metrics::new();
    let registry = DeploymentRegistry::default();
    // One deployment first, so the shared parts (code, memory image) are not counted per
    // deployment.
    deploy_many(iris, &metrics, &registry, 0, 1).await?;
    let base = rss_kib();
    println!("\ndensity: iris deployments in one runtime, idle (no instance)");
    println!(
        "  {:>8} {:>14} {:>16} {:>14} {:>16}",
        "total", "RSS MiB", "KiB/deployment", "deploy s", "deployments/s"
    );
    let mut total = 1;
    for target in [1_000usize, 10_000] {
        let added = target - total;
        let took = deploy_many(iris, &metrics, &registry, total, added).await?;
        total = target;
        let rss = rss_kib();
        let per = (rss.saturating_sub(base)) as f64 / (total - 1) as f64;
        println!(
            "  {total:>8} {:>14.1} {per:>16.1} {:>14.2} {:>16.0}",
            rss as f64 / 1024.0,
            took.as_secs_f64(),
            added as f64 / took.as_secs_f64()
        );
    }
    let exported = metrics.encode().len();
    println!(
        "  resident memory per idle deployment, target < 1024 KiB; /metrics is {:.1} MiB at 10,000",
        exported as f64 / (1 << 20) as f64
    );
    drop(registry);
    Ok(())
}

/// 1,000 deployments through the management API of `kiln up`, until all are ready.
fn density_end_to_end(lab: &Lab, up: &Up) -> Result<()> {
    let n = 1000;
    let rss_before = up.memory_kib("VmRSS");
    let started = Instant::now();
    for i in 0..n {
        lab.ok(
            "POST",
            &format!("{WG}/deployments"),
            Some(
                &json!({ "name": format!("many{i:04}"), "image": "iris", "public": true,
                          "scale": { "min_instances": 0, "idle_timeout_s": 1 } }),
            ),
        );
    }
    let created = started.elapsed();
    loop {
        let ready = count_ready(up);
        if ready >= n {
            break;
        }
        if let Some(line) = up.log().lines().find(|l| l.contains("not served:")) {
            bail!("a deployment failed: {line}");
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {ready} of {n} deployments ready after 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let all_ready = started.elapsed();
    // Idle past the timeout: every instance released.
    std::thread::sleep(Duration::from_secs(3));
    let rss_after = up.memory_kib("VmRSS");
    println!(
        "\n{n} deployments through kiln up's API: created in {:.1} s, all ready in {:.1} s ({:.0}/s); \
         RSS {:.1} -> {:.1} MiB, {:.1} KiB per idle deployment (with its control-plane records)",
        created.as_secs_f64(),
        all_ready.as_secs_f64(),
        n as f64 / all_ready.as_secs_f64(),
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        rss_after.saturating_sub(rss_before) as f64 / n as f64
    );
    Ok(())
}

fn count_ready(up: &Up) -> usize {
    let text = String::from_utf8(kiln_tests::get(&up.metrics).body).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("kiln_deployment_ready{") && l.trim_end().ends_with(" 1"))
        .count()
}

/// Cold answers over HTTP: a deployment that scaled to zero, asked again.
fn cold_http(up: &Up) -> Result<()> {
    let url = format!("{}/v2/models/sleepy/infer", up.base);
    let post = || {
        let t = Instant::now();
        let reply = kiln_tests::post(
            &url,
            &[("Content-Type", "application/json")],
            BODY.as_bytes(),
        );
        (reply.status, t.elapsed().as_secs_f64() * 1e3)
    };
    let series = r#"kiln_instances{deployment="sleepy",version="1"}"#;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while up.metric(series) != Some(0.0) {
            if Instant::now() > deadline {
                bail!("sleepy never scaled to zero");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, ms) = post();
        if status != 200 {
            bail!("cold request answered {status}");
        }
        cold.push(ms);
        warm.push(post().1);
    }
    let (c50, _) = summary(cold.clone());
    let (w50, _) = summary(warm);
    println!(
        "cold start over HTTP on kiln up (5 times after scale to zero): median {c50:.2} ms, max {:.2} ms; warm median {w50:.2} ms",
        cold.iter().copied().fold(0.0, f64::max)
    );
    Ok(())
}

/// Requests/s of an endpoint, steady, then while its weights change every 250 ms.
fn shift(up: &Up, lab: &Lab, connections: u32, seconds: u32) -> Result<()> {
    let url = format!("{}/v2/models/flowers/infer", up.base);
    kiln_tests::wrk::post(&url, BODY, &[], connections, 2)?;
    let steady = kiln_tests::wrk::post(&url, BODY, &[], connections, seconds)?;
    let stop = Arc::new(AtomicBool::new(false));
    let changes = std::thread::scope(|scope| -> Result<(kiln_tests::wrk::Load, usize)> {
        let flag = stop.clone();
        let shifter = scope.spawn(move || {
            let mut n = 0;
            for green in [0u32, 10, 50, 100].into_iter().cycle() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                lab.ok(
                    "PATCH",
                    &format!("{WG}/endpoints/flowers"),
                    Some(&json!({ "traffic": { "blue": 100 - green, "green": green } })),
                );
                n += 1;
                std::thread::sleep(Duration::from_millis(250));
            }
            n
        });
        let during = kiln_tests::wrk::post(&url, BODY, &[], connections, seconds);
        stop.store(true, Ordering::Relaxed);
        let n = shifter.join().unwrap();
        Ok((during?, n))
    })?;
    let (during, n) = changes;
    println!(
        "\nendpoint requests/s, wrk -t2 -c{connections} -d{seconds}s\n  {:<34} {:>12} {:>10} {:>10} {:>8}",
        "", "requests/s", "p50 ms", "p99 ms", "failed"
    );
    for (label, load) in [
        ("steady (blue 100%)".to_string(), &steady),
        (format!("during a shift ({n} weight changes)"), &during),
    ] {
        println!(
            "  {label:<34} {:>12.0} {:>10.3} {:>10.3} {:>8}",
            load.rps, load.p50_ms, load.p99_ms, load.failed
        );
    }
    println!(
        "  ratio during shift / steady: {:.3}x requests/s",
        during.rps / steady.rps
    );
    if during.failed > 0 || steady.failed > 0 {
        bail!("requests failed during the shift");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut connections, mut seconds) = (32u32, 10u32);
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--connections", Some(v)) => connections = v.parse()?,
            ("--seconds", Some(v)) => seconds = v.parse()?,
            _ => bail!("usage: kiln-bench-rollout [--connections N] [--seconds N]"),
        }
    }
    let cache = repo().join("target/bench-cache");
    let store_dir = temp_dir("bench-rollout-store");
    build_iris_image(&store_dir);
    let store = kiln_image::OciStore::open(&store_dir)?;
    let image = kiln_image::open_image(&store, "iris:1")?;
    let engine = Arc::new(ScoringEngine::new(&EngineConfig {
        cache_dir: Some(cache),
        ..EngineConfig::default()
    })?);
    engine.compile(&image.component)?;
    let iris = Iris { engine, image };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(cold_start(&iris))?;
    runtime.block_on(density(&iris))?;
    drop(iris);

    let dir = temp_dir("bench-rollout");
    let up = Up::start(&dir, &[]);
    let lab = Lab::new(&up, &up.admin());
    build_iris_image(&up.store());
    lab.ok(
        "POST",
        &format!("{WG}/images"),
        Some(&json!({ "name": "iris", "reference": "iris:1" })),
    );
    lab.ok(
        "POST",
        &format!("{WG}/endpoints"),
        Some(&json!({ "name": "flowers", "public": true })),
    );
    for name in ["blue", "green"] {
        lab.ok(
            "POST",
            &format!("{WG}/deployments"),
            Some(
                &json!({ "name": name, "image": "iris", "public": true, "endpoint": "flowers",
                          "limits": { "concurrency": 8 } }),
            ),
        );
    }
    lab.ok(
        "POST",
        &format!("{WG}/deployments"),
        Some(&json!({ "name": "sleepy", "image": "iris", "public": true,
                      "scale": { "min_instances": 0, "idle_timeout_s": 1 } })),
    );
    for name in ["blue", "green", "sleepy"] {
        up.wait_deployment(&lab.token, &format!("{WG}/deployments/{name}"));
    }
    shift(&up, &lab, connections, seconds)?;
    cold_http(&up)?;
    density_end_to_end(&lab, &up)?;
    Ok(())
}

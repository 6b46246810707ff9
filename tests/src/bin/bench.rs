//! `kiln-bench`: Kiln's scoring benchmark (run it through `tests/bench`).
//!
//! In one run it measures, on this machine:
//! 1. `kiln serve` with the iris component against a native Rust handler computing the same model
//!    in-process behind the same HTTP stack (axum) and the same OIP v2 JSON code, both loaded by
//!    wrk at the same connection count: requests/s, p50, p99, and the ratio;
//! 2. the time from spawning `kiln serve` to its first answered prediction, with a warm compile
//!    cache;
//! 3. the cost of one instance start (instantiate + load + metadata), pooling and on-demand;
//! 4. the iris image served with drift monitoring on and off, alternating, in the same run
//!    (requests/s, p99, ratio), and the cost of folding one value into a drift histogram.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use anyhow::{Context, Result, bail};
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use kiln_dataplane::protocol::v2;
use kiln_dataplane::{ApiError, InferResponse};
use kiln_engine::{
    Allocation, Artifacts, EngineConfig, InstanceLimits, Model, ModelSpec, ScoringEngine, Tensor,
    TensorData,
};
use kiln_metrics::Metrics;
use kiln_tests::wrk::Load;
use kiln_tests::{repo, temp_dir};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BODY: &str =
    r#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#;

struct Settings {
    connections: u32,
    seconds: u32,
    kiln: String,
}

fn settings() -> Settings {
    let mut s = Settings {
        connections: 32,
        seconds: 10,
        kiln: repo().join("target/release/kiln").display().to_string(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--connections", Some(v)) => s.connections = v.parse().expect("--connections N"),
            ("--seconds", Some(v)) => s.seconds = v.parse().expect("--seconds N"),
            ("--kiln", Some(v)) => s.kiln = v.clone(),
            _ => panic!("usage: kiln-bench [--connections N] [--seconds N] [--kiln PATH]"),
        }
    }
    s
}

/// The iris model computed natively, the same arithmetic as the scorer.
struct NativeIris {
    coef: Vec<Vec<f64>>,
    intercept: Vec<f64>,
}

impl NativeIris {
    fn load() -> Self {
        let (coef, intercept) = kiln_tests::iris_weights();
        NativeIris { coef, intercept }
    }

    fn predict(&self, inputs: &[Tensor]) -> Vec<Tensor> {
        let TensorData::Fp32(x) = &inputs[0].data else {
            return vec![];
        };
        let rows = x.len() / 4;
        let (mut labels, mut probabilities) = (Vec::with_capacity(rows), Vec::new());
        for row in x.chunks_exact(4) {
            let (label, p) = kiln_tests::iris_row(&self.coef, &self.intercept, row);
            labels.push(label);
            probabilities.extend(p.iter().map(|&v| v as f32));
        }
        vec![
            Tensor {
                name: "label".into(),
                shape: vec![rows as i64],
                data: TensorData::Int64(labels),
            },
            Tensor {
                name: "probabilities".into(),
                shape: vec![rows as i64, 3],
                data: TensorData::Fp32(probabilities),
            },
        ]
    }
}

async fn native_infer(model: Arc<NativeIris>, headers: HeaderMap, body: Body) -> Response {
    let run = async {
        let body = axum::body::to_bytes(body, 16 << 20)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut parsed = v2::parse(&headers, &body, 1 << 22)?;
        let request = parsed.take_request();
        let outputs = model.predict(&request.inputs);
        Ok::<_, ApiError>(v2::respond(
            &parsed,
            InferResponse {
                model_name: "iris".into(),
                model_version: "1".into(),
                id: request.id,
                outputs,
            },
        ))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

fn start_native() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let model = Arc::new(NativeIris::load());
            let app = axum::Router::new().route(
                "/v2/models/iris/infer",
                axum::routing::post(move |headers: HeaderMap, body: Body| {
                    native_infer(model.clone(), headers, body)
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

struct KilnProcess {
    child: std::process::Child,
    base: String,
}

impl Drop for KilnProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn iris_deploy() -> String {
    let component = repo().join("target/components/iris.wasm");
    let model = repo().join("examples/iris/model");
    format!("iris={},artifacts={}", component.display(), model.display())
}

fn spawn_kiln(kiln: &str, cache: &str) -> Result<(KilnProcess, Instant)> {
    spawn_kiln_with(kiln, cache, &["--deploy", &iris_deploy()])
}

fn spawn_kiln_with(kiln: &str, cache: &str, args: &[&str]) -> Result<(KilnProcess, Instant)> {
    let started = Instant::now();
    let mut child = Command::new(kiln)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--cache-dir",
            cache,
        ])
        .args(args)
        .env("KILN_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("cannot run {kiln}: build it with cargo build --release -p kiln")
        })?;
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let Some(Ok(line)) = lines.next() else {
            bail!("kiln serve exited before listening")
        };
        if let Some(rest) = line.split("deployment(s) on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((KilnProcess { child, base }, started))
}

fn first_prediction_ms(kiln: &str, cache: &str) -> Result<f64> {
    first_prediction_ms_with(kiln, cache, &["--deploy", &iris_deploy()])
}

fn first_prediction_ms_with(kiln: &str, cache: &str, args: &[&str]) -> Result<f64> {
    let (process, started) = spawn_kiln_with(kiln, cache, args)?;
    let url = format!("{}/v2/models/iris/infer", process.base);
    loop {
        let reply = kiln_tests::post(
            &url,
            &[("Content-Type", "application/json")],
            BODY.as_bytes(),
        );
        if reply.status == 200 {
            return Ok(started.elapsed().as_secs_f64() * 1e3);
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("no prediction within 30 s");
        }
    }
}

/// wrk's run, failing when any answer failed.
fn wrk(url: &str, s: &Settings) -> Result<Load> {
    let load = kiln_tests::wrk::post(url, BODY, &[], s.connections, s.seconds)?;
    if load.failed > 0 {
        bail!("wrk saw {} failed requests", load.failed);
    }
    Ok(load)
}

async fn instance_start_us(
    allocation: Allocation,
    component: &str,
    artifacts: Artifacts,
    config: &str,
) -> Result<(f64, bool)> {
    let engine = Arc::new(ScoringEngine::new(&EngineConfig {
        allocation,
        ..EngineConfig::default()
    })?);
    let bytes = std::fs::read(repo().join("target/components").join(component))?;
    let metrics = Metrics::new();
    let rounds = 300;
    let mut total = Duration::ZERO;
    // One compiled component, started again and again: what a cold start costs in service.
    let compiled = engine.compile(&bytes)?;
    for i in 0..rounds + 20 {
        let spec = ModelSpec {
            name: "bench".into(),
            compiled: compiled.clone(),
            artifacts: artifacts.clone(),
            config: config.into(),
            limits: InstanceLimits::default(),
        };
        let deployment = Arc::new(metrics.deployment("bench", "1"));
        let started = Instant::now();
        let model = Model::load(engine.clone(), spec, deployment).await?;
        if i >= 20 {
            total += started.elapsed();
        }
        drop(model);
    }
    Ok((total.as_secs_f64() * 1e6 / rounds as f64, engine.pooling()))
}

/// Deploy-to-first-prediction of the iris image: from a real registry with a cold compile cache
/// and an empty store, and from the local store with a warm cache; and a trivial container.
fn deploy_figures(kiln: &str) -> Result<()> {
    if Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_err()
    {
        println!(
            "deploy from a registry: skipped (no docker-registry; tests/bench installs it as root)"
        );
        return Ok(());
    }
    let registry = kiln_tests::RegistryServer::start(None);
    let dir = temp_dir("bench-images");
    let store = dir.join("store");
    let image = kiln_tests::build_iris_image(&store);
    let remote = format!("{}/models/iris:1", registry.addr);
    let pushed = Command::new(kiln)
        .args(["push", &image, &remote, "--store", store.to_str().unwrap()])
        .output()?;
    if !pushed.status.success() {
        bail!("push failed: {}", String::from_utf8_lossy(&pushed.stderr));
    }
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for i in 0..5 {
        let fresh = dir.join(format!("fresh{i}"));
        let cache = dir.join(format!("cache{i}"));
        let (fresh, cache) = (fresh.to_str().unwrap(), cache.to_str().unwrap());
        let from_registry = format!("iris=oci://{remote}");
        cold.push(first_prediction_ms_with(
            kiln,
            cache,
            &["--store", fresh, "--deploy", &from_registry],
        )?);
        // The same image by its local tag, with the cache the cold run filled: no registry.
        let from_store = format!("iris={image}");
        warm.push(first_prediction_ms_with(
            kiln,
            cache,
            &["--store", store.to_str().unwrap(), "--deploy", &from_store],
        )?);
    }
    cold.sort_by(f64::total_cmp);
    warm.sort_by(f64::total_cmp);
    println!(
        "deploy to first prediction, iris image: from the registry (empty store, cold compile cache) median {:.1} ms; \
              from the local store (warm cache) median {:.1} ms (5 runs each)",
        cold[2], warm[2]
    );
    match podman_run_ms() {
        Ok(mut runs) => {
            runs.sort_by(f64::total_cmp);
            println!(
                "trivial container (podman run --rm localhost/busybox:bench true) median {:.1} ms (5 runs); \
                 container / Kiln from the store: {:.0}x, container / Kiln from the registry: {:.1}x",
                runs[2],
                runs[2] / warm[2],
                runs[2] / cold[2]
            );
        }
        Err(why) => println!("trivial container: not measured ({why})"),
    }
    Ok(())
}

/// Five timed `podman run --rm` of the busybox image tests/bench imports.
fn podman_run_ms() -> Result<Vec<f64>> {
    let mut runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let run = Command::new("podman")
            .args(["run", "--rm", "localhost/busybox:bench", "true"])
            .output()
            .map_err(|e| anyhow::anyhow!("podman: {e}; tests/bench installs it as root"))?;
        if !run.status.success() {
            bail!(
                "podman run failed: {}",
                String::from_utf8_lossy(&run.stderr).trim()
            );
        }
        runs.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(runs)
}

fn main() -> Result<()> {
    let s = settings();
    println!(
        "kiln-bench: iris, one row per request, OIP v2 JSON, wrk -t2 -c{} -d{}s",
        s.connections, s.seconds
    );

    let cache = temp_dir("bench-cache").display().to_string();
    let cold = first_prediction_ms(&s.kiln, &cache)?;
    let mut warm: Vec<f64> = (0..7)
        .map(|_| first_prediction_ms(&s.kiln, &cache))
        .collect::<Result<_>>()?;
    warm.sort_by(f64::total_cmp);
    println!(
        "\nstart to first prediction: cold cache {cold:.1} ms; warm cache median {:.1} ms (min {:.1}, max {:.1}, 7 runs)",
        warm[3], warm[0], warm[6]
    );

    deploy_figures(&s.kiln)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let iris_artifacts = Artifacts::from_dir(&repo().join("examples/iris/model"))?;
    for (label, allocation) in [
        ("pooling", Allocation::Auto),
        ("on-demand", Allocation::OnDemand),
    ] {
        let (iris, pooled) = runtime.block_on(instance_start_us(
            allocation,
            "iris.wasm",
            iris_artifacts.clone(),
            "",
        ))?;
        let (echo, _) = runtime.block_on(instance_start_us(
            allocation,
            "faults.wasm",
            Artifacts::empty(),
            "echo",
        ))?;
        println!(
            "instance start ({label}{}): iris {iris:.1} us, minimal scorer {echo:.1} us (instantiate + load + metadata, mean of 300)",
            if pooled || allocation == Allocation::OnDemand {
                ""
            } else {
                ", fell back to on-demand"
            }
        );
    }

    let native = start_native();
    let (kiln, _) = spawn_kiln(&s.kiln, &cache)?;
    let url_native = format!("{native}/v2/models/iris/infer");
    let url_kiln = format!("{}/v2/models/iris/infer", kiln.base);
    // Both answer the same before they are measured.
    let a = kiln_tests::post(
        &url_native,
        &[("Content-Type", "application/json")],
        BODY.as_bytes(),
    )
    .json();
    let b = kiln_tests::post(
        &url_kiln,
        &[("Content-Type", "application/json")],
        BODY.as_bytes(),
    )
    .json();
    assert_eq!(a["outputs"], b["outputs"], "native and Kiln disagree");

    let warmup = Settings {
        seconds: 2,
        kiln: String::new(),
        ..s
    };
    wrk(&url_native, &warmup)?;
    let native_load = wrk(&url_native, &s)?;
    wrk(&url_kiln, &warmup)?;
    let kiln_load = wrk(&url_kiln, &s)?;
    println!(
        "\n{:<28} {:>12} {:>10} {:>10}",
        "server", "requests/s", "p50 ms", "p99 ms"
    );
    for (name, load) in [
        ("native Rust handler (axum)", &native_load),
        ("kiln serve (wasm scorer)", &kiln_load),
    ] {
        println!(
            "{name:<28} {:>12.0} {:>10.3} {:>10.3}",
            load.rps, load.p50_ms, load.p99_ms
        );
    }
    println!(
        "\nratio kiln/native: {:.2}x requests/s (target >= 0.6x); kiln p99 {:.2} ms (target < 5 ms)",
        kiln_load.rps / native_load.rps,
        kiln_load.p99_ms
    );
    drop(kiln);
    monitoring_figures(&s, &cache)
}

/// The iris image with monitoring on and off (alternating, twice each), and the hot-path cost
/// of one value.
fn monitoring_figures(s: &Settings, cache: &str) -> Result<()> {
    let store = temp_dir("bench-monitor-store");
    let built = Command::new(&s.kiln)
        .args(["image", "build"])
        .arg(repo().join("examples/iris/kiln.toml"))
        .arg("--store")
        .arg(&store)
        .output()?;
    if !built.status.success() {
        bail!(
            "image build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let store_arg = store.display().to_string();
    let warmup = Settings {
        seconds: 2,
        kiln: String::new(),
        ..*s
    };
    let mut results: Vec<(&str, Load)> = Vec::new();
    for monitored in [false, true, false, true] {
        let mut args = vec!["--store", &store_arg, "--deploy", "iris=iris:1"];
        if !monitored {
            args.push("--no-monitoring");
        }
        let (kiln, _) = spawn_kiln_with(&s.kiln, cache, &args)?;
        let url = format!("{}/v2/models/iris/infer", kiln.base);
        wrk(&url, &warmup)?;
        results.push((if monitored { "on" } else { "off" }, wrk(&url, s)?));
    }
    println!(
        "\n{:<34} {:>12} {:>10} {:>10}",
        "iris image, drift monitoring", "requests/s", "p50 ms", "p99 ms"
    );
    for (label, load) in &results {
        println!(
            "{:<34} {:>12.0} {:>10.3} {:>10.3}",
            format!("monitoring {label}"),
            load.rps,
            load.p50_ms,
            load.p99_ms
        );
    }
    let mean = |which: &str| {
        let v: Vec<&Load> = results
            .iter()
            .filter(|r| r.0 == which)
            .map(|r| &r.1)
            .collect();
        (
            v.iter().map(|l| l.rps).sum::<f64>() / v.len() as f64,
            v.iter().map(|l| l.p99_ms).sum::<f64>() / v.len() as f64,
        )
    };
    let (on, on_p99) = mean("on");
    let (off, off_p99) = mean("off");
    println!(
        "ratio monitoring on/off: {:.3}x requests/s (target >= 0.9x); p99 {on_p99:.3} ms on, {off_p99:.3} ms off (means of two runs each)",
        on / off
    );

    // The hot path alone: one request's 4 inputs and 4 outputs folded into the histograms.
    let image = kiln_image::open_image(&kiln_image::OciStore::open(&store)?, "iris:1")?;
    let baseline = image
        .config
        .and_then(|c| c.baseline)
        .context("the iris image has no baseline")?;
    let spec = |name: &str, datatype, shape: &[i64]| kiln_engine::TensorSpec {
        name: name.into(),
        datatype,
        shape: shape.to_vec(),
    };
    use kiln_engine::Datatype;
    let metadata = kiln_engine::ModelMetadata {
        name: "iris".into(),
        platform: "bench".into(),
        inputs: vec![spec("input", Datatype::Fp32, &[-1, 4])],
        outputs: vec![
            spec("label", Datatype::Int64, &[-1]),
            spec("probabilities", Datatype::Fp32, &[-1, 3]),
        ],
    };
    let metrics = Metrics::new();
    let monitor = Arc::new(kiln_monitor::Monitor::new(
        "iris",
        "1",
        &metadata,
        Some(&baseline),
        kiln_monitor::MonitorSettings::default(),
        metrics.monitor("iris", "1"),
    ));
    let values = monitor.plan().slots.len() as f64;
    let request = |rows: usize| {
        let inputs = vec![Tensor {
            name: "input".into(),
            shape: vec![rows as i64, 4],
            data: TensorData::Fp32([5.1f32, 3.5, 1.4, 0.2].repeat(rows)),
        }];
        let outputs = vec![
            Tensor {
                name: "label".into(),
                shape: vec![rows as i64],
                data: TensorData::Int64(vec![0; rows]),
            },
            Tensor {
                name: "probabilities".into(),
                shape: vec![rows as i64, 3],
                data: TensorData::Fp32([0.97f32, 0.02, 0.01].repeat(rows)),
            },
        ];
        (inputs, outputs)
    };
    for (rows, threads) in [(1usize, 1usize), (100, 1), (1, 2), (100, 2)] {
        let (inputs, outputs) = request(rows);
        let iterations = 2_000_000 / rows;
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let (monitor, inputs, outputs) = (monitor.clone(), &inputs, &outputs);
                scope.spawn(move || {
                    for _ in 0..iterations {
                        monitor.observe(std::hint::black_box(inputs), outputs);
                    }
                });
            }
        });
        let per_value =
            started.elapsed().as_secs_f64() * 1e9 / (iterations as f64 * rows as f64 * values);
        let per_request = started.elapsed().as_secs_f64() * 1e9 / iterations as f64;
        println!(
            "drift update, {rows:>3} row(s) per request, {threads} thread(s): {per_value:.1} ns per value ({values} values per row), {per_request:.0} ns per request{}",
            if threads > 1 {
                " (each thread, all in parallel on one monitor)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

//! Serverless scaling: a deployment with `min_instances` 0 and an idle timeout releases its
//! instances (and their memory) when idle, and the next request starts one, counted as a cold
//! start; under concurrency instances are added up to `max_instances`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::runs::{Lab, WG};
use kiln_tests::{Up, build_iris_image, call, component, run_kiln, temp_dir, v2_fp32};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn an_idle_deployment_scales_to_zero_and_the_next_request_starts_one() {
    let dir = temp_dir("scale-to-zero");
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
        &format!("{WG}/deployments"),
        Some(&json!({ "name": "iris", "image": "iris", "public": true,
                      "scale": { "min_instances": 0, "idle_timeout_s": 1 } })),
    );
    let status = up.wait_deployment(&lab.token, &format!("{WG}/deployments/iris"));
    assert_eq!(status["status"], "ready", "{status}");
    let body = serde_json::to_vec(&v2_fp32("input", &[1, 4], &[5.1, 3.5, 1.4, 0.2])).unwrap();
    let predict = || {
        call(
            "POST",
            &format!("{}/v2/models/iris/infer", up.base),
            &[("Content-Type", "application/json")],
            Some(&body),
        )
    };
    assert_eq!(predict().status, 200);
    let instances = r#"kiln_instances{deployment="iris",version="1"}"#;
    let starts = r#"kiln_instance_starts_total{deployment="iris",version="1"}"#;
    assert_eq!(up.metric(instances), Some(1.0));
    // Idle past the timeout: no instance is left.
    let deadline = Instant::now() + Duration::from_secs(30);
    while up.metric(instances) != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "never scaled to zero:\n{}",
            up.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        up.log_with("idle: instances released")
            .contains("idle: instances released")
    );
    let before = up.metric(starts).unwrap();
    // The next request wakes it: one cold start, and the answer is right.
    let reply = predict();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["outputs"][0]["data"], json!([0]));
    assert_eq!(up.metric(starts), Some(before + 1.0));
    assert_eq!(up.metric(instances), Some(1.0));
}

#[test]
fn instances_grow_under_concurrency_up_to_the_maximum_and_their_memory_goes_when_idle() {
    let dir = temp_dir("scale-up");
    let up = Up::start(&dir, &[]);
    let lab = Lab::new(&up, &up.admin());
    // Each instance holds 48 MiB written at load and works x million rounds per request.
    let image = dir.join("hold");
    std::fs::create_dir_all(&image).unwrap();
    std::fs::write(image.join("sample.csv"), "x\n0\n").unwrap();
    std::fs::write(
        image.join("kiln.toml"),
        format!(
            "name = \"hold\"\nversion = \"1\"\n[scorer]\ncomponent = \"{}\"\nconfig = \"hold=48\"\n[sample]\nfile = \"sample.csv\"\n",
            component("faults")
        ),
    )
    .unwrap();
    let (status, output) = run_kiln(&[
        "image",
        "build",
        image.join("kiln.toml").to_str().unwrap(),
        "--store",
        up.store().to_str().unwrap(),
    ]);
    assert!(status.success(), "{output}");
    lab.ok(
        "POST",
        &format!("{WG}/images"),
        Some(&json!({ "name": "hold", "reference": "hold:1" })),
    );
    lab.ok(
        "POST",
        &format!("{WG}/deployments"),
        Some(&json!({ "name": "hold", "image": "hold", "public": true,
                      "limits": { "memory_mb": 128 },
                      "scale": { "min_instances": 0, "max_instances": 3, "idle_timeout_s": 2 } })),
    );
    let status = up.wait_deployment(&lab.token, &format!("{WG}/deployments/hold"));
    assert_eq!(status["status"], "ready", "{status}");
    let instances = r#"kiln_instances{deployment="hold",version="1"}"#;
    let starts = r#"kiln_instance_starts_total{deployment="hold",version="1"}"#;
    assert_eq!(up.metric(instances), Some(1.0));

    // Six requests at once: instances are added up to the maximum of three, never more.
    let url = format!("{}/v2/models/hold/infer", up.base);
    let body = serde_json::to_vec(&v2_fp32("x", &[1], &[40.0])).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (url, body, barrier) = (url.clone(), body.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                call(
                    "POST",
                    &url,
                    &[("Content-Type", "application/json")],
                    Some(&body),
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(statuses, vec![200; 6], "{}", up.log());
    assert_eq!(up.metric(instances), Some(3.0));
    assert_eq!(up.metric(starts), Some(3.0));
    let busy_rss = up.memory_kib("VmRSS");

    // Idle past the timeout: every instance goes, and resident memory with them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while up.metric(instances) != Some(0.0) {
        assert!(Instant::now() < deadline, "never scaled to zero");
        std::thread::sleep(Duration::from_millis(100));
    }
    let idle_rss = up.memory_kib("VmRSS");
    assert!(
        busy_rss > idle_rss + 96 * 1024,
        "resident memory went from {busy_rss} KiB to {idle_rss} KiB: less than two instances' 48 MiB"
    );
    eprintln!("RSS with 3 instances: {busy_rss} KiB; after scale to zero: {idle_rss} KiB");
}

/// `kiln_instance_starts_total` of a deployment in the metrics `text`.
fn instance_starts(text: &str, deployment: &str) -> f64 {
    text.lines()
        .find(|l| {
            l.starts_with(&format!(
                "kiln_instance_starts_total{{deployment=\"{deployment}\""
            ))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The node's instance pool is shared: when it is full, a start takes the slots of idle instances
/// of the deployments used least recently, instead of failing.
#[test]
fn a_full_instance_pool_takes_slots_from_idle_deployments() {
    use kiln_engine::{Artifacts, EngineConfig, InstanceLimits, Model, ModelSpec, ScoringEngine};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let engine = std::sync::Arc::new(
            ScoringEngine::new(&EngineConfig {
                max_instances: 2,
                ..EngineConfig::default()
            })
            .unwrap(),
        );
        if !engine.pooling() {
            eprintln!("no pooling allocator on this host: nothing to share");
            return;
        }
        let bytes = std::fs::read(component("iris")).unwrap();
        let artifacts =
            Artifacts::from_dir(&kiln_tests::repo().join("examples/iris/model")).unwrap();
        let metrics = kiln_metrics::Metrics::new();
        let mut models: Vec<std::sync::Arc<Model>> = Vec::new();
        for name in ["a", "b", "c", "d"] {
            let spec = ModelSpec {
                name: name.into(),
                compiled: engine.compile(&bytes).unwrap(),
                artifacts: artifacts.clone(),
                config: String::new(),
                limits: InstanceLimits::default(),
            };
            let dm = std::sync::Arc::new(metrics.deployment(name, "1"));
            // Two slots, four deployments: each load after the second frees an idle one.
            let model = Model::load(engine.clone(), spec, dm).await.unwrap();
            // `a` keeps one instance warm (min_instances 1): nobody takes that slot.
            if name == "a" {
                model.warm(1).await.unwrap();
            }
            models.push(model);
        }
        let input = vec![kiln_engine::Tensor {
            name: "input".into(),
            shape: vec![1, 4],
            data: kiln_engine::TensorData::Fp32(vec![5.1, 3.5, 1.4, 0.2]),
        }];
        for model in &models {
            assert_eq!(model.predict(&input).await.unwrap().len(), 2);
        }
        let text = metrics.encode();
        let live: f64 = text
            .lines()
            .filter(|l| l.starts_with("kiln_instances{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert!(live <= 2.0, "{live} instances live in a pool of 2");
        // `a` kept its slot through every other deployment's start: it started once.
        assert_eq!(instance_starts(&text, "a"), 1.0, "{text}");
        assert_eq!(models[0].kept(), 1);
        // Once more around: still one start for `a`, the others take turns in the other slot.
        for model in &models {
            assert_eq!(model.predict(&input).await.unwrap().len(), 2);
        }
        let text = metrics.encode();
        assert_eq!(instance_starts(&text, "a"), 1.0, "{text}");
        assert!(instance_starts(&text, "b") >= 2.0, "{text}");
    });
}

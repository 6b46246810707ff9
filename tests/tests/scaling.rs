//! Serverless scaling: a deployment with `min_instances` 0 and an idle timeout releases its
//! instances when idle, and the next request starts one, counted as a cold start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::runs::{Lab, WG};
use kiln_tests::{Up, build_iris_image, call, temp_dir, v2_fp32};
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
    assert!(up.log().contains("idle: instances released"));
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

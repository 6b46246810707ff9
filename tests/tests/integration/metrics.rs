//! Per-deployment Prometheus metrics: the exposition passes `promtool check metrics`, and
//! counters read exactly what was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::*;

#[test]
fn counters_read_the_requests_sent() {
    let server = Server::start(&[
        "--deploy",
        &iris_deploy(),
        "--deploy",
        &fault_deploy("echo", "echo"),
    ]);
    let n = 25;
    let body = v2_fp32("input", &[1, 4], &IRIS_ROWS[0]);
    for _ in 0..n {
        assert_eq!(server.post_json("/v2/models/iris/infer", &body).status, 200);
    }
    for _ in 0..3 {
        assert_eq!(
            server
                .post_json(
                    "/v2/models/iris/infer",
                    &v2_fp32("input", &[1, 3], &[1.0; 3])
                )
                .status,
            400
        );
    }
    for _ in 0..2 {
        let reply = server.post_json(
            "/v1/models/iris:predict",
            &serde_json::json!({"instances": [IRIS_ROWS[1]]}),
        );
        assert_eq!(reply.status, 200);
    }
    let value = |series: &str| {
        server
            .metric(series)
            .unwrap_or_else(|| panic!("no {series}"))
    };
    assert_eq!(
        value(r#"kiln_requests_total{code="200",deployment="iris",protocol="v2",version="1"}"#),
        n as f64
    );
    assert_eq!(
        value(r#"kiln_requests_total{code="400",deployment="iris",protocol="v2",version="1"}"#),
        3.0
    );
    assert_eq!(
        value(r#"kiln_requests_total{code="200",deployment="iris",protocol="v1",version="1"}"#),
        2.0
    );
    assert_eq!(
        value(
            r#"kiln_request_duration_seconds_count{deployment="iris",protocol="v2",version="1"}"#
        ),
        (n + 3) as f64
    );
    // The 400s were refused before the guest: only good requests reached predict.
    assert_eq!(
        value(r#"kiln_inference_duration_seconds_count{deployment="iris",version="1"}"#),
        (n + 2) as f64
    );
    assert_eq!(
        value(r#"kiln_requests_in_flight{deployment="iris",version="1"}"#),
        0.0
    );
    assert_eq!(
        value(r#"kiln_deployment_ready{deployment="iris",version="1"}"#),
        1.0
    );
    assert_eq!(
        value(r#"kiln_instances{deployment="iris",version="1"}"#),
        1.0
    );
    assert_eq!(
        value(r#"kiln_instance_starts_total{deployment="iris",version="1"}"#),
        1.0
    );
    // Nothing was sent to echo: its request counters do not exist yet, its gauges do.
    assert!(
        server
            .metric(
                r#"kiln_requests_total{code="200",deployment="echo",protocol="v2",version="1"}"#
            )
            .is_none()
    );
    assert_eq!(
        value(r#"kiln_instances{deployment="echo",version="1"}"#),
        1.0
    );
    assert!(server.metrics().contains("process_resident_memory_bytes"));
}

#[test]
fn exposition_passes_promtool() {
    let server = Server::start(&["--deploy", &iris_deploy()]);
    let body = v2_fp32("input", &[1, 4], &IRIS_ROWS[0]);
    server.post_json("/v2/models/iris/infer", &body);
    server.post_json(
        "/deployments/iris/score",
        &serde_json::json!({"data": "bad"}),
    );
    let text = server.metrics();
    assert_promtool_accepts(&text);
}

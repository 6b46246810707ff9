//! Each error status a client can meet, with its JSON body; the server keeps serving after each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::*;

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn bad_requests_are_400_with_the_reason() {
    let server = Server::start(&["--deploy", &iris_deploy()]);
    let infer = "/v2/models/iris/infer";
    let cases = [
        (b"{not json".to_vec(), "invalid inference request JSON"),
        (br#"{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT32", "data": [1, 2, 3, 4]}]}"#.to_vec(),
            "input 'input' must be FP32, got INT32"),
        (br#"{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}"#.to_vec(),
            "has shape [1, 3], the model expects [-1, 4]"),
        (br#"{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}"#.to_vec(),
            "has 4 elements, its shape [2, 4] needs 8"),
        (br#"{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ["a", 2, 3, 4]}]}"#.to_vec(),
            "is not a number"),
        (br#"{"inputs": []}"#.to_vec(), "missing input 'input'"),
        (br#"{"inputs": [{"name": "petals", "shape": [1], "datatype": "FP32", "data": [1]}]}"#.to_vec(),
            "no input named 'petals'"),
        (br#"{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FLOAT", "data": [1, 2, 3, 4]}]}"#.to_vec(),
            "unknown datatype 'FLOAT'"),
        (br#"{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
              "outputs": [{"name": "colour"}]}"#.to_vec(), "no output named 'colour'"),
        (br#"{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32"}]}"#.to_vec(), "has no data"),
    ];
    for (body, message) in cases {
        let reply = server.post(infer, &[JSON], &body);
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(&body));
        assert!(
            reply.error().contains(message),
            "{:?} lacks {message:?}",
            reply.error()
        );
    }
    let bad_binary = server.post(
        infer,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Inference-Header-Content-Length", "500"),
        ],
        b"{}",
    );
    assert_eq!(bad_binary.status, 400);
    assert!(
        bad_binary
            .error()
            .contains("Inference-Header-Content-Length is 500")
    );
    let v1 = server.post("/v1/models/iris:predict", &[JSON], br#"{"rows": []}"#);
    assert_eq!(
        (v1.status, v1.error()),
        (
            400,
            r#"expected {"instances": [...]} or {"inputs": [...]}"#.to_string()
        )
    );
    let mlflow = server.post(
        "/deployments/iris/invocations",
        &[JSON],
        br#"{"records": []}"#,
    );
    assert_eq!(mlflow.status, 400);
    assert!(mlflow.error().contains("unknown key 'records'"));
    let csv = server.post(
        "/deployments/iris/invocations",
        &[("Content-Type", "text/csv")],
        b"a,b\n1,2,3\n",
    );
    assert_eq!(csv.status, 400);
    let score = server.post(
        "/deployments/iris/score",
        &[JSON],
        br#"{"data": "flowers"}"#,
    );
    assert_eq!(score.status, 400);
    // Still serving.
    let ok = server.post_json(infer, &v2_fp32("input", &[1, 4], &IRIS_ROWS[0]));
    assert_eq!(ok.status, 200);
}

#[test]
fn unknown_models_versions_and_routes_are_404() {
    let server = Server::start(&["--deploy", &iris_deploy()]);
    let cases = [
        ("/v2/models/rose", "model 'rose' not found"),
        ("/v2/models/rose/ready", "model 'rose' not found"),
        (
            "/v2/models/iris/versions/9",
            "model 'iris' has no version '9' (serving version '1')",
        ),
        ("/v1/models/rose", "model 'rose' not found"),
        ("/nowhere", "no such route"),
    ];
    for (path, message) in cases {
        let reply = server.get(path);
        assert_eq!(
            (reply.status, reply.error()),
            (404, message.to_string()),
            "{path}"
        );
    }
    let body = v2_fp32("input", &[1, 4], &IRIS_ROWS[0]);
    for path in [
        "/v2/models/rose/infer",
        "/v2/models/iris/versions/2/infer",
        "/deployments/rose/score",
        "/deployments/rose/invocations",
        "/v1/models/rose:predict",
    ] {
        assert_eq!(server.post_json(path, &body).status, 404, "{path}");
    }
}

#[test]
fn oversized_bodies_are_413_and_big_tensors_400() {
    let server = Server::start(&[
        "--deploy",
        &iris_deploy(),
        "--max-body-bytes",
        "4096",
        "--max-elements",
        "400",
    ]);
    let rows = 300;
    let big = v2_fp32("input", &[rows, 4], &vec![1.0; rows as usize * 4]);
    let reply = server.post_json("/v2/models/iris/infer", &big);
    assert_eq!(
        (reply.status, reply.error()),
        (
            413,
            "request body exceeds the limit of 4096 bytes".to_string()
        )
    );
    let many = v2_fp32("input", &[101, 4], &vec![1.0; 404]);
    let reply = server.post_json("/v2/models/iris/infer", &many);
    assert_eq!(reply.status, 400);
    assert!(
        reply.error().contains("more than 400 elements"),
        "{}",
        reply.error()
    );
    assert_eq!(
        server
            .post_json(
                "/v2/models/iris/infer",
                &v2_fp32("input", &[1, 4], &IRIS_ROWS[0])
            )
            .status,
        200
    );
}

#[test]
fn unsupported_content_types_are_415() {
    let server = Server::start(&["--deploy", &iris_deploy()]);
    let body = br#"{"instances": [[1, 2, 3, 4]]}"#;
    for path in [
        "/v2/models/iris/infer",
        "/v1/models/iris:predict",
        "/deployments/iris/invocations",
        "/deployments/iris/score",
    ] {
        let reply = server.post(path, &[("Content-Type", "application/xml")], body);
        assert_eq!(reply.status, 415, "{path}");
        assert!(
            reply
                .error()
                .contains("content type 'application/xml' is not supported"),
            "{}",
            reply.error()
        );
    }
    let gzip = server.post(
        "/v1/models/iris:predict",
        &[JSON, ("Content-Encoding", "gzip")],
        body,
    );
    assert_eq!(gzip.status, 415);
}

#[test]
fn model_errors_map_to_400_500_and_504() {
    let server = Server::start(&[
        "--deploy",
        &fault_deploy("picky", "invalid-input"),
        "--deploy",
        &fault_deploy("trap", "trap"),
        "--deploy",
        &fault_deploy("spin", "loop"),
        "--deploy",
        &fault_deploy("liar", "wrong-output-type"),
        "--deadline-ms",
        "100",
    ]);
    let body = v2_fp32("x", &[2], &[1.0, 2.0]);
    let picky = server.post_json("/v2/models/picky/infer", &body);
    assert_eq!(
        (picky.status, picky.error()),
        (400, "x must be positive".to_string())
    );
    let trap = server.post_json("/v2/models/trap/infer", &body);
    assert_eq!(trap.status, 500);
    assert!(
        trap.error().starts_with("model trapped: "),
        "{}",
        trap.error()
    );
    let spin = server.post_json("/v2/models/spin/infer", &body);
    assert_eq!(
        (spin.status, spin.error()),
        (
            504,
            "prediction exceeded its deadline of 100 ms".to_string()
        )
    );
    let liar = server.post_json("/v2/models/liar/infer", &body);
    assert_eq!(liar.status, 500);
    assert!(
        liar.error()
            .contains("contradict its metadata: output 'y' must be FP32, got INT32"),
        "{}",
        liar.error()
    );
    // The guest's panic message reaches the server log.
    assert!(server.log().contains("scorer panicked"), "{}", server.log());
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let server = Server::start(&[
        "--deploy",
        &fault_deploy("slow", "loop"),
        "--deploy",
        &fault_deploy("echo", "echo"),
        "--deadline-ms",
        "1500",
        "--concurrency",
        "1",
        "--queue",
        "0",
    ]);
    let url = server.url("/v2/models/slow/infer");
    let body = v2_fp32("x", &[1], &[1.0]);
    let busy = {
        let (url, body) = (url.clone(), body.clone());
        std::thread::spawn(move || post_json(&url, &body))
    };
    // Wait until the first request holds the only instance, then the next one is refused.
    server.wait_for_metric(
        r#"kiln_requests_in_flight{deployment="slow",version="1"}"#,
        |v| v == 1.0,
    );
    let refused = post_json(&url, &body);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.error(), "deployment is at capacity, retry later");
    // Other deployments answer while this one is saturated.
    assert_eq!(server.post_json("/v2/models/echo/infer", &body).status, 200);
    assert_eq!(busy.join().unwrap().status, 504);
    assert_eq!(
        server.metric(r#"kiln_queue_rejections_total{deployment="slow",version="1"}"#),
        Some(1.0)
    );
}

#[test]
fn a_burst_past_concurrency_and_queue_is_shed_at_once_and_the_rest_served() {
    let server = Server::start(&[
        "--deploy",
        &fault_deploy("busy", "busy"),
        "--deadline-ms",
        "60000",
        "--concurrency",
        "2",
        "--queue",
        "2",
    ]);
    let url = server.url("/v2/models/busy/infer");
    // Each request spins for 2 billion additions: long enough for all ten to arrive.
    let body = v2_fp32("x", &[1], &[2000.0]);
    let start = std::sync::Arc::new(std::sync::Barrier::new(10));
    let burst: Vec<_> = (0..10)
        .map(|_| {
            let (url, body, start) = (url.clone(), body.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let sent = std::time::Instant::now();
                let reply = post_json(&url, &body);
                (reply, sent.elapsed())
            })
        })
        .collect();
    let replies: Vec<_> = burst.into_iter().map(|t| t.join().unwrap()).collect();
    let shed: Vec<_> = replies.iter().filter(|(r, _)| r.status == 429).collect();
    let served: Vec<_> = replies.iter().filter(|(r, _)| r.status == 200).collect();
    assert_eq!(
        (shed.len(), served.len()),
        (6, 4),
        "2 running and 2 queued are served, the other 6 shed: {:?}",
        replies.iter().map(|(r, _)| r.status).collect::<Vec<_>>()
    );
    for (reply, _) in &shed {
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(reply.error(), "deployment is at capacity, retry later");
    }
    // Shed requests are answered without waiting for the work in front of them.
    let slowest_shed = shed.iter().map(|(_, t)| *t).max().unwrap();
    let fastest_served = served.iter().map(|(_, t)| *t).min().unwrap();
    assert!(
        slowest_shed < fastest_served,
        "{slowest_shed:?} vs {fastest_served:?}"
    );
    assert_eq!(
        server.metric(r#"kiln_queue_rejections_total{deployment="busy",version="1"}"#),
        Some(6.0)
    );
    assert_eq!(
        server.metric(
            r#"kiln_requests_total{code="429",deployment="busy",protocol="v2",version="1"}"#
        ),
        Some(6.0)
    );
}

#[test]
fn a_client_may_shorten_its_deadline_but_not_lengthen_it() {
    let server = Server::start(&[
        "--deploy",
        &fault_deploy("slow", "loop"),
        "--deadline-ms",
        "1500",
    ]);
    let body = serde_json::to_vec(&v2_fp32("x", &[1], &[1.0])).unwrap();
    let ask = |path: &str, deadline: &str, body: &[u8]| {
        server.post(path, &[JSON, ("kiln-deadline-ms", deadline)], body)
    };
    let short = ask("/v2/models/slow/infer", "100", &body);
    assert_eq!(short.status, 504);
    assert_eq!(short.error(), "prediction exceeded its deadline of 100 ms");
    let v1 = ask("/v1/models/slow:predict", "150", br#"{"instances": [1.0]}"#);
    assert_eq!(v1.status, 504, "{}", String::from_utf8_lossy(&v1.body));
    assert!(v1.error().contains("deadline of 150 ms"), "{}", v1.error());
    let long = ask("/v2/models/slow/infer", "600000", &body);
    assert_eq!(long.status, 504);
    assert_eq!(long.error(), "prediction exceeded its deadline of 1500 ms");
    for bad in ["soon", "0", "-5"] {
        let reply = ask("/v2/models/slow/infer", bad, &body);
        assert_eq!(reply.status, 400, "{bad}");
        assert!(
            reply.error().contains("kiln-deadline-ms"),
            "{}",
            reply.error()
        );
    }
}

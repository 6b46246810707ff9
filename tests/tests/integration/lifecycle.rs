//! Starting, configuring and stopping `kiln serve`: clear errors for what cannot be served,
//! the compile cache, the config file, and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::*;
use std::time::{Duration, Instant};

#[test]
fn deployments_that_cannot_be_served_stop_startup_with_a_clear_message() {
    let dir = temp_dir("startup");
    let not_wasm = dir.join("notes.wasm");
    std::fs::write(&not_wasm, b"these are not the bytes you are looking for").unwrap();
    let cases = [
        (
            format!("bad={}", not_wasm.display()),
            "deployment 'bad': invalid scoring component",
        ),
        (
            format!("gone={}", dir.join("missing.wasm").display()),
            "deployment 'gone': cannot read",
        ),
        (
            fault_deploy("stubborn", "fail-load"),
            "deployment 'stubborn': model failed to load: this model refuses to load",
        ),
        (
            format!("iris={}", component("iris")),
            "deployment 'iris': model failed to load: no artifact named 'weights.json'",
        ),
        (
            "../up=x.wasm".to_string(),
            "deployment name '../up' must be",
        ),
    ];
    for (deploy, message) in cases {
        let (status, output) = run_kiln(&["serve", "--no-cache", "--deploy", &deploy]);
        assert!(!status.success(), "{deploy} started");
        assert!(output.contains(message), "{deploy}: {output}");
    }
    let (status, output) = run_kiln(&["serve"]);
    assert!(!status.success());
    assert!(output.contains("nothing to serve"), "{output}");
}

#[test]
fn config_file_is_read_and_unknown_keys_rejected() {
    let dir = temp_dir("config");
    let good = dir.join("kiln.toml");
    std::fs::write(
        &good,
        format!(
            "max_body_bytes = 2048\n[limits]\ndeadline_ms = 250\n\n[[deployments]]\nname = \"flowers\"\n\
             component = \"{}\"\nartifacts = \"{}\"\nversion = \"7\"\nconcurrency = 2\n",
            component("iris"),
            iris_model()
        ),
    )
    .unwrap();
    let server = Server::start(&["--config", good.to_str().unwrap()]);
    let meta = server.get("/v2/models/flowers/versions/7");
    assert_eq!(meta.status, 200);
    let big = v2_fp32("input", &[200, 4], &vec![1.0; 800]);
    assert_eq!(
        server.post_json("/v2/models/flowers/infer", &big).status,
        413
    );
    drop(server);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[limits]\ndeadline = 5\n").unwrap();
    let (status, output) = run_kiln(&["serve", "--config", bad.to_str().unwrap()]);
    assert!(!status.success());
    assert!(output.contains("unknown field `deadline`"), "{output}");
}

#[test]
fn the_compile_cache_is_used_on_the_second_start() {
    let cache = temp_dir("cache");
    let cache = cache.to_str().unwrap();
    let series = r#"kiln_compile_duration_seconds{cached="true",deployment="iris",version="1"}"#;
    let first = Server::start(&["--cache-dir", cache, "--deploy", &iris_deploy()]);
    assert!(first.metric(series).is_none());
    drop(first);
    let entries = std::fs::read_dir(cache).unwrap().count();
    assert_eq!(entries, 1, "one compiled component in the cache");
    let second = Server::start(&["--cache-dir", cache, "--deploy", &iris_deploy()]);
    assert!(second.metric(series).is_some(), "{}", second.metrics());
    assert_eq!(
        second
            .post_json(
                "/v2/models/iris/infer",
                &v2_fp32("input", &[1, 4], &IRIS_ROWS[0])
            )
            .status,
        200
    );

    // A corrupt cache entry is recompiled, not trusted.
    let entry = std::fs::read_dir(cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"garbage").unwrap();
    drop(second);
    let third = Server::start(&["--cache-dir", cache, "--deploy", &iris_deploy()]);
    assert_eq!(
        third
            .post_json(
                "/v2/models/iris/infer",
                &v2_fp32("input", &[1, 4], &IRIS_ROWS[0])
            )
            .status,
        200
    );
}

#[test]
fn sigterm_turns_readiness_false_and_finishes_in_flight_requests() {
    let mut server = Server::start(&[
        "--deploy",
        &fault_deploy("busy", "busy"),
        "--deadline-ms",
        "20000",
        "--shutdown-delay-ms",
        "1500",
    ]);
    let url = server.url("/v2/models/busy/infer");
    // Enough guest work to still be running when the signal comes (the deadline is far off).
    let request = std::thread::spawn(move || post_json(&url, &v2_fp32("x", &[1], &[400.0])));
    server.wait_for_metric(
        r#"kiln_requests_in_flight{deployment="busy",version="1"}"#,
        |v| v == 1.0,
    );
    server.terminate();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = server.get("/v2/health/ready");
        if ready.status == 503 {
            assert_eq!(ready.json(), serde_json::json!({"ready": false}));
            break;
        }
        assert!(Instant::now() < deadline, "readiness never turned false");
        std::thread::sleep(Duration::from_millis(5));
    }
    let reply = request.join().unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(server.wait().success());
    assert!(server.log().contains("stopped"));
}

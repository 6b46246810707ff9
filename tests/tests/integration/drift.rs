//! Drift monitoring end to end: the iris image's baseline, live traffic folded into histograms,
//! windows judged by the default monitor component, gauges scraped by a real Prometheus and
//! read back with PromQL, drift reports and events through the management API, a custom monitor
//! component swapped in from a real registry without reloading the model (and faulty ones
//! stopped), data-quality counters, and the retraining policy submitting one run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::runs::{Lab, WG, test_python};
use kiln_tests::{
    Prometheus, RegistryServer, Reply, Server, Up, build_iris_image, call, component,
    iris_drift_traffic, repo, run_kiln, temp_dir,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// [`iris_drift_traffic`] as a request body.
fn traffic(shift: f32) -> Vec<u8> {
    serde_json::to_vec(&iris_drift_traffic(shift)).unwrap()
}

/// `kiln up` with one-second windows, the iris image deployed as `iris`; returns the lab and
/// the deployment's key.
fn deploy(up: &Up) -> (Lab<'_>, String) {
    let lab = Lab::new(up, &up.admin());
    build_iris_image(&up.store());
    lab.ok(
        "POST",
        &format!("{WG}/images"),
        Some(&json!({ "name": "iris", "reference": "iris:1" })),
    );
    let created = lab.ok(
        "POST",
        &format!("{WG}/deployments"),
        Some(&json!({ "name": "iris", "image": "iris" })),
    );
    let status = up.wait_deployment(&lab.token, &format!("{WG}/deployments/iris"));
    assert_eq!(status["status"], "ready", "{status}");
    (
        lab,
        created["keys"]["primary"].as_str().unwrap().to_string(),
    )
}

fn predict(up: &Up, key: &str, body: &[u8]) -> Reply {
    call(
        "POST",
        &format!("{}/v2/models/iris/infer", up.base),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &format!("Bearer {key}")),
        ],
        Some(body),
    )
}

/// Sends `body` every 200 ms until `done` holds for the latest drift report (at most 90 s);
/// returns that report.
fn drive_until(up: &Up, lab: &Lab, key: &str, body: &[u8], done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let reply = predict(up, key, body);
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let report = lab.ok("GET", &format!("{WG}/deployments/iris/drift"), None);
        if done(&report) {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "drift never got there: {report}\n{}",
            up.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Features of a report with `severity`, as `role/name`.
fn with_severity(report: &Value, severity: &str) -> BTreeSet<String> {
    report["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| {
            format!(
                "{}/{}",
                f["role"].as_str().unwrap(),
                f["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn feature<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no feature {name} in {report}"))
}

/// Keeps `body` flowing until Prometheus answers `promql` with something `done` accepts.
fn scrape_until(
    up: &Up,
    key: &str,
    body: &[u8],
    prometheus: &Prometheus,
    promql: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        predict(up, key, body);
        let result = prometheus.query(promql);
        if done(&result) {
            return result;
        }
        assert!(Instant::now() < deadline, "{promql} stayed {result:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn labels(result: &[Value], label: &str) -> BTreeSet<String> {
    result
        .iter()
        .map(|r| r["metric"][label].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn shifted_traffic_alerts_for_the_shifted_feature_only_in_prometheus_and_the_report() {
    let dir = temp_dir("drift-scenario");
    let up = Up::start(&dir, &["--monitor-window", "1"]);
    let (lab, key) = deploy(&up);
    let prometheus = Prometheus::start(&up.metrics);

    // In distribution: the baseline's own rows. Every feature is judged, none drifts.
    let calm = traffic(0.0);
    let report = drive_until(&up, &lab, &key, &calm, |r| r["state"] == "ok");
    assert_eq!(report["kind"], "window");
    assert!(with_severity(&report, "alert").is_empty(), "{report}");
    let petal = feature(&report, "petal_length");
    assert_eq!(petal["statistics"]["psi"], 0.0, "{petal}");
    assert_eq!(petal["statistics"]["ks_statistic"], 0.0, "{petal}");
    assert!(petal["values"].as_u64().unwrap() >= 90, "{petal}");
    assert_eq!(feature(&report, "label")["kind"], "categorical");
    scrape_until(
        &up,
        &key,
        &calm,
        &prometheus,
        r#"kiln_drift_state{deployment="iris",state="ok"} == 1"#,
        |r| r.len() == 1,
    );
    assert!(
        prometheus
            .query(r#"kiln_drift_severity{deployment="iris"} == 2"#)
            .is_empty(),
        "no feature alerts on in-distribution traffic"
    );

    // petal_length moved by 4 cm: an alert for it alone among the inputs, and prediction drift.
    let shifted = traffic(4.0);
    // Two alert windows in a row: the second holds shifted rows only.
    let report = drive_until(&up, &lab, &key, &shifted, |r| {
        r["windows"]
            .as_array()
            .is_some_and(|w| w.len() >= 2 && w[0]["state"] == "alert" && w[1]["state"] == "alert")
    });
    let alerts = with_severity(&report, "alert");
    let inputs: BTreeSet<&String> = alerts.iter().filter(|f| f.starts_with("input/")).collect();
    assert_eq!(
        inputs,
        BTreeSet::from([&"input/petal_length".to_string()]),
        "{report}"
    );
    assert!(
        alerts.contains("output/label"),
        "the predictions drift too: {report}"
    );
    let petal = feature(&report, "petal_length");
    assert!(
        petal["statistics"]["psi"].as_f64().unwrap() > 0.25,
        "{petal}"
    );
    assert!(
        petal["statistics"]["ks_pvalue"].as_f64().unwrap() < 0.05,
        "{petal}"
    );
    assert!(
        petal["statistics"]["wasserstein"].as_f64().unwrap() > 0.0,
        "{petal}"
    );
    assert!(
        petal["quality"]["out_of_range"].as_u64().unwrap() > 0,
        "{petal}"
    );
    assert_eq!(feature(&report, "sepal_width")["statistics"]["psi"], 0.0);

    let result = scrape_until(
        &up,
        &key,
        &shifted,
        &prometheus,
        r#"kiln_drift_severity{deployment="iris",role="input"} == 2"#,
        |r| !r.is_empty(),
    );
    assert_eq!(
        labels(&result, "feature"),
        BTreeSet::from(["petal_length".to_string()])
    );
    let psi = prometheus.query(
        r#"kiln_drift_statistic{deployment="iris",feature="petal_length",statistic="psi",window="latest"}"#,
    );
    let value: f64 = psi[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(value > 0.25, "{psi:?}");
    let quality = prometheus.query(
        r#"kiln_feature_values_total{deployment="iris",feature="petal_length",quality="out_of_range"}"#,
    );
    assert!(
        quality[0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
    );

    // Every query of the shipped Grafana dashboard runs on this Prometheus.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/grafana/kiln-deployments.json")).unwrap(),
    )
    .unwrap();
    let mut answered = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$deployment", "iris")
                .replace("$__rate_interval", "1m");
            if !prometheus.query(&expr).is_empty() {
                answered.insert(panel["title"].as_str().unwrap().to_string());
            }
        }
    }
    for title in [
        "Requests per second by status",
        "Request latency",
        "Drift state",
        "PSI per feature (latest window)",
        "Data quality: missing, NaN, out of range",
    ] {
        assert!(answered.contains(title), "{title}: {answered:?}");
    }

    // Since deploy, and as the CLI shows it; the state changes are events.
    let cumulative = lab.ok(
        "GET",
        &format!("{WG}/deployments/iris/drift?window=cumulative"),
        None,
    );
    assert_eq!(cumulative["kind"], "cumulative");
    assert!(
        feature(&cumulative, "petal_length")["values"]
            .as_u64()
            .unwrap()
            >= 180
    );
    assert!(cumulative["windows"].as_array().unwrap().len() >= 2);
    let (status, shown) = run_kiln(&[
        "deployment",
        "show",
        "iris",
        "--url",
        &up.api,
        "--token",
        &lab.token,
        "--team",
        "lab",
        "--workgroup",
        "vision",
    ]);
    assert!(status.success(), "{shown}");
    assert!(shown.contains("drift: alert"), "{shown}");
    let line = shown.lines().find(|l| l.contains("petal_length")).unwrap();
    assert!(line.contains("alert") && line.contains("psi="), "{shown}");
    let events = lab.ok("GET", &format!("{WG}/deployments/iris/events"), None);
    let messages: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("-> alert") && m.contains("petal_length")),
        "{messages:?}"
    );
    let bad = lab.up.api(
        "GET",
        &format!("{WG}/deployments/iris/drift?window=99"),
        Some(&lab.token),
        None,
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn a_custom_monitor_from_a_registry_swaps_in_and_faulty_ones_are_stopped() {
    let dir = temp_dir("drift-custom");
    let up = Up::start(
        &dir,
        &["--monitor-window", "1", "--monitor-deadline-ms", "500"],
    );
    let (lab, key) = deploy(&up);
    // The fixture monitor, as a CNCF Wasm artifact in a real registry.
    let registry = RegistryServer::start(None);
    let store = dir.join("fixtures");
    let bytes = std::fs::read(component("monitor_faults")).unwrap();
    let oci = kiln_image::OciStore::open(&store).unwrap();
    kiln_image::build_component_image(&oci, &bytes, "monitors/faults:1").unwrap();
    let reference = format!("{}/monitors/faults:1", registry.addr);
    let (status, output) = run_kiln(&[
        "push",
        "monitors/faults:1",
        &reference,
        "--store",
        store.to_str().unwrap(),
    ]);
    assert!(status.success(), "{output}");

    let body = traffic(0.0);
    drive_until(&up, &lab, &key, &body, |r| r["state"] == "ok");
    let starts = up.metric(r#"kiln_instance_starts_total{deployment="iris",version="1"}"#);
    let monitoring = |component: &str, config: &str| {
        lab.ok(
            "PUT",
            &format!("{WG}/deployments/iris/monitoring"),
            Some(&json!({ "component": component, "config": config })),
        );
    };
    monitoring(&reference, "fixed=42");
    let report = drive_until(&up, &lab, &key, &body, |r| {
        r["monitor"]["component"] == json!(reference)
            && r["monitor"]["config"] == "fixed=42"
            && r["state"] == "alert"
    });
    let petal = feature(&report, "petal_length");
    assert_eq!(petal["statistics"]["psi"], 42.0, "{petal}");
    assert!(
        petal["statistics"]["custom"].as_f64().unwrap() >= 90.0,
        "{petal}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while up.metric(r#"kiln_drift_statistic{deployment="iris",feature="petal_length",role="input",statistic="psi",version="1",window="latest"}"#,
    ) != Some(42.0)
    {
        assert!(
            Instant::now() < deadline,
            "the gauge never showed the custom statistic"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The model was not reloaded for it.
    assert_eq!(
        up.metric(r#"kiln_instance_starts_total{deployment="iris",version="1"}"#),
        starts
    );

    // A trap, a loop past the deadline, memory past the limit: each run is stopped and reported,
    // and predictions keep being answered.
    for (config, kind, words) in [
        ("trap", "trap", "trapped"),
        ("loop", "deadline", "deadline of 500 ms"),
        ("memory", "trap", "trapped"),
    ] {
        monitoring(&reference, config);
        let report = drive_until(&up, &lab, &key, &body, |r| {
            r["monitor"]["config"] == config && r["state"] == "monitor_failed"
        });
        let error = report["error"].as_str().unwrap();
        assert!(error.contains(words), "{config}: {error}");
        let runs = up.metric(&format!(
            r#"kiln_monitor_runs_total{{deployment="iris",result="{kind}",version="1"}}"#
        ));
        assert!(runs.unwrap_or(0.0) >= 1.0, "{config}");
        assert_eq!(predict(&up, &key, &body).status, 200);
    }
    let events = lab.ok("GET", &format!("{WG}/deployments/iris/events"), None);
    assert!(events.to_string().contains("-> monitor_failed"), "{events}");

    // Back to Kiln's default monitor.
    monitoring("default", "");
    let report = drive_until(&up, &lab, &key, &body, |r| {
        r["monitor"]["component"] == "default" && r["state"] == "ok"
    });
    assert!(feature(&report, "petal_length")["statistics"]["ks_pvalue"].is_number());
    // Files on the runtime's disk are not for API users to name.
    let refused = up.api(
        "PUT",
        &format!("{WG}/deployments/iris/monitoring"),
        Some(&lab.token),
        Some(&json!({ "component": component("monitor_faults") })),
    );
    assert_eq!(
        refused.status,
        400,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert!(refused.error().contains("not a file"));
    // An image that is not a monitor (the iris model) is refused with a reason; predictions go on.
    monitoring("iris:1", "");
    let report = drive_until(&up, &lab, &key, &body, |r| r["state"] == "no_monitor");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("invalid monitor component") && error.contains("import nothing"),
        "{report}"
    );
    assert_eq!(predict(&up, &key, &body).status, 200);
}

#[test]
fn data_quality_counters_count_missing_nan_out_of_range_and_schema_violations() {
    let dir = temp_dir("drift-quality");
    let store = dir.join("store");
    build_iris_image(&store);
    let server = Server::start(&[
        "--store",
        store.to_str().unwrap(),
        "--deploy",
        "iris=iris:1",
        "--deploy",
        &format!("plain={},config=echo", component("faults")),
        "--monitor-window",
        "0.5",
    ]);
    let json = |rows: Value| {
        serde_json::to_vec(&json!({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": rows}]}))
            .unwrap()
    };
    let headers = [("Content-Type", "application/json")];
    // null is a missing value (the model sees NaN).
    let reply = server.post(
        "/v2/models/iris/infer",
        &headers,
        &json(json!([[null, 3.0, 1.4, 0.2], [5.0, null, 1.5, 0.2]])),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    // Far outside the baseline's range.
    let reply = server.post(
        "/v2/models/iris/infer",
        &headers,
        &json(json!([[50.0, 3.0, 1.4, 0.2], [-5.0, 3.0, 1.4, 0.2]])),
    );
    assert_eq!(reply.status, 200);
    // NaN and infinity, in Triton's binary tensors.
    let values: Vec<f32> = vec![f32::NAN, 3.0, 1.4, 0.2, f32::INFINITY, 3.0, 1.4, 0.2];
    let binary: Vec<u8> = values.iter().flat_map(|f| f.to_le_bytes()).collect();
    let head = serde_json::to_vec(&json!({
        "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                    "parameters": {"binary_data_size": binary.len()}}]
    }))
    .unwrap();
    let length = head.len().to_string();
    let reply = server.post(
        "/v2/models/iris/infer",
        &[
            ("Content-Type", "application/octet-stream"),
            ("Inference-Header-Content-Length", &length),
        ],
        &[head, binary].concat(),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    // Inputs that do not fit the schema.
    for bad in [
        json!({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}),
        json!({"inputs": [{"name": "pixels", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}),
    ] {
        let reply = server.post(
            "/v2/models/iris/infer",
            &headers,
            &serde_json::to_vec(&bad).unwrap(),
        );
        assert_eq!(reply.status, 400);
    }
    let series = |feature: &str, quality: &str| {
        format!(
            r#"kiln_feature_values_total{{deployment="iris",feature="{feature}",quality="{quality}",role="input",version="1"}}"#
        )
    };
    server.wait_for_metric(&series("sepal_length", "nan"), |v| v == 2.0);
    assert_eq!(server.metric(&series("sepal_length", "missing")), Some(1.0));
    assert_eq!(server.metric(&series("sepal_width", "missing")), Some(1.0));
    assert_eq!(
        server.metric(&series("sepal_length", "out_of_range")),
        Some(2.0)
    );
    assert_eq!(server.metric(&series("sepal_length", "valid")), Some(3.0));
    assert_eq!(server.metric(&series("petal_length", "valid")), Some(6.0));
    assert_eq!(
        server.metric(&series("petal_length", "out_of_range")),
        Some(0.0)
    );
    assert_eq!(
        server.metric(r#"kiln_schema_violations_total{deployment="iris",version="1"}"#),
        Some(2.0)
    );
    // A deployment without a baseline says so instead of exporting zeros.
    assert_eq!(
        server.metric(r#"kiln_drift_state{deployment="plain",state="no_baseline",version="1"}"#),
        Some(1.0)
    );
    assert!(
        !server
            .metrics()
            .contains(r#"kiln_drift_statistic{deployment="plain""#)
    );
}

#[test]
fn a_persistent_alert_submits_exactly_one_retraining_run_within_the_cool_down() {
    let dir = temp_dir("drift-retrain");
    let up = Up::start(&dir, &["--monitor-window", "1"]);
    let (lab, key) = deploy(&up);
    lab.push(&[("train.py", b"print('retraining')\n")]);
    lab.target(
        "py",
        "local",
        json!({ "interpreter": test_python().display().to_string() }),
    );
    lab.ok(
        "POST",
        &format!("{WG}/projects/flowers/experiments"),
        Some(&json!({ "name": "retrain", "script": "train.py", "target": "py" })),
    );
    // A policy naming what does not exist is refused.
    let refused = up.api(
        "PUT",
        &format!("{WG}/deployments/iris/monitoring"),
        Some(&lab.token),
        Some(&json!({ "retrain": { "project": "flowers", "experiment": "nothing" } })),
    );
    assert_eq!(refused.status, 400);
    lab.ok(
        "PUT",
        &format!("{WG}/deployments/iris/monitoring"),
        Some(&json!({ "retrain": { "project": "flowers", "experiment": "retrain", "windows": 2, "cooldown_s": 3600 } })),
    );
    // Six alert windows in a row: three policy periods, one cool-down.
    let shifted = traffic(4.0);
    drive_until(&up, &lab, &key, &shifted, |r| {
        r["windows"]
            .as_array()
            .is_some_and(|w| w.len() >= 6 && w.iter().take(6).all(|w| w["state"] == "alert"))
    });
    let runs = lab.ok(
        "GET",
        &format!("{WG}/projects/flowers/experiments/retrain/runs"),
        None,
    );
    let items = runs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{runs}");
    let events = lab.ok("GET", &format!("{WG}/deployments/iris/events"), None);
    let retraining: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "retraining")
        .collect();
    assert_eq!(retraining.len(), 1, "{events}");
    assert_eq!(retraining[0]["run"], items[0]["id"]);
    assert!(
        retraining[0]["message"]
            .as_str()
            .unwrap()
            .contains("held for 2 windows"),
        "{events}"
    );
    let run = lab.wait(items[0]["id"].as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(run["status"], "completed", "{run}");
    assert!(
        lab.logs(items[0]["id"].as_str().unwrap())
            .contains("retraining")
    );
}

#[test]
fn the_image_sets_the_window_and_monitor_config_and_the_operator_the_default_monitor() {
    let dir = temp_dir("drift-image-defaults");
    let manifest = dir.join("kiln.toml");
    std::fs::write(
        &manifest,
        format!(
            "name = \"iris\"\nversion = \"2\"\n[scorer]\ncomponent = \"{}\"\n[model]\nfiles = [\"{}\"]\n\
             [sample]\nfile = \"{}\"\n[baseline]\n[monitoring]\nconfig = \"fixed=7\"\nwindow_s = 1\n",
            component("iris"),
            kiln_tests::iris_model(),
            repo().join("examples/iris/sample.csv").display()
        ),
    )
    .unwrap();
    let store = dir.join("store");
    let (status, output) = kiln_tests::build_image(&manifest, &store);
    assert!(status.success(), "{output}");
    // No --monitor-window: the image's one-second window applies.
    let server = Server::start(&[
        "--store",
        store.to_str().unwrap(),
        "--deploy",
        "iris=iris:2",
        "--monitor-component",
        &component("monitor_faults"),
    ]);
    let body = traffic(0.0);
    let series = r#"kiln_drift_statistic{deployment="iris",feature="petal_length",role="input",statistic="psi",version="2",window="latest"}"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.metric(series) != Some(7.0) {
        let reply = server.post(
            "/v2/models/iris/infer",
            &[("Content-Type", "application/json")],
            &body,
        );
        assert_eq!(reply.status, 200);
        assert!(
            Instant::now() < deadline,
            "the fixture monitor never reported: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

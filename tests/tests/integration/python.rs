//! Python scorers (`scorer = "python"`): compiled by `kiln image build` with componentize-py,
//! served like any other deployment. The Python iris scorer against the Rust one on every
//! protocol; faults (exceptions, loops, memory, files and sockets); errors named at build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::{
    Reply, Server, assert_promtool_accepts, build_image, iris_drift_traffic, repo, run_kiln,
    temp_dir,
};
use serde_json::{Value, json};
use std::path::Path;

fn build(manifest: &Path, store: &Path) -> (bool, String) {
    let (status, output) = build_image(manifest, store);
    (status.success(), output)
}

fn built(manifest: &Path, store: &Path) {
    let (ok, output) = build(manifest, store);
    assert!(ok, "{output}");
}

fn body(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

const ROWS: [[f32; 4]; 5] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.7, 3.0, 5.2, 2.3],
    [5.9, 3.0, 4.2, 1.5],
    [4.4, 2.9, 1.4, 0.2],
    [7.7, 2.6, 6.9, 2.3],
];

/// The answer without the fields that name the deployment.
fn answer(mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.remove("model_name");
        object.remove("model_version");
        object.remove("id");
    }
    value
}

#[test]
fn the_python_iris_scorer_answers_as_the_rust_one_on_every_protocol() {
    let dir = temp_dir("python-iris");
    let store = dir.join("store");
    built(&repo().join("examples/iris/kiln.toml"), &store);
    built(&repo().join("examples/python-iris/kiln.toml"), &store);
    let (_, inspected) = run_kiln(&[
        "image",
        "inspect",
        "python-iris:1",
        "--store",
        store.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let inspected: Value = serde_json::from_str(&inspected).expect("inspect json");
    let python = &inspected["config"]["python"];
    assert_eq!(python["script"], "score.py", "{inspected}");
    assert_eq!(python["componentize_py"], "0.25.1");
    assert!(
        python["script_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(
        inspected["config"]["limits"]["memory_mb"], 256,
        "CPython's default"
    );

    let server = Server::start(&[
        "--store",
        store.to_str().unwrap(),
        "--deploy",
        "rust=iris:1",
        "--deploy",
        "python=python-iris:1",
    ]);
    let rows: Vec<Value> = ROWS.iter().map(|r| json!(r)).collect();
    let flat: Vec<f32> = ROWS.iter().flatten().copied().collect();
    let v2 =
        json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [5, 4], "data": flat}]});
    let columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
    let calls: Vec<(String, Value)> = vec![
        ("/v2/models/{}/infer".into(), v2),
        ("/v1/models/{}:predict".into(), json!({"instances": rows})),
        (
            "/deployments/{}/invocations".into(),
            json!({"dataframe_split": {"columns": columns, "data": rows}}),
        ),
        ("/deployments/{}/score".into(), json!({"data": rows})),
    ];
    for (route, request) in calls {
        let rust = server.post_json(&route.replace("{}", "rust"), &request);
        let python = server.post_json(&route.replace("{}", "python"), &request);
        assert_eq!(rust.status, 200, "{route}: {}", body(&rust));
        assert_eq!(python.status, 200, "{route}: {}", body(&python));
        assert_eq!(answer(python.json()), answer(rust.json()), "{route}");
    }
    // Metadata comes from the script's metadata(), after load read the weights.
    let meta = server.get("/v2/models/python").json();
    assert_eq!(meta["outputs"][1]["shape"], json!([-1, 3]), "{meta}");
    // Metrics are the deployment's, as for any scorer.
    let metrics = server.metrics();
    assert!(
        metrics.contains("kiln_requests_total{") && metrics.contains("deployment=\"python\""),
        "{metrics}"
    );
    let starts = server
        .metric("kiln_instance_starts_total{deployment=\"python\",version=\"1\"}")
        .expect("instance starts");
    assert!(starts >= 1.0);
}

fn mode(server: &Server, mode: &str) -> Reply {
    server.post_json(
        "/v2/models/faults/infer",
        &json!({"inputs": [{"name": "mode", "datatype": "BYTES", "shape": [1], "data": [mode]}]}),
    )
}

#[test]
fn python_faults_are_precise_errors_and_the_server_keeps_serving() {
    let dir = temp_dir("python-faults");
    let store = dir.join("store");
    built(
        &repo().join("tests/python/fixtures/faults/kiln.toml"),
        &store,
    );
    let server = Server::start(&[
        "--store",
        store.to_str().unwrap(),
        "--deploy",
        "faults=pyfaults:1",
    ]);
    let ok = mode(&server, "ok");
    assert_eq!(ok.status, 200, "{}", body(&ok));
    assert_eq!(ok.json()["outputs"][0]["data"], json!(["ok"]));

    let raised = mode(&server, "raise");
    assert_eq!(raised.status, 500, "{}", body(&raised));
    assert!(
        raised.error().contains("RuntimeError: the model broke"),
        "{}",
        raised.error()
    );
    let invalid = mode(&server, "invalid");
    assert_eq!(invalid.status, 400, "{}", body(&invalid));
    assert!(
        invalid
            .error()
            .contains("ValueError: mode must be one Kiln knows"),
        "{}",
        invalid.error()
    );
    let unknown = mode(&server, "what");
    assert_eq!(unknown.status, 400);
    assert!(
        unknown
            .error()
            .contains("InvalidInput: unknown mode 'what'")
    );

    // A loop runs into the deadline: 504, and the instance is replaced.
    let starts = |server: &Server| {
        server
            .metric("kiln_instance_starts_total{deployment=\"faults\",version=\"1\"}")
            .unwrap_or(0.0)
    };
    let before = starts(&server);
    let looped = mode(&server, "loop");
    assert_eq!(looped.status, 504, "{}", body(&looped));
    assert_eq!(mode(&server, "ok").status, 200);
    assert!(
        starts(&server) > before,
        "a fresh instance served the next call"
    );

    // Memory stops at the deployment's limit (96 MiB): CPython's MemoryError, or a trap.
    let hoard = mode(&server, "memory");
    assert_eq!(hoard.status, 500, "{}", body(&hoard));
    assert!(
        hoard.error().contains("MemoryError") || hoard.error().contains("trapped"),
        "{}",
        hoard.error()
    );
    assert_eq!(mode(&server, "ok").status, 200);
    assert!(
        server.rss_kib() < 1 << 20,
        "the host did not grow past the limit"
    );

    // Files, sockets, name lookups: an OSError the script can read; no environment, no clock.
    let escape = mode(&server, "escape");
    assert_eq!(escape.status, 200, "{}", body(&escape));
    let text = escape.json()["outputs"][0]["data"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("open: FileNotFoundError"), "{text}");
    assert!(
        ["PermissionError", "OSError"]
            .iter()
            .any(|e| text.contains(&format!("connect: {e}"))),
        "{text}"
    );
    for attempt in ["open", "listdir", "write", "connect", "resolve"] {
        assert!(
            !text.contains(&format!("{attempt}: ok")),
            "{attempt} reached the host: {text}"
        );
        assert!(text.contains(&format!("{attempt}: ")), "{text}");
    }
    assert!(text.contains("environ: []"), "{text}");
    assert!(text.contains("time: 0.0"), "{text}");
    assert!(!Path::new("/tmp/kiln-escape").exists());
    // print() in predict went to the deployment's log.
    assert!(
        server.log().contains("printed from predict"),
        "{}",
        server.log()
    );
    assert_eq!(mode(&server, "ok").status, 200);
}

/// Writes a Python scorer manifest around `script` and builds it; returns the build's output.
fn build_script(tag: &str, script: &str) -> (bool, String) {
    build_script_with_sample(tag, script, None)
}

/// [`build_script`], with `sample` (CSV of the one input, `x`) as the manifest's sample.
fn build_script_with_sample(tag: &str, script: &str, sample: Option<&str>) -> (bool, String) {
    let dir = temp_dir(tag);
    std::fs::create_dir_all(dir.join("model")).unwrap();
    std::fs::write(dir.join("model/w.json"), "{}").unwrap();
    std::fs::write(dir.join("score.py"), script).unwrap();
    std::fs::write(
        dir.join("kiln.toml"),
        format!(
            "name = \"bad\"\nversion = \"1\"\n[scorer]\ncomponent = \"python\"\nscript = \"score.py\"\n\
         [model]\nfiles = [\"model\"]\n[[schema.inputs]]\nname = \"x\"\ndatatype = \"FP32\"\nshape = [-1]\n\
         [[schema.outputs]]\nname = \"y\"\ndatatype = \"FP32\"\nshape = [-1]\n{}",
            if sample.is_some() { "[sample]\nfile = \"sample.csv\"\n" } else { "" }
        ),
    )
    .unwrap();
    if let Some(sample) = sample {
        std::fs::write(dir.join("sample.csv"), sample).unwrap();
    }
    build(&dir.join("kiln.toml"), &dir.join("store"))
}

#[test]
fn python_scripts_are_refused_at_build_with_the_reason() {
    let (ok, output) = build_script(
        "py-numpy",
        "import math\nimport numpy as np\n\ndef predict(inputs):\n    return {}\n",
    );
    assert!(!ok);
    assert!(
        output.contains("imports 'numpy' (score.py, line 2)")
            && output.contains("native extension")
            && output.contains("ONNX graph"),
        "{output}"
    );

    let (ok, output) = build_script(
        "py-missing",
        "import helpers_not_bundled\n\ndef predict(inputs):\n    return {}\n",
    );
    assert!(!ok);
    assert!(
        output.contains("imports 'helpers_not_bundled'") && output.contains("not bundled"),
        "{output}"
    );

    let (ok, output) = build_script(
        "py-syntax",
        "def predict(inputs):\n    return {\n\ndef other(:\n    pass\n",
    );
    assert!(!ok);
    assert!(
        output.contains("syntax error in score.py, line"),
        "{output}"
    );

    let (ok, output) = build_script("py-nothing", "def score(inputs):\n    return {}\n");
    assert!(!ok);
    assert!(
        output.contains("defines neither predict(inputs) nor run(data)"),
        "{output}"
    );

    // The sample runs the script at build: one it cannot score fails the build.
    let (ok, output) = build_script(
        "py-failing",
        "import kiln_scoring\nraise RuntimeError('no weights at import')\n",
    );
    assert!(!ok);
    assert!(
        output.contains("failed at import (score.py, line 2): RuntimeError: no weights at import"),
        "{output}"
    );
    // ... and so does predict on the sample: the build runs the script on it.
    let failing_predict = "import kiln_scoring as kiln\n\ndef predict(inputs):\n    \
                           if max(inputs['x'].data) > 2:\n        raise ValueError('x above 2')\n    \
                           return {'y': inputs['x'].data}\n";
    let (ok, output) =
        build_script_with_sample("py-sample-fails", failing_predict, Some("x\n1\n3\n"));
    assert!(!ok);
    assert!(
        output.contains("sample smoke test failed") && output.contains("x above 2"),
        "{output}"
    );
}

#[test]
fn an_azure_style_run_script_scores_rows_with_the_manifest_schema() {
    let dir = temp_dir("py-azure");
    std::fs::create_dir_all(dir.join("model")).unwrap();
    std::fs::write(dir.join("model/scale.json"), "{\"factor\": 2.54}").unwrap();
    std::fs::create_dir_all(dir.join("helpers")).unwrap();
    std::fs::write(dir.join("helpers/__init__.py"), "").unwrap();
    std::fs::write(
        dir.join("helpers/units.py"),
        "def to_cm(inches, factor):\n    return [v * factor for v in inches]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("score.py"),
        "import kiln_scoring as kiln\nfrom helpers.units import to_cm\n\nfactor = None\n\n\
         def init():\n    global factor\n    factor = kiln.read_json('scale.json')['factor']\n\n\
         def run(data):\n    return [{'cm': to_cm(row, factor), 'total': sum(row)} for row in data]\n",
    )
    .unwrap();
    std::fs::write(dir.join("sample.csv"), "a,b\n1,2\n3,4\n").unwrap();
    std::fs::write(
        dir.join("kiln.toml"),
        "name = \"azure\"\nversion = \"1\"\n[scorer]\ncomponent = \"python\"\nscript = \"score.py\"\n\
         modules = [\"helpers\"]\n[model]\nfiles = [\"model\"]\n[sample]\nfile = \"sample.csv\"\n\
         [[schema.inputs]]\nname = \"inches\"\ndatatype = \"FP64\"\nshape = [-1, 2]\n\
         [[schema.outputs]]\nname = \"cm\"\ndatatype = \"FP64\"\nshape = [-1, 2]\n\
         [[schema.outputs]]\nname = \"total\"\ndatatype = \"FP64\"\nshape = [-1]\n",
    )
    .unwrap();
    let store = dir.join("store");
    built(&dir.join("kiln.toml"), &store);
    let server = Server::start(&[
        "--store",
        store.to_str().unwrap(),
        "--deploy",
        "azure=azure:1",
    ]);
    let reply = server.post_json(
        "/deployments/azure/score",
        &json!({"data": [[1.0, 2.0], [10.0, 0.5]]}),
    );
    assert_eq!(reply.status, 200, "{}", body(&reply));
    let answer = reply.json();
    assert_eq!(answer[0]["cm"], json!([2.54, 5.08]), "{answer}");
    assert_eq!(answer[1]["total"], json!(10.5), "{answer}");
}

/// Sends `request` to the `python` deployment until `series` satisfies `done` (at most 60 s).
fn drive(server: &Server, request: &Value, series: &str, done: impl Fn(f64) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let reply = server.post_json("/v2/models/python/infer", request);
        assert_eq!(reply.status, 200, "{}", body(&reply));
        if server.metric(series).is_some_and(&done) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{series} stayed {:?}",
            server.metric(series)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_python_deployment_reports_drift_and_metrics_as_any_other() {
    let dir = temp_dir("python-drift");
    let store = dir.join("store");
    built(&repo().join("examples/python-iris/kiln.toml"), &store);
    let server = Server::start(&[
        "--store",
        store.to_str().unwrap(),
        "--deploy",
        "python=python-iris:1",
        "--monitor-window",
        "0.5",
    ]);
    let severity = |role: &str, feature: &str| {
        format!(
            r#"kiln_drift_severity{{deployment="python",feature="{feature}",role="{role}",version="1"}}"#
        )
    };
    // The baseline's own rows: judged, and nothing drifts.
    drive(
        &server,
        &iris_drift_traffic(0.0),
        r#"kiln_drift_state{deployment="python",state="ok",version="1"}"#,
        |v| v == 1.0,
    );
    assert_eq!(server.metric(&severity("input", "petal_length")), Some(0.0));
    // petal_length moved by 4 cm: it alerts, alone among the inputs, and so do the predictions.
    drive(
        &server,
        &iris_drift_traffic(4.0),
        &severity("input", "petal_length"),
        |v| v == 2.0,
    );
    for feature in ["sepal_length", "sepal_width", "petal_width"] {
        assert_eq!(
            server.metric(&severity("input", feature)),
            Some(0.0),
            "{feature}"
        );
    }
    assert_eq!(server.metric(&severity("output", "label")), Some(2.0));
    let psi = server
        .metric(r#"kiln_drift_statistic{deployment="python",feature="petal_length",role="input",statistic="psi",version="1",window="latest"}"#)
        .expect("psi");
    assert!(psi > 0.25, "{psi}");
    assert!(
        server
            .metric(r#"kiln_feature_values_total{deployment="python",feature="petal_length",quality="out_of_range",role="input",version="1"}"#)
            .is_some_and(|v| v > 0.0)
    );
    // Performance metrics are there too, and the whole exposition passes promtool.
    let metrics = server.metrics();
    for family in [
        "kiln_request_duration_seconds_bucket{",
        "kiln_inference_duration_seconds_bucket{",
        "kiln_instance_starts_total{",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(family) && l.contains(r#"deployment="python""#)),
            "{family} in\n{metrics}"
        );
    }
    assert_promtool_accepts(&metrics);
}

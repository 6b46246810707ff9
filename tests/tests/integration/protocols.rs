//! Every prediction protocol against the iris example on a real server: the answers match the
//! model computed independently from its weights.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::*;
use serde_json::{Value, json};

fn assert_close(got: &Value, want: &[f64]) {
    let got: Vec<f64> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "got {got:?}, want {want:?}");
    }
}

fn check_records(predictions: &Value, rows: &[[f32; 4]]) {
    let expected = iris_expected(rows);
    let predictions = predictions.as_array().unwrap();
    assert_eq!(predictions.len(), rows.len());
    for (p, (label, probabilities)) in predictions.iter().zip(&expected) {
        assert_eq!(p["label"], json!(label));
        assert_close(&p["probabilities"], probabilities);
    }
}

#[test]
fn health_server_and_model_metadata() {
    let server = Server::start(&["--deploy", &iris_deploy()]);
    let live = server.get("/v2/health/live");
    assert_eq!((live.status, live.json()), (200, json!({"live": true})));
    let ready = server.get("/v2/health/ready");
    assert_eq!((ready.status, ready.json()), (200, json!({"ready": true})));
    let meta = server.get("/v2").json();
    assert_eq!(meta["name"], "kiln");
    assert!(
        meta["extensions"]
            .as_array()
            .unwrap()
            .contains(&json!("binary_tensor_data"))
    );

    let model = server.get("/v2/models/iris");
    assert_eq!(model.status, 200);
    assert_eq!(
        model.json(),
        json!({
            "name": "iris", "versions": ["1"], "platform": "kiln_wasm",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}
            ]
        })
    );
    assert_eq!(
        server.get("/v2/models/iris/versions/1").json()["name"],
        "iris"
    );
    let ready = server.get("/v2/models/iris/ready");
    assert_eq!(
        (ready.status, ready.json()),
        (200, json!({"name": "iris", "ready": true}))
    );
    assert_eq!(server.get("/v2/models/iris/versions/1/ready").status, 200);
    assert_eq!(
        server.get("/v1/models/iris").json(),
        json!({"name": "iris", "ready": true})
    );
}

#[test]
fn v2_json_infer_matches_the_model() {
    let server = Server::start(&["--deploy", &iris_deploy()]);
    let flat: Vec<f32> = IRIS_ROWS.iter().flatten().copied().collect();
    let mut request = v2_fp32("input", &[4, 4], &flat);
    request["id"] = json!("req-7");
    for path in ["/v2/models/iris/infer", "/v2/models/iris/versions/1/infer"] {
        let reply = server.post_json(path, &request);
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert_eq!(body["model_name"], "iris");
        assert_eq!(body["model_version"], "1");
        assert_eq!(body["id"], "req-7");
        let expected = iris_expected(&IRIS_ROWS);
        let labels: Vec<i64> = expected.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            body["outputs"][0],
            json!({"name": "label", "datatype": "INT64", "shape": [4], "data": labels})
        );
        assert_eq!(body["outputs"][1]["shape"], json!([4, 3]));
        let all: Vec<f64> = expected.iter().flat_map(|(_, p)| p.clone()).collect();
        assert_close(&body["outputs"][1]["data"], &all);
    }
    // Nested data gives the same answer as flat data; asking for one output returns only it.
    let nested = json!({
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2]]}],
        "outputs": [{"name": "label"}]
    });
    let body = server.post_json("/v2/models/iris/infer", &nested).json();
    assert_eq!(
        body["outputs"],
        json!([{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}])
    );
}

#[test]
fn v2_binary_tensors_both_ways() {
    let server = Server::start(&["--deploy", &iris_deploy()]);
    let flat: Vec<f32> = IRIS_ROWS.iter().flatten().copied().collect();
    let binary: Vec<u8> = flat.iter().flat_map(|f| f.to_le_bytes()).collect();
    let head = serde_json::to_vec(&json!({
        "inputs": [{"name": "input", "shape": [4, 4], "datatype": "FP32",
                    "parameters": {"binary_data_size": binary.len()}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": true}},
                    {"name": "probabilities", "parameters": {"binary_data": false}}]
    }))
    .unwrap();
    let mut body = head.clone();
    body.extend_from_slice(&binary);
    let length = head.len().to_string();
    let reply = server.post(
        "/v2/models/iris/infer",
        &[
            ("Content-Type", "application/octet-stream"),
            ("Inference-Header-Content-Length", &length),
        ],
        &body,
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let json_len: usize = reply
        .header("inference-header-content-length")
        .unwrap()
        .parse()
        .unwrap();
    let head: Value = serde_json::from_slice(&reply.body[..json_len]).unwrap();
    assert_eq!(
        head["outputs"][0]["parameters"]["binary_data_size"],
        json!(32)
    );
    assert!(head["outputs"][0].get("data").is_none());
    let labels: Vec<i64> = reply.body[json_len..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let expected = iris_expected(&IRIS_ROWS);
    assert_eq!(labels, expected.iter().map(|(l, _)| *l).collect::<Vec<_>>());
    let all: Vec<f64> = expected.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_close(&head["outputs"][1]["data"], &all);
}

#[test]
fn kserve_v1_mlflow_and_azure_formats() {
    let server = Server::start(&["--deploy", &iris_deploy()]);
    let rows: Vec<Value> = IRIS_ROWS.iter().map(|r| json!(r)).collect();

    let v1 = server.post_json("/v1/models/iris:predict", &json!({ "instances": rows }));
    assert_eq!(v1.status, 200, "{}", String::from_utf8_lossy(&v1.body));
    check_records(&v1.json()["predictions"], &IRIS_ROWS);
    let v1_inputs = server.post_json("/v1/models/iris:predict", &json!({ "inputs": rows }));
    check_records(&v1_inputs.json()["predictions"], &IRIS_ROWS);

    let columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
    let bodies = [
        json!({"dataframe_split": {"columns": columns, "data": rows}}),
        json!({"dataframe_records": IRIS_ROWS.iter().map(|r| {
            columns.iter().zip(r).map(|(c, v)| (c.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()
        }).collect::<Vec<_>>()}),
        json!({"instances": rows}),
        json!({"inputs": rows}),
        json!({"inputs": {"input": rows}}),
    ];
    for body in bodies {
        let reply = server.post_json("/deployments/iris/invocations", &body);
        assert_eq!(
            reply.status,
            200,
            "{body}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        check_records(&reply.json()["predictions"], &IRIS_ROWS);
    }
    let mut csv = columns.join(",") + "\n";
    for r in IRIS_ROWS {
        csv += &r.iter().map(f32::to_string).collect::<Vec<_>>().join(",");
        csv += "\n";
    }
    let reply = server.post(
        "/deployments/iris/invocations",
        &[("Content-Type", "text/csv")],
        csv.as_bytes(),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    check_records(&reply.json()["predictions"], &IRIS_ROWS);

    let score = server.post_json("/deployments/iris/score", &json!({ "data": rows }));
    assert_eq!(score.status, 200);
    check_records(&score.json(), &IRIS_ROWS);
    let one_row = server.post_json("/deployments/iris/score", &json!({ "data": IRIS_ROWS[0] }));
    check_records(&one_row.json(), &IRIS_ROWS[..1]);
}

#[test]
fn prediction_keys_guard_model_routes_but_not_health() {
    let server = Server::start(&["--deploy", &iris_deploy(), "--api-key", "s3cret"]);
    assert_eq!(server.get("/v2/health/ready").status, 200);
    let body = json!({"data": [IRIS_ROWS[0]]});
    let denied = server.post_json("/deployments/iris/score", &body);
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("www-authenticate"), Some("Bearer"));
    assert!(denied.error().contains("Authorization: Bearer"));
    let wrong = server.post(
        "/deployments/iris/score",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer nope"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(wrong.status, 401);
    let allowed = server.post(
        "/deployments/iris/score",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer s3cret"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(allowed.status, 200);
    assert_eq!(server.get("/v2/models/iris").status, 401);
}

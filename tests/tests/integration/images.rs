//! Manifests and images in the local store: create, validate, build, list, inspect, serve by
//! reference, remove; plain component images; and images that must not deploy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_image::media::{OCI_MANIFEST, WASM_CONFIG, WASM_LAYER};
use kiln_image::{Descriptor, ImageManifest, OciStore, build_component_image};
use kiln_tests::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Runs kiln; `image` commands get `--store STORE` (manifest commands do not touch the store).
fn kiln_in(store: &Path, args: &[&str]) -> (bool, String) {
    let mut command = args.to_vec();
    if args.first() == Some(&"image") {
        command.extend_from_slice(&["--store", store.to_str().unwrap()]);
    }
    let (status, output) = run_kiln(&command);
    (status.success(), output)
}

/// A scratch directory holding the iris model, its sample and a manifest made by `kiln manifest create`.
fn iris_workspace(tag: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(tag);
    let store = dir.join("store");
    let manifest = dir.join("kiln.toml");
    let (ok, output) = kiln_in(
        &store,
        &[
            "manifest",
            "create",
            "--component",
            &component("iris"),
            "--model",
            &iris_model(),
            "--sample",
            repo().join("examples/iris/sample.csv").to_str().unwrap(),
            "--out",
            manifest.to_str().unwrap(),
        ],
    );
    assert!(ok, "{output}");
    (dir, store)
}

#[test]
fn create_validate_build_inspect_serve_and_remove() {
    let (dir, store) = iris_workspace("iris-image");
    let manifest = dir.join("kiln.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("name = \"iris\""), "{text}");
    assert!(
        text.contains("[[schema.inputs]]") && text.contains("datatype = \"FP32\""),
        "{text}"
    );
    let (ok, output) = kiln_in(
        &store,
        &["manifest", "validate", manifest.to_str().unwrap()],
    );
    assert!(
        ok && output
            .contains("valid (iris 1: 1 input(s), 2 output(s), 1 model file(s), sample passed)"),
        "{output}"
    );

    let (ok, output) = kiln_in(
        &store,
        &[
            "image",
            "build",
            manifest.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert!(ok, "{output}");
    let built: Value = serde_json::from_str(output.lines().last().unwrap()).unwrap();
    assert_eq!(built["tag"], "iris:1");
    let digest = built["digest"].as_str().unwrap().to_string();

    let (ok, output) = kiln_in(&store, &["image", "list", "--output", "json"]);
    assert!(ok, "{output}");
    let list: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(list[0]["name"], "iris:1");
    assert_eq!(list[0]["manifest"]["digest"], json!(digest));
    assert_eq!(
        list[0]["manifest"]["artifactType"],
        "application/vnd.kiln.model.v1"
    );

    let (ok, output) = kiln_in(&store, &["image", "inspect", "iris:1", "--output", "json"]);
    assert!(ok, "{output}");
    let inspect: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(inspect["kind"], "kiln-model");
    assert_eq!(
        inspect["files"],
        json!([{"name": "weights.json", "size": std::fs::metadata(Path::new(&iris_model()).join("weights.json")).unwrap().len()}])
    );
    let layers = inspect["manifest"]["layers"].as_array().unwrap();
    let types: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "application/wasm",
            "application/vnd.kiln.model.file.v1",
            "application/vnd.kiln.sample.v1+json"
        ]
    );
    assert_eq!(
        layers[1]["annotations"]["org.opencontainers.image.title"],
        "weights.json"
    );
    assert_eq!(
        inspect["manifest"]["config"]["mediaType"],
        "application/vnd.kiln.model.config.v1+json"
    );
    let baseline = &inspect["config"]["baseline"];
    assert_eq!(baseline["rows"], 30);
    assert_eq!(baseline["features"].as_array().unwrap().len(), 4);
    for feature in baseline["features"].as_array().unwrap() {
        let total: u64 = feature["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(total, 30, "{feature}");
    }

    // Served by tag and by digest, from the store alone.
    let store_arg = store.to_str().unwrap();
    let server = Server::start(&[
        "--store",
        store_arg,
        "--deploy",
        "bytag=iris:1",
        "--deploy",
        &format!("bydigest=oci://iris@{digest}"),
    ]);
    let expected = iris_expected(&IRIS_ROWS[..1]);
    for name in ["bytag", "bydigest"] {
        let reply = server.post_json(
            &format!("/v2/models/{name}/infer"),
            &v2_fp32("input", &[1, 4], &IRIS_ROWS[0]),
        );
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["outputs"][0]["data"], json!([expected[0].0]));
    }
    assert!(
        server.log().contains(&digest),
        "the deployment logs the digest it pinned"
    );
    drop(server);

    let (ok, output) = kiln_in(&store, &["image", "rm", "iris:1"]);
    assert!(ok && output.contains("freed 5 blob(s)"), "{output}");
    let (ok, output) = kiln_in(&store, &["image", "inspect", "iris:1"]);
    assert!(
        !ok && output.contains("no image 'iris:1' in the local store"),
        "{output}"
    );
}

#[test]
fn manifests_that_do_not_fit_their_component_are_rejected() {
    let (dir, store) = iris_workspace("bad-manifests");
    let text = std::fs::read_to_string(dir.join("kiln.toml")).unwrap();
    let cases = [
        (
            text.replacen("datatype = \"FP32\"", "datatype = \"FP64\"", 1),
            "schema does not match the component's metadata",
        ),
        (
            format!("colour = \"red\"\n{text}"),
            "unknown field `colour`",
        ),
        (
            format!(
                "capabilities = [\"network\"]\n{}",
                text.replace("capabilities = []\n", "")
            ),
            "capability 'network' is not available",
        ),
        (
            text.replace("iris.wasm", "faults.wasm"),
            "schema does not match",
        ),
    ];
    for (i, (body, message)) in cases.iter().enumerate() {
        let path = dir.join(format!("case{i}.toml"));
        std::fs::write(&path, body).unwrap();
        let (ok, output) = kiln_in(&store, &["image", "build", path.to_str().unwrap()]);
        assert!(!ok, "case {i} built");
        assert!(output.contains(message), "case {i}: {output}");
    }
    // A sample whose columns do not fit the model's input fails the smoke test.
    std::fs::write(dir.join("narrow.csv"), "a,b\n1,2\n").unwrap();
    let narrow = text.replace(
        &format!("file = \"{}\"", sample_path_in(&text)),
        "file = \"narrow.csv\"",
    );
    std::fs::write(dir.join("narrow.toml"), narrow).unwrap();
    let (ok, output) = kiln_in(
        &store,
        &[
            "manifest",
            "validate",
            dir.join("narrow.toml").to_str().unwrap(),
        ],
    );
    assert!(
        !ok && output.contains("sample smoke test failed"),
        "{output}"
    );
    let (_, output) = kiln_in(&store, &["image", "list", "--output", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&output).unwrap(),
        json!([]),
        "nothing was stored"
    );
}

fn sample_path_in(manifest: &str) -> String {
    let line = manifest
        .lines()
        .skip_while(|l| *l != "[sample]")
        .find(|l| l.starts_with("file = "))
        .unwrap();
    line.trim_start_matches("file = ")
        .trim_matches('"')
        .to_string()
}

#[test]
fn plain_component_images_deploy_and_broken_images_do_not() {
    let dir = temp_dir("component-images");
    let store_dir = dir.join("store");
    let store = OciStore::open(&store_dir).unwrap();
    let faults = std::fs::read(component("faults")).unwrap();
    build_component_image(&store, &faults, "localhost/faults:1").unwrap();

    // Two components where one is expected.
    let twice = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: None,
        config: store
            .put_blob(
                WASM_CONFIG,
                b"{\"architecture\":\"wasm\",\"os\":\"wasip2\"}",
            )
            .unwrap(),
        layers: vec![
            store.put_blob(WASM_LAYER, &faults).unwrap(),
            store.put_blob(WASM_LAYER, b"\0asm second").unwrap(),
        ],
        annotations: Default::default(),
    };
    store.put_manifest(&twice, "twice:1").unwrap();
    // An ordinary container image config: not something Kiln runs.
    let container = ImageManifest {
        config: store
            .put_blob("application/vnd.oci.image.config.v1+json", b"{}")
            .unwrap(),
        layers: vec![store.put_blob(WASM_LAYER, &faults).unwrap()],
        ..twice.clone()
    };
    store.put_manifest(&container, "container:1").unwrap();
    // A layer whose blob is tampered with after it was stored.
    let tampered_layer = store
        .put_blob(WASM_LAYER, &[faults.as_slice(), b"x"].concat())
        .unwrap();
    let tampered = ImageManifest {
        layers: vec![tampered_layer.clone()],
        ..container.clone()
    };
    let tampered = ImageManifest {
        config: twice.config.clone(),
        ..tampered
    };
    store.put_manifest(&tampered, "tampered:1").unwrap();
    std::fs::write(
        store.blob_path(&tampered_layer.digest),
        [faults.as_slice(), b"y"].concat(),
    )
    .unwrap();
    // A manifest whose layer was never stored.
    let missing_layer = Descriptor::of(WASM_LAYER, b"never stored");
    let missing = ImageManifest {
        layers: vec![missing_layer.clone()],
        ..tampered.clone()
    };
    let bytes = missing.to_bytes();
    let descriptor = store.put_blob(OCI_MANIFEST, &bytes).unwrap();
    store.tag("missing:1", &descriptor).unwrap();

    let server = Server::start(&[
        "--store",
        store_dir.to_str().unwrap(),
        "--deploy",
        "echo=localhost/faults:1,config=echo",
        "--deploy",
        "twice=twice:1",
        "--deploy",
        "container=container:1",
        "--deploy",
        "tampered=tampered:1",
        "--deploy",
        "missing=missing:1",
    ]);
    let reply = server.post_json("/v2/models/echo/infer", &v2_fp32("x", &[2], &[4.0, 2.0]));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["outputs"][0]["data"], json!([4.0, 2.0]));
    let cases = [
        (
            "twice",
            "has 2 components where one is expected".to_string(),
        ),
        (
            "container",
            "config media type 'application/vnd.oci.image.config.v1+json'".to_string(),
        ),
        (
            "tampered",
            format!("content of {} hashes to", tampered_layer.digest),
        ),
        (
            "missing",
            format!(
                "blob {} is missing from the local store",
                missing_layer.digest
            ),
        ),
    ];
    for (name, message) in cases {
        let ready = server.get(&format!("/v2/models/{name}/ready"));
        assert_eq!(ready.status, 503, "{name}");
        assert!(
            ready.error().contains(&message),
            "{name}: {}",
            ready.error()
        );
        let infer = server.post_json(
            &format!("/v2/models/{name}/infer"),
            &v2_fp32("x", &[1], &[1.0]),
        );
        assert_eq!(infer.status, 503, "{name}");
    }
    assert!(server.log().contains("not served"), "{}", server.log());
}

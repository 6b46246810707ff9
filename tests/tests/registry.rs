//! Images through a real OCI registry: push, pull, serve by reference, basic auth, a moved tag,
//! an independent client (skopeo) reading what Kiln pushed, and deploying with the registry down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::*;
use serde_json::{Value, json};
use std::process::Command;

fn kiln_ok(args: &[&str]) -> String {
    let (status, output) = run_kiln(args);
    assert!(status.success(), "kiln {args:?}: {output}");
    output
}

#[test]
fn push_inspect_pull_and_serve_by_reference() {
    let registry = RegistryServer::start(None);
    let dir = temp_dir("push-pull");
    let (store, fresh) = (dir.join("store"), dir.join("fresh"));
    let (store, fresh) = (store.to_str().unwrap(), fresh.to_str().unwrap());
    build_iris_image(std::path::Path::new(store));
    let remote = format!("{}/models/iris:1", registry.addr);
    let pushed: Value = serde_json::from_str(
        kiln_ok(&[
            "push", "iris:1", &remote, "--store", store, "--output", "json",
        ])
        .lines()
        .last()
        .unwrap(),
    )
    .unwrap();
    let digest = pushed["digest"].as_str().unwrap().to_string();

    // skopeo, an independent client, reads the manifest and copies the image whole.
    let raw = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{remote}"),
        ])
        .output()
        .expect("skopeo (Debian package skopeo)");
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let manifest: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.kiln.model.v1");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    let layout = dir.join("skopeo-layout");
    let copy = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{remote}"),
            &format!("oci:{}:copied", layout.display()),
        ])
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );

    // A fresh store pulls it: same digest, then serves it by reference.
    let pulled: Value = serde_json::from_str(
        kiln_ok(&["pull", &remote, "--store", fresh, "--output", "json"]).trim(),
    )
    .unwrap();
    assert_eq!(pulled["digest"], json!(digest));
    let server = Server::start(&[
        "--store",
        fresh,
        "--deploy",
        &format!("iris=oci://{remote}"),
    ]);
    let reply = server.post_json(
        "/v2/models/iris/infer",
        &v2_fp32("input", &[1, 4], &IRIS_ROWS[1]),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["outputs"][0]["data"],
        json!([iris_expected(&IRIS_ROWS[1..2])[0].0])
    );
    assert!(
        server.log().contains(&format!("pulled {remote}")),
        "{}",
        server.log()
    );
}

#[test]
fn basic_auth_registries_need_credentials() {
    let registry = RegistryServer::start(Some(("kiln", "s3cret")));
    let dir = temp_dir("auth");
    let store = dir.join("store");
    let store = store.to_str().unwrap();
    build_iris_image(std::path::Path::new(store));
    let remote = format!("{}/models/iris:1", registry.addr);
    let (status, output) = run_kiln(&["push", "iris:1", &remote, "--store", store]);
    assert!(!status.success(), "pushed without credentials");
    assert!(
        output.contains(&format!("registry {}", registry.addr)),
        "{output}"
    );
    kiln_ok(&[
        "push",
        "iris:1",
        &remote,
        "--store",
        store,
        "--username",
        "kiln",
        "--password",
        "s3cret",
    ]);
    let fresh = dir.join("fresh");
    let fresh = fresh.to_str().unwrap();
    let (status, output) = run_kiln(&["pull", &remote, "--store", fresh]);
    assert!(!status.success(), "pulled without credentials");
    assert!(
        output.contains("not authorized to pull models/iris (401 Unauthorized)"),
        "{output}"
    );
    let (status, _) = run_kiln(&[
        "pull",
        &remote,
        "--store",
        fresh,
        "--password",
        "wrong",
        "--username",
        "kiln",
    ]);
    assert!(!status.success(), "pulled with a wrong password");
    let (status, output) = run_kiln(&["image", "list", "--store", fresh, "--output", "json"]);
    assert!(status.success());
    assert_eq!(
        serde_json::from_str::<Value>(&output).unwrap(),
        json!([]),
        "a failed pull stores nothing"
    );
    kiln_ok(&[
        "pull",
        &remote,
        "--store",
        fresh,
        "--username",
        "kiln",
        "--password",
        "s3cret",
    ]);
}

#[test]
fn a_moved_tag_leaves_the_deployment_on_its_digest_and_the_store_serves_offline() {
    let mut registry = RegistryServer::start(None);
    let dir = temp_dir("moved");
    let (store, fresh) = (dir.join("store"), dir.join("fresh"));
    let (store, fresh) = (store.to_str().unwrap(), fresh.to_str().unwrap());
    build_iris_image(std::path::Path::new(store));
    let remote = format!("{}/models/flower:live", registry.addr);
    kiln_ok(&["push", "iris:1", &remote, "--store", store]);
    let server = Server::start(&["--store", fresh, "--deploy", &format!("flower={remote}")]);

    // Move the tag to a different model (the fault fixture's component image).
    let other = kiln_image::OciStore::open(dir.join("other")).unwrap();
    kiln_image::build_component_image(
        &other,
        &std::fs::read(component("faults")).unwrap(),
        "faults:1",
    )
    .unwrap();
    kiln_ok(&[
        "push",
        "faults:1",
        &remote,
        "--store",
        dir.join("other").to_str().unwrap(),
    ]);
    let meta = server.get("/v2/models/flower").json();
    assert_eq!(
        meta["inputs"][0]["name"], "input",
        "still the pinned iris image"
    );
    assert_eq!(
        server
            .post_json(
                "/v2/models/flower/infer",
                &v2_fp32("input", &[1, 4], &IRIS_ROWS[0])
            )
            .status,
        200
    );
    drop(server);

    // A new deployment of the tag gets the new image...
    let moved = Server::start(&[
        "--store",
        fresh,
        "--deploy",
        &format!("flower={remote},config=echo"),
    ]);
    assert_eq!(
        moved.get("/v2/models/flower").json()["inputs"][0]["name"],
        "x"
    );
    drop(moved);
    // ...and with the registry down, the store's copy of the tag deploys.
    registry.stop();
    let offline = Server::start(&[
        "--store",
        fresh,
        "--deploy",
        &format!("flower={remote},config=echo"),
    ]);
    let reply = offline.post_json("/v2/models/flower/infer", &v2_fp32("x", &[1], &[3.0]));
    assert_eq!(reply.status, 200);
    assert!(
        offline
            .log()
            .contains("registry unavailable, deploying the local store's"),
        "{}",
        offline.log()
    );
    // An image neither the registry nor the store has is not served, with the reason.
    let missing = format!("{}/models/never:1", registry.addr);
    let (status, output) = run_kiln(&[
        "serve",
        "--store",
        fresh,
        "--deploy",
        &format!("never={missing}"),
    ]);
    assert!(!status.success());
    assert!(
        output.contains(&format!("cannot pull {missing}")),
        "{output}"
    );
}

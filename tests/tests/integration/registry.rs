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

/// The example's manifest with its scorer replaced, written where only absolute paths work.
fn manifest_with_scorer(dir: &std::path::Path, name: &str, scorer: &str) -> String {
    let example = repo().join("examples/iris");
    let text = std::fs::read_to_string(example.join("kiln.toml"))
        .unwrap()
        .replace(
            "component = \"../../target/components/iris.wasm\"",
            &format!("component = \"{scorer}\""),
        )
        .replace(
            "files = [\"model\"]",
            &format!("files = [\"{}\"]", example.join("model").display()),
        )
        .replace(
            "file = \"sample.csv\"",
            &format!("file = \"{}\"", example.join("sample.csv").display()),
        );
    assert!(text.contains(scorer), "{text}");
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_manifest_takes_its_scorer_from_an_image_in_the_store_or_a_registry() {
    let registry = RegistryServer::start(None);
    let dir = temp_dir("scorer-image");
    let (store, fresh) = (dir.join("store"), dir.join("fresh"));
    let (store, fresh) = (store.to_str().unwrap(), fresh.to_str().unwrap());
    let scorer = std::fs::read(component("iris")).unwrap();
    let local = kiln_image::OciStore::open(store).unwrap();
    kiln_image::build_component_image(&local, &scorer, "scorers/iris:1").unwrap();
    let remote = format!("{}/scorers/iris:1", registry.addr);
    kiln_ok(&["push", "scorers/iris:1", &remote, "--store", store]);
    let scorer_digest = kiln_image::Digest::of(&scorer).to_string();

    // A store tag, then a registry reference built from a store that has never seen it.
    for (i, (reference, target)) in [("scorers/iris:1", store), (remote.as_str(), fresh)]
        .into_iter()
        .enumerate()
    {
        let manifest = manifest_with_scorer(&dir, &format!("m{i}.toml"), reference);
        let built: Value = serde_json::from_str(
            kiln_ok(&[
                "image", "build", &manifest, "--store", target, "--tag", "flower:1", "--output",
                "json",
            ])
            .lines()
            .last()
            .unwrap(),
        )
        .unwrap();
        let inspect: Value = serde_json::from_str(&kiln_ok(&[
            "image", "inspect", "flower:1", "--store", target, "--output", "json",
        ]))
        .unwrap();
        assert_eq!(inspect["digest"], built["digest"], "{inspect}");
        assert_eq!(inspect["component"], json!(scorer_digest), "{inspect}");
        let server = Server::start(&["--store", target, "--deploy", "flower=flower:1"]);
        let reply = server.post_json(
            "/v2/models/flower/infer",
            &v2_fp32("input", &[1, 4], &[5.1, 3.5, 1.4, 0.2]),
        );
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let expected = iris_expected(&[[5.1, 3.5, 1.4, 0.2]]);
        assert_eq!(reply.json()["outputs"][0]["data"], json!([expected[0].0]));
    }
    // Names that are neither a file nor an image: clear errors, nothing built.
    for (i, reference, message) in [
        (
            2,
            "scorers/absent:1".to_string(),
            "no image 'scorers/absent:1' in the local store",
        ),
        (
            3,
            format!("{}/scorers/absent:1", registry.addr),
            "manifest '1' not found in scorers/absent",
        ),
    ] {
        let manifest = manifest_with_scorer(&dir, &format!("m{i}.toml"), &reference);
        let (status, output) = run_kiln(&["image", "build", &manifest, "--store", fresh]);
        assert!(!status.success(), "{reference} built");
        assert!(output.contains(message), "{reference}: {output}");
    }
}

/// Runs kiln under a pseudo-terminal (`script` from util-linux); returns what the terminal saw.
fn kiln_on_terminal(args: &[&str]) -> String {
    let command = std::iter::once(kiln_bin().to_str().unwrap().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{command}: {text}");
    text
}

#[test]
fn progress_shows_on_a_terminal_and_stays_out_of_pipes() {
    let registry = RegistryServer::start(None);
    let dir = temp_dir("progress");
    let (store, fresh) = (dir.join("store"), dir.join("fresh"));
    let (store, fresh) = (store.to_str().unwrap(), fresh.to_str().unwrap());
    let manifest = repo().join("examples/iris/kiln.toml");
    let manifest = manifest.to_str().unwrap();
    let remote = format!("{}/models/iris:1", registry.addr);

    let seen = kiln_on_terminal(&["image", "build", manifest, "--store", store]);
    assert!(seen.contains("compile scorer component ("), "{seen}");
    let seen = kiln_on_terminal(&["push", "iris:1", &remote, "--store", store]);
    assert!(seen.contains(&format!("push {remote} [")), "{seen}");
    let seen = kiln_on_terminal(&["pull", &remote, "--store", fresh]);
    assert!(seen.contains(&format!("pull {remote} [")), "{seen}");

    // Piped, only the result lines remain.
    let piped = kiln_ok(&["image", "build", manifest, "--store", fresh, "--tag", "x:1"]);
    assert!(!piped.contains("compile scorer component"), "{piped}");
    let piped = kiln_ok(&["pull", &remote, "--store", fresh]);
    assert!(!piped.contains('['), "{piped}");
}

//! Runs on the docker target against a real Docker Engine API: podman's, which tests/run
//! starts (`$KILN_TEST_DOCKER_HOST`) with a Debian image holding Python and scikit-learn that it
//! builds locally (`$KILN_TEST_PYTHON_IMAGE`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::runs::{Lab, TRAIN_PY, WG, assert_each_tick_once, free_port};
use kiln_tests::{Up, temp_dir};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(300);

fn docker_host() -> String {
    let host =
        std::env::var("KILN_TEST_DOCKER_HOST").unwrap_or_else(|_| "unix:///tmp/podman.sock".into());
    let socket = host.strip_prefix("unix://").unwrap_or(&host);
    assert!(
        std::path::Path::new(socket).exists(),
        "no Docker API at {host}: run tests/run, which starts podman's"
    );
    host
}

fn python_image() -> String {
    std::env::var("KILN_TEST_PYTHON_IMAGE").unwrap_or_else(|_| "localhost/kiln-python:onnx".into())
}

/// `GET path` on the Docker API itself, as `(status, body)`.
fn docker_api(path: &str) -> (u16, Value) {
    let host = docker_host();
    let socket = host.strip_prefix("unix://").unwrap();
    let output = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--unix-socket", socket])
        .arg(format!("http://docker/v1.41{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn docker_target(lab: &Lab, name: &str, extra: Value) {
    let mut config = json!({
        "host": docker_host(),
        "image": python_image(),
        "network": "host",
        "memory_mb": 1024,
        "cpus": 1,
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    lab.target(name, "docker", config);
}

#[test]
fn the_training_script_runs_in_a_container() {
    let data = temp_dir("docker-train");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    let commit = lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
    docker_target(&lab, "docker", json!({}));
    let test = lab.ok("POST", &format!("{WG}/targets/docker/test"), None);
    assert_eq!(test["reachable"], true, "{test}");
    let message = test["message"].as_str().unwrap();
    assert!(
        message.contains("Podman Engine") || message.contains("Docker"),
        "{test}"
    );
    assert!(message.contains("is present"), "{test}");
    lab.experiment("train", "train.py");
    let id = lab.submit(
        "train",
        json!({ "target": "docker", "args": ["--C", "0.5"] }),
    );
    let run = lab.wait(&id, LONG);
    let log = lab.logs(&id);
    assert_eq!(run["status"], "completed", "{run}\n{log}");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["commit"], json!(commit));
    assert!(log.contains("kiln: container "), "{log}");
    assert!(log.contains("training with C 0.5"), "{log}");
    assert_eq!(run["data"]["params"]["C"], "0.5");
    assert!(
        run["data"]["metrics"]["accuracy"].as_f64().unwrap() > 0.9,
        "{run}"
    );
    let artifacts = lab.ok("GET", &format!("{WG}/runs/{id}/artifacts?path=model"), None);
    assert_eq!(artifacts["items"][0]["path"], "model/weights.json");
    // The container is removed once the run ended.
    let (status, _) = docker_api(&format!("/containers/kiln-run-{id}/json"));
    assert_eq!(status, 404);
}

#[test]
fn container_failures_end_in_a_clear_state() {
    let data = temp_dir("docker-fail");
    // The admin allows a Docker host that is not there.
    let up = Up::start(
        &data,
        &["--allow-docker-host", "unix:///tmp/kiln-no-docker.sock"],
    );
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
    docker_target(&lab, "docker", json!({}));
    docker_target(
        &lab,
        "nowhere",
        json!({ "image": "localhost/kiln-no-such-image:1" }),
    );
    docker_target(
        &lab,
        "closed",
        json!({ "host": "unix:///tmp/kiln-no-docker.sock" }),
    );
    lab.experiment("train", "train.py");

    let id = lab.submit(
        "train",
        json!({ "target": "docker", "args": ["--fail", "3"] }),
    );
    let run = lab.wait(&id, LONG);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["reason"], "exit code 3");
    assert!(lab.logs(&id).contains("failing on purpose"));

    let id = lab.submit("train", json!({ "target": "nowhere" }));
    let run = lab.wait(&id, LONG);
    assert_eq!(run["status"], "failed");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("image 'localhost/kiln-no-such-image:1' is not on the Docker host")
            && reason.contains("cannot be pulled"),
        "{reason}"
    );

    let test = lab.ok("POST", &format!("{WG}/targets/closed/test"), None);
    assert_eq!(test["reachable"], false);
    assert!(
        test["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach the Docker API at unix:///tmp/kiln-no-docker.sock"),
        "{test}"
    );
    let id = lab.submit("train", json!({ "target": "closed" }));
    let run = lab.wait(&id, LONG);
    assert_eq!(run["status"], "failed");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach the Docker API at unix:///tmp/kiln-no-docker.sock"),
        "{run}"
    );
    assert!(
        lab.logs(&id)
            .contains("kiln: failed: cannot reach the Docker API")
    );
}

#[test]
fn a_canceled_container_is_stopped_and_removed() {
    let data = temp_dir("docker-cancel");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
    docker_target(&lab, "docker", json!({}));
    lab.experiment("train", "train.py");
    let id = lab.submit(
        "train",
        json!({ "target": "docker", "args": ["--sleep", "120"] }),
    );
    lab.wait_for(&id, &["running"], LONG);
    while !lab.logs(&id).contains("tick 2") {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, inspected) = docker_api(&format!("/containers/kiln-run-{id}/json"));
    assert_eq!(status, 200);
    assert_eq!(inspected["State"]["Running"], true);
    assert_eq!(inspected["Config"]["Labels"]["kiln.run"], json!(id));
    assert_eq!(inspected["HostConfig"]["Memory"], 1024 * 1024 * 1024);
    lab.ok("POST", &format!("{WG}/runs/{id}/cancel"), None);
    let run = lab.wait(&id, Duration::from_secs(60));
    assert_eq!(run["status"], "canceled");
    let (status, _) = docker_api(&format!("/containers/kiln-run-{id}/json"));
    assert_eq!(status, 404);
}

#[test]
fn a_container_is_reattached_after_the_control_plane_restarts() {
    let data = temp_dir("docker-restart");
    // The same API address before and after, as a restarted service has.
    let api_addr = format!("127.0.0.1:{}", free_port());
    let mut up = Up::start(&data, &["--api-addr", &api_addr]);
    let token = up.admin();
    let id = {
        let lab = Lab::new(&up, &token);
        lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
        docker_target(&lab, "docker", json!({}));
        lab.experiment("train", "train.py");
        let id = lab.submit(
            "train",
            json!({ "target": "docker", "args": ["--sleep", "8"] }),
        );
        lab.wait_for(&id, &["running"], LONG);
        while !lab.logs(&id).contains("tick 5") {
            std::thread::sleep(Duration::from_millis(50));
        }
        id
    };
    up.kill();
    // The container does not depend on the control plane.
    let (status, inspected) = docker_api(&format!("/containers/kiln-run-{id}/json"));
    assert_eq!(status, 200);
    assert_eq!(inspected["State"]["Running"], true);
    let up = Up::start(&data, &["--api-addr", &api_addr]);
    let lab = Lab {
        up: &up,
        token: token.clone(),
    };
    let run = lab.wait(&id, LONG);
    let log = lab.logs(&id);
    assert_eq!(run["status"], "completed", "{run}\n{log}");
    assert!(run["data"]["metrics"]["accuracy"].as_f64().unwrap() > 0.9);
    assert_each_tick_once(&log, 70);
    let (status, _) = docker_api(&format!("/containers/kiln-run-{id}/json"));
    assert_eq!(status, 404);
}

#[test]
fn an_environment_gives_its_runs_their_image() {
    let data = temp_dir("docker-env");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
    // A target with no image of its own: the environment names it.
    lab.target(
        "bare",
        "docker",
        json!({ "host": docker_host(), "network": "host" }),
    );
    lab.target("other", "local", json!({}));
    lab.ok(
        "POST",
        &format!("{WG}/environments"),
        Some(&json!({ "name": "sklearn", "run_image": python_image(), "targets": ["bare"] })),
    );
    lab.experiment("train", "train.py");
    let id = lab.submit(
        "train",
        json!({ "target": "bare", "environment": "sklearn" }),
    );
    let run = lab.wait(&id, LONG);
    assert_eq!(run["status"], "completed", "{run}\n{}", lab.logs(&id));
    assert_eq!(run["environment"], "sklearn");
    assert!(lab.logs(&id).contains(&format!("({})", python_image())));
    // Without the environment the target has no image: a clear reason.
    let id = lab.submit("train", json!({ "target": "bare" }));
    let run = lab.wait(&id, LONG);
    assert_eq!(run["status"], "failed");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .starts_with("no image for the run"),
        "{run}"
    );
    // An environment allows only its targets.
    let refused = lab.try_submit(
        "train",
        json!({ "target": "other", "environment": "sklearn" }),
    );
    assert_eq!(refused.status, 400);
    assert!(
        refused.error().contains("not one of environment 'sklearn'"),
        "{}",
        refused.error()
    );
}

#[test]
fn a_contributors_container_cannot_reach_the_control_planes_secrets() {
    let data = temp_dir("docker-hostile");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    docker_target(&lab, "docker", json!({}));
    let (id, log) = kiln_tests::runs::hostile_run(&lab, "docker");
    kiln_tests::runs::assert_contained(&log, &data, &id, false);
}

/// The Docker daemon pulls a run's image for the work group: the image's registry is held to
/// the installation's address limits when it is pulled, as Kiln's own pulls are.
#[test]
fn a_run_image_on_an_internal_registry_is_not_pulled() {
    let data = temp_dir("docker-internal-registry");
    // Loopback is internal on this installation; the test's Docker host and its host network
    // are allowed.
    let docker = docker_host();
    let up = Up::start(
        &data,
        &[
            "--allow-network",
            "10.255.255.254",
            "--allow-docker-host",
            &docker,
            "--allow-docker-network",
            "host",
        ],
    );
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
    lab.experiment("train", "train.py");
    // The attacker's "registry" on loopback records every request.
    let registry = kiln_tests::Recorder::basic();
    let port = registry.addr.rsplit(':').next().unwrap().to_string();
    docker_target(
        &lab,
        "internal",
        json!({ "image": format!("127.0.0.1:{port}/evil/python:3") }),
    );
    docker_target(&lab, "docker", json!({}));
    lab.ok(
        "POST",
        &format!("{WG}/environments"),
        Some(&json!({ "name": "env", "run_image": format!("localhost:{port}/evil/python:3") })),
    );
    for (body, named) in [
        (json!({ "target": "internal" }), "127.0.0.1"),
        (
            json!({ "target": "docker", "environment": "env" }),
            "127.0.0.1",
        ),
    ] {
        let id = lab.submit("train", body.clone());
        let run = lab.wait(&id, LONG);
        assert_eq!(run["status"], "failed", "{body}: {run}");
        let reason = run["reason"].as_str().unwrap();
        assert!(
            reason.contains("its registry is not pulled from")
                && reason.contains(&format!(
                    "{named}, a loopback, private or link-local address"
                )),
            "{body}: {reason}"
        );
    }
    assert_eq!(registry.heads(), Vec::<String>::new());
    // An image the Docker host has is used as it is, whatever registry its name holds.
    let id = lab.submit("train", json!({ "target": "docker" }));
    let run = lab.wait(&id, LONG);
    assert_eq!(run["status"], "completed", "{run}\n{}", lab.logs(&id));
}

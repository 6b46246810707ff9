//! Safe rollout through endpoints, on `kiln up`: weighted traffic shifts, a header that targets
//! one deployment, mirroring, an image replaced, keys rotated and a deployment removed, all under
//! a load generator that must see no failed request; readiness gating on the sample rows; and
//! the automatic rollback of a deployment that breaches its endpoint's error threshold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::load::{Answer, Load, fits_share};
use kiln_tests::runs::{Lab, WG};
use kiln_tests::{
    Database, Up, build_iris_image, call, component, repo, run_kiln, temp_dir, v2_fp32,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Builds an image from a manifest text (and a sample CSV) into `store`; returns its tag.
fn build(store: &Path, dir: &Path, name: &str, manifest: &str, sample: Option<&str>) -> String {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(sample) = sample {
        std::fs::write(dir.join("sample.csv"), sample).unwrap();
    }
    std::fs::write(dir.join("kiln.toml"), manifest).unwrap();
    let (status, output) = run_kiln(&[
        "image",
        "build",
        dir.join("kiln.toml").to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    assert!(status.success(), "{output}");
    output
}

/// A faults-fixture image in `mode` whose sample sends `x`.
fn faults_image(store: &Path, dir: &Path, name: &str, mode: &str, x: u32) -> String {
    let manifest = format!(
        "name = \"{name}\"\nversion = \"1\"\n[scorer]\ncomponent = \"{}\"\nconfig = \"{mode}\"\n[sample]\nfile = \"sample.csv\"\n",
        component("faults")
    );
    build(store, dir, name, &manifest, Some(&format!("x\n{x}\n")));
    format!("{name}:1")
}

fn register(lab: &Lab, name: &str, reference: &str) {
    lab.ok(
        "POST",
        &format!("{WG}/images"),
        Some(&json!({ "name": name, "reference": reference })),
    );
}

fn endpoint(lab: &Lab, name: &str) -> Value {
    lab.ok("GET", &format!("{WG}/endpoints/{name}"), None)
}

fn patch(lab: &Lab, name: &str, body: Value) -> Value {
    lab.ok("PATCH", &format!("{WG}/endpoints/{name}"), Some(&body))
}

/// Calls `send` until the endpoint's rollback policy has moved `rolled` to weight 0 and `kept`
/// to 100, failing after `seconds`.
fn until_rolled_back(
    up: &Up,
    lab: &Lab,
    name: &str,
    (rolled, kept): (&str, &str),
    seconds: u64,
    mut send: impl FnMut(),
) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let view = endpoint(lab, name);
        if view["traffic"][rolled] == 0 {
            assert_eq!(view["traffic"][kept], 100, "{view}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never rolled {rolled} back: {view}\n{}",
            up.log()
        );
        send();
    }
}

/// The message of the endpoint's rollback event.
fn rollback_message(lab: &Lab, name: &str) -> String {
    let events = lab.ok("GET", &format!("{WG}/endpoints/{name}/events"), None);
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "rollback")
        .unwrap_or_else(|| panic!("no rollback event: {events}"))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Answers of `phase` by `deployment`, and how many the phase has.
fn share(answers: &[Answer], phase: usize, deployment: &str) -> (usize, usize) {
    let of_phase: Vec<&Answer> = answers.iter().filter(|a| a.phase == phase).collect();
    let hits = of_phase
        .iter()
        .filter(|a| a.deployment == deployment)
        .count();
    (hits, of_phase.len())
}

/// Lets the load run for `seconds` in `phase`, after the change it follows reached the runtime.
fn hold(up: &Up, load: &Load, phase: usize, seconds: u64) {
    // The runtime applies a change within milliseconds in `kiln up`; half a second is margin.
    std::thread::sleep(Duration::from_millis(500));
    load.set_phase(phase);
    let start = load.count();
    std::thread::sleep(Duration::from_secs(seconds));
    assert!(
        load.count() > start + 50,
        "the load generator stalled in phase {phase}:\n{}",
        up.log()
    );
}

#[test]
fn a_rollout_under_load_fails_no_request_and_splits_by_weight_sqlite() {
    a_rollout_under_load_fails_no_request_and_splits_by_weight(Database::Sqlite);
}

#[test]
fn a_rollout_under_load_fails_no_request_and_splits_by_weight_postgres() {
    a_rollout_under_load_fails_no_request_and_splits_by_weight(Database::Postgres);
}

fn a_rollout_under_load_fails_no_request_and_splits_by_weight(db: Database) {
    let dir = temp_dir("rollout");
    let args = db.args("rollout");
    let up = Up::start(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let lab = Lab::new(&up, &up.admin());
    build_iris_image(&up.store());
    // Version 2 of the iris model: same weights, another image.
    let v2 = format!(
        "name = \"iris\"\nversion = \"2\"\n[scorer]\ncomponent = \"{}\"\n[model]\nfiles = [\"{}\"]\n[sample]\nfile = \"{}\"\n",
        component("iris"),
        kiln_tests::iris_model(),
        repo().join("examples/iris/sample.csv").display()
    );
    build(&up.store(), &dir, "iris2", &v2, None);
    register(&lab, "iris-v1", "iris:1");
    register(&lab, "iris-v2", "iris:2");

    let created = lab.ok(
        "POST",
        &format!("{WG}/endpoints"),
        Some(&json!({ "name": "flowers" })),
    );
    let key = created["keys"]["secondary"].as_str().unwrap().to_string();
    let old_primary = created["keys"]["primary"].as_str().unwrap().to_string();
    // Blue joins the empty endpoint at 100%, green at 0%.
    let blue = lab.ok(
        "POST",
        &format!("{WG}/deployments"),
        Some(&json!({ "name": "blue", "image": "iris-v1", "endpoint": "flowers" })),
    );
    assert_eq!(blue["endpoint"]["weight"], 100, "{blue}");
    let blue_key = blue["keys"]["primary"].as_str().unwrap().to_string();
    let green = lab.ok(
        "POST",
        &format!("{WG}/deployments"),
        Some(&json!({ "name": "green", "image": "iris-v1", "endpoint": "flowers" })),
    );
    assert_eq!(green["endpoint"]["weight"], 0, "{green}");
    for d in ["blue", "green"] {
        let status = up.wait_deployment(&lab.token, &format!("{WG}/deployments/{d}"));
        assert_eq!(status["status"], "ready", "{status}");
    }
    let view = endpoint(&lab, "flowers");
    assert_eq!(
        view["traffic"],
        json!({ "blue": 100, "green": 0 }),
        "{view}"
    );
    let infer = view["urls"]["infer"].as_str().unwrap().to_string();
    assert!(infer.ends_with("/v2/models/flowers/infer"), "{infer}");

    // Names are shared with deployments; weights must sum to 100 and name known deployments.
    let taken = up.api(
        "POST",
        &format!("{WG}/endpoints"),
        Some(&lab.token),
        Some(&json!({ "name": "blue" })),
    );
    assert_eq!(
        taken.status,
        409,
        "{}",
        String::from_utf8_lossy(&taken.body)
    );
    for (bad, says) in [
        (json!({ "blue": 60, "green": 60 }), "sum to 120"),
        (json!({ "blue": 100, "red": 0 }), "no deployment 'red'"),
    ] {
        let reply = up.api(
            "PATCH",
            &format!("{WG}/endpoints/flowers"),
            Some(&lab.token),
            Some(&json!({ "traffic": bad })),
        );
        assert_eq!(reply.status, 400);
        assert!(reply.error().contains(says), "{}", reply.error());
    }
    let body = serde_json::to_vec(&v2_fp32("input", &[1, 4], &[5.1, 3.5, 1.4, 0.2])).unwrap();
    // The public flag changes with the settings, as a new generation, and the runtime follows:
    // open, a request without a key is answered; closed again, it is a 401. The weights stay.
    let keyless = || {
        call(
            "POST",
            &infer,
            &[("Content-Type", "application/json")],
            Some(&body),
        )
        .status
    };
    let eventually = |status: u16| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while keyless() != status {
            assert!(Instant::now() < deadline, "never {status}:\n{}", up.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(keyless(), 401);
    let opened = patch(&lab, "flowers", json!({ "public": true }));
    assert_eq!(opened["public"], true, "{opened}");
    assert!(
        opened["generation"].as_i64() > view["generation"].as_i64(),
        "{opened}"
    );
    eventually(200);
    let closed = patch(&lab, "flowers", json!({ "public": false }));
    assert_eq!(
        (&closed["public"], &closed["traffic"]),
        (&json!(false), &json!({ "blue": 100, "green": 0 })),
        "{closed}"
    );
    eventually(401);

    let bearer = format!("Bearer {key}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    // The endpoint takes its own keys, not a deployment's.
    let with = |auth: &str, extra: Option<(&str, &str)>| {
        let mut h = vec![
            ("Content-Type", "application/json"),
            ("Authorization", auth),
        ];
        h.extend(extra);
        call("POST", &infer, &h, Some(&body))
    };
    assert_eq!(with(&format!("Bearer {blue_key}"), None).status, 401);
    let reply = with(&bearer, None);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("kiln-deployment"), Some("blue"));
    assert_eq!(reply.json()["outputs"][0]["data"], json!([0]));
    // The header targets green, at 0%; a deployment outside the endpoint is a 404.
    let reply = with(&bearer, Some(("kiln-deployment", "green")));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("kiln-deployment"), Some("green"));
    let reply = with(&bearer, Some(("kiln-deployment", "purple")));
    assert_eq!(reply.status, 404);
    assert!(
        reply.error().contains("no deployment 'purple'"),
        "{}",
        reply.error()
    );
    // The other protocols route through the endpoint too.
    let mlflow = call(
        "POST",
        &format!("{}/deployments/flowers/invocations", up.base),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", bearer.as_str()),
            ("kiln-deployment", "green"),
        ],
        Some(br#"{"inputs": [[5.1, 3.5, 1.4, 0.2]]}"#),
    );
    assert_eq!(
        mlflow.status,
        200,
        "{}",
        String::from_utf8_lossy(&mlflow.body)
    );
    assert_eq!(mlflow.header("kiln-deployment"), Some("green"));

    let load = Load::start(4, &infer, &headers, body.clone(), 400_000);

    // Phase 1: blue 100%, 20% mirrored to green; clients only ever see blue.
    let mirrored = r#"kiln_endpoint_requests_total{code="200",deployment="green",endpoint="flowers",traffic="mirror"}"#;
    let live_blue = r#"kiln_endpoint_requests_total{code="200",deployment="blue",endpoint="flowers",traffic="live"}"#;
    patch(
        &lab,
        "flowers",
        json!({ "mirror": { "deployment": "green", "percent": 20 } }),
    );
    std::thread::sleep(Duration::from_millis(500));
    let (m0, l0) = (
        up.metric(mirrored).unwrap_or(0.0),
        up.metric(live_blue).unwrap_or(0.0),
    );
    hold(&up, &load, 1, 2);
    let (m1, l1) = (up.metric(mirrored).unwrap(), up.metric(live_blue).unwrap());
    let (copies, live) = ((m1 - m0) as usize, (l1 - l0) as usize);
    assert!(
        fits_share(copies, live, 0.2),
        "mirrored {copies} of {live} requests, not 20%"
    );
    // Phase 0 holds the answers sent while a change spreads: they count as answers only.
    load.set_phase(0);
    patch(&lab, "flowers", json!({ "mirror": null }));

    // Phases 2-5: green 10%, 50%, 100%, then back to 0%.
    for (phase, green) in [(2, 10u32), (3, 50), (4, 100), (5, 0)] {
        load.set_phase(0);
        patch(
            &lab,
            "flowers",
            json!({ "traffic": { "blue": 100 - green, "green": green } }),
        );
        hold(&up, &load, phase, 2);
    }
    // Phase 6: blue's image replaced by version 2 while it takes all the traffic.
    load.set_phase(6);
    lab.ok(
        "PATCH",
        &format!("{WG}/deployments/blue"),
        Some(&json!({ "image": "iris-v2" })),
    );
    let status = up.wait_deployment(&lab.token, &format!("{WG}/deployments/blue"));
    assert_eq!(status["status"], "ready", "{status}");
    hold(&up, &load, 7, 1);
    // Phase 8: the primary key rotated (the load uses the secondary), green removed.
    load.set_phase(0);
    let rotated = lab.ok(
        "POST",
        &format!("{WG}/endpoints/flowers/keys"),
        Some(&json!({ "key": "primary" })),
    );
    let refused = up.api(
        "DELETE",
        &format!("{WG}/deployments/blue"),
        Some(&lab.token),
        None,
    );
    assert_eq!(refused.status, 409, "blue carries traffic");
    assert!(
        refused.error().contains("set its weight to 0"),
        "{}",
        refused.error()
    );
    lab.ok("DELETE", &format!("{WG}/deployments/green"), None);
    hold(&up, &load, 8, 1);
    let answers = load.stop();

    let failed: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, first: {:?}\n{}",
        failed.len(),
        answers.len(),
        failed.first(),
        up.log()
    );
    assert!(answers.len() > 1000, "only {} requests", answers.len());
    let (blue_hits, n) = share(&answers, 1, "blue");
    assert_eq!(blue_hits, n, "mirroring showed the client a green answer");
    for (phase, green) in [(2, 0.1), (3, 0.5), (4, 1.0), (5, 0.0)] {
        let (hits, n) = share(&answers, phase, "green");
        assert!(
            fits_share(hits, n, green),
            "phase {phase}: green answered {hits} of {n}, expected {green}"
        );
    }
    for phase in [7, 8] {
        let (hits, n) = share(&answers, phase, "blue");
        assert_eq!(hits, n, "phase {phase}");
    }

    // Blue now serves version 2; the rotated key works, the old primary does not.
    let reply = with(
        &format!("Bearer {}", rotated["value"].as_str().unwrap()),
        None,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["model_version"], "2");
    assert_eq!(with(&format!("Bearer {old_primary}"), None).status, 401);
    let view = endpoint(&lab, "flowers");
    assert_eq!(view["traffic"], json!({ "blue": 100 }), "{view}");
    let events = lab.ok("GET", &format!("{WG}/endpoints/flowers/events"), None);
    let messages: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("green 50%")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("mirroring 20% to green"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("deployment green removed"))
    );
    // The split is exported.
    assert_eq!(
        up.metric(r#"kiln_endpoint_traffic_weight{deployment="blue",endpoint="flowers"}"#),
        Some(100.0)
    );

    // The CLI shows the split and sets it.
    let cli = |args: &[&str]| {
        let mut all = vec![args[0], args[1]];
        all.extend([
            "--url",
            &up.api,
            "--token",
            &lab.token,
            "--team",
            "lab",
            "--workgroup",
            "vision",
        ]);
        all.extend(&args[2..]);
        run_kiln(&all)
    };
    let (status, out) = cli(&["endpoint", "show", "flowers"]);
    assert!(status.success(), "{out}");
    assert!(out.contains("blue") && out.contains("100%"), "{out}");
    let (status, out) = cli(&["endpoint", "traffic", "flowers", "blue=90"]);
    assert!(!status.success());
    assert!(out.contains("sum to 90"), "{out}");
    let (status, out) = cli(&["endpoint", "list", "--output", "json"]);
    assert!(status.success(), "{out}");
    let listed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listed["items"][0]["traffic"], json!({ "blue": 100 }));

    // Mirror, rollback policy and keys from the CLI: each change keeps the others and is an
    // event.
    let json_of = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let (status, out) = cli(&all);
        assert!(status.success(), "{args:?}: {out}");
        serde_json::from_str(out.trim()).unwrap()
    };
    let shown = json_of(&["endpoint", "mirror", "flowers", "blue", "--percent", "5"]);
    assert_eq!(
        shown["mirror"],
        json!({ "deployment": "blue", "percent": 5 })
    );
    assert_eq!(shown["deployments"][0]["mirror_percent"], 5, "{shown}");
    let shown = json_of(&["endpoint", "rollback", "flowers", "--max-error-rate", "0.2"]);
    assert_eq!(shown["rollback"]["max_error_rate"], 0.2, "{shown}");
    assert_eq!(shown["rollback"]["window_s"], 10, "{shown}");
    assert_eq!(shown["mirror"]["percent"], 5, "{shown}");
    let shown = json_of(&["endpoint", "mirror", "flowers", "--off"]);
    assert_eq!(shown["mirror"], Value::Null);
    assert_eq!(shown["rollback"]["max_error_rate"], 0.2, "{shown}");
    let shown = json_of(&["endpoint", "rollback", "flowers", "--off"]);
    assert_eq!(shown["rollback"], Value::Null);
    let (status, out) = cli(&["endpoint", "mirror", "flowers", "blue", "--percent", "80"]);
    assert!(!status.success() && out.contains("1 to 50"), "{out}");
    let events = json_of(&["endpoint", "events", "flowers"]);
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["policy", "mirror", "policy", "mirror"]);
    let key = json_of(&[
        "endpoint",
        "regenerate-key",
        "flowers",
        "--key",
        "secondary",
    ]);
    assert_eq!(key["key"], "secondary");
    assert_eq!(key["name"], "flowers");
    assert!(key["value"].as_str().unwrap().len() > 20, "{key}");
}

#[test]
fn a_version_failing_its_sample_gets_no_traffic_and_a_breaching_rollout_rolls_back() {
    let dir = temp_dir("rollback");
    let up = Up::start(&dir, &[]);
    let lab = Lab::new(&up, &up.admin());
    let store = up.store();
    register(&lab, "echo", &faults_image(&store, &dir, "echo", "echo", 1));
    // Busy: x million rounds of work. Its sample (x = 0) passes; x = 50 takes far longer.
    register(&lab, "busy", &faults_image(&store, &dir, "busy", "busy", 0));
    register(
        &lab,
        "heavy",
        &faults_image(&store, &dir, "heavy", "busy", 50),
    );
    lab.ok(
        "POST",
        &format!("{WG}/endpoints"),
        Some(&json!({ "name": "scores", "public": true,
                      "rollback": { "max_error_rate": 0.1, "window_s": 1, "min_requests": 5 } })),
    );
    for (name, image, limits) in [
        ("stable", "echo", json!({})),
        ("canary", "busy", json!({ "deadline_ms": 40 })),
        // Its sample takes longer than its deadline: it must never be served.
        ("gated", "heavy", json!({ "deadline_ms": 1 })),
    ] {
        lab.ok(
            "POST",
            &format!("{WG}/deployments"),
            Some(&json!({ "name": name, "image": image, "public": true, "limits": limits, "endpoint": "scores" })),
        );
    }
    for (name, want) in [
        ("stable", "ready"),
        ("canary", "ready"),
        ("gated", "failed"),
    ] {
        let status = up.wait_deployment(&lab.token, &format!("{WG}/deployments/{name}"));
        assert_eq!(status["status"], want, "{status}");
        if want == "failed" {
            let reason = status["reason"].as_str().unwrap();
            assert!(reason.contains("sample check failed"), "{reason}");
            assert!(reason.contains("deadline"), "{reason}");
        }
    }
    let view = endpoint(&lab, "scores");
    let gated = view["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "gated")
        .unwrap()
        .clone();
    assert_eq!(gated["status"], "failed", "{view}");
    assert!(
        gated["reason"]
            .as_str()
            .unwrap()
            .contains("sample check failed")
    );

    let url = format!("{}/v2/models/scores/infer", up.base);
    let send = |x: f32| {
        let body = serde_json::to_vec(&v2_fp32("x", &[1], &[x])).unwrap();
        call(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            Some(&body),
        )
    };
    // Half the weight on the gated version: every answer still comes from stable.
    patch(
        &lab,
        "scores",
        json!({ "traffic": { "stable": 50, "canary": 0, "gated": 50 } }),
    );
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..40 {
        let reply = send(1.0);
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.header("kiln-deployment"), Some("stable"));
    }
    let gated_live = up.metric(
        r#"kiln_endpoint_requests_total{code="200",deployment="gated",endpoint="scores",traffic="live"}"#,
    );
    assert_eq!(gated_live, None, "the gated version answered");

    // The canary takes half the traffic and times out on it: rolled back to 0.
    patch(
        &lab,
        "scores",
        json!({ "traffic": { "stable": 100, "canary": 0, "gated": 0 } }),
    );
    patch(
        &lab,
        "scores",
        json!({ "traffic": { "stable": 50, "canary": 50, "gated": 0 } }),
    );
    until_rolled_back(&up, &lab, "scores", ("canary", "stable"), 60, || {
        let _ = send(500.0);
    });
    let message = rollback_message(&lab, "scores");
    assert!(message.contains("rolled back canary"), "{message}");
    assert!(message.contains("error rate"), "{message}");
    // After the rollback every request is answered by stable.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let reply = send(500.0);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("kiln-deployment"), Some("stable"));
    }

    // A policy on latency: every answer of the slow version is a 200, but its p99 is far above
    // 25 ms, so it goes back to 0 too, and the event says why.
    lab.ok(
        "POST",
        &format!("{WG}/endpoints"),
        Some(&json!({ "name": "timed", "public": true,
                      "rollback": { "max_p99_ms": 25, "window_s": 1, "min_requests": 5 } })),
    );
    for (name, image, limits) in [
        ("quick", "echo", json!({})),
        ("slow", "busy", json!({ "deadline_ms": 30000 })),
    ] {
        lab.ok(
            "POST",
            &format!("{WG}/deployments"),
            Some(&json!({ "name": name, "image": image, "public": true, "limits": limits, "endpoint": "timed" })),
        );
        let status = up.wait_deployment(&lab.token, &format!("{WG}/deployments/{name}"));
        assert_eq!(status["status"], "ready", "{status}");
    }
    patch(
        &lab,
        "timed",
        json!({ "traffic": { "quick": 50, "slow": 50 } }),
    );
    let timed = format!("{}/v2/models/timed/infer", up.base);
    let body = serde_json::to_vec(&v2_fp32("x", &[1], &[50.0])).unwrap();
    until_rolled_back(&up, &lab, "timed", ("slow", "quick"), 120, || {
        let reply = call(
            "POST",
            &timed,
            &[("Content-Type", "application/json")],
            Some(&body),
        );
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    });
    let message = rollback_message(&lab, "timed");
    assert!(message.contains("rolled back slow"), "{message}");
    assert!(message.contains("p99 latency"), "{message}");
    assert!(message.contains("above 25 ms"), "{message}");

    // Killed and restarted, the node resumes every deployment and endpoint from the control
    // plane's store and the local image store; the gated version is still refused.
    let token = lab.token.clone();
    drop(lab);
    let mut up = up;
    up.kill();
    let up = Up::start(&dir, &[]);
    let url = format!("{}/v2/models/scores/infer", up.base);
    let body = serde_json::to_vec(&v2_fp32("x", &[1], &[1.0])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let reply = loop {
        let reply = call(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            Some(&body),
        );
        if reply.status == 200 || Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        reply.status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&reply.body),
        up.log()
    );
    assert_eq!(reply.header("kiln-deployment"), Some("stable"));
    let gated = up.wait_deployment(&token, &format!("{WG}/deployments/gated"));
    assert_eq!(gated["status"], "failed", "{gated}");
}

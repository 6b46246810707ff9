//! End to end with the CLI: `kiln up`, then `kiln login`, team, work group, project, model
//! version, image, deployment; predictions with the deployment's keys, without them, and with
//! another deployment's; key rotation; deletion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Runs the CLI with its own context file; returns (success, stdout + stderr).
fn kiln(context: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(kiln_bin())
        .args(args)
        .env("KILN_CONTEXT", context)
        .env_remove("KILN_URL")
        .env_remove("KILN_TOKEN")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn kiln_json(context: &Path, args: &[&str]) -> Value {
    // Before any `--`, which passes the rest through.
    let mut all = args.to_vec();
    all.splice(2.min(all.len())..2.min(all.len()), ["--output", "json"]);
    let (ok, output) = kiln(context, &all);
    assert!(ok, "kiln {args:?}: {output}");
    serde_json::from_str(output.lines().last().unwrap()).unwrap_or_else(|e| panic!("{e}: {output}"))
}

fn infer(up: &Up, name: &str, key: Option<&str>) -> Reply {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    let body = serde_json::to_vec(&v2_fp32("input", &[1, 4], &IRIS_ROWS[1])).unwrap();
    call(
        "POST",
        &format!("{}/v2/models/{name}/infer", up.base),
        &headers,
        Some(&body),
    )
}

#[test]
fn files_to_a_keyed_endpoint_with_the_cli_sqlite() {
    files_to_a_keyed_endpoint_with_the_cli(Database::Sqlite);
}

#[test]
fn files_to_a_keyed_endpoint_with_the_cli_postgres() {
    files_to_a_keyed_endpoint_with_the_cli(Database::Postgres);
}

/// A model goes from files to a keyed endpoint with the CLI alone.
fn files_to_a_keyed_endpoint_with_the_cli(db: Database) {
    let dir = temp_dir("control-cli");
    let args = db.args("cli");
    let up = Up::start(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let context = dir.join("context.json");
    let admin = up.admin();

    let (ok, output) = kiln(
        &context,
        &["login", "--url", &up.api, "--token", "kiln_wrong"],
    );
    assert!(!ok && output.contains("401"), "{output}");
    let (ok, output) = kiln(
        &context,
        &[
            "login",
            "--url",
            &up.api,
            "--token",
            &admin,
            "--team",
            "lab",
            "--workgroup",
            "vision",
        ],
    );
    assert!(ok && output.contains("logged in"), "{output}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&context).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o077,
        0,
        "the context file holds a token: owner-only"
    );

    kiln_json(&context, &["team", "create", "lab"]);
    kiln_json(&context, &["workgroup", "create", "vision"]);
    kiln_json(
        &context,
        &["project", "create", "flowers", "--description", "iris"],
    );
    // The project's code: a working tree pushed as a commit, .gitignore honoured.
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("data")).unwrap();
    std::fs::create_dir_all(work.join("lib")).unwrap();
    std::fs::write(work.join("train.py"), "print('training')\n").unwrap();
    std::fs::write(work.join("lib/util.py"), "X = 1\n").unwrap();
    std::fs::write(work.join(".gitignore"), "data/\n*.log\n").unwrap();
    std::fs::write(work.join("data/big.csv"), "1,2,3\n").unwrap();
    std::fs::write(work.join("train.log"), "noise\n").unwrap();
    let pushed = kiln_json(
        &context,
        &[
            "project",
            "push",
            "flowers",
            work.to_str().unwrap(),
            "-m",
            "first model",
        ],
    );
    assert_eq!(pushed["files"], 3, "{pushed}");
    let commit = pushed["commit"].as_str().unwrap().to_string();
    let log = kiln_json(&context, &["project", "log", "flowers"]);
    assert_eq!(log["items"][0]["commit"], json!(commit));
    assert_eq!(log["items"][0]["message"], "first model");
    assert_eq!(log["items"][0]["author"], "admin");
    let tree = up.ok(
        "GET",
        &format!("/api/v1/teams/lab/workgroups/vision/projects/flowers/commits/{commit}"),
        &admin,
        None,
    );
    assert_eq!(
        tree["files"],
        json!([".gitignore", "lib/util.py", "train.py"])
    );
    kiln_json(
        &context,
        &[
            "experiment",
            "create",
            "train",
            "--script",
            "train.py",
            "--project",
            "flowers",
            "--",
            "--epochs",
            "3",
        ],
    );
    let run = kiln_json(
        &context,
        &[
            "run",
            "submit",
            "--experiment",
            "train",
            "--commit",
            &commit,
            "--project",
            "flowers",
        ],
    );
    assert_eq!(run["status"], "queued");
    assert_eq!(run["number"], 1);
    assert_eq!(run["commit"], json!(commit));
    assert_eq!(run["args"], json!(["--epochs", "3"]));
    let run_id = run["id"].as_str().unwrap().to_string();

    let version = kiln_json(
        &context,
        &[
            "model",
            "register",
            "iris",
            "--path",
            &iris_model(),
            "--run",
            &run_id,
            "--local",
            "--commit",
            &commit,
        ],
    );
    assert_eq!(version["version"], 1);
    assert_eq!(version["run"], json!(run_id));
    assert_eq!(version["commit"], json!(commit));
    assert_eq!(version["files"][0]["path"], "weights.json");
    let version = kiln_json(
        &context,
        &["model", "register", "iris", "--path", &iris_model()],
    );
    assert_eq!(version["version"], 2);
    kiln_json(&context, &["model", "alias", "iris", "production", "1"]);
    let model = kiln_json(&context, &["model", "show", "iris"]);
    assert_eq!(model["aliases"], json!({ "production": 1 }));
    assert_eq!(model["latest_version"], 2);
    // A version with a file in a directory (a space in its name), downloaded by alias: each
    // file lands where its path says, checked against its digest.
    let tree = dir.join("model-tree");
    std::fs::create_dir_all(tree.join("meta")).unwrap();
    std::fs::write(tree.join("weights.json"), b"{\"w\": [1, 2]}").unwrap();
    std::fs::write(tree.join("meta/notes 1.txt"), b"trained on iris").unwrap();
    let tree = tree.to_str().unwrap();
    for number in [1, 2] {
        let registered = kiln_json(&context, &["model", "register", "tree", "--path", tree]);
        assert_eq!(registered["version"], number);
    }
    kiln_json(&context, &["model", "alias", "tree", "candidate", "2"]);
    let out = dir.join("model-download");
    let downloaded = kiln_json(
        &context,
        &[
            "model",
            "download",
            "tree",
            "--version",
            "candidate",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(downloaded["version"], 2);
    assert_eq!(downloaded["files"].as_array().unwrap().len(), 2);
    let notes = std::fs::read(out.join("meta/notes 1.txt")).unwrap();
    assert_eq!(notes, b"trained on iris");
    let versions = kiln_json(&context, &["model", "versions", "tree"]);
    let numbers: Vec<&Value> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["version"])
        .collect();
    assert_eq!(numbers, [&json!(1), &json!(2)]);
    let listed = kiln_json(&context, &["model", "list"]);
    let latest: Vec<(&Value, &Value)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (&m["name"], &m["latest_version"]))
        .collect();
    assert_eq!(
        latest,
        [(&json!("iris"), &json!(2)), (&json!("tree"), &json!(2))]
    );

    build_iris_image(&up.store());
    let image = kiln_json(&context, &["image", "register", "iris-img", "iris:1"]);
    assert!(
        image["digest"].as_str().unwrap().starts_with("sha256:"),
        "{image}"
    );
    let created = kiln_json(
        &context,
        &["deployment", "create", "iris", "--image", "iris-img"],
    );
    let (primary, secondary) = (
        created["keys"]["primary"].as_str().unwrap().to_string(),
        created["keys"]["secondary"].as_str().unwrap().to_string(),
    );
    let other = kiln_json(
        &context,
        &["deployment", "create", "iris-b", "--image", "iris-img"],
    );
    let other_key = other["keys"]["primary"].as_str().unwrap().to_string();
    let path = "/api/v1/teams/lab/workgroups/vision/deployments";
    let status = up.wait_deployment(&admin, &format!("{path}/iris"));
    assert_eq!(status["status"], "ready", "{status}");
    up.wait_deployment(&admin, &format!("{path}/iris-b"));
    let shown = kiln_json(&context, &["deployment", "show", "iris"]);
    assert_eq!(shown["status"], "ready");
    assert!(
        !shown.to_string().contains(&primary),
        "keys are shown once only"
    );

    let expected = iris_expected(&IRIS_ROWS[1..2]);
    for key in [&primary, &secondary] {
        let reply = infer(&up, "iris", Some(key));
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["outputs"][0]["data"], json!([expected[0].0]));
    }
    assert_eq!(infer(&up, "iris", None).status, 401);
    assert_eq!(
        infer(&up, "iris", Some(&other_key)).status,
        401,
        "another deployment's key"
    );
    assert_eq!(infer(&up, "iris", Some("kdk_guess")).status, 401);
    assert_eq!(infer(&up, "iris-b", Some(&other_key)).status, 200);

    // Rotation: the new primary works once the runtime has it, the old one stops, the
    // secondary never stops.
    let rotated = kiln_json(
        &context,
        &["deployment", "regenerate-key", "iris", "--key", "primary"],
    );
    let new_primary = rotated["value"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while infer(&up, "iris", Some(&new_primary)).status != 200 {
        assert_eq!(
            infer(&up, "iris", Some(&secondary)).status,
            200,
            "the secondary key kept working"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the new key never worked"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        infer(&up, "iris", Some(&primary)).status,
        401,
        "the old primary key"
    );
    assert_eq!(infer(&up, "iris", Some(&secondary)).status, 200);
    let (ok, output) = kiln(
        &context,
        &["deployment", "regenerate-key", "iris", "--key", "tertiary"],
    );
    assert!(!ok && output.contains("tertiary"), "{output}");

    // A change sets what it names and keeps the rest, each change a new generation.
    let before = kiln_json(&context, &["deployment", "show", "iris-b"]);
    let changed = kiln_json(
        &context,
        &[
            "deployment",
            "update",
            "iris-b",
            "--memory-mb",
            "96",
            "--max-instances",
            "2",
        ],
    );
    assert_eq!(changed["limits"]["memory_mb"], 96, "{changed}");
    assert_eq!(changed["scale"]["max_instances"], 2, "{changed}");
    let generation = before["generation"].as_i64().unwrap();
    assert_eq!(changed["generation"], generation + 1);
    let again = kiln_json(
        &context,
        &["deployment", "update", "iris-b", "--idle-timeout-s", "60"],
    );
    assert_eq!(again["limits"]["memory_mb"], 96, "{again}");
    assert_eq!(again["scale"]["max_instances"], 2, "{again}");
    assert_eq!(again["scale"]["idle_timeout_s"], 60, "{again}");
    assert_eq!(again["generation"], generation + 2);
    assert!(before["drift"]["state"].is_string(), "{before}");

    // Monitoring from the CLI: a window, and retraining with an experiment of the work group;
    // one that does not exist is refused; the settings show on the deployment.
    let monitored = kiln_json(
        &context,
        &[
            "deployment",
            "monitor",
            "iris-b",
            "--window",
            "30",
            "--retrain",
            "flowers/train",
            "--retrain-windows",
            "2",
        ],
    );
    assert_eq!(monitored["monitoring"]["window_s"], 30, "{monitored}");
    assert_eq!(monitored["retrain"]["experiment"], "train", "{monitored}");
    assert_eq!(monitored["retrain"]["windows"], 2, "{monitored}");
    let (ok, output) = kiln(
        &context,
        &[
            "deployment",
            "monitor",
            "iris-b",
            "--retrain",
            "flowers/nope",
        ],
    );
    assert!(!ok && output.contains("no experiment 'nope'"), "{output}");
    let shown = kiln_json(&context, &["deployment", "show", "iris-b"]);
    assert_eq!(shown["monitoring"]["window_s"], 30, "{shown}");
    assert_eq!(shown["retrain"]["project"], "flowers", "{shown}");
    let drift = kiln_json(
        &context,
        &["deployment", "drift", "iris-b", "--window", "cumulative"],
    );
    assert_eq!(drift["kind"], "cumulative", "{drift}");
    assert_eq!(drift["windows"], json!([]), "{drift}");
    let (ok, output) = kiln(
        &context,
        &["deployment", "drift", "iris-b", "--window", "99"],
    );
    assert!(!ok && output.contains("window must be latest"), "{output}");

    // A work group member with the reader role sees the deployment but cannot delete it.
    let reader = up.ok(
        "POST",
        "/api/v1/users",
        &admin,
        Some(&json!({ "name": "rita" })),
    );
    let reader_token = reader["token"]["token"].as_str().unwrap();
    kiln_json(
        &context,
        &["team", "add-member", "rita", "--role", "member"],
    );
    kiln_json(
        &context,
        &["workgroup", "add-member", "rita", "--role", "reader"],
    );
    let rita = dir.join("rita.json");
    let (ok, output) = kiln(
        &rita,
        &[
            "login",
            "--url",
            &up.api,
            "--token",
            reader_token,
            "--team",
            "lab",
            "--workgroup",
            "vision",
        ],
    );
    assert!(ok, "{output}");
    let listed = kiln_json(&rita, &["deployment", "list"]);
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let (ok, output) = kiln(&rita, &["deployment", "delete", "iris"]);
    assert!(
        !ok && output.contains("403") && output.contains("contributor"),
        "{output}"
    );
    // The work group's quota: its readers read it, an installation admin sets it, `default`
    // returns a limit to the installation's, and a value that is neither is refused.
    let quota = kiln_json(&rita, &["workgroup", "quota"]);
    let (ok, output) = kiln(&rita, &["workgroup", "quota", "--deployments", "9"]);
    assert!(!ok && output.contains("403"), "{output}");
    let set = kiln_json(
        &context,
        &[
            "workgroup",
            "quota",
            "--deployments",
            "9",
            "--memory-mb",
            "4096",
        ],
    );
    assert_eq!(
        (&set["deployments"], &set["memory_mb"]),
        (&json!(9), &json!(4096))
    );
    assert_eq!(set["instances"], quota["instances"], "{set}");
    assert_eq!(kiln_json(&rita, &["workgroup", "quota"]), set);
    let reset = kiln_json(
        &context,
        &[
            "workgroup",
            "quota",
            "--deployments",
            "default",
            "--memory-mb",
            "default",
        ],
    );
    assert_eq!(reset, quota);
    let (ok, output) = kiln(&context, &["workgroup", "quota", "--instances", "lots"]);
    assert!(
        !ok && output.contains("neither a number nor 'default'"),
        "{output}"
    );

    // Execution targets and an environment, from the CLI.
    let target = kiln_json(
        &context,
        &[
            "target",
            "create",
            "py",
            "--kind",
            "local",
            "--set",
            "interpreter=python3",
            "--set",
            "concurrency=2",
        ],
    );
    assert_eq!(
        target["config"],
        json!({ "interpreter": "python3", "concurrency": 2 })
    );
    let environment = kiln_json(
        &context,
        &[
            "env",
            "create",
            "dev",
            "--target",
            "py",
            "--registry",
            "127.0.0.1:5000",
            "--registry-username",
            "bot",
            "--registry-password",
            "pw-never-shown",
        ],
    );
    assert_eq!(environment["registry"]["password"], "set");
    let (ok, output) = kiln(&context, &["env", "show", "dev"]);
    assert!(
        ok && !output.contains("pw-never-shown") && output.contains("bot"),
        "{output}"
    );

    // An image the control plane builds from a manifest over a model version's files: the
    // scorer comes from the local store, the weights and sample from the version.
    let files = dir.join("version3");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::copy(
        Path::new(&iris_model()).join("weights.json"),
        files.join("weights.json"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("examples/iris/sample.csv"),
        files.join("sample.csv"),
    )
    .unwrap();
    let version = kiln_json(
        &context,
        &[
            "model",
            "register",
            "iris",
            "--path",
            files.to_str().unwrap(),
        ],
    );
    assert_eq!(version["version"], 3);
    let manifest = dir.join("served.toml");
    std::fs::write(
        &manifest,
        "name = \"iris\"\nversion = \"3\"\n[scorer]\ncomponent = \"iris:1\"\n[model]\nfiles = [\"weights.json\"]\n[sample]\nfile = \"sample.csv\"\n[baseline]\nbins = 5\n",
    )
    .unwrap();
    kiln_json(
        &context,
        &[
            "manifest",
            "register",
            "iris-m",
            "--file",
            manifest.to_str().unwrap(),
            "--model",
            "iris",
            "--version",
            "3",
        ],
    );
    let hostile = dir.join("hostile.toml");
    std::fs::write(
        &hostile,
        "name = \"iris\"\nversion = \"3\"\n[scorer]\ncomponent = \"iris:1\"\n[model]\nfiles = [\"../../kiln.db\"]\n",
    )
    .unwrap();
    let (ok, output) = kiln(
        &context,
        &[
            "manifest",
            "register",
            "bad",
            "--file",
            hostile.to_str().unwrap(),
            "--model",
            "iris",
            "--version",
            "3",
        ],
    );
    assert!(!ok && output.contains("400"), "{output}");
    let built = kiln_json(
        &context,
        &["image", "register", "built", "--manifest", "iris-m"],
    );
    assert_eq!(built["kind"], "kiln-model", "{built}");
    assert_eq!(built["manifest"], "iris-m", "{built}");
    // The image remembers its recipe, in the listing too; one registered by reference has none.
    let images = up
        .api(
            "GET",
            "/api/v1/teams/lab/workgroups/vision/images",
            Some(&admin),
            None,
        )
        .json();
    let recipes: Vec<(&Value, &Value)> = images["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (&i["name"], &i["manifest"]))
        .collect();
    assert_eq!(
        recipes,
        [
            (&json!("built"), &json!("iris-m")),
            (&json!("iris-img"), &Value::Null)
        ]
    );
    let manifests = kiln_json(&context, &["manifest", "list"]);
    assert_eq!(manifests["items"][0]["name"], "iris-m");
    assert_eq!(manifests["items"][0]["version"], 3);
    let public = kiln_json(
        &context,
        &[
            "deployment",
            "create",
            "open-iris",
            "--image",
            "built",
            "--public",
        ],
    );
    assert_eq!(public["public"], true);
    let status = up.wait_deployment(&admin, &format!("{path}/open-iris"));
    assert_eq!(status["status"], "ready", "{status}");
    let reply = infer(&up, "open-iris", None);
    assert_eq!(
        reply.status,
        200,
        "a public deployment needs no key: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["outputs"][0]["data"], json!([expected[0].0]));
    kiln_json(&context, &["deployment", "delete", "open-iris"]);

    kiln_json(&context, &["deployment", "delete", "iris"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while infer(&up, "iris", Some(&secondary)).status != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the deleted deployment kept serving"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        infer(&up, "iris-b", Some(&other_key)).status,
        200,
        "the other deployment is untouched"
    );
}

#[test]
fn an_admin_contains_a_stolen_token_with_the_cli() {
    let dir = temp_dir("control-cli-tokens");
    let up = Up::start(&dir, &[]);
    let context = dir.join("context.json");
    let (ok, output) = kiln(
        &context,
        &["login", "--url", &up.api, "--token", &up.admin()],
    );
    assert!(ok, "{output}");
    let created = kiln_json(&context, &["user", "create", "eve"]);
    let stolen = created["token"]["token"].as_str().unwrap().to_string();
    let whoami = |token: &str| up.api("GET", "/api/v1/whoami", Some(token), None).status;
    assert_eq!(whoami(&stolen), 200);
    // Disabled, then enabled again.
    kiln_json(&context, &["user", "disable", "eve"]);
    assert_eq!(whoami(&stolen), 401);
    let (ok, listed) = kiln(&context, &["user", "list"]);
    assert!(ok && listed.contains("eve (disabled)"), "{listed}");
    kiln_json(&context, &["user", "enable", "eve"]);
    assert_eq!(whoami(&stolen), 200);
    // Revoked by id, read from the user's tokens.
    let tokens = kiln_json(&context, &["user", "tokens", "eve"]);
    let id = tokens["items"][0]["id"].as_str().unwrap().to_string();
    kiln_json(&context, &["user", "revoke-token", "eve", &id]);
    assert_eq!(whoami(&stolen), 401);
    // A runtime node's user reaches the runtime routes only.
    let node = kiln_json(&context, &["user", "create", "node-1", "--runtime"]);
    assert_eq!(node["runtime"], true, "{node}");
    let token = node["token"]["token"].as_str().unwrap();
    assert_eq!(
        up.api("GET", "/api/v1/runtime/deployments", Some(token), None)
            .status,
        200
    );
    assert_eq!(whoami(token), 403);
}

#[test]
fn a_revoked_token_takes_every_token_minted_from_it() {
    let dir = temp_dir("control-cli-token-tree");
    let up = Up::start(&dir, &[]);
    let admin_context = dir.join("admin.json");
    let (ok, output) = kiln(
        &admin_context,
        &["login", "--url", &up.api, "--token", &up.admin()],
    );
    assert!(ok, "{output}");
    let created = kiln_json(&admin_context, &["user", "create", "eve"]);
    let root = created["token"]["token"].as_str().unwrap().to_string();
    let root_id = created["token"]["id"].as_str().unwrap().to_string();
    let whoami = |token: &str| up.api("GET", "/api/v1/whoami", Some(token), None).status;
    let mint = |parent: &str, name: &str| {
        let minted = up.ok(
            "POST",
            "/api/v1/tokens",
            parent,
            Some(&json!({ "name": name })),
        );
        (
            minted["token"].as_str().unwrap().to_string(),
            minted["id"].as_str().unwrap().to_string(),
        )
    };
    // The thief mints a child from the stolen token, and a grandchild from that; eve has
    // another child of her own.
    let (child, child_id) = mint(&root, "child");
    let (grandchild, grandchild_id) = mint(&child, "grandchild");
    let (sibling, sibling_id) = mint(&root, "sibling");

    // The admin sees the tree: JSON with each token's parent, text indented under it.
    let listed = kiln_json(&admin_context, &["user", "tokens", "eve"]);
    let parents: Vec<(String, Value)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["parent"].clone()))
        .collect();
    assert_eq!(
        parents,
        vec![
            ("initial".to_string(), Value::Null),
            ("child".to_string(), json!(root_id)),
            ("grandchild".to_string(), json!(child_id)),
            ("sibling".to_string(), json!(root_id)),
        ],
        "{listed}"
    );
    let (ok, text) = kiln(&admin_context, &["user", "tokens", "eve"]);
    assert!(ok, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    for (line, (prefix, id)) in lines.iter().zip([
        ("", &root_id),
        ("  └ ", &child_id),
        ("    └ ", &grandchild_id),
        ("  └ ", &sibling_id),
    ]) {
        assert!(line.starts_with(&format!("{prefix}{id}  ")), "{text}");
    }

    // Revoking the stolen child revokes the grandchild minted from it, and nothing else.
    let (ok, said) = kiln(&admin_context, &["user", "revoke-token", "eve", &child_id]);
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!(
            "revoked {child_id} and the 1 token(s) minted from it: {grandchild_id}"
        )),
        "{said}"
    );
    assert_eq!(whoami(&child), 401);
    assert_eq!(whoami(&grandchild), 401);
    assert_eq!(whoami(&root), 200);
    assert_eq!(whoami(&sibling), 200);
    // A revoked token mints nothing.
    assert_eq!(
        up.api(
            "POST",
            "/api/v1/tokens",
            Some(&grandchild),
            Some(&json!({ "name": "again" }))
        )
        .status,
        401
    );

    // Eve sees the same tree with her own token, revoked ones marked, and revokes her root:
    // the sibling goes with it.
    let eve_context = dir.join("eve.json");
    let (ok, output) = kiln(
        &eve_context,
        &["login", "--url", &up.api, "--token", &sibling],
    );
    assert!(ok, "{output}");
    let (ok, text) = kiln(&eve_context, &["token", "list"]);
    assert!(ok, "{text}");
    let revoked: Vec<bool> = text.lines().map(|l| !l.ends_with("revoked -")).collect();
    assert_eq!(revoked, vec![false, true, true, false], "{text}");
    let (ok, said) = kiln(&eve_context, &["token", "revoke", &root_id]);
    assert!(ok, "{said}");
    assert!(said.contains(&sibling_id), "{said}");
    assert_eq!(whoami(&root), 401);
    assert_eq!(whoami(&sibling), 401);
}

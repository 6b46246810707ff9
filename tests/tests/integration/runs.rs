//! Runs on the local target, through the real `kiln up`: a scikit-learn training script logs
//! params, metrics and an artifact with Kiln's Python helper and with the real `mlflow`
//! package; its model version names the run and the commit; failures, cancel, timeouts,
//! queues, virtual environments, 200 MB of output, a control plane killed mid-run, and what a
//! run's own token may do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::runs::{
    Lab, TRAIN_PY, WG, assert_contained, assert_each_tick_once, free_port, hostile_run, test_python,
};
use kiln_tests::{Database, Up, kiln_bin, temp_dir};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(180);

fn py_target(lab: &Lab, name: &str, extra: Value) -> Value {
    let mut config = json!({ "interpreter": test_python().display().to_string() });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    lab.target(name, "local", config)
}

fn cli(up: &Up, token: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(kiln_bin())
        .args(args)
        .env("KILN_URL", &up.api)
        .env("KILN_TEAM", "lab")
        .env("KILN_WORKGROUP", "vision")
        .env("KILN_TOKEN", token)
        .env("KILN_CONTEXT", up.data.join("no-context.json"))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn trains_logs_and_registers(database: Database) {
    let data = temp_dir("runs-train");
    let args = database.args("runs_train");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let up = Up::start(&data, &args);
    let lab = Lab::new(&up, &up.admin());
    let commit = lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
    py_target(&lab, "py", json!({}));
    lab.experiment("train", "train.py");
    let id = lab.submit(
        "train",
        json!({ "target": "py", "args": ["--C", "0.5"], "name": "first-try" }),
    );
    let run = lab.wait(&id, LONG);
    assert_eq!(run["status"], "completed", "{run}\n{}", lab.logs(&id));
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["commit"], json!(commit));
    assert_eq!(run["name"], "first-try");
    assert!(
        run["started"].is_string() && run["finished"].is_string(),
        "{run}"
    );
    let data_logged = &run["data"];
    assert_eq!(
        data_logged["params"],
        json!({ "C": "0.5", "solver": "lbfgs" })
    );
    assert_eq!(data_logged["metrics"]["loss"], json!(0.25), "{run}");
    assert!(
        data_logged["metrics"]["accuracy"].as_f64().unwrap() > 0.9,
        "{run}"
    );
    assert_eq!(data_logged["tags"]["dataset"], "iris");
    let history = lab.ok("GET", &format!("{WG}/runs/{id}/metrics/loss"), None);
    let steps: Vec<(i64, f64)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["step"].as_i64().unwrap(), m["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(steps, vec![(0, 1.0), (1, 0.5), (2, 0.25)]);
    let log = lab.logs(&id);
    assert!(log.contains("training with C 0.5"), "{log}");
    assert!(log.contains("accuracy 0.9"), "{log}");
    let artifacts = lab.ok("GET", &format!("{WG}/runs/{id}/artifacts?path=model"), None);
    assert_eq!(
        artifacts["items"][0]["path"], "model/weights.json",
        "{artifacts}"
    );

    // The CLI: logs, show, and a model version from the run's artifacts.
    let token = up.admin();
    let (ok, out, err) = cli(&up, &token, &["run", "logs", &id]);
    assert!(ok && out.contains("training with C 0.5"), "{out}{err}");
    let (ok, out, err) = cli(&up, &token, &["run", "show", &id, "--output", "json"]);
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["data"]["params"]["C"], "0.5");
    let (ok, out, err) = cli(
        &up,
        &token,
        &[
            "model", "register", "iris", "--run", &id, "--path", "model", "--output", "json",
        ],
    );
    assert!(ok, "{out}{err}");
    let version: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(version["version"], 1);
    assert_eq!(version["run"], json!(id));
    assert_eq!(version["commit"], json!(commit));
    assert_eq!(version["files"][0]["path"], "weights.json");
    let stored = lab.ok("GET", &format!("{WG}/models/iris/versions/1"), None);
    assert_eq!(stored["run"], json!(id), "{stored}");
    assert_eq!(stored["commit"], json!(commit), "{stored}");
    let weights = up.api(
        "GET",
        &format!("{WG}/models/iris/versions/1/files/weights.json"),
        Some(&token),
        None,
    );
    assert_eq!(weights.status, 200);
    assert!(
        String::from_utf8_lossy(&weights.body).contains("intercept"),
        "the version holds the run's file"
    );
}

#[test]
fn a_local_run_trains_logs_and_registers_a_model_with_lineage() {
    trains_logs_and_registers(Database::Sqlite);
}

#[test]
fn a_local_run_on_postgres() {
    trains_logs_and_registers(Database::Postgres);
}

#[test]
fn kiln_run_submit_pushes_the_directory_and_follows_the_log() {
    let data = temp_dir("runs-cli");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    py_target(&lab, "py", json!({}));
    let dir = data.join("flowers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train.py"), TRAIN_PY).unwrap();
    std::fs::write(dir.join(".gitignore"), "out/\n").unwrap();
    let dir_arg = dir.display().to_string();
    // Everything after the script is the script's.
    let (ok, out, err) = cli(
        &up,
        &up.admin(),
        &[
            "run", "submit", "--dir", &dir_arg, "--target", "py", "-f", "train.py", "--C", "2",
        ],
    );
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("training with C 2.0"), "{out}");
    assert!(err.contains("pushed 2 file(s) to flowers"), "{err}");
    assert!(err.contains(": completed"), "{err}");
    let runs = lab.ok("GET", &format!("{WG}/runs?project=flowers"), None);
    let run = &runs["items"][0];
    assert_eq!(run["experiment"], "train");
    assert_eq!(run["args"], json!(["--C", "2"]));
    // A failing run: -f exits non-zero with the reason.
    let (ok, _, err) = cli(
        &up,
        &up.admin(),
        &[
            "run", "submit", "--dir", &dir_arg, "-t", "py", "-f", "train.py", "--fail", "4",
        ],
    );
    assert!(!ok && err.contains("exit code 4"), "{err}");
    let (ok, out, _) = cli(&up, &up.admin(), &["run", "list", "--status", "failed"]);
    assert!(
        ok && out.contains("failed") && out.contains("(exit code 4)"),
        "{out}"
    );
}

#[test]
fn failures_end_in_a_clear_state_with_their_reason() {
    let data = temp_dir("runs-fail");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
    py_target(&lab, "py", json!({}));
    lab.target(
        "nopython",
        "local",
        json!({ "interpreter": "/nonexistent/python3" }),
    );
    lab.experiment("train", "train.py");

    let id = lab.submit("train", json!({ "target": "py", "args": ["--fail", "3"] }));
    let run = lab.wait(&id, LONG);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["reason"], "exit code 3");
    assert!(lab.logs(&id).contains("failing on purpose"));

    let missing = lab.try_submit("train", json!({ "target": "py", "script": "nope.py" }));
    assert_eq!(missing.status, 400);
    assert!(
        missing
            .error()
            .contains("script 'nope.py' is not in commit"),
        "{}",
        missing.error()
    );
    let unknown = lab.try_submit("train", json!({ "target": "gpu-farm" }));
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.error().contains("target 'gpu-farm' not found"),
        "{}",
        unknown.error()
    );
    let bad = lab.try_submit("train", json!({ "target": "py", "timeout": 0 }));
    assert_eq!(bad.status, 400);

    let id = lab.submit("train", json!({ "target": "nopython" }));
    let run = lab.wait(&id, LONG);
    // The sandbox asks the interpreter where it is installed before the run starts: the run
    // fails before it has an exit code, with the interpreter named.
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], Value::Null, "{run}");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("'/nonexistent/python3' cannot run"),
        "{run}"
    );
    assert!(
        lab.logs(&id).contains("/nonexistent/python3"),
        "{}",
        lab.logs(&id)
    );
    let test = lab.ok("POST", &format!("{WG}/targets/nopython/test"), None);
    assert_eq!(test["reachable"], false);
    assert!(
        test["message"].as_str().unwrap().contains("cannot run"),
        "{test}"
    );
    let test = lab.ok("POST", &format!("{WG}/targets/py/test"), None);
    assert_eq!(test["reachable"], true, "{test}");
    assert!(
        test["message"].as_str().unwrap().contains("Python 3"),
        "{test}"
    );
}

#[test]
fn cancel_timeouts_and_the_queue() {
    let data = temp_dir("runs-cancel");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
    py_target(&lab, "one", json!({ "concurrency": 1 }));
    lab.experiment("train", "train.py");

    // One at a time on this target: the second waits in the queue.
    let first = lab.submit(
        "train",
        json!({ "target": "one", "args": ["--sleep", "60"] }),
    );
    let second = lab.submit(
        "train",
        json!({ "target": "one", "args": ["--sleep", "60"] }),
    );
    lab.wait_for(&first, &["running"], LONG);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lab.run(&second)["status"], "queued");
    // A queued run is canceled at once and never starts.
    let canceled = lab.ok("POST", &format!("{WG}/runs/{second}/cancel"), None);
    assert_eq!(canceled["status"], "canceled");
    assert!(lab.run(&second)["started"].is_null());
    // A running one is stopped by its executor.
    while !lab.logs(&first).contains("tick 3") {
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = lab.ok("POST", &format!("{WG}/runs/{first}/cancel"), None);
    assert_eq!(asked["cancel_requested"], true, "{asked}");
    let run = lab.wait(&first, Duration::from_secs(30));
    assert_eq!(run["status"], "canceled");
    assert_eq!(run["reason"], "canceled by admin");
    let again = up.api(
        "POST",
        &format!("{WG}/runs/{first}/cancel"),
        Some(&up.admin()),
        None,
    );
    assert_eq!(again.status, 409);
    // Nothing of it still runs: its log stopped growing.
    let log = lab.logs(&first);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(lab.logs(&first), log);

    let timed = lab.submit(
        "train",
        json!({ "target": "one", "args": ["--sleep", "60"], "timeout": 2 }),
    );
    let run = lab.wait(&timed, Duration::from_secs(60));
    assert_eq!(run["status"], "failed");
    assert_eq!(run["reason"], "timed out after 2 s");
    assert!(
        lab.logs(&timed)
            .contains("kiln: failed: timed out after 2 s")
    );
}

#[test]
fn requirements_go_into_a_virtual_environment_reused_while_they_do_not_change() {
    let data = temp_dir("runs-venv");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[
        (
            "six_version.py",
            b"import six, sys\nprint('six', six.__version__, 'in', sys.prefix)\n",
        ),
        ("requirements.txt", b"six==1.16.0\n"),
    ]);
    lab.target(
        "venv",
        "local",
        json!({ "interpreter": "python3", "requirements": "requirements.txt" }),
    );
    lab.experiment("six", "six_version.py");
    let first = lab.submit("six", json!({ "target": "venv" }));
    let run = lab.wait(&first, LONG);
    let log = lab.logs(&first);
    assert_eq!(run["status"], "completed", "{log}");
    assert!(log.contains("kiln: creating environment"), "{log}");
    assert!(log.contains("six 1.16.0 in"), "{log}");
    // In the work group's own cache: DATA/cache/<work group>/venvs/<hash>.
    let prefix = log
        .lines()
        .find_map(|l| l.strip_prefix("six 1.16.0 in "))
        .unwrap();
    let prefix = std::path::Path::new(prefix);
    let venvs = prefix.parent().unwrap();
    assert_eq!(venvs.file_name().unwrap(), "venvs", "{log}");
    assert_eq!(
        venvs.parent().unwrap().parent().unwrap(),
        data.join("cache"),
        "{log}"
    );
    let second = lab.submit("six", json!({ "target": "venv" }));
    lab.wait(&second, LONG);
    let log = lab.logs(&second);
    assert!(log.contains("kiln: reusing environment"), "{log}");
    assert!(log.contains("six 1.16.0 in"), "{log}");
}

#[test]
fn two_hundred_megabytes_of_output_flow_through_in_bounded_memory() {
    let data = temp_dir("runs-200mb");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    let script = b"import sys\nline = 'x' * 1023 + '\\n'\nfor i in range(200 * 1024):\n    sys.stdout.write(line)\nprint('done', flush=True)\n";
    lab.push(&[("loud.py", script)]);
    py_target(&lab, "py", json!({}));
    lab.experiment("loud", "loud.py");
    let before = up.memory_kib("VmRSS");
    let id = lab.submit("loud", json!({ "target": "py" }));
    let run = lab.wait(&id, Duration::from_secs(600));
    assert_eq!(run["status"], "completed", "{run}");
    let expected = 200 * 1024 * 1024 + "done\n".len() as u64;
    assert_eq!(run["log_bytes"].as_u64().unwrap(), expected);
    // The whole log, streamed to a file by curl, is every byte in order.
    let out = data.join("log.txt");
    let status = Command::new("curl")
        .args(["-sf", "-o", out.to_str().unwrap()])
        .args(["-H", &format!("Authorization: Bearer {}", up.admin())])
        .arg(format!("{}{WG}/runs/{id}/logs", up.api))
        .status()
        .unwrap();
    assert!(status.success());
    let size = std::fs::metadata(&out).unwrap().len();
    assert_eq!(size, expected);
    let tail = std::fs::read(&out).unwrap();
    assert!(tail.ends_with(b"xxx\ndone\n"));
    assert!(tail.iter().filter(|&&b| b == b'\n').count() == 200 * 1024 + 1);
    // Neither writing nor reading held the output in memory.
    let peak = up.memory_kib("VmHWM");
    assert!(
        peak < before + 100 * 1024,
        "kiln's peak RSS {peak} KiB grew by more than 100 MiB over {before} KiB for 200 MB of logs"
    );
}

#[test]
fn a_run_survives_its_control_plane_being_killed_and_restarted() {
    let data = temp_dir("runs-restart");
    // The same API address before and after, as a restarted service has.
    let api_addr = format!("127.0.0.1:{}", free_port());
    let mut up = Up::start(&data, &["--api-addr", &api_addr]);
    let token = up.admin();
    let (commit, survivor, victim) = {
        let lab = Lab::new(&up, &token);
        let commit = lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
        py_target(&lab, "py", json!({}));
        lab.experiment("train", "train.py");
        let survivor = lab.submit("train", json!({ "target": "py", "args": ["--sleep", "8"] }));
        let victim = lab.submit(
            "train",
            json!({ "target": "py", "args": ["--sleep", "60", "--C", "0.123"] }),
        );
        lab.wait_for(&survivor, &["running"], LONG);
        lab.wait_for(&victim, &["running"], LONG);
        while !lab.logs(&survivor).contains("tick 5") {
            std::thread::sleep(Duration::from_millis(50));
        }
        (commit, survivor, victim)
    };
    up.kill();
    // While the control plane is down, one run's process dies too.
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", "sleep 60 --C 0.123"])
        .status()
        .unwrap();
    assert!(killed.success(), "the victim's process was found");
    let up = Up::start(&data, &["--api-addr", &api_addr]);
    let lab = Lab {
        up: &up,
        token: token.clone(),
    };
    let run = lab.wait(&survivor, LONG);
    assert_eq!(run["status"], "completed", "{run}\n{}", lab.logs(&survivor));
    assert_eq!(run["commit"], json!(commit));
    assert!(run["data"]["metrics"]["accuracy"].as_f64().unwrap() > 0.9);
    let log = lab.logs(&survivor);
    assert_each_tick_once(&log, 70);
    let run = lab.wait(&victim, LONG);
    assert_eq!(run["status"], "failed");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .starts_with("lost on restart"),
        "{run}"
    );
}

#[test]
fn the_mlflow_package_logs_to_a_run_kiln_executes() {
    let data = temp_dir("runs-mlflow");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    let script = br#"import os, mlflow
with mlflow.start_run() as run:
    assert run.info.run_id == os.environ["KILN_RUN_ID"]
    mlflow.log_param("alpha", 0.1)
    for step in range(3):
        mlflow.log_metric("rmse", 1.0 / (step + 1), step=step)
    mlflow.set_tag("framework", "mlflow")
    os.makedirs("out", exist_ok=True)
    open("out/report.txt", "w").write("fine\n")
    mlflow.log_artifact("out/report.txt", "reports")
print("logged to", run.info.run_id)
"#;
    lab.push(&[("track.py", script)]);
    py_target(&lab, "py", json!({}));
    lab.experiment("track", "track.py");
    let id = lab.submit("track", json!({ "target": "py" }));
    let run = lab.wait(&id, LONG);
    assert_eq!(run["status"], "completed", "{}", lab.logs(&id));
    assert!(lab.logs(&id).contains(&format!("logged to {id}")));
    assert_eq!(run["data"]["params"]["alpha"], "0.1");
    assert_eq!(run["data"]["metrics"]["rmse"].as_f64().unwrap(), 1.0 / 3.0);
    assert_eq!(run["data"]["tags"]["framework"], "mlflow");
    let report = up.api(
        "GET",
        &format!("{WG}/runs/{id}/artifacts/reports/report.txt"),
        Some(&up.admin()),
        None,
    );
    assert_eq!(report.body, b"fine\n");
}

#[test]
fn a_runs_token_acts_only_in_its_work_group_and_ends_with_the_run() {
    let data = temp_dir("runs-token");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.ok(
        "POST",
        "/api/v1/teams/lab/workgroups",
        Some(&json!({ "name": "secret" })),
    );
    let probe = br#"import os, urllib.request, urllib.error
api, token = os.environ["KILN_API_URL"], os.environ["KILN_TOKEN"]
def status(method, path, body=None):
    request = urllib.request.Request(api + path, data=body, method=method)
    request.add_header("Authorization", "Bearer " + token)
    request.add_header("Content-Type", "application/json")
    try:
        return urllib.request.urlopen(request).status
    except urllib.error.HTTPError as e:
        return e.code
print("whoami", status("GET", "/api/v1/whoami"))
print("new-token", status("POST", "/api/v1/tokens", b'{"name": "escape"}'))
print("other-workgroup", status("GET", "/api/v1/teams/lab/workgroups/secret/projects"))
print("own-workgroup", status("GET", "/api/v1/teams/lab/workgroups/vision/projects"))
print("delete-workgroup", status("DELETE", "/api/v1/teams/lab/workgroups/vision"))
import kiln_tracking
kiln_tracking.log_param("probe", "ok")
os.makedirs("out", exist_ok=True)
open("out/token", "w").write(token)
kiln_tracking.log_artifact("out/token")
"#;
    lab.push(&[("probe.py", probe)]);
    py_target(&lab, "py", json!({}));
    lab.experiment("probe", "probe.py");
    let id = lab.submit("probe", json!({ "target": "py" }));
    let run = lab.wait(&id, LONG);
    let log = lab.logs(&id);
    assert_eq!(run["status"], "completed", "{log}");
    for expected in [
        "whoami 403",
        "new-token 403",
        "other-workgroup 404",
        "own-workgroup 200",
        "delete-workgroup 403",
    ] {
        assert!(log.contains(expected), "{expected}:\n{log}");
    }
    assert_eq!(run["data"]["params"]["probe"], "ok");
    let token = up.api(
        "GET",
        &format!("{WG}/runs/{id}/artifacts/token"),
        Some(&up.admin()),
        None,
    );
    let token = String::from_utf8(token.body).unwrap();
    assert!(token.starts_with("kiln_"));
    let after = up.api("GET", &format!("{WG}/projects"), Some(&token), None);
    assert_eq!(after.status, 401, "the run's token is revoked when it ends");
}

#[test]
fn hostile_artifact_paths_are_refused() {
    let data = temp_dir("runs-hostile");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("train.py", TRAIN_PY.as_bytes())]);
    py_target(&lab, "py", json!({}));
    lab.experiment("train", "train.py");
    let id = lab.submit("train", json!({ "target": "py" }));
    let run = lab.wait(&id, LONG);
    let experiment = lab.ok(
        "GET",
        &format!("{WG}/projects/flowers/mlflow/api/2.0/mlflow/runs/get?run_id={id}"),
        None,
    )["run"]["info"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(run["status"], "completed");
    let auth = format!("Bearer {}", up.admin());
    let mlflow = format!(
        "{}{WG}/projects/flowers/mlflow/api/2.0/mlflow-artifacts/artifacts",
        up.api
    );
    for hostile in [
        format!("{experiment}/{id}/artifacts/%2e%2e/%2e%2e/escape.txt"),
        format!("{experiment}/{id}/artifacts/..%2F..%2Fescape.txt"),
        format!("{experiment}/{id}/artifacts/a/%2E%2E/%2E%2E/%2E%2E/escape.txt"),
        format!("{experiment}/{id}/artifacts/%252e%252e/escape.txt"),
        format!("{experiment}/{id}/artifacts//etc/passwd"),
        format!("{experiment}/{id}/artifacts/a\\..\\..\\escape.txt"),
        format!("{experiment}/{id}/logs/escape.txt"),
        format!("{experiment}/0123456789abcdef0123456789abcdef/artifacts/x.txt"),
    ] {
        let reply = kiln_tests::call(
            "PUT",
            &format!("{mlflow}/{hostile}"),
            &[("Authorization", &auth)],
            Some(b"pwned"),
        );
        assert!(
            [400, 404].contains(&reply.status),
            "{hostile}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        let body: Value = reply.json();
        assert!(body["error_code"].is_string(), "{body}");
    }
    for hostile in ["%2e%2e/escape.txt", "a/%2e%2e/%2e%2e/x", "..%5c..%5cx"] {
        let reply = kiln_tests::call(
            "PUT",
            &format!("{}{WG}/runs/{id}/artifacts/{hostile}", up.api),
            &[("Authorization", &auth)],
            Some(b"pwned"),
        );
        assert_eq!(reply.status, 400, "{hostile}: {}", reply.error());
    }
    // Nothing escaped the run's own area.
    let escaped = walk(&data)
        .into_iter()
        .filter(|p| p.ends_with("escape.txt") || p.ends_with("x.txt"))
        .collect::<Vec<_>>();
    assert!(escaped.is_empty(), "{escaped:?}");
    let listing = lab.ok(
        "GET",
        &format!("{WG}/projects/flowers/mlflow/api/2.0/mlflow-artifacts/artifacts?path={experiment}/{id}/artifacts/model"),
        None,
    );
    assert_eq!(listing["files"][0]["path"], "weights.json", "{listing}");
    let outside = up.api(
        "GET",
        &format!(
            "{WG}/projects/flowers/mlflow/api/2.0/mlflow-artifacts/artifacts?path={experiment}/{id}/artifacts/../../.."
        ),
        Some(&up.admin()),
        None,
    );
    assert_eq!(outside.status, 400);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn run_lists_come_newest_first_a_page_at_a_time() {
    let data = temp_dir("runs-pages");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("hi.py", b"print('hi')\n")]);
    py_target(&lab, "py", json!({}));
    lab.experiment("hi", "hi.py");
    let submitted: Vec<String> = (0..5)
        .map(|_| lab.submit("hi", json!({ "target": "py" })))
        .collect();
    // In an experiment, by number; in the work group, by creation time (then id), which is the
    // same order unless two runs share a millisecond.
    let newest_first: Vec<String> = submitted.iter().rev().cloned().collect();
    let all = lab.ok("GET", &format!("{WG}/runs?limit=100"), None);
    let listed: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    let mut expected_set = submitted.clone();
    expected_set.sort();
    assert_eq!(sorted, expected_set);
    assert!(all["next"].is_null());
    for (base, expected) in [
        (format!("{WG}/runs?limit=2"), &listed),
        (
            format!("{WG}/projects/flowers/experiments/hi/runs?limit=2"),
            &newest_first,
        ),
    ] {
        let mut seen = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..3 {
            let path = match &next {
                Some(cursor) => format!("{base}&after={cursor}"),
                None => base.clone(),
            };
            let page = lab.ok("GET", &path, None);
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_string()),
            );
            next = page["next"].as_str().map(str::to_string);
        }
        assert_eq!(&seen, expected, "{base}");
        assert!(next.is_none(), "{base}: the last page says no more");
    }
    let bad = up.api(
        "GET",
        &format!("{WG}/runs?after=nonsense"),
        Some(&up.admin()),
        None,
    );
    assert_eq!(bad.status, 400);
    for id in &submitted {
        lab.wait(id, LONG);
    }
    // A status filter names a status: an unknown one is refused, not an empty list.
    let unknown = up.api(
        "GET",
        &format!("{WG}/runs?status=done"),
        Some(&up.admin()),
        None,
    );
    assert_eq!(unknown.status, 400);
    let text = String::from_utf8_lossy(&unknown.body);
    assert!(
        text.contains("done") && text.contains("completed"),
        "{text}"
    );
    let completed = lab.ok("GET", &format!("{WG}/runs?status=completed&limit=3"), None);
    let completed = completed["items"].as_array().unwrap();
    assert_eq!(completed.len(), 3);
    assert!(completed.iter().all(|r| r["status"] == "completed"));
    let queued = lab.ok(
        "GET",
        &format!("{WG}/projects/flowers/experiments/hi/runs?status=queued"),
        None,
    );
    assert_eq!(queued["items"], json!([]));
}

#[test]
fn a_contributors_run_cannot_reach_the_control_planes_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let data = temp_dir("runs-hostile");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    // Kiln's own files are private to its user.
    for (path, mode) in [("", 0o700), ("kiln.db", 0o600), ("secret.key", 0o600)] {
        let meta = std::fs::metadata(data.join(path)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{path}");
    }
    py_target(&lab, "py", json!({}));
    let (id, log) = hostile_run(&lab, "py");
    assert_contained(&log, &data, &id, true);
}

#[test]
fn sigterm_turns_readiness_false_and_drains_a_log_follower_within_the_grace_period() {
    use std::io::{BufRead, BufReader, Write};
    let data = temp_dir("runs-sigterm");
    let mut up = Up::start(&data, &["--grace-s", "2", "--shutdown-delay-ms", "3000"]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[(
        "slow.py",
        b"import time\nprint('started', flush=True)\ntime.sleep(45)\n",
    )]);
    py_target(&lab, "py", json!({}));
    lab.experiment("slow", "slow.py");
    let id = lab.submit("slow", json!({ "target": "py" }));
    lab.wait_for(&id, &["running"], LONG);
    let ready = format!("{}/v2/health/ready", up.base);
    assert_eq!(kiln_tests::get(&ready).status, 200);

    // A follower of the run's log, on a raw connection: it reads until the server closes it.
    let address = up.api.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET {WG}/runs/{id}/logs?follow=true HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\r\n",
        lab.token
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let follower = std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut seen = String::new();
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            seen.push_str(&line);
            line.clear();
        }
        seen
    });

    let asked = std::time::Instant::now();
    up.terminate();
    // Readiness reads false while the listeners still answer.
    let mut saw_not_ready = false;
    while asked.elapsed() < Duration::from_millis(2500) {
        let reply = kiln_tests::try_call("GET", &ready, &[], None);
        if reply.is_some_and(|r| r.status == 503) {
            saw_not_ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(saw_not_ready, "readiness never read false:\n{}", up.log());
    // The follower does not hold the process: it exits once the grace period is over.
    let status = up.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", up.log());
    let seen = follower.join().unwrap();
    assert!(seen.contains("started"), "{seen}");
    assert!(
        up.log().contains("open connections have 2 s to finish"),
        "{}",
        up.log()
    );
}

/// Opens a log follower on a raw connection; returns its status and the connection.
fn open_follower(address: &str, path: &str, token: &str) -> (u16, std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, stream)
}

#[test]
fn abandoned_log_followers_end_with_their_clients_and_are_capped_per_user() {
    let data = temp_dir("runs-followers");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("silent.py", b"import time\ntime.sleep(120)\n")]);
    py_target(&lab, "py", json!({}));
    lab.experiment("silent", "silent.py");
    let id = lab.submit("silent", json!({ "target": "py" }));
    lab.wait_for(&id, &["running"], LONG);
    let address = up.api.trim_start_matches("http://").to_string();
    let path = format!("{WG}/runs/{id}/logs?follow=true");
    // A follower past the cap is refused at once; one whose client left frees its place soon
    // after (a leaked one never would).
    let follow = || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, stream) = open_follower(&address, &path, &lab.token);
            if status != 429 || std::time::Instant::now() > deadline {
                return (status, stream);
            }
            drop(stream);
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // 1,000 followers of a silent run, 50 at a time, each abandoned by its client.
    for _ in 0..20 {
        let batch: Vec<_> = (0..50).map(|_| follow()).collect();
        for (status, _) in &batch {
            assert_eq!(*status, 200);
        }
    }
    // All of them ended: the user holds the whole cap again, and not one more.
    let held: Vec<_> = (0..64).map(|_| follow()).collect();
    assert!(held.iter().all(|(status, _)| *status == 200));
    let (over, _) = open_follower(&address, &path, &lab.token);
    assert_eq!(over, 429);
    drop(held);
    lab.ok("POST", &format!("{WG}/runs/{id}/cancel"), None);
    lab.wait(&id, LONG);
}

//! Support for the run tests: a work group with a project, pushes, targets, submissions, waits.

use crate::{Up, call, tar_of};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The Python of `target/py` (scikit-learn, mlflow, pyspark), installed by tests/run.
pub fn test_python() -> PathBuf {
    let python = crate::repo().join("target/py/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/run (it makes the venv)",
        python.display()
    );
    python
}

/// A training script: scikit-learn's logistic regression on iris, logged with Kiln's Python
/// helper; `--fail N` exits with N, `--sleep S` waits first, printing a line a tenth of a
/// second.
pub const TRAIN_PY: &str = r#"import argparse, json, os, sys, time
import kiln_tracking as kiln
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float, default=1.0)
parser.add_argument("--fail", type=int, default=0)
parser.add_argument("--sleep", type=float, default=0)
args = parser.parse_args()
print("training with C", args.C, flush=True)
deadline = time.time() + args.sleep
tick = 0
while time.time() < deadline:
    print("tick", tick, flush=True)
    tick += 1
    time.sleep(0.1)
if args.fail:
    print("failing on purpose", file=sys.stderr, flush=True)
    sys.exit(args.fail)
X, y = load_iris(return_X_y=True)
model = LogisticRegression(C=args.C, max_iter=1000).fit(X, y)
accuracy = model.score(X, y)
kiln.log_params({"C": args.C, "solver": model.solver})
for step, loss in enumerate([1.0, 0.5, 0.25]):
    kiln.log_metric("loss", loss, step=step)
kiln.log_metric("accuracy", accuracy)
kiln.set_tag("dataset", "iris")
os.makedirs("out/model", exist_ok=True)
with open("out/model/weights.json", "w") as f:
    json.dump({"coef": model.coef_.tolist(), "intercept": model.intercept_.tolist()}, f)
kiln.log_artifacts("out/model", "model")
print("accuracy", accuracy, flush=True)
"#;

/// A team `lab`, a work group `vision` and a project `flowers` on a running `kiln up`.
pub struct Lab<'a> {
    /// The installation.
    pub up: &'a Up,
    /// The admin's token.
    pub token: String,
}

/// The work group's API path.
pub const WG: &str = "/api/v1/teams/lab/workgroups/vision";

impl<'a> Lab<'a> {
    /// Creates the team, work group and project.
    pub fn new(up: &'a Up, token: &str) -> Lab<'a> {
        let lab = Lab {
            up,
            token: token.to_string(),
        };
        lab.ok("POST", "/api/v1/teams", Some(&json!({ "name": "lab" })));
        lab.ok(
            "POST",
            "/api/v1/teams/lab/workgroups",
            Some(&json!({ "name": "vision" })),
        );
        lab.ok(
            "POST",
            &format!("{WG}/projects"),
            Some(&json!({ "name": "flowers" })),
        );
        lab
    }

    /// An API call that must succeed.
    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.up.ok(method, path, &self.token, body)
    }

    /// Pushes files as the project's next commit; returns it.
    pub fn push(&self, files: &[(&str, &[u8])]) -> String {
        let reply = call(
            "POST",
            &format!("{}{WG}/projects/flowers/commits", self.up.api),
            &[
                ("Authorization", &format!("Bearer {}", self.token)),
                ("Content-Type", "application/x-tar"),
            ],
            Some(&tar_of(files)),
        );
        assert_eq!(
            reply.status,
            201,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()["commit"].as_str().unwrap().to_string()
    }

    /// Adds an execution target.
    pub fn target(&self, name: &str, kind: &str, config: Value) -> Value {
        self.ok(
            "POST",
            &format!("{WG}/targets"),
            Some(&json!({ "name": name, "kind": kind, "config": config })),
        )
    }

    /// Creates experiment `name` running `script` (once; later calls find it).
    pub fn experiment(&self, name: &str, script: &str) {
        let path = format!("{WG}/projects/flowers/experiments");
        let exists = self
            .up
            .api("GET", &format!("{path}/{name}"), Some(&self.token), None);
        if exists.status == 404 {
            self.ok(
                "POST",
                &path,
                Some(&json!({ "name": name, "script": script })),
            );
        }
    }

    /// Submits a run; returns the reply (its status and body).
    pub fn try_submit(&self, experiment: &str, body: Value) -> crate::Reply {
        self.up.api(
            "POST",
            &format!("{WG}/projects/flowers/experiments/{experiment}/runs"),
            Some(&self.token),
            Some(&body),
        )
    }

    /// Submits a run that must be accepted; returns its id.
    pub fn submit(&self, experiment: &str, body: Value) -> String {
        let reply = self.try_submit(experiment, body);
        assert_eq!(
            reply.status,
            201,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()["id"].as_str().unwrap().to_string()
    }

    /// The run, with what it logged.
    pub fn run(&self, id: &str) -> Value {
        self.ok("GET", &format!("{WG}/runs/{id}"), None)
    }

    /// Waits (at most `limit`) until the run is in one of `states`; returns it.
    pub fn wait_for(&self, id: &str, states: &[&str], limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let run = self.run(id);
            if states.iter().any(|s| run["status"] == *s) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} is still {} after {limit:?}: {run}\nlog:\n{}\n{}",
                run["status"],
                self.logs(id),
                self.up.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the run has ended; returns it.
    pub fn wait(&self, id: &str, limit: Duration) -> Value {
        self.wait_for(id, &["completed", "failed", "canceled"], limit)
    }

    /// The run's log so far.
    pub fn logs(&self, id: &str) -> String {
        let reply = self.up.api(
            "GET",
            &format!("{WG}/runs/{id}/logs"),
            Some(&self.token),
            None,
        );
        String::from_utf8_lossy(&reply.body).into_owned()
    }
}

/// A loopback port free right now (for a server that must keep its address across restarts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Checks that a [`TRAIN_PY`] `--sleep` log holds `tick 0`, `tick 1`, ... each once and in
/// order, at least `at_least` of them, and its first line once.
pub fn assert_each_tick_once(log: &str, at_least: usize) {
    let ticks: Vec<&str> = log.lines().filter(|l| l.starts_with("tick ")).collect();
    assert!(ticks.len() >= at_least, "{log}");
    for (n, line) in ticks.iter().enumerate() {
        assert_eq!(
            *line,
            format!("tick {n}"),
            "each line once, in order:\n{log}"
        );
    }
    assert_eq!(log.matches("training with C").count(), 1, "{log}");
}
/// What a hostile run tries from inside: walk up from its checkout, read the database, the
/// secret key and the control plane's environment, forge a token in the database, plant a file
/// in the compile cache, read other runs' artifacts, signal the control plane.
pub const HOSTILE_PY: &[u8] = br#"import glob, json, os, sqlite3, sys
data, kiln_pid, installs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def attempt(name, action):
    try:
        print(name, "REACHED", repr(action())[:200])
    except Exception as e:
        print(name, "blocked", type(e).__name__)
seen, system = [], ("/usr", "/proc", "/dev", "/sys", "/etc")
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in system + tuple(installs)]
    seen += [os.path.join(top, f) for f in files]
print("seen", json.dumps(seen))
attempt("database", lambda: open(os.path.join(data, "kiln.db"), "rb").read(16))
attempt("key", lambda: open(os.path.join(data, "secret.key")).read())
attempt("environ", lambda: open(f"/proc/{kiln_pid}/environ", "rb").read(64))
attempt("cmdline", lambda: open(f"/proc/{kiln_pid}/cmdline", "rb").read(64))
attempt("signal", lambda: os.kill(kiln_pid, 0))
attempt("compiled", lambda: open(os.path.join(data, "compiled", "planted"), "w").write("x"))
def artifacts():
    found = [p for p in glob.glob(os.path.join(data, "artifacts", "**"), recursive=True) if os.path.isfile(p)]
    if not found:
        raise FileNotFoundError(data)
    return found
attempt("artifacts", artifacts)
def forge():
    db = sqlite3.connect("file:" + os.path.join(data, "kiln.db") + "?mode=rw", uri=True)
    return db.execute("SELECT COUNT(*) FROM tokens").fetchone()
attempt("forge", forge)
attempt("docker-config", lambda: open("/root/.docker/config.json").read(16))
attempt("shadow", lambda: open("/etc/shadow").read(16))
print("uid", os.getuid())
print("capabilities", [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0])
print("no-new-privileges", [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0])
"#;

/// A contributor of the lab's work group (`mallory`) runs [`HOSTILE_PY`] on `target` (which
/// the admin added), after another run logged an artifact worth stealing; returns the hostile
/// run's id and log, once it completed.
pub fn hostile_run(lab: &Lab, target: &str) -> (String, String) {
    let up = lab.up;
    let logger = b"import kiln_tracking\nopen('secret.txt', 'w').write('vision-secret')\nkiln_tracking.log_artifact('secret.txt')\n";
    lab.push(&[("hostile.py", HOSTILE_PY), ("logger.py", logger)]);
    lab.experiment("log", "logger.py");
    let first = lab.submit("log", json!({ "target": target }));
    let run = lab.wait(&first, Duration::from_secs(300));
    assert_eq!(run["status"], "completed", "{}", lab.logs(&first));
    let created = up.ok(
        "POST",
        "/api/v1/users",
        &lab.token,
        Some(&json!({ "name": "mallory" })),
    );
    let mallory = created["token"]["token"].as_str().unwrap().to_string();
    up.ok(
        "PUT",
        "/api/v1/teams/lab/members/mallory",
        &lab.token,
        Some(&json!({ "role": "member" })),
    );
    up.ok(
        "PUT",
        &format!("{WG}/members/mallory"),
        &lab.token,
        Some(&json!({ "role": "contributor" })),
    );
    let contributor = Lab { up, token: mallory };
    contributor.experiment("hostile", "hostile.py");
    // The interpreter's installation (its prefix and its base) is the run's to read.
    let installs = std::process::Command::new(test_python())
        .args([
            "-c",
            "import sys; print(sys.prefix); print(sys.base_prefix)",
        ])
        .output()
        .unwrap();
    let installs = String::from_utf8(installs.stdout).unwrap();
    let mut args = vec![up.data.display().to_string(), up.pid().to_string()];
    args.extend(installs.lines().map(str::to_string));
    let id = contributor.submit("hostile", json!({ "target": target, "args": args }));
    let run = contributor.wait(&id, Duration::from_secs(300));
    let log = contributor.logs(&id);
    assert_eq!(run["status"], "completed", "{log}");
    (id, log)
}

/// Asserts that [`HOSTILE_PY`]'s run reached nothing of Kiln's; with `walked` (a run in Kiln's
/// sandbox, on the host), also that it runs as uid 65534 and that outside the system and the
/// interpreter every file it could find was its own (its checkout, Kiln's helpers, its private
/// `/tmp`).
pub fn assert_contained(log: &str, data: &std::path::Path, id: &str, walked: bool) {
    for blocked in [
        "database",
        "key",
        "environ",
        "cmdline",
        "signal",
        "compiled",
        "artifacts",
        "forge",
        "docker-config",
    ] {
        assert!(
            log.contains(&format!("{blocked} blocked")),
            "{blocked}:\n{log}"
        );
    }
    assert!(!data.join("compiled/planted").exists());
    // No capability at all, and none to be gained through a setuid program.
    assert!(log.contains("capabilities 0000000000000000"), "{log}");
    assert!(log.contains("no-new-privileges 1"), "{log}");
    if !walked {
        // A container has a file system of its own (its image's /etc/shadow, say).
        return;
    }
    assert!(log.contains("shadow blocked"), "{log}");
    assert!(!log.contains("REACHED"), "{log}");
    assert!(log.contains("uid 65534"), "{log}");
    let seen: Vec<String> = log
        .lines()
        .find_map(|l| l.strip_prefix("seen "))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap();
    let own = data.join("runs").join(id);
    assert!(seen.iter().any(|p| p.ends_with("hostile.py")), "{log}");
    for path in &seen {
        let path = std::path::Path::new(path);
        let private_tmp = path.starts_with("/tmp") && !path.starts_with(data);
        assert!(
            path.starts_with(&own) || private_tmp,
            "the run saw {}:\n{log}",
            path.display()
        );
    }
}

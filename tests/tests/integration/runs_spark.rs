//! Runs on the spark target with Spark itself (PyPI `pyspark`, in target/py, with the
//! machine's Java): once on `local[2]`, once on a standalone master and worker started here on
//! loopback, and against a master that is not there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::runs::{Lab, WG, free_port, test_python};
use kiln_tests::{Up, temp_dir};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(300);

const JOB_PY: &str = r#"import kiln_tracking as kiln
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("kiln-sum").getOrCreate()
total = spark.sparkContext.parallelize(range(1000), 4).sum()
print("sum", total, "on", spark.sparkContext.master, flush=True)
kiln.log_metric("sum", total)
kiln.log_param("master", spark.sparkContext.master)
spark.stop()
"#;

fn spark_bin(name: &str) -> String {
    let path = kiln_tests::repo().join("target/py/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: tests/run installs pyspark",
        path.display()
    );
    path.display().to_string()
}

/// A Spark daemon (master or worker), killed on drop.
struct Daemon(Child);

impl Daemon {
    /// Starts `spark-class CLASS ARGS` and waits for `ready` in its log.
    fn start(class: &str, args: &[&str], ready: &str) -> Daemon {
        let mut child = Command::new(spark_bin("spark-class"))
            .arg(class)
            .args(args)
            .env("SPARK_LOG_DIR", temp_dir("spark-logs"))
            .env("PYSPARK_PYTHON", test_python())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, receiver) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        loop {
            match receiver.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.contains(ready) => break,
                Ok(line) => seen.push(line),
                Err(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "{class} did not start:\n{}",
                seen.join("\n")
            );
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || while receiver.recv().is_ok() {});
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spark_target(lab: &Lab, name: &str, master: &str) {
    lab.target(
        name,
        "spark",
        json!({
            "master": master,
            "spark_submit": spark_bin("spark-submit"),
            "python": test_python().display().to_string(),
            "conf": { "spark.ui.enabled": "false", "spark.driver.memory": "512m" },
        }),
    );
}

#[test]
fn a_pyspark_job_runs_locally_and_on_a_standalone_cluster() {
    let data = temp_dir("spark");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("job.py", JOB_PY.as_bytes())]);
    lab.experiment("sum", "job.py");

    spark_target(&lab, "local2", "local[2]");
    let test = lab.ok("POST", &format!("{WG}/targets/local2/test"), None);
    assert_eq!(test["reachable"], true, "{test}");
    assert!(
        test["message"].as_str().unwrap().starts_with("Spark 4"),
        "{test}"
    );
    let id = lab.submit("sum", json!({ "target": "local2" }));
    let run = lab.wait(&id, LONG);
    let log = lab.logs(&id);
    assert_eq!(run["status"], "completed", "{log}");
    assert!(log.contains("sum 499500 on local[2]"), "{log}");
    assert_eq!(run["data"]["metrics"]["sum"], json!(499500.0), "{run}");

    let (port, ui) = (free_port(), free_port());
    let master_url = format!("spark://127.0.0.1:{port}");
    let _master = Daemon::start(
        "org.apache.spark.deploy.master.Master",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--webui-port",
            &ui.to_string(),
        ],
        "I have been elected leader",
    );
    let worker_ui = free_port();
    let _worker = Daemon::start(
        "org.apache.spark.deploy.worker.Worker",
        &[
            &master_url,
            "--host",
            "127.0.0.1",
            "--cores",
            "1",
            "--memory",
            "1g",
            "--webui-port",
            &worker_ui.to_string(),
        ],
        "Successfully registered with master",
    );
    spark_target(&lab, "cluster", &master_url);
    let test = lab.ok("POST", &format!("{WG}/targets/cluster/test"), None);
    assert_eq!(test["reachable"], true, "{test}");
    assert!(
        test["message"]
            .as_str()
            .unwrap()
            .contains("accepts connections"),
        "{test}"
    );
    let id = lab.submit("sum", json!({ "target": "cluster" }));
    let run = lab.wait(&id, LONG);
    let log = lab.logs(&id);
    assert_eq!(run["status"], "completed", "{log}");
    assert!(
        log.contains(&format!("sum 499500 on {master_url}")),
        "{log}"
    );
    assert_eq!(run["data"]["params"]["master"], json!(master_url));
}

#[test]
fn an_unreachable_master_fails_the_run_at_once() {
    let data = temp_dir("spark-down");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    lab.push(&[("job.py", JOB_PY.as_bytes())]);
    lab.experiment("sum", "job.py");
    let master = format!("spark://127.0.0.1:{}", free_port());
    spark_target(&lab, "gone", &master);
    let test = lab.ok("POST", &format!("{WG}/targets/gone/test"), None);
    assert_eq!(test["reachable"], false);
    assert!(
        test["message"]
            .as_str()
            .unwrap()
            .contains(&format!("Spark master {master} is unreachable")),
        "{test}"
    );
    let id = lab.submit("sum", json!({ "target": "gone" }));
    let run = lab.wait(&id, Duration::from_secs(60));
    assert_eq!(run["status"], "failed");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("Spark master {master} is unreachable")),
        "{run}"
    );
}

#[test]
fn a_contributors_spark_driver_cannot_reach_the_control_planes_secrets() {
    let data = temp_dir("spark-hostile");
    let up = Up::start(&data, &[]);
    let lab = Lab::new(&up, &up.admin());
    spark_target(&lab, "spark", "local[1]");
    let (id, log) = kiln_tests::runs::hostile_run(&lab, "spark");
    kiln_tests::runs::assert_contained(&log, &data, &id, true);
}

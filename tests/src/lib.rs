//! Support for Kiln's integration tests: start the real `kiln` binary, speak real HTTP to it.
//!
//! The binary is `target/debug/kiln` (or `$KILN_BIN`), the guest components are the ones
//! `sdk/build-components` wrote to `target/components/` (or `$KILN_COMPONENTS`): the test command
//! in the README builds both before `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod contract;
pub mod load;
pub mod runs;
pub mod wrk;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `kiln` binary under test.
pub fn kiln_bin() -> PathBuf {
    let path = std::env::var_os("KILN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/debug/kiln"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p kiln` first",
        path.display()
    );
    path
}

/// A guest component built by `sdk/build-components`.
pub fn component(name: &str) -> String {
    let dir = std::env::var_os("KILN_COMPONENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/components"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `sdk/build-components` first",
        path.display()
    );
    path.display().to_string()
}

/// The iris example's trained weights directory.
pub fn iris_model() -> String {
    repo().join("examples/iris/model").display().to_string()
}

/// `--deploy iris=...` for the iris example.
pub fn iris_deploy() -> String {
    format!("iris={},artifacts={}", component("iris"), iris_model())
}

/// `--deploy NAME=faults.wasm,config=MODE`.
pub fn fault_deploy(name: &str, mode: &str) -> String {
    format!("{name}={},config={mode}", component("faults"))
}

/// A shared compile cache for tests, inside the target directory.
pub fn test_cache() -> String {
    repo().join("target/test-cache").display().to_string()
}

/// The local image store tests use unless they name their own.
pub fn test_store() -> String {
    repo().join("target/test-store").display().to_string()
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kiln-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `error` field of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {:?}", self.json()))
            .to_string()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

fn reply(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    read_reply(result.expect("HTTP request failed")).expect("read body")
}

/// Status, headers and body of a response; `None` when the body cannot be read.
fn read_reply(mut response: ureq::http::Response<ureq::Body>) -> Option<Reply> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .ok()?;
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// GET a URL.
pub fn get(url: &str) -> Reply {
    reply(agent().get(url).call())
}

/// POST bytes with the given headers.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut request = agent().post(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    reply(request.send(body))
}

/// POST a JSON value.
pub fn post_json(url: &str, body: &Value) -> Reply {
    post(
        url,
        &[("Content-Type", "application/json")],
        &serde_json::to_vec(body).unwrap(),
    )
}

/// A running `kiln serve`, killed on drop.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub metrics_base: String,
    log: Arc<Mutex<Vec<String>>>,
}

/// Runs `kiln` with arguments to completion: (exit status, stdout + stderr).
pub fn run_kiln(args: &[&str]) -> (ExitStatus, String) {
    let output = Command::new(kiln_bin())
        .args(args)
        .output()
        .expect("run kiln");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status, text)
}

impl Server {
    /// Starts `kiln serve ARGS` on ephemeral ports and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        let mut command = Command::new(kiln_bin());
        command
            .arg("serve")
            .args(["--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .args(args)
            .env("KILN_LOG", "info")
            .env("KILN_STORE", test_store())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if !args.contains(&"--cache-dir") {
            command.args(["--cache-dir", &test_cache()]);
        }
        let mut child = command.spawn().expect("spawn kiln serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let found = log
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| parse_listen_line(l));
            if let Some((base, metrics_base)) = found {
                return Server {
                    child: Some(child),
                    base,
                    metrics_base,
                    log,
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "kiln serve exited with {status}:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "kiln serve did not start:\n{}",
                log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A URL on the prediction listener.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET on the prediction listener.
    pub fn get(&self, path: &str) -> Reply {
        get(&self.url(path))
    }

    /// POST JSON on the prediction listener.
    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        post_json(&self.url(path), body)
    }

    /// POST with headers on the prediction listener.
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        post(&self.url(path), headers, body)
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        let reply = get(&format!("{}/metrics", self.metrics_base));
        assert_eq!(reply.status, 200);
        String::from_utf8(reply.body).unwrap()
    }

    /// A sample's value in `/metrics`, found by its full series text (name and labels).
    pub fn metric(&self, series: &str) -> Option<f64> {
        self.metrics().lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
    }

    /// Waits (at most 30 s) until a series in `/metrics` satisfies `ready`.
    pub fn wait_for_metric(&self, series: &str, ready: impl Fn(f64) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.metric(series).is_some_and(&ready) {
            assert!(
                Instant::now() < deadline,
                "{series} never reached the awaited value"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.as_ref().unwrap().id();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most a minute).
    pub fn wait(&mut self) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "kiln serve did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn parse_listen_line(line: &str) -> Option<(String, String)> {
    let rest = line.split("deployment(s) on ").nth(1)?;
    let base = rest.split_whitespace().next()?.to_string();
    let metrics = rest
        .split("(metrics on ")
        .nth(1)?
        .split("/metrics")
        .next()?
        .to_string();
    Some((base, metrics))
}

/// An OIP v2 JSON request with one FP32 input.
pub fn v2_fp32(name: &str, shape: &[i64], data: &[f32]) -> Value {
    serde_json::json!({ "inputs": [{ "name": name, "shape": shape, "datatype": "FP32", "data": data }] })
}

/// The iris model's weights from `weights.json`: `(coef, intercept)`.
pub fn iris_weights() -> (Vec<Vec<f64>>, Vec<f64>) {
    let weights: Value = serde_json::from_slice(
        &std::fs::read(repo().join("examples/iris/model/weights.json")).unwrap(),
    )
    .unwrap();
    (
        serde_json::from_value(weights["coef"].clone()).unwrap(),
        serde_json::from_value(weights["intercept"].clone()).unwrap(),
    )
}

/// Multinomial logistic regression on one row, in f64: `(label, probabilities)`.
pub fn iris_row(coef: &[Vec<f64>], intercept: &[f64], row: &[f32]) -> (i64, Vec<f64>) {
    let z: Vec<f64> = coef
        .iter()
        .zip(intercept)
        .map(|(w, b)| {
            b + w
                .iter()
                .zip(row)
                .map(|(w, x)| w * f64::from(*x))
                .sum::<f64>()
        })
        .collect();
    let max = z.iter().cloned().fold(f64::MIN, f64::max);
    let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
    let p: Vec<f64> = z.iter().map(|v| (v - max).exp() / sum).collect();
    let label = (0..p.len())
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .unwrap_or(0) as i64;
    (label, p)
}

/// Iris probabilities computed here from `weights.json`, independently of the scorer.
pub fn iris_expected(rows: &[[f32; 4]]) -> Vec<(i64, Vec<f64>)> {
    let (coef, intercept) = iris_weights();
    rows.iter()
        .map(|row| iris_row(&coef, &intercept, row))
        .collect()
}

/// Four iris flowers, one of each class and a borderline one.
pub const IRIS_ROWS: [[f32; 4]; 4] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.7, 3.0, 5.2, 2.3],
    [5.9, 3.0, 4.2, 1.5],
    [6.3, 2.8, 5.1, 1.5],
];

/// A real OCI registry (Debian's `docker-registry`, CNCF distribution) on a loopback port,
/// optionally with htpasswd basic auth; stopped on drop.
pub struct RegistryServer {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    config: PathBuf,
}

impl RegistryServer {
    /// Starts a registry with its own storage; `user` adds basic auth with that user and password.
    pub fn start(user: Option<(&str, &str)>) -> RegistryServer {
        let dir = temp_dir("registry");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog: {{ level: warn }}\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n  delete: {{ enabled: true }}\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        );
        if let Some((name, password)) = user {
            let htpasswd = dir.join("htpasswd");
            let output = Command::new("htpasswd")
                .args(["-Bbn", name, password])
                .output()
                .expect("htpasswd (Debian apache2-utils)");
            std::fs::write(&htpasswd, output.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd: {{ realm: kiln-test, path: {} }}\n",
                htpasswd.display()
            ));
        }
        let path = dir.join("registry.yml");
        std::fs::write(&path, config).unwrap();
        let mut server = RegistryServer {
            child: None,
            addr,
            config: path,
        };
        server.resume();
        server
    }

    /// Starts the registry process again (after [`RegistryServer::stop`]).
    pub fn resume(&mut self) {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the registry process (its storage stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checks a Prometheus exposition with `promtool check metrics`; panics with what it printed.
pub fn assert_promtool_accepts(exposition: &str) {
    use std::io::Write;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required (Debian package prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The rows of `examples/iris/sample.csv`, the iris images' drift baseline.
pub fn iris_sample_rows() -> Vec<[f32; 4]> {
    let text = std::fs::read_to_string(repo().join("examples/iris/sample.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<f32> = line.split(',').map(|c| c.parse().unwrap()).collect();
            [cells[0], cells[1], cells[2], cells[3]]
        })
        .collect()
}

/// The iris sample three times over (90 rows: past the monitor's minimum of 50), with
/// `petal_length` moved by `shift`, as one Open Inference Protocol request.
pub fn iris_drift_traffic(shift: f32) -> Value {
    let data: Vec<f32> = (0..3)
        .flat_map(|_| iris_sample_rows())
        .flat_map(|[a, b, c, d]| [a, b, c + shift, d])
        .collect();
    serde_json::json!({
        "inputs": [{"name": "input", "shape": [data.len() / 4, 4], "datatype": "FP32", "data": data}]
    })
}

/// Builds the iris image into `store` from the example's manifest; returns its tag.
pub fn build_iris_image(store: &Path) -> String {
    let (status, output) = build_image(&repo().join("examples/iris/kiln.toml"), store);
    assert!(status.success(), "{output}");
    "iris:1".to_string()
}

/// `kiln image build MANIFEST --store STORE`: (exit status, stdout + stderr).
pub fn build_image(manifest: &Path, store: &Path) -> (ExitStatus, String) {
    run_kiln(&[
        "image",
        "build",
        manifest.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ])
}

/// Any HTTP call: method, URL, headers, optional body.
pub fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    try_call(method, url, headers, body).expect("HTTP request failed")
}

/// [`call`], with `None` when the server cannot be reached or the connection breaks.
pub fn try_call(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Option<Reply> {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(body.unwrap_or_default().to_vec()).unwrap();
    read_reply(agent().run(request).ok()?)
}

/// What the admin of a test installation lets work groups reach, unless the test sets its own
/// `--allow-network`: registries and Spark masters on loopback, the test Docker host, and the
/// host network its containers report through.
fn test_allowlist(args: &[&str]) -> Vec<String> {
    if args.contains(&"--allow-network") {
        return Vec::new();
    }
    let mut flags: Vec<String> = [
        "--allow-network",
        "127.0.0.0/8",
        "--allow-docker-network",
        "host",
    ]
    .map(String::from)
    .to_vec();
    if let Ok(host) = std::env::var("KILN_TEST_DOCKER_HOST") {
        flags.extend(["--allow-docker-host".to_string(), host]);
    }
    flags
}

/// A running `kiln up` (control plane, runtime, metrics), killed on drop.
pub struct Up {
    child: Option<Child>,
    /// Management API base URL.
    pub api: String,
    /// Prediction base URL.
    pub base: String,
    /// Prometheus metrics URL (`http://HOST:PORT/metrics`).
    pub metrics: String,
    /// The bootstrap admin token, on the first start of a data directory.
    pub admin_token: Option<String>,
    /// The data directory.
    pub data: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    contract: OnceLock<Option<contract::Contract>>,
}

impl Up {
    /// Starts `kiln up` on `data` (ephemeral ports) and waits until it serves.
    pub fn start(data: &Path, args: &[&str]) -> Up {
        Up::start_with_env(data, args, &[])
    }

    /// [`Up::start`] with extra environment variables.
    pub fn start_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Up {
        Up::launch(None, data, args, env)
    }

    /// [`Up::start`] run from the directory `cwd`, so that a relative `data` is relative to it.
    pub fn start_in(cwd: &Path, data: &Path, args: &[&str]) -> Up {
        Up::launch(Some(cwd), data, args, &[])
    }

    fn launch(cwd: Option<&Path>, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Up {
        // A first start prints the bootstrap token (stdout) before the listen line (stderr);
        // the two streams are read by two threads, so give the token a moment to arrive (two
        // processes starting together on one directory print only one token between them).
        let seen_from = cwd.map_or_else(|| data.to_path_buf(), |cwd| cwd.join(data));
        let fresh = !seen_from.join("kiln.db").exists()
            && !args.iter().any(|a| a.starts_with("--database-url"));
        let mut command = Command::new(kiln_bin());
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .envs(env.iter().copied())
            .arg("up")
            .args(["--data-dir", data.to_str().unwrap()])
            .args(if args.contains(&"--api-addr") {
                &[][..]
            } else {
                &["--api-addr", "127.0.0.1:0"][..]
            })
            .args(["--addr", "127.0.0.1:0"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--cache-dir", &test_cache()])
            .args(test_allowlist(args))
            .args(args)
            .env("KILN_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kiln up");
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut listening: Option<Instant> = None;
        loop {
            let lines = log.lock().unwrap().clone();
            let urls = lines.iter().find_map(|l| {
                let rest = l.split("kiln up: API ").nth(1)?;
                let mut parts = rest.split(", ");
                let api = parts.next()?.to_string();
                let base = parts.next()?.strip_prefix("predictions ")?.to_string();
                let metrics = parts
                    .next()?
                    .strip_prefix("metrics ")?
                    .split_whitespace()
                    .next()?
                    .to_string();
                Some((api, base, metrics))
            });
            let admin_token = lines.iter().find_map(|l| {
                l.split("bootstrap admin token (shown once, store it now): ")
                    .nth(1)
                    .map(|t| t.trim().to_string())
            });
            if urls.is_some() && listening.is_none() {
                listening = Some(Instant::now());
            }
            let token_wait_over = !fresh
                || admin_token.is_some()
                || listening.is_some_and(|t| t.elapsed() > Duration::from_secs(2));
            if let Some((api, base, metrics)) = urls.filter(|_| token_wait_over) {
                return Up {
                    child: Some(child),
                    api,
                    base,
                    metrics,
                    admin_token,
                    data: data.to_path_buf(),
                    log,
                    contract: OnceLock::new(),
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "kiln up exited with {status}:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "kiln up did not start:\n{}",
                log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The bootstrap token (panics on a restart, which prints none).
    pub fn admin(&self) -> String {
        self.admin_token.clone().expect("a bootstrap token")
    }

    /// A management API call with a token (or none) and an optional JSON body.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![];
        if let Some(b) = &bearer {
            headers.push(("Authorization", b.as_str()));
        }
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        if bytes.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let reply = call(
            method,
            &format!("{}{path}", self.api),
            &headers,
            bytes.as_deref(),
        );
        if let Some(contract) = self.contract() {
            contract.check(method, path, &reply);
        }
        reply
    }

    /// The contract of the served API document, which [`Up::api`] checks every answer against
    /// (none while the server cannot be asked for its document).
    pub fn contract(&self) -> Option<&contract::Contract> {
        self.contract
            .get_or_init(|| {
                let reply = get(&format!("{}/api/v1/openapi.json", self.api));
                (reply.status == 200).then(|| contract::Contract::new(&reply.json()))
            })
            .as_ref()
    }

    /// Like [`Up::api`], asserting a 2xx and returning the JSON.
    pub fn ok(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
        let reply = self.api(method, path, Some(token), body);
        assert!(
            (200..300).contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()
    }

    /// A sample's value in its `/metrics`, found by its full series text (name and labels).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let text = String::from_utf8(get(&self.metrics).body).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    /// The local image store of this installation.
    pub fn store(&self) -> PathBuf {
        self.data.join("store")
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Everything logged, once a line containing `needle` has arrived (or after 10 s without
    /// one): the server writes a line before it answers, but the thread reading its output may
    /// not have read it yet when the answer is in.
    pub fn log_with(&self, needle: &str) -> String {
        for _ in 0..100 {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.log()
    }

    /// The process id of `kiln up`.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM, as a service manager stopping it would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "kiln up did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A field of the process's `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let pid = self.child.as_ref().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until deployment `name`'s status is `ready` or `failed` (at most 60 s); returns it.
    pub fn wait_deployment(&self, token: &str, path: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let value = self.ok("GET", path, token, None);
            if value["status"] != "pending" {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "deployment stayed pending: {value}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tar archive of `(path, bytes)` entries, for model uploads. Paths are written as given
/// (GNU long names when needed), so hostile paths reach the server unchanged.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<(&str, u8, &str, &[u8])> =
        files.iter().map(|(p, b)| (*p, b'0', "", *b)).collect();
    tar_entries(&entries)
}

/// A tar archive of `(path, type flag, link name, content)` entries: `b'0'` a file, `b'1'` a
/// hard link, `b'2'` a symbolic link, `b'5'` a directory.
pub fn tar_entries(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, kind, link, bytes) in entries {
        let mut header = [0u8; 512];
        let name = path.as_bytes();
        if name.len() > 99 || link.len() > 99 {
            panic!("test paths stay under 100 bytes");
        }
        header[..name.len()].copy_from_slice(name);
        header[100..108].copy_from_slice(b"0000644\0");
        header[108..116].copy_from_slice(b"0000000\0");
        header[116..124].copy_from_slice(b"0000000\0");
        header[124..136].copy_from_slice(format!("{:011o}\0", bytes.len()).as_bytes());
        header[136..148].copy_from_slice(b"00000000000\0");
        header[156] = *kind;
        header[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(bytes);
        out.extend(std::iter::repeat_n(0u8, (512 - bytes.len() % 512) % 512));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// Which database a control plane test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Database {
    /// The default: SQLite in the data directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server `tests/run` starts
    /// (`$KILN_TEST_POSTGRES`, default `postgres://kiln:kiln@127.0.0.1:5432`).
    Postgres,
}

impl Database {
    /// `kiln up` arguments selecting this database (a new PostgreSQL database each call).
    pub fn args(self, tag: &str) -> Vec<String> {
        match self {
            Database::Sqlite => vec![],
            Database::Postgres => vec!["--database-url".into(), postgres_database(tag)],
        }
    }
}

/// Creates an empty PostgreSQL database and returns its URL.
pub fn postgres_database(tag: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let server = std::env::var("KILN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://kiln:kiln@127.0.0.1:5432".into());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("kiln_{}_{}_{n}", tag.replace('-', "_"), std::process::id());
    let output = Command::new("psql")
        .arg(format!("{server}/postgres"))
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql (Debian postgresql-client)");
    assert!(
        output.status.success(),
        "cannot create a PostgreSQL database on {server} (start PostgreSQL as tests/run does): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    format!("{server}/{name}")
}

/// An S3-compatible server (`s3rver`, installed by tests/run into `target/npm`) on a loopback
/// port with one bucket; stopped on drop.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Where it keeps objects.
    pub dir: PathBuf,
}

impl S3Server {
    /// Starts it with `bucket` created.
    pub fn start(bucket: &str) -> S3Server {
        let bin = repo().join("target/npm/node_modules/.bin/s3rver");
        assert!(
            bin.exists(),
            "{} is missing: tests/run installs it with npm",
            bin.display()
        );
        let dir = temp_dir("s3");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args([
                "--directory",
                dir.to_str().unwrap(),
                "--address",
                "127.0.0.1",
            ])
            .args([
                "--port",
                &port.to_string(),
                "--configure-bucket",
                bucket,
                "--silent",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3rver");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3rver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// The environment `kiln up` reads to reach it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "S3RVER".into()),
            ("AWS_SECRET_ACCESS_KEY", "S3RVER".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus server (Debian `prometheus`) scraping one target every second, on
/// loopback, with its data in a temporary directory; killed on drop.
pub struct Prometheus {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Prometheus {
    /// Starts Prometheus scraping `metrics_url` (`http://HOST:PORT/metrics`).
    pub fn start(metrics_url: &str) -> Prometheus {
        let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("prometheus is required (Debian package prometheus)");
        let dir = temp_dir("prometheus");
        let target = metrics_url
            .trim_start_matches("http://")
            .trim_end_matches("/metrics");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: kiln\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = runs::free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while try_call("GET", &format!("{url}/-/ready"), &[], None).is_none_or(|r| r.status != 200)
        {
            assert!(Instant::now() < deadline, "prometheus did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Prometheus { child, url }
    }

    /// The result vector of an instant PromQL query (through the HTTP API).
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let reply = get(&format!("{}/api/v1/query?query={encoded}", self.url));
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let v = reply.json();
        assert_eq!(v["status"], "success", "{v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback HTTP peer that records each request's head and answers it with what `answer`
/// makes of it (one request per connection).
pub struct Recorder {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn start(answer: impl Fn(&str) -> String + Send + 'static) -> Recorder {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buffer = vec![0u8; 16 << 10];
                let n = stream.read(&mut buffer).unwrap_or(0);
                let head = String::from_utf8_lossy(&buffer[..n]).into_owned();
                let answer = answer(&head);
                // Recorded before it is answered: whoever got the answer finds it recorded.
                seen.lock().unwrap().push(head);
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Recorder { addr, heads }
    }

    /// One that answers 401 with a challenge for basic credentials.
    pub fn basic() -> Recorder {
        Recorder::start(|_| {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
        })
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// Standard base64 with padding (for expected `Authorization: Basic` headers).
pub fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

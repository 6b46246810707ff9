"""The Workbench story end to end, with Kiln's CLI and real clients: team, work group, project; a
scikit-learn training run on a target; the model registered from the run; a manifest naming the
built-in `onnx` scorer; the image built, pushed to an OCI registry and deployed; predictions with
tritonclient; in-distribution then shifted traffic, and the drift alert firing in Prometheus; a
retraining run submitted by the deployment's policy, and its model online.

It expects a started `kiln up`, an OCI registry and a Prometheus that scrapes the runtime with
the rule in `prometheus-rules.yml`; `examples/workbench/run` starts them and calls `main`, and
tests/python/test_workbench.py calls `Story` step by step. Every step prints the command it runs.
"""
import argparse
import csv
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import requests
import tritonclient.http as triton

HERE = pathlib.Path(__file__).resolve().parent


class Story:
    def __init__(self, kiln, api, predict, prometheus, registry, work, env=None, say=print):
        self.kiln_bin, self.api, self.predict, self.prometheus = kiln, api, predict, prometheus
        self.registry, self.work, self.say = registry, pathlib.Path(work), say
        self.env = dict(os.environ, **(env or {}), KILN_CONTEXT=str(self.work / "context.json"))
        self.work.mkdir(parents=True, exist_ok=True)

    def kiln(self, *args, json_out=False, quiet=False):
        """Runs a kiln command (printed unless `quiet`, as polling is)."""
        command = [*args, *(["--output", "json"] if json_out else [])]
        if not quiet:
            self.say("$ kiln " + " ".join(command))
        done = subprocess.run([self.kiln_bin, *command], capture_output=True, text=True, env=self.env)
        if done.returncode != 0:
            raise RuntimeError(f"kiln {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
        if not json_out:
            self.say(done.stdout.rstrip())
            return done.stdout
        return json.loads(done.stdout)

    # 1. Who and where: a team, a work group (the security boundary), a project, targets.
    def organize(self, token, python, docker=None):
        self.kiln("login", "--url", self.api, "--token", token, "--team", "lab", "--workgroup", "wine")
        self.kiln("team", "create", "lab")
        self.kiln("workgroup", "create", "wine")
        self.kiln("project", "create", "workbench", "--description", "wine classifier")
        self.kiln("target", "add", "local", "--kind", "local", "--set", f"interpreter={python}")
        if docker:
            host, image = docker
            self.kiln("target", "add", "docker", "--kind", "docker", "--set", f"host={host}",
                      "--set", f"image={image}", "--set", "network=host", "--set", "memory_mb=1024")

    # 2. Train on a target: the directory is pushed as a commit, the log followed to the end.
    def train(self, target, experiment="train", *args):
        self.kiln("run", "submit", "--project", "workbench", "--dir", str(HERE), "--target", target,
                  "-e", experiment, "-f", "train.py", *args)
        runs = self.kiln("run", "list", "--project", "workbench", json_out=True)["items"]
        return next(r for r in runs if (r["experiment"], r["target"]) == (experiment, target))

    # 3. Register the model from the run, fetch its files, write the manifest, build the image.
    def package(self, run, version):
        self.kiln("model", "register", "wine", "--run", run["id"], "--path", "model",
                  "--description", f"random forest, run {run['id']}")
        files = self.work / f"wine-{version}"
        self.kiln("model", "download", "wine", "--version", str(version), "-o", str(files))
        store = str(self.work / "store")
        self.kiln("manifest", "create", "--model", str(files / "model.onnx"), "--scorer", "onnx",
                  "--sample", str(files / "data.csv"), "--name", "wine", "--version", str(version),
                  "-o", str(files / "kiln.toml"))
        built = self.kiln("image", "build", str(files / "kiln.toml"), "--store", store, json_out=True)
        remote = f"{self.registry}/lab/wine:{version}"
        self.kiln("push", built["tag"], remote, "--store", store, "--insecure-registry", self.registry)
        self.kiln("image", "register", f"wine-{version}", remote)
        return files

    # 4. Deploy, wait until ready.
    def deploy(self, image):
        created = self.kiln("deployment", "create", "wine", "--image", image, json_out=True)
        self.key = created["keys"]["primary"]
        self.wait_ready("wine")
        return created

    def wait_ready(self, name, timeout=180):
        self.say(f"(waiting for deployment {name} to be ready)")
        deadline = time.time() + timeout
        while time.time() < deadline:
            shown = self.kiln("deployment", "show", name, json_out=True, quiet=True)
            if shown.get("status") == "ready":
                return shown
            if shown.get("status") == "failed":
                raise RuntimeError(f"deployment {name} failed: {shown}")
            time.sleep(0.5)
        raise RuntimeError(f"deployment {name} is not ready: {shown}")

    # 5. Score with the Triton client (Open Inference Protocol v2, binary tensors).
    def score(self, rows):
        client = triton.InferenceServerClient(self.predict)
        headers = {"Authorization": f"Bearer {self.key}"}
        x = np.asarray(rows, dtype=np.float32)
        tensor = triton.InferInput("X", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        result = client.infer("wine", [tensor], headers=headers)
        self.say(f"scored {len(x)} rows with tritonclient: labels {result.as_numpy('label')[:8].tolist()}...")
        return result

    # 6. Traffic, then the drift alert in Prometheus.
    def traffic(self, rows, seconds):
        """Sends `rows` in batches for `seconds` (several monitor windows)."""
        deadline = time.time() + seconds
        sent = 0
        while time.time() < deadline:
            self.score_quietly(rows)
            sent += len(rows)
            time.sleep(0.2)
        self.say(f"sent {sent} rows over {seconds} s")
        return sent

    def score_quietly(self, rows):
        body = {"inputs": [{"name": "X", "shape": [len(rows), len(rows[0])], "datatype": "FP32", "data": rows}]}
        reply = requests.post(f"http://{self.predict}/v2/models/wine/infer", json=body,
                              headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
        reply.raise_for_status()
        return reply.json()

    def alerts(self):
        reply = requests.get(f"{self.prometheus}/api/v1/alerts", timeout=5).json()
        return [a for a in reply["data"]["alerts"] if a["labels"].get("deployment") == "wine"]

    def wait_alert(self, rows, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.score_quietly(rows)
            firing = [a for a in self.alerts() if a["state"] == "firing"]
            if firing:
                self.say(f"Prometheus: {firing[0]['labels']['alertname']} firing for deployment wine "
                         f"(version {firing[0]['labels'].get('version')})")
                return firing
            time.sleep(0.3)
        raise RuntimeError(f"no drift alert fired in Prometheus within {timeout} s")

    # 7. Retraining by policy: an alert held for N windows submits a run of an experiment.
    def retrain_policy(self, experiment, target, windows=2):
        self.kiln("deployment", "monitor", "wine", "--retrain", f"workbench/{experiment}",
                  "--retrain-windows", str(windows), "--retrain-target", target)

    def wait_retraining_run(self, experiment, rows, timeout=300):
        self.say(f"(waiting for the policy's run of {experiment} to end)")
        deadline = time.time() + timeout
        while time.time() < deadline:
            runs = [r for r in self.kiln("run", "list", "--project", "workbench", json_out=True, quiet=True)["items"]
                    if r["experiment"] == experiment]
            if runs and runs[0]["status"] in ("completed", "failed", "canceled"):
                return runs[0]
            if not runs:
                self.score_quietly(rows)
            time.sleep(0.5)
        raise RuntimeError(f"no retraining run of {experiment} ended within {timeout} s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60, what="server"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} at {url} did not start within {timeout} s")


class Servers:
    """`kiln up`, a registry (Debian's docker-registry) and Prometheus (with the drift alert
    rule), on free ports of 127.0.0.1, their data under `work`; stopped on exit."""

    def __init__(self, kiln, work, monitor_window=2.0, env=None, docker_host=None):
        self.kiln, self.work = kiln, pathlib.Path(work)
        self.monitor_window, self.env = monitor_window, env or {}
        # What this installation's admin lets work groups reach: the registry on loopback, the
        # Docker host of the story, and the host network its containers report through.
        self.allow = ["--allow-network", "127.0.0.1", "--allow-docker-network", "host"]
        if docker_host:
            self.allow += ["--allow-docker-host", docker_host]
        self.procs = []

    def start(self, command, log, **kw):
        proc = subprocess.Popen(command, stdout=kw.pop("stdout", open(self.work / log, "w")),
                                stderr=subprocess.STDOUT, **kw)
        self.procs.append(proc)
        return proc

    def __enter__(self):
        self.work.mkdir(parents=True, exist_ok=True)
        registry_port = free_port()
        self.registry = f"127.0.0.1:{registry_port}"
        (self.work / "registry.yml").write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage:\n  filesystem: {{rootdirectory: {self.work / 'registry'}}}\n"
            f"http:\n  addr: {self.registry}\n")
        self.start([shutil.which("docker-registry") or "docker-registry", "serve",
                    str(self.work / "registry.yml")], "registry.log")
        api, predict, metrics = free_port(), free_port(), free_port()
        self.api, self.predict = f"http://127.0.0.1:{api}", f"127.0.0.1:{predict}"
        up = self.start([self.kiln, "up", "--data-dir", str(self.work / "kiln"),
                         "--api-addr", f"127.0.0.1:{api}", "--addr", self.predict,
                         "--metrics-addr", f"127.0.0.1:{metrics}", "--insecure-registry", self.registry,
                         "--monitor-window", str(self.monitor_window), *self.allow],
                        "up.log", stdout=subprocess.PIPE, text=True, env=dict(os.environ, **self.env))
        prefix = "bootstrap admin token (shown once, store it now): "
        self.token = None
        for line in up.stdout:
            with open(self.work / "up.log", "a") as log:
                log.write(line)
            if line.startswith(prefix):
                self.token = line[len(prefix):].strip()
                break
        if not self.token:
            raise RuntimeError("kiln up printed no bootstrap token:\n" + (self.work / "up.log").read_text())
        threading.Thread(target=lambda: [None for _ in up.stdout], daemon=True).start()
        wait_http(self.api, what="kiln up's API")
        wait_http(f"http://{self.predict}/v2/health/live", what="kiln up's runtime")
        prometheus_port = free_port()
        self.prometheus = f"http://127.0.0.1:{prometheus_port}"
        (self.work / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{HERE / 'prometheus-rules.yml'}']\n"
            "scrape_configs:\n"
            f"  - job_name: kiln\n    static_configs: [{{targets: ['127.0.0.1:{metrics}']}}]\n")
        self.start([shutil.which("prometheus") or "prometheus", f"--config.file={self.work / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.work / 'prometheus'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}"], "prometheus.log")
        wait_http(f"{self.prometheus}/-/ready", what="Prometheus")
        wait_http(f"http://{self.registry}/v2/", what="the registry")
        return self

    def __exit__(self, *_):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def shifted(rows, columns, feature, by):
    i = columns.index(feature)
    return [[v + by if j == i else v for j, v in enumerate(r)] for r in rows]


def read_rows(path):
    with open(path) as f:
        reader = csv.reader(f)
        columns = next(reader)
        return columns, [[float(v) for v in r] for r in reader]


def story(servers, python, docker=None, say=print):
    """The whole story on started servers; returns what a test checks."""
    s = Story(servers.kiln, servers.api, servers.predict, servers.prometheus, servers.registry,
              servers.work / "cli", say=say)
    s.organize(servers.token, python, docker)
    seen = {"story": s}
    seen["run"] = run = s.train("local")
    if docker:
        # The same experiment in a container: same code, same params, the Docker target's image.
        seen["docker_run"] = s.train("docker")
    seen["files"] = files = s.package(run, 1)
    seen["deployment"] = s.deploy("wine-1")
    columns, rows = read_rows(files / "data.csv")
    seen["columns"], seen["rows"] = columns, rows
    seen["first"] = s.score(rows[:20])
    # In-distribution traffic over a few monitor windows: no alert.
    s.traffic(rows[:60], 3 * servers.monitor_window)
    seen["alerts_before"] = s.alerts()
    retrain_target = "docker" if docker else "local"
    s.kiln("experiment", "create", "retrain", "--project", "workbench", "--script", "train.py",
           "--target", retrain_target)
    s.retrain_policy("retrain", retrain_target)
    drifted = shifted(rows[:60], columns, "proline", 1500.0)
    seen["alerts"] = s.wait_alert(drifted)
    seen["retrained"] = retrained = s.wait_retraining_run("retrain", drifted)
    say(f"retraining run {retrained['id']} on {retrained['target']}: {retrained['status']}")
    if retrained["status"] != "completed":
        raise RuntimeError(f"the retraining run {retrained['status']}: {retrained['reason']}")
    seen["files2"] = s.package(retrained, 2)
    started = time.time()
    s.kiln("deployment", "update", "wine", "--image", "wine-2")
    s.wait_ready("wine")
    while s.score_quietly(rows[:1])["model_version"] != "2":
        time.sleep(0.1)
    seen["online_s"] = time.time() - started
    say(f"version 2 serving {seen['online_s']:.1f} s after `kiln deployment update`")
    seen["second"] = s.score(rows[:20])
    return seen


def main(argv=None):
    parser = argparse.ArgumentParser(description="The Workbench story on a fresh `kiln up`.")
    parser.add_argument("--kiln", required=True, help="the kiln binary")
    parser.add_argument("--python", required=True, help="the local target's interpreter (scikit-learn, skl2onnx)")
    parser.add_argument("--docker-host", help="a Docker Engine API: retraining runs there")
    parser.add_argument("--docker-image", help="its Python image with scikit-learn and skl2onnx")
    parser.add_argument("--work", required=True, help="a directory for data and logs")
    parser.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    args = parser.parse_args(argv)
    docker = (args.docker_host, args.docker_image) if args.docker_host else None
    with Servers(args.kiln, args.work, docker_host=args.docker_host) as servers:
        story(servers, args.python, docker)
        print(f"Prometheus {servers.prometheus}/alerts, API {servers.api}, predictions http://{servers.predict}")
        if args.keep:
            print("Ctrl-C to stop")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

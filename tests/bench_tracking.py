"""Tracking benchmark, run by tests/bench: `log_metric` calls per second through the real
`mlflow` client against Kiln and, in the same run, against `mlflow server` with a SQLite
backend; and the time from submitting a run on the local target to its first log line.

Prints figures and ratios; asserts nothing about speed.
"""
import argparse
import os
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests

REPO = pathlib.Path(__file__).resolve().parents[1]
WG = "/api/v1/teams/lab/workgroups/vision"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_kiln(binary, data):
    proc = subprocess.Popen(
        [binary, "up", "--data-dir", str(data), "--api-addr", "127.0.0.1:0",
         "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "KILN_LOG": "warn,kiln::up=info"},
    )
    found = {}
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            if "shown once" in line:
                found["token"] = line.split()[-1]
            match = re.search(r"kiln up: API (http://\S+),", line)
            if match:
                found["api"] = match.group(1)
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        sys.exit("kiln up did not start")
    return proc, found["api"], found["token"]


def start_mlflow_server(data):
    port = free_port()
    python = pathlib.Path(sys.executable)
    proc = subprocess.Popen(
        [str(python.parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{data}/mlflow.db",
         "--default-artifact-root", f"{data}/artifacts", "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("mlflow server did not start")


def log_metric_rate(tracking_uri, token, calls):
    """`log_metric` calls per second, one client, one after another, in a child process so that
    each server gets a fresh client."""
    code = f"""
import time, mlflow
mlflow.set_tracking_uri({tracking_uri!r})
mlflow.set_experiment("bench")
with mlflow.start_run():
    for i in range(20):
        mlflow.log_metric("warmup", i, step=i)
    start = time.perf_counter()
    for i in range({calls}):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    print("SECONDS", time.perf_counter() - start)
"""
    env = {**os.environ, "MLFLOW_TRACKING_TOKEN": token or ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr)
    seconds = float(next(l for l in out.stdout.splitlines() if l.startswith("SECONDS")).split()[1])
    return calls / seconds


def first_log_line(api, token, samples):
    """Seconds from submitting a run on the local target to its first line in a follower."""
    headers = {"Authorization": f"Bearer {token}"}
    experiments = f"{api}{WG}/projects/bench/experiments"
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        run = requests.post(f"{experiments}/hello/runs", json={"target": "py"},
                            headers=headers).json()
        with requests.get(f"{api}{WG}/runs/{run['id']}/logs?follow=true", headers=headers,
                          stream=True) as log:
            for chunk in log.iter_content(chunk_size=None):
                if b"hello" in chunk:
                    times.append(time.perf_counter() - start)
                    break
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=str(REPO / "target" / "release" / "kiln"))
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "kiln").mkdir()
        (tmp / "mlflow").mkdir()
        kiln, api, token = start_kiln(args.kiln, tmp / "kiln")
        mlflow_server, mlflow_url = start_mlflow_server(tmp / "mlflow")
        try:
            headers = {"Authorization": f"Bearer {token}"}
            requests.post(f"{api}/api/v1/teams", json={"name": "lab"}, headers=headers)
            requests.post(f"{api}/api/v1/teams/lab/workgroups", json={"name": "vision"},
                          headers=headers)
            requests.post(f"{api}{WG}/projects", json={"name": "bench"}, headers=headers)
            tracking = f"{api}{WG}/projects/bench/mlflow"

            kiln_rate = log_metric_rate(tracking, token, args.calls)
            mlflow_rate = log_metric_rate(mlflow_url, None, args.calls)
            # The same again, the other way round, so neither always goes first.
            mlflow_rate = max(mlflow_rate, log_metric_rate(mlflow_url, None, args.calls))
            kiln_rate = max(kiln_rate, log_metric_rate(tracking, token, args.calls))

            archive = tmp / "hello.tar"
            script = tmp / "src"
            script.mkdir()
            (script / "hello.py").write_text("print('hello', flush=True)\n")
            subprocess.run(["tar", "-C", str(script), "-cf", str(archive), "hello.py"], check=True)
            requests.post(f"{api}{WG}/projects/bench/commits", data=archive.read_bytes(),
                          headers={**headers, "Content-Type": "application/x-tar"}).raise_for_status()
            requests.post(f"{api}{WG}/targets", headers=headers, json={
                "name": "py", "kind": "local", "config": {"interpreter": sys.executable}})
            requests.post(f"{api}{WG}/projects/bench/experiments", headers=headers,
                          json={"name": "hello", "script": "hello.py"}).raise_for_status()
            first = first_log_line(api, token, args.samples)
        finally:
            kiln.terminate()
            mlflow_server.terminate()
            kiln.wait(30)
            mlflow_server.wait(30)

    print()
    print("== tracking (mlflow client, log_metric one call at a time, best of two runs of "
          f"{args.calls} calls)")
    print(f"| server | log_metric calls/s |")
    print(f"|---|---|")
    print(f"| Kiln (SQLite) | {kiln_rate:,.0f} |")
    print(f"| mlflow server (SQLite backend, 1 worker) | {mlflow_rate:,.0f} |")
    print(f"| Kiln / mlflow server | {kiln_rate / mlflow_rate:.2f}x |")
    print()
    print(f"== run submission to first log line, local target (python prints one line), "
          f"{args.samples} runs")
    print(f"median {statistics.median(first) * 1000:.0f} ms, "
          f"min {min(first) * 1000:.0f} ms, max {max(first) * 1000:.0f} ms")


if __name__ == "__main__":
    main()

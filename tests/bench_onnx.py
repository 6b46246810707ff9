"""Kiln's built-in ONNX scorer against the Python servers people use for the same model.

One scikit-learn model (iris, multinomial logistic regression, exported by skl2onnx with ZipMap
off) served three ways on this machine, in one run, loaded by the same wrk (`-t2 -c32`) with
one-row and 64-row requests:

- Kiln: `kiln serve` of an image built with `scorer = "onnx"` (Open Inference Protocol v2 JSON);
- onnxruntime behind FastAPI/uvicorn, 2 workers (the same v2 JSON);
- `mlflow models serve`, 2 workers, of the same ONNX model saved with `mlflow.onnx` (its own
  `inputs` JSON).

Prints requests/s, p50 and p99 of each and Kiln's ratio to each; then the cost of WebAssembly:
the guest's inference time per row (Kiln's `kiln_inference_duration_seconds`) against
onnxruntime's in-process `run` on the same batches.

Usage: tests/bench --onnx   (or: python tests/bench_onnx.py --kiln target/release/kiln)
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime
import requests
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

FASTAPI_APP = '''
import os
import numpy as np
import onnxruntime
from fastapi import FastAPI

options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
session = onnxruntime.InferenceSession(os.environ["MODEL"], options, providers=["CPUExecutionProvider"])
app = FastAPI()


@app.post("/v2/models/iris/infer")
async def infer(body: dict):
    tensor = body["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    label, probabilities = session.run(None, {"X": x})
    return {"model_name": "iris", "outputs": [
        {"name": "label", "datatype": "INT64", "shape": list(label.shape), "data": label.tolist()},
        {"name": "probabilities", "datatype": "FP32", "shape": list(probabilities.shape),
         "data": probabilities.reshape(-1).tolist()},
    ]}
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, body, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            reply = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
            if reply.ok:
                return reply.json()
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def to_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, body, seconds, connections, work):
    script = work / "post.lua"
    script.write_text(f"wrk.method = 'POST'\nwrk.body = {json.dumps(body)}\n"
                      "wrk.headers['Content-Type'] = 'application/json'\n")
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": to_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": to_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "failed": int(failed.group(1)) if failed else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def metric(text, name, labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def guest_time(url, metrics_url, bodies):
    """The guest's time per row in µs (the inference histogram) over sequential requests."""
    guest = {}
    session = requests.Session()
    for n, body in bodies.items():
        for _ in range(200):
            session.post(url, data=body, headers={"Content-Type": "application/json"})
        before = session.get(metrics_url).text
        for _ in range(2000 if n == 1 else 500):
            session.post(url, data=body, headers={"Content-Type": "application/json"})
        after = session.get(metrics_url).text
        labels = {"deployment": "iris"}
        seconds = (metric(after, "kiln_inference_duration_seconds_sum", labels)
                   - metric(before, "kiln_inference_duration_seconds_sum", labels))
        count = (metric(after, "kiln_inference_duration_seconds_count", labels)
                 - metric(before, "kiln_inference_duration_seconds_count", labels))
        guest[n] = seconds / count / n * 1e6
    return guest


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default="target/release/kiln")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    kiln = str(pathlib.Path(args.kiln).resolve())
    work = pathlib.Path(tempfile.mkdtemp(prefix="kiln-bench-onnx-"))
    data = load_iris()
    x = data.data.astype(np.float32)
    model = LogisticRegression(max_iter=1000).fit(x, data.target)
    onnx_model = to_onnx(model, x[:1], options={id(model): {"zipmap": False}})
    (work / "iris").mkdir()
    (work / "iris" / "model.onnx").write_bytes(onnx_model.SerializeToString())
    (work / "iris" / "data.csv").write_text(
        "a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in x.tolist()) + "\n")
    store = str(work / "store")
    subprocess.run([kiln, "manifest", "create", "--model", str(work / "iris" / "model.onnx"), "--scorer", "onnx",
                    "--sample", str(work / "iris" / "data.csv"), "--name", "iris", "-o", str(work / "iris" / "kiln.toml")],
                   check=True, capture_output=True)
    subprocess.run([kiln, "image", "build", str(work / "iris" / "kiln.toml"), "--store", store], check=True,
                   capture_output=True)

    rows = {1: x[:1].tolist(), 64: np.resize(x, (64, 4)).tolist()}
    v2 = {n: json.dumps({"inputs": [{"name": "X", "shape": [n, 4], "datatype": "FP32", "data": r}]})
          for n, r in rows.items()}
    mlflow_body = {n: json.dumps({"inputs": {"X": r}}) for n, r in rows.items()}
    procs = []
    results = {}
    try:
        # Kiln
        port, metrics_port = free_port(), free_port()
        proc = subprocess.Popen([kiln, "serve", "--store", store, "--deploy", "iris=iris:1",
                                 "--addr", f"127.0.0.1:{port}", "--metrics-addr", f"127.0.0.1:{metrics_port}"],
                                stdout=subprocess.DEVNULL, stderr=open(work / "kiln.log", "w"))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        wait_for(url, v2[1], proc)
        kiln_urls = (url, f"http://127.0.0.1:{metrics_port}/metrics")
        for n in rows:
            results[("kiln", n)] = wrk(url, v2[n], args.seconds, args.connections, work)
        guest = guest_time(url, kiln_urls[1], v2)
        proc.terminate()
        proc.wait(30)
        # The floor of that measure: Kiln's hand-written iris scorer (same model, plain Rust).
        port, metrics_port = free_port(), free_port()
        repo = pathlib.Path(__file__).resolve().parents[1]
        proc = subprocess.Popen([kiln, "serve", "--deploy", f"iris={repo / 'target/components/iris.wasm'},"
                                 f"artifacts={repo / 'examples/iris/model'}",
                                 "--addr", f"127.0.0.1:{port}", "--metrics-addr", f"127.0.0.1:{metrics_port}"],
                                stdout=subprocess.DEVNULL, stderr=open(work / "kiln-iris.log", "w"))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        plain = {n: b.replace('"name": "X"', '"name": "input"') for n, b in v2.items()}
        wait_for(url, plain[1], proc)
        floor = guest_time(url, f"http://127.0.0.1:{metrics_port}/metrics", plain)
        proc.terminate()
        proc.wait(30)

        # onnxruntime + FastAPI/uvicorn, 2 workers
        def load_test(name, command, path, bodies, **popen):
            """Starts a Python server on a free port, loads it with wrk per batch size, stops it."""
            port = free_port()
            proc = subprocess.Popen([part.replace("{port}", str(port)) for part in command],
                                    stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "w"), **popen)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}{path}"
            wait_for(url, bodies[1], proc)
            for n in rows:
                results[(name, n)] = wrk(url, bodies[n], args.seconds, args.connections, work)
            proc.terminate()
            proc.wait(30)

        (work / "app.py").write_text(FASTAPI_APP)
        load_test("onnxruntime+FastAPI",
                  [sys.executable, "-m", "uvicorn", "app:app", "--workers", "2", "--port", "{port}",
                   "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"],
                  "/v2/models/iris/infer", v2,
                  cwd=work, env=dict(os.environ, MODEL=str(work / "iris" / "model.onnx")))

        # mlflow models serve, 2 workers, the same ONNX model
        import mlflow.onnx
        mlflow.onnx.save_model(onnx_model, str(work / "mlflow-model"))
        mlflow = shutil.which("mlflow", path=str(pathlib.Path(sys.executable).parent)) or "mlflow"
        load_test("mlflow models serve",
                  [mlflow, "models", "serve", "-m", str(work / "mlflow-model"), "--env-manager", "local",
                   "-w", "2", "-p", "{port}", "-h", "127.0.0.1"],
                  "/invocations", mlflow_body,
                  env=dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    # onnxruntime in process, one thread, on the same batches.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(work / "iris" / "model.onnx"), options,
                                           providers=["CPUExecutionProvider"])
    native = {}
    for n, r in rows.items():
        batch = np.asarray(r, dtype=np.float32)
        calls = 20000 if n == 1 else 5000
        started = time.perf_counter()
        for _ in range(calls):
            session.run(None, {"X": batch})
        native[n] = (time.perf_counter() - started) / calls / n * 1e6

    print(f"\nwrk -t2 -c{args.connections} -d{args.seconds}s, iris logistic regression (ONNX), this machine")
    print(f"{'server':<22} {'rows':>4} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'failed':>6}  Kiln vs it")
    for n in rows:
        k = results[("kiln", n)]
        for name in ("kiln", "onnxruntime+FastAPI", "mlflow models serve"):
            r = results[(name, n)]
            ratio = "" if name == "kiln" else (
                f"{k['rps'] / r['rps']:.1f}x requests/s, p99 {k['p99']:.2f} vs {r['p99']:.2f} ms")
            print(f"{name:<22} {n:>4} {r['rps']:>11,.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['failed']:>6}  {ratio}")
    print("\ninference time per row, µs (the cost of WebAssembly); Kiln's figure is its\n"
          "kiln_inference_duration_seconds (the call into the instance), onnxruntime's its run()\n"
          "called from Python; the hand-written iris scorer shows the floor of Kiln's measure")
    for n in rows:
        print(f"  {n:>2}-row batches: Kiln guest (tract in wasm) {guest[n]:.2f}, onnxruntime in process "
              f"{native[n]:.2f}: {guest[n] / native[n]:.2f}x; hand-written iris scorer {floor[n]:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Kiln's Python scorer benchmark (printed, not asserted): in one run, on this machine, loaded by
the same wrk (`-t2 -c32`) with one-row requests:

- the Python iris scorer (examples/python-iris, compiled by componentize-py) in `kiln serve`;
- the Rust iris scorer (examples/iris) in `kiln serve`;
- the same score.py run natively by CPython behind FastAPI/uvicorn (1 worker), through the same
  SDK (`kiln_scoring.use_files`);
- `mlflow models serve` (1 worker) of an MLflow pyfunc doing the same arithmetic.

Also: instance start time (kiln_instance_start_duration_seconds), compile time of the Python
component cold (no cache) and cached, and resident memory of `kiln serve` per idle and per busy
Python instance (RSS growth over 32 started instances, divided by 32).

Usage: python tests/bench_python.py [--kiln target/release/kiln] [--seconds 10]
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from bench_onnx import free_port, metric, start_kiln, stop, wait_for, wrk  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
ROW = [5.1, 3.5, 1.4, 0.2]
V2 = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ROW}]})

FASTAPI_APP = """
import os, sys
sys.path.insert(0, os.environ["SDK"])
sys.path.insert(0, os.environ["SCRIPT_DIR"])
import kiln_scoring as kiln
kiln.use_files(os.environ["FILES"])
import score
from fastapi import FastAPI, Request
score.load("")
meta = score.metadata()
app = FastAPI()

@app.post("/v2/models/iris/infer")
async def infer(request: Request):
    body = await request.json()
    t = body["inputs"][0]
    inputs = {"input": kiln.Tensor("input", t["datatype"], t["shape"], t["data"])}
    out = score.predict(inputs)
    return {"model_name": "iris", "outputs": [
        {"name": s.name, "datatype": s.datatype, "shape": [len(v)] + ([len(v[0])] if v and isinstance(v[0], list) else []),
         "data": [x for r in v for x in r] if v and isinstance(v[0], list) else v}
        for s in meta.outputs for v in [out[s.name]]]}
"""

PYFUNC = """
import json, math
import mlflow.pyfunc
import pandas as pd

class Iris(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        w = json.load(open(context.artifacts["weights"]))
        self.coef, self.intercept, self.classes = w["coef"], w["intercept"], w["classes"]

    def predict(self, context, model_input, params=None):
        labels = []
        for row in model_input.values.tolist():
            z = [b + sum(w * x for w, x in zip(ws, row)) for ws, b in zip(self.coef, self.intercept)]
            labels.append(self.classes[z.index(max(z))])
        return pd.DataFrame({"label": labels})

mlflow.pyfunc.save_model(path=__import__("sys").argv[1], python_model=Iris(),
                         artifacts={"weights": __import__("sys").argv[2]})
"""


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default="target/release/kiln")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    kiln = str(pathlib.Path(args.kiln).resolve())
    work = pathlib.Path(tempfile.mkdtemp(prefix="kiln-bench-python-"))
    store = str(work / "store")
    env = dict(os.environ, KILN_PYTHON_CACHE=str(work / "python-cache"))
    results, procs = {}, []

    def build(manifest, **extra):
        started = time.time()
        done = subprocess.run([kiln, "image", "build", str(manifest), "--store", store], capture_output=True,
                              text=True, env=dict(env, **extra))
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
        return time.time() - started

    build(REPO / "examples" / "iris" / "kiln.toml")
    cold = build(REPO / "examples" / "python-iris" / "kiln.toml", XDG_CACHE_HOME=str(work / "xdg-cold"))
    cached = build(REPO / "examples" / "python-iris" / "kiln.toml", XDG_CACHE_HOME=str(work / "xdg-cold"))
    try:
        for name, image in (("python", "python-iris:1"), ("rust", "iris:1")):
            proc, base, metrics_url = start_kiln(kiln, ["--store", store, "--deploy", f"iris={image}",
                                                        "--cache-dir", str(work / "compiled")], work / f"{name}.log")
            procs.append(proc)
            url = f"{base}/v2/models/iris/infer"
            wait_for(url, V2, proc)
            results[name] = wrk(url, V2, args.seconds, args.connections, work)
            text = requests.get(metrics_url, timeout=10).text
            starts = metric(text, "kiln_instance_start_duration_seconds_count", {"deployment": "iris"})
            total = metric(text, "kiln_instance_start_duration_seconds_sum", {"deployment": "iris"})
            results[name]["start_ms"] = 1000 * total / max(starts, 1)
            stop(proc)

        # Memory per instance: 32 deployments of the Python image, each warmed to one instance.
        deploys = [a for i in range(32) for a in ("--deploy", f"m{i}=python-iris:1")]
        proc, base, _ = start_kiln(kiln, ["--store", store, "--cache-dir", str(work / "compiled"), *deploys],
                                   work / "memory.log")
        procs.append(proc)
        wait_for(f"{base}/v2/models/m0/infer", V2, proc)
        before = rss_kib(proc.pid)
        for i in range(1, 32):
            requests.post(f"{base}/v2/models/m{i}/infer", data=V2, headers={"Content-Type": "application/json"})
        idle = (rss_kib(proc.pid) - before) / 31
        big = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [4096, 4], "data": ROW * 4096}]})
        before = rss_kib(proc.pid)
        for i in range(32):
            requests.post(f"{base}/v2/models/m{i}/infer", data=big, headers={"Content-Type": "application/json"})
        busy = idle + (rss_kib(proc.pid) - before) / 32
        stop(proc)

        # The same score.py natively behind FastAPI.
        (work / "app.py").write_text(FASTAPI_APP)
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app:app", "--workers", "1", "--port", str(port),
                                 "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"], cwd=work,
                                env=dict(os.environ, SDK=str(REPO / "sdk" / "python"),
                                         SCRIPT_DIR=str(REPO / "examples" / "python-iris"),
                                         FILES=str(REPO / "examples" / "python-iris" / "model")),
                                stdout=subprocess.DEVNULL, stderr=open(work / "fastapi.log", "w"))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        wait_for(url, V2, proc)
        results["fastapi"] = wrk(url, V2, args.seconds, args.connections, work)
        stop(proc)

        # An MLflow pyfunc doing the same arithmetic.
        subprocess.run([sys.executable, "-c", PYFUNC, str(work / "pyfunc"),
                        str(REPO / "examples" / "python-iris" / "model" / "weights.json")], check=True)
        mlflow = shutil.which("mlflow", path=str(pathlib.Path(sys.executable).parent)) or "mlflow"
        port = free_port()
        proc = subprocess.Popen([mlflow, "models", "serve", "-m", str(work / "pyfunc"), "--env-manager", "local",
                                 "-w", "1", "-p", str(port), "-h", "127.0.0.1"],
                                env=dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"),
                                stdout=subprocess.DEVNULL, stderr=open(work / "mlflow.log", "w"))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}/invocations"
        body = json.dumps({"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [ROW]}})
        wait_for(url, body, proc, timeout=180)
        results["mlflow"] = wrk(url, body, args.seconds, args.connections, work)
        stop(proc)
    finally:
        for proc in procs:
            stop(proc)

    print(f"\nwrk -t2 -c{args.connections} -d{args.seconds}s, one-row requests, this machine")
    print(f"{'server':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    labels = {"python": "kiln serve, Python iris", "rust": "kiln serve, Rust iris",
              "fastapi": "same score.py, FastAPI (1 worker)", "mlflow": "mlflow models serve (pyfunc)"}
    for key, label in labels.items():
        r = results[key]
        print(f"{label:<34}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}"
              + (f"   ({r['failed']} failed)" if r["failed"] else ""))
    py = results["python"]["rps"]
    print(f"\nPython iris / Rust iris:        {py / results['rust']['rps']:.2f}x")
    print(f"Python iris / FastAPI score.py: {py / results['fastapi']['rps']:.2f}x   (target >= 2x)")
    print(f"Python iris / mlflow pyfunc:    {py / results['mlflow']['rps']:.2f}x   (target >= 10x)")
    print(f"instance start: Python {results['python']['start_ms']:.2f} ms, Rust {results['rust']['start_ms']:.2f} ms"
          "   (target < 10 ms)")
    print(f"image build of python-iris: cold {cold:.1f} s (componentize-py and compile), cached {cached:.1f} s")
    print(f"resident memory per Python instance: idle {idle / 1024:.1f} MiB, busy (4096 rows) {busy / 1024:.1f} MiB"
          "   (target idle < 5 MiB)")


if __name__ == "__main__":
    main()

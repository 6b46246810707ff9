"""Kiln's built-in ONNX scorer against the Python servers people use for the same models.

Four scikit-learn models exported by skl2onnx (ZipMap off): iris logistic regression, an MLP with
two hidden layers of 512, a random forest of 300 trees (depth 10) and a binary gradient boosting
classifier of 300 trees, on 20 features for the last three. Each served three ways on this
machine, in one run, loaded by the same wrk (`-t2 -c32`) with one-row and 64-row requests:

- Kiln: `kiln serve` of images built with `scorer = "onnx"`, graphs on ONNX Runtime (the
  wheel's library, one intra-op thread), Open Inference Protocol v2 JSON;
- onnxruntime behind FastAPI/uvicorn, 1 worker, 1 intra-op thread (the same v2 JSON);
- `mlflow models serve`, 1 worker, of the same ONNX model saved with `mlflow.onnx` (its own
  `inputs` JSON).

Prints requests/s, p50 and p99 of each and Kiln's ratios; the built-in scorer on iris against
Kiln's hand-written iris scorer, each alone in its `kiln serve`; and the graph time per row, two ways, each against onnxruntime
in process on the same batches:

- in a loop on one thread: onnxruntime's `run` from Python against kiln-nn's `Graph::run` on
  ONNX Runtime and on tract (runtime/nn/examples/graph_time.rs), which is what Kiln's backend
  adds around the library;
- inside the servers, over the same sequential requests: `session.run` timed in the FastAPI
  server against Kiln's `kiln_graph_duration_seconds`. A call that comes once per request, after
  the network and the server's own work, is several times slower than the same call in a hot
  loop, in Python as in Kiln, so this is the comparison at the same cadence.

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
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

FASTAPI_APP = '''
import os
import time
import numpy as np
import onnxruntime
from fastapi import FastAPI

options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = onnxruntime.InferenceSession(os.environ["MODEL"], options, providers=["CPUExecutionProvider"])
names = [o.name for o in session.get_outputs()]
app = FastAPI()
# Time inside session.run, for the graph time at the same request cadence as Kiln's.
spent = {"seconds": 0.0, "calls": 0}


@app.get("/stats")
async def stats():
    return spent


@app.post("/v2/models/{model}/infer")
async def infer(model: str, body: dict):
    tensor = body["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    started = time.perf_counter()
    outputs = session.run(None, {"X": x})
    spent["seconds"] += time.perf_counter() - started
    spent["calls"] += 1
    return {"model_name": model, "outputs": [
        {"name": n, "datatype": "INT64" if v.dtype == np.int64 else "FP32", "shape": list(v.shape),
         "data": v.reshape(-1).tolist()} for n, v in zip(names, outputs)]}
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


def sequential_time(url, bodies, counter):
    """Time per row in µs that `counter()` (seconds, calls) accumulates over sequential requests:
    the same cadence for every server, one request after another from one client."""
    times = {}
    session = requests.Session()
    for n, body in bodies.items():
        for _ in range(100):
            session.post(url, data=body, headers={"Content-Type": "application/json"})
        seconds_before, count_before = counter()
        calls = 1000 if n == 1 else 300
        for _ in range(calls):
            reply = session.post(url, data=body, headers={"Content-Type": "application/json"})
            reply.raise_for_status()
        seconds_after, count_after = counter()
        count = count_after - count_before
        times[n] = (seconds_after - seconds_before) / count / n * 1e6 if count else float("nan")
    return times


def graph_time(url, metrics_url, bodies, deployment, backend):
    """The host's graph time per row in µs (kiln_graph_duration_seconds) over sequential requests."""
    labels = {"deployment": deployment, "backend": backend}

    def counter():
        text = requests.get(metrics_url).text
        return (metric(text, "kiln_graph_duration_seconds_sum", labels),
                metric(text, "kiln_graph_duration_seconds_count", labels))
    return sequential_time(url, bodies, counter)


def fastapi_run_time(url, stats_url, bodies):
    """onnxruntime's session.run time per row in µs inside the FastAPI server, sequential requests."""
    def counter():
        stats = requests.get(stats_url).json()
        return stats["seconds"], stats["calls"]
    return sequential_time(url, bodies, counter)


def hot_loop(graph_time_bin, model, batch, backend, calls):
    """kiln-nn's Graph::run in a loop on one thread (runtime/nn/examples/graph_time.rs), µs per row."""
    rows, columns = batch.shape
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        f.write(batch.astype("<f4").tobytes())
        f.flush()
        out = subprocess.run([graph_time_bin, str(model), f.name, str(rows), str(columns), str(calls), backend],
                             capture_output=True, text=True)
    if out.returncode != 0:
        print(f"graph_time {model.parent.name} {backend}: {out.stderr.strip()}", file=sys.stderr)
        return None
    return float(out.stdout.split()[-1]) / rows


def models():
    """name: (fitted estimator, rows it was fitted on)."""
    iris = load_iris()
    x_iris = iris.data.astype(np.float32)
    x, y = make_classification(n_samples=3000, n_features=20, n_informative=12, n_classes=3, random_state=0)
    x = x.astype(np.float32)
    binary = (y == 0).astype(int)
    return {
        "iris": (LogisticRegression(max_iter=1000).fit(x_iris, iris.target), x_iris),
        "mlp": (MLPClassifier(hidden_layer_sizes=(512, 512), max_iter=30, random_state=0).fit(x, y), x),
        "forest": (RandomForestClassifier(n_estimators=300, max_depth=10, random_state=0).fit(x, y), x),
        "boosting": (GradientBoostingClassifier(n_estimators=300, max_depth=3, random_state=0).fit(x, binary), x),
    }


def start_kiln(kiln, args, log):
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen([kiln, "serve", *args, "--addr", f"127.0.0.1:{port}",
                             "--metrics-addr", f"127.0.0.1:{metrics_port}"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    return proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default="target/release/kiln")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--graph-time", help="runtime/nn's graph_time example (default: beside kiln)")
    args = parser.parse_args()
    kiln = str(pathlib.Path(args.kiln).resolve())
    graph_time_bin = args.graph_time or str(pathlib.Path(kiln).parent / "examples" / "graph_time")
    repo = pathlib.Path(__file__).resolve().parents[1]
    work = pathlib.Path(tempfile.mkdtemp(prefix="kiln-bench-onnx-"))
    store = str(work / "store")
    fitted = models()
    bodies, mlflow_bodies, batches = {}, {}, {}
    for name, (model, x) in fitted.items():
        d = work / name
        d.mkdir()
        onnx_model = to_onnx(model, x[:1], options={id(model): {"zipmap": False}})
        (d / "model.onnx").write_bytes(onnx_model.SerializeToString())
        columns = [f"f{i}" for i in range(x.shape[1])]
        (d / "data.csv").write_text(",".join(columns) + "\n" + "\n".join(",".join(map(str, r)) for r in x[:200].tolist()) + "\n")
        subprocess.run([kiln, "manifest", "create", "--model", str(d / "model.onnx"), "--scorer", "onnx",
                        "--sample", str(d / "data.csv"), "--name", name, "-o", str(d / "kiln.toml")],
                       check=True, capture_output=True)
        subprocess.run([kiln, "image", "build", str(d / "kiln.toml"), "--store", store], check=True, capture_output=True)
        import mlflow.onnx
        mlflow.onnx.save_model(onnx_model, str(d / "mlflow-model"))
        width = x.shape[1]
        batches[name] = {1: x[:1], 64: np.resize(x, (64, width))}
        bodies[name] = {n: json.dumps({"inputs": [{"name": "X", "shape": [n, width], "datatype": "FP32",
                                                    "data": b.reshape(-1).tolist()}]}) for n, b in batches[name].items()}
        mlflow_bodies[name] = {n: json.dumps({"inputs": {"X": b.tolist()}}) for n, b in batches[name].items()}

    results, graph, in_server, procs = {}, {}, {}, []
    deploys = [arg for name in fitted for arg in ("--deploy", f"{name}={name}:1")]
    try:
        # Kiln, graphs on ONNX Runtime
        proc, url, metrics_url = start_kiln(kiln, ["--store", store, *deploys], work / "kiln.log")
        procs.append(proc)
        for name in fitted:
            path = f"{url}/v2/models/{name}/infer"
            wait_for(path, bodies[name][1], proc)
            for n in (1, 64):
                results[("kiln", name, n)] = wrk(path, bodies[name][n], args.seconds, args.connections, work)
            graph[("onnxruntime", name)] = graph_time(path, metrics_url, bodies[name], name, "onnxruntime")
        stop(proc)
        # Kiln, graphs on tract (what it runs well: no trees)
        proc, url, metrics_url = start_kiln(
            kiln, ["--store", store, "--nn-backend", "tract", "--deploy", "iris=iris:1", "--deploy", "mlp=mlp:1"],
            work / "kiln-tract.log")
        procs.append(proc)
        for name in ("iris", "mlp"):
            path = f"{url}/v2/models/{name}/infer"
            wait_for(path, bodies[name][1], proc)
            graph[("tract", name)] = graph_time(path, metrics_url, bodies[name], name, "tract")
        stop(proc)
        # The hand-written iris scorer (the same model in plain Rust, no graph)
        proc, url, _ = start_kiln(kiln, ["--deploy", f"iris={repo / 'target/components/iris.wasm'},"
                                         f"artifacts={repo / 'examples/iris/model'}"], work / "kiln-iris.log")
        procs.append(proc)
        path = f"{url}/v2/models/iris/infer"
        plain = bodies["iris"][1].replace('"name": "X"', '"name": "input"')
        wait_for(path, plain, proc)
        handwritten = wrk(path, plain, args.seconds, args.connections, work)
        stop(proc)
        # The built-in scorer on the same iris model, also alone in its server
        proc, url, _ = start_kiln(kiln, ["--store", store, "--deploy", "iris=iris:1"], work / "kiln-iris-onnx.log")
        procs.append(proc)
        path = f"{url}/v2/models/iris/infer"
        wait_for(path, bodies["iris"][1], proc)
        builtin = wrk(path, bodies["iris"][1], args.seconds, args.connections, work)
        stop(proc)

        def load_test(server, name, command, path, model_bodies, after=None, **popen):
            """Starts a Python server on a free port, loads it with wrk per batch size, then runs
            `after(base_url)` if given, and stops it; returns what `after` returned."""
            port = free_port()
            proc = subprocess.Popen([part.replace("{port}", str(port)) for part in command],
                                    stdout=subprocess.DEVNULL, stderr=open(work / f"{name}-{server}.log", "w"), **popen)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}{path}"
            wait_for(url, model_bodies[1], proc)
            for n in (1, 64):
                results[(server, name, n)] = wrk(url, model_bodies[n], args.seconds, args.connections, work)
            measured = after(f"http://127.0.0.1:{port}") if after else None
            stop(proc)
            return measured

        (work / "app.py").write_text(FASTAPI_APP)
        mlflow = shutil.which("mlflow", path=str(pathlib.Path(sys.executable).parent)) or "mlflow"
        for name in fitted:
            in_server[name] = load_test(
                "onnxruntime+FastAPI", name,
                [sys.executable, "-m", "uvicorn", "app:app", "--workers", "1", "--port", "{port}",
                 "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"],
                f"/v2/models/{name}/infer", bodies[name],
                after=lambda base: fastapi_run_time(f"{base}/v2/models/{name}/infer", f"{base}/stats", bodies[name]),
                cwd=work, env=dict(os.environ, MODEL=str(work / name / "model.onnx")))
            load_test("mlflow models serve", name,
                      [mlflow, "models", "serve", "-m", str(work / name / "mlflow-model"), "--env-manager", "local",
                       "-w", "1", "-p", "{port}", "-h", "127.0.0.1"],
                      "/invocations", mlflow_bodies[name],
                      env=dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"))
    finally:
        for proc in procs:
            stop(proc)

    # onnxruntime in process, one thread, on the same batches: from Python, and through kiln-nn.
    native, rust = {}, {}
    for name in fitted:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(work / name / "model.onnx"), options,
                                               providers=["CPUExecutionProvider"])
        for n, batch in batches[name].items():
            calls = 5000 if n == 1 else 1000
            for _ in range(100):
                session.run(None, {"X": batch})
            started = time.perf_counter()
            for _ in range(calls):
                session.run(None, {"X": batch})
            native[(name, n)] = (time.perf_counter() - started) / calls / n * 1e6
            for backend in ("onnxruntime", "tract"):
                if backend == "tract" and name not in ("iris", "mlp"):
                    continue
                rust[(backend, name, n)] = hot_loop(graph_time_bin, work / name / "model.onnx", batch,
                                                    backend, calls)

    print(f"\nwrk -t2 -c{args.connections} -d{args.seconds}s, this machine; Python servers: 1 worker, 1 onnxruntime thread")
    print(f"{'model':<9} {'server':<22} {'rows':>4} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'failed':>6}  Kiln vs it")
    for name in fitted:
        for n in (1, 64):
            k = results[("kiln", name, n)]
            for server in ("kiln", "onnxruntime+FastAPI", "mlflow models serve"):
                r = results[(server, name, n)]
                ratio = "" if server == "kiln" else (
                    f"{k['rps'] / r['rps']:.1f}x requests/s, p99 {k['p99']:.2f} vs {r['p99']:.2f} ms")
                print(f"{name:<9} {server:<22} {n:>4} {r['rps']:>11,.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                      f"{r['failed']:>6}  {ratio}")

    def cell(t, base):
        return f"{t:8.2f} ({t / base:.2f}x)" if t is not None else f"{'n/a':>8}        "

    print("\ngraph time per row, µs, in a loop on one thread: onnxruntime's run() from Python against\n"
          "Kiln's backends (kiln-nn's Graph::run, conversions and deadline included; graph_time example)")
    for name in fitted:
        for n in (1, 64):
            base = native[(name, n)]
            print(f"  {name:<9} {n:>2} rows: onnxruntime from Python {base:8.2f}"
                  f"   kiln-nn on onnxruntime {cell(rust.get(('onnxruntime', name, n)), base)}"
                  f"   on tract {cell(rust.get(('tract', name, n)), base)}")
    print("\ngraph time per row, µs, inside the servers at the same cadence (1,000 one-row or 300 64-row\n"
          "requests one after another): onnxruntime's run() in the FastAPI server against Kiln's\n"
          "kiln_graph_duration_seconds (the host's call into the backend, conversions included)")
    for name in fitted:
        for n in (1, 64):
            base = in_server[name][n]
            print(f"  {name:<9} {n:>2} rows: onnxruntime in FastAPI {base:8.2f}"
                  f"   Kiln on onnxruntime {cell(graph.get(('onnxruntime', name), {}).get(n), base)}"
                  f"   on tract {cell(graph.get(('tract', name), {}).get(n), base)}")
    print(f"\niris, one row, each scorer alone in its kiln serve: built-in onnx scorer {builtin['rps']:,.0f} "
          f"requests/s, hand-written iris scorer {handwritten['rps']:,.0f}: {builtin['rps'] / handwritten['rps']:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

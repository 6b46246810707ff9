"""Python scorers (`scorer = "python"`) beyond the Rust tests: Python pre-processing in front of
an ONNX graph run on the host through wasi:nn answers as onnxruntime does, and a Python scorer
goes from a `kiln run`'s output to a keyed deployment on a fresh `kiln up`."""
import os
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime
import requests

from conftest import REPO, Kiln

sys.path.insert(0, str(REPO / "examples" / "workbench"))

import story  # noqa: E402  (the Workbench example's servers and CLI driver)

KILN = os.environ.get("KILN_BIN", str(REPO / "target" / "debug" / "kiln"))


def test_python_preprocessing_before_an_onnx_graph_answers_as_onnxruntime(tmp_path):
    example = REPO / "examples" / "python-onnx"
    for name in ("score.py", "kiln.toml"):
        shutil.copy(example / name, tmp_path / name)
    subprocess.run([sys.executable, str(example / "train.py"), str(tmp_path)], check=True)
    store = str(tmp_path / "store")
    done = subprocess.run([KILN, "image", "build", str(tmp_path / "kiln.toml"), "--store", store],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    server = Kiln(["--store", store, "--deploy", "inches=iris-inches:1"])
    try:
        rng = np.random.default_rng(7)
        inches = (rng.uniform([1.6, 0.8, 0.4, 0.04], [3.2, 1.8, 2.8, 1.0], size=(257, 4))).astype(np.float32)
        body = {"inputs": [{"name": "inches", "datatype": "FP32", "shape": list(inches.shape),
                            "data": inches.reshape(-1).tolist()}]}
        reply = requests.post(f"{server.url}/v2/models/inches/infer", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        outputs = {o["name"]: o for o in reply.json()["outputs"]}
        session = onnxruntime.InferenceSession(str(tmp_path / "model" / "model.onnx"),
                                               providers=["CPUExecutionProvider"])
        cm = (inches.astype(np.float32) * np.float32(2.54)).astype(np.float32)
        labels, probabilities = session.run(["label", "probabilities"], {"X": cm})
        assert outputs["label"]["data"] == labels.tolist()
        served = np.asarray(outputs["probabilities"]["data"], dtype=np.float32).reshape(probabilities.shape)
        assert np.abs(served - probabilities).max() <= 1e-5
        names = ["setosa", "versicolor", "virginica"]
        assert outputs["species"]["data"] == [names[i] for i in labels]
        # The script's ValueError is the caller's 400.
        negative = {"inputs": [{"name": "inches", "datatype": "FP32", "shape": [1, 4], "data": [-1, 1, 1, 1]}]}
        bad = requests.post(f"{server.url}/v2/models/inches/infer", json=negative, timeout=30)
        assert bad.status_code == 400 and "none may be negative" in bad.text, bad.text
        metrics = requests.get(f"http://{server.metrics_addr}/metrics", timeout=10).text
        assert 'kiln_graph_duration_seconds_count{' in metrics and 'deployment="inches"' in metrics
    finally:
        server.stop()


def test_a_python_scorer_from_a_run_to_a_keyed_deployment(tmp_path):
    # The project: a training script, and examples/python-iris's scorer, which it ships in its output.
    project = tmp_path / "project"
    shutil.copytree(REPO / "tests" / "python" / "fixtures" / "project", project)
    shutil.copy(REPO / "examples" / "python-iris" / "score.py", project / "score.py")
    with story.Servers(KILN, tmp_path) as servers:
        s = story.Story(servers.kiln, servers.api, servers.predict, servers.prometheus, servers.registry,
                        servers.work / "cli", say=lambda _: None)
        s.kiln("login", "--url", s.api, "--token", servers.token, "--team", "lab", "--workgroup", "iris")
        s.kiln("team", "create", "lab")
        s.kiln("workgroup", "create", "iris")
        s.kiln("project", "create", "pyiris")
        s.kiln("target", "add", "local", "--kind", "local", "--set", f"interpreter={sys.executable}")
        s.kiln("run", "submit", "--project", "pyiris", "--dir", str(project), "--target", "local",
               "-e", "train", "-f", "train.py")
        run = s.kiln("run", "list", "--project", "pyiris", json_out=True)["items"][0]
        assert run["status"] == "completed", run
        s.kiln("model", "register", "pyiris", "--run", run["id"], "--path", "model")
        files = tmp_path / "files"
        s.kiln("model", "download", "pyiris", "--version", "1", "-o", str(files))
        s.kiln("manifest", "create", "--scorer", "python", "--script", str(files / "score.py"),
               "--model", str(files / "weights.json"), "--sample", str(files / "sample.csv"),
               "--name", "pyiris", "-o", str(files / "kiln.toml"))
        store = str(tmp_path / "store")
        built = s.kiln("image", "build", str(files / "kiln.toml"), "--store", store, json_out=True)
        remote = f"{s.registry}/lab/pyiris:1"
        s.kiln("push", built["tag"], remote, "--store", store, "--insecure-registry", s.registry)
        s.kiln("image", "register", "pyiris-1", remote)
        created = s.kiln("deployment", "create", "pyiris", "--image", "pyiris-1", json_out=True)
        key = created["keys"]["primary"]
        s.wait_ready("pyiris")
        rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
        body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4], "data": sum(rows, [])}]}
        url = f"http://{s.predict}/v2/models/pyiris/infer"
        assert requests.post(url, json=body, timeout=30).status_code == 401
        reply = requests.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert reply.status_code == 200, reply.text
        assert reply.json()["outputs"][0]["data"] == [0, 2]

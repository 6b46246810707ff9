"""The Workbench story end to end (examples/workbench/story.py) on a fresh `kiln up`: train on the
local target and on the Docker target (podman's Docker Engine API), package with the built-in ONNX
scorer, push, deploy, score with tritonclient, see the drift alert fire in a real Prometheus, and
let the retraining policy run the training again on the Docker target and put its model online."""
import json
import os
import subprocess
import sys
import tomllib

import numpy as np
import onnxruntime
import requests

from conftest import REPO

sys.path.insert(0, str(REPO / "examples" / "workbench"))

import story  # noqa: E402  (the example itself)

KILN = os.environ.get("KILN_BIN", str(REPO / "target" / "debug" / "kiln"))
DOCKER_HOST = os.environ.get("KILN_TEST_DOCKER_HOST", f"unix://{REPO / 'target' / 'podman.sock'}")
PYTHON_IMAGE = os.environ.get("KILN_TEST_PYTHON_IMAGE", "localhost/kiln-python:onnx")


def onnxruntime_says(model, rows):
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(["label", "probabilities"], {"X": np.asarray(rows, dtype=np.float32)})
    return labels, probabilities


def test_the_workbench_story_on_the_local_and_docker_targets(tmp_path):
    lines = []
    with story.Servers(KILN, tmp_path, docker_host=DOCKER_HOST) as servers:
        seen = story.story(servers, sys.executable, (DOCKER_HOST, PYTHON_IMAGE), say=lines.append)
        s = seen["story"]

        # The training experiment ran on the local target and on the Docker target; each run logged
        # its params, its metric and its model files.
        for key, target in (("run", "local"), ("docker_run", "docker")):
            run = s.kiln("run", "show", seen[key]["id"], json_out=True)
            assert (run["status"], run["target"], run["experiment"]) == ("completed", target, "train"), run
            assert str(run["data"]["params"]["trees"]) == "30", run
            assert run["data"]["metrics"]["accuracy"] > 0.8, run
            listed = requests.get(f"{servers.api}/api/v1/teams/lab/workgroups/wine/runs/{run['id']}/artifacts",
                                  params={"path": "model"}, headers={"Authorization": f"Bearer {servers.token}"})
            assert listed.status_code == 200, listed.text
            files = {a["path"].rsplit("/", 1)[-1] for a in listed.json()["items"]}
            assert {"model.onnx", "data.csv"} <= files, listed.text
        version = s.kiln("model", "versions", "wine", json_out=True)["items"]
        assert [v["run"] for v in sorted(version, key=lambda v: v["version"])] == [seen["run"]["id"], seen["retrained"]["id"]]

        # The manifest came from the model: the built-in scorer, its schema, sample and baseline.
        manifest = tomllib.loads((seen["files"] / "kiln.toml").read_text())
        assert manifest["scorer"] == "onnx"
        assert manifest["schema"]["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 13]}]
        assert manifest["sample"]["file"] == "data.csv" and "baseline" in manifest

        # The deployment pins the pushed image by digest; tritonclient's answers are onnxruntime's.
        deployment = s.kiln("deployment", "show", "wine", json_out=True)
        assert deployment["digest"].startswith("sha256:"), deployment
        labels, probabilities = onnxruntime_says(seen["files"] / "model.onnx", seen["rows"][:20])
        np.testing.assert_array_equal(seen["first"].as_numpy("label"), labels)
        np.testing.assert_allclose(seen["first"].as_numpy("probabilities"), probabilities, atol=1e-5, rtol=0)

        # In-distribution traffic raised no alert; shifted proline fired KilnDataDrift.
        assert not [a for a in seen["alerts_before"] if a["state"] == "firing"], seen["alerts_before"]
        alert = seen["alerts"][0]
        assert (alert["labels"]["alertname"], alert["labels"]["deployment"]) == ("KilnDataDrift", "wine")
        report = s.kiln("deployment", "drift", "wine", json_out=True)
        assert "proline" in json.dumps(report), report

        # The policy submitted one retraining run, on the Docker target, and recorded it.
        retrained = seen["retrained"]
        assert (retrained["status"], retrained["target"], retrained["experiment"]) == ("completed", "docker", "retrain")
        events = s.kiln("deployment", "events", "wine", json_out=True)["items"]
        retraining = [e for e in events if e["kind"] == "retraining"]
        assert len(retraining) == 1 and retraining[0]["run"] == retrained["id"], events
        # Its container is gone once it ended.
        status = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket",
                                 DOCKER_HOST.removeprefix("unix://"),
                                 f"http://d/v1.41/containers/kiln-run-{retrained['id']}/json"],
                                capture_output=True, text=True).stdout
        assert status == "404", status

        # Version 2 (trained in the container) serves, and answers as onnxruntime does on it.
        labels, probabilities = onnxruntime_says(seen["files2"] / "model.onnx", seen["rows"][:20])
        np.testing.assert_array_equal(seen["second"].as_numpy("label"), labels)
        np.testing.assert_allclose(seen["second"].as_numpy("probabilities"), probabilities, atol=1e-5, rtol=0)
        assert s.score_quietly(seen["rows"][:1])["model_version"] == "2"
    print("\n".join(lines))

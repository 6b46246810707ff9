"""Kiln and the `oras` client through a real registry: each reads what the other pushed."""
import json
import os
import pathlib
import shutil
import subprocess

import oras.client
import requests

from conftest import REPO, Kiln

KILN = os.environ.get("KILN_BIN", str(REPO / "target" / "debug" / "kiln"))


def test_a_component_pushed_by_oras_deploys(registry, tmp_path):
    component = tmp_path / "faults.wasm"
    shutil.copy(REPO / "target" / "components" / "faults.wasm", component)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architecture": "wasm", "os": "wasip2", "layerDigests": []}))
    client = oras.client.OrasClient(hostname=registry, insecure=True)
    target = f"{registry}/components/faults:1"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        client.push(
            target=target,
            files=["faults.wasm:application/wasm"],
            manifest_config="config.json:application/vnd.wasm.config.v0+json",
        )
    finally:
        os.chdir(cwd)
    server = Kiln(["--store", str(tmp_path / "store"), "--deploy", f"echo=oci://{target},config=echo"])
    try:
        reply = requests.post(
            f"{server.url}/v2/models/echo/infer",
            json={"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1.5, -2]}]},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["outputs"][0]["data"] == [1.5, -2.0]
    finally:
        server.stop()


def test_oras_pulls_what_kiln_pushed(registry, tmp_path):
    store = str(tmp_path / "store")
    manifest = REPO / "examples" / "iris" / "kiln.toml"
    subprocess.run([KILN, "image", "build", str(manifest), "--store", store], check=True, capture_output=True)
    target = f"{registry}/models/iris:1"
    subprocess.run([KILN, "push", "iris:1", target, "--store", store], check=True, capture_output=True)
    client = oras.client.OrasClient(hostname=registry, insecure=True)
    files = client.pull(target=target, outdir=str(tmp_path / "out"))
    names = sorted(pathlib.Path(f).name for f in files)
    assert names == ["sample.json", "scorer.wasm", "weights.json"], names
    assert (tmp_path / "out" / "scorer.wasm").read_bytes() == (REPO / "target" / "components" / "iris.wasm").read_bytes()
    weights = json.loads((tmp_path / "out" / "weights.json").read_text())
    expected = json.loads((REPO / "examples" / "iris" / "model" / "weights.json").read_text())
    assert weights == expected

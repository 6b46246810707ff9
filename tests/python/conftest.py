"""Fixtures: a real `kiln serve` with the iris scorer and weights trained here by scikit-learn."""
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "examples" / "iris"))

import train  # noqa: E402  (the example's own training script)


class KilnUp:
    """`kiln up` on a fresh data directory, ephemeral ports."""

    def __init__(self, data):
        binary = os.environ.get("KILN_BIN", str(REPO / "target" / "debug" / "kiln"))
        self.proc = subprocess.Popen(
            [binary, "up", "--data-dir", str(data), "--api-addr", "127.0.0.1:0",
             "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
             "--cache-dir", str(REPO / "target" / "test-cache"),
             # The admin of this test installation lets work groups reach loopback registries.
             "--allow-network", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.log, self.api, self.token = [], None, None
        ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.log.append(line)
                if "shown once" in line:
                    self.token = line.split()[-1]
                match = re.search(r"kiln up: API (http://\S+),", line)
                if match:
                    self.api = match.group(1)
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(120):
            self.proc.kill()
            raise RuntimeError("kiln up did not start:\n" + "".join(self.log))

    def call(self, method, path, **kwargs):
        response = requests.request(method, self.api + path,
                                    headers={"Authorization": f"Bearer {self.token}"}, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


class Kiln:
    def __init__(self, args):
        binary = os.environ.get("KILN_BIN", str(REPO / "target" / "debug" / "kiln"))
        self.proc = subprocess.Popen(
            [binary, "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
             "--cache-dir", str(REPO / "target" / "test-cache"), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.log = []
        found = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                match = re.search(r"on http://(\S+) \(metrics on http://(\S+)/metrics\)", line)
                if match:
                    self.addr, self.metrics_addr = match.group(1), match.group(2)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.time() + 120
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.time() > deadline:
                self.proc.kill()
                time.sleep(0.1)
                raise RuntimeError("kiln serve did not start:\n" + "".join(self.log))
        self.url = f"http://{self.addr}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory):
    """The scikit-learn model and data, and the weights directory the scorer reads."""
    out = tmp_path_factory.mktemp("iris-model")
    model, data = train.train()
    subprocess.run([sys.executable, str(REPO / "examples" / "iris" / "train.py"), str(out)], check=True)
    return model, data, out


@pytest.fixture(scope="session")
def kiln(iris_model):
    _, _, weights = iris_model
    component = REPO / "target" / "components" / "iris.wasm"
    server = Kiln(["--deploy", f"iris={component},artifacts={weights}"])
    yield server
    server.stop()


@pytest.fixture
def registry(tmp_path):
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is required (Debian package docker-registry)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {tmp_path / 'data'}}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(30)

"""Kiln's built-in ONNX scorer against onnxruntime: scikit-learn models exported by skl2onnx,
deployed with `scorer = "onnx"` and no scoring code, answer as onnxruntime does on the same
inputs, through Open Inference Protocol v2 (JSON and binary, with tritonclient) and MLflow."""
import json
import os
import subprocess
import tomllib

import numpy as np
import onnx
import onnxruntime
import pytest
import requests
import tritonclient.http as triton
from skl2onnx import to_onnx
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from conftest import REPO, Kiln

KILN = os.environ.get("KILN_BIN", str(REPO / "target" / "debug" / "kiln"))


def iris():
    data = load_iris()
    return data.data.astype(np.float32), data.target, [n.replace(" (cm)", "").replace(" ", "_") for n in data.feature_names]


def diabetes():
    data = load_diabetes()
    return data.data.astype(np.float32), data.target, list(data.feature_names)


# name: (estimator, data set, classifier?)
FAMILIES = {
    "logistic": (lambda: LogisticRegression(max_iter=1000), iris, True),
    "mlp": (lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=3000, random_state=0), iris, True),
    "forest": (lambda: RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0), iris, True),
    "boosting": (lambda: GradientBoostingClassifier(n_estimators=20, random_state=0), iris, True),
    "linear": (lambda: LinearRegression(), diabetes, False),
    "mlpreg": (lambda: MLPRegressor(hidden_layer_sizes=(8,), max_iter=3000, random_state=0), diabetes, False),
    # TreeEnsembleRegressor and Scaler: operators Kiln adds to tract's.
    "forestreg": (lambda: RandomForestRegressor(n_estimators=20, max_depth=5, random_state=0), diabetes, False),
    "boostingreg": (lambda: GradientBoostingRegressor(n_estimators=20, random_state=0), diabetes, False),
    "scaled": (lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), iris, True),
}


def kiln(*args, check=True):
    done = subprocess.run([KILN, *args], capture_output=True, text=True)
    if check:
        assert done.returncode == 0, f"kiln {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def export(estimator, x, path):
    last = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator  # a pipeline's classifier
    options = {id(last): {"zipmap": False}} if hasattr(last, "predict_proba") else None
    path.write_bytes(to_onnx(estimator, x[:1], options=options).SerializeToString())


def write_csv(path, columns, x):
    path.write_text(",".join(columns) + "\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in x) + "\n")


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory):
    """Each family trained, exported, made a manifest by `kiln manifest create` and built."""
    root = tmp_path_factory.mktemp("onnx")
    store = root / "store"
    models = {}
    for name, (make, dataset, classifier) in FAMILIES.items():
        x, y, columns = dataset()
        estimator = make().fit(x, y)
        d = root / name
        d.mkdir()
        export(estimator, x, d / "model.onnx")
        write_csv(d / "data.csv", columns, x[::3])
        kiln("manifest", "create", "--model", str(d / "model.onnx"), "--scorer", "onnx",
             "--sample", str(d / "data.csv"), "--name", name, "-o", str(d / "kiln.toml"), "--store", str(store))
        kiln("image", "build", str(d / "kiln.toml"), "--store", str(store))
        session = onnxruntime.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
        models[name] = {"dir": d, "x": x, "columns": columns, "classifier": classifier, "session": session}
    return store, models


@pytest.fixture(scope="session")
def onnx_kiln(onnx_models):
    store, models = onnx_models
    deploys = []
    for name in models:
        deploys += ["--deploy", f"{name}={name}:1"]
    server = Kiln(["--store", str(store), *deploys])
    yield server
    server.stop()


def reference(model, x):
    """onnxruntime's outputs by name."""
    session = model["session"]
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))


def inputs_of(model):
    """The training rows and, so that answers are not only on seen data, perturbed copies."""
    x = model["x"]
    rng = np.random.default_rng(7)
    noisy = x + rng.normal(0, 0.05, x.shape).astype(np.float32) * x.std(axis=0)
    return np.concatenate([x, noisy]).astype(np.float32)


def check(expected, got, classifier):
    if classifier:
        np.testing.assert_array_equal(got["label"], expected["label"])
        np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=1e-5, rtol=0)
    else:
        np.testing.assert_allclose(got["variable"].reshape(-1), expected["variable"].reshape(-1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_predictions_equal_onnxruntime_over_v2_json_binary_and_mlflow(onnx_models, onnx_kiln, family):
    _, models = onnx_models
    model = models[family]
    x = inputs_of(model)
    expected = reference(model, x)
    client = triton.InferenceServerClient(onnx_kiln.addr)
    assert client.is_model_ready(family)
    metadata = client.get_model_metadata(family)
    assert metadata["platform"] == "onnx"
    assert metadata["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, x.shape[1]]}]
    names = [o["name"] for o in metadata["outputs"]]
    assert names == (["label", "probabilities"] if model["classifier"] else ["variable"])
    for binary in (True, False):
        tensor = triton.InferInput("X", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in names]
        result = client.infer(family, [tensor], outputs=outputs)
        check(expected, {n: result.as_numpy(n) for n in names}, model["classifier"])
    # One row at a time answers as the batch does.
    one = triton.InferInput("X", [1, x.shape[1]], "FP32")
    one.set_data_from_numpy(x[5:6])
    result = client.infer(family, [one])
    check({k: v[5:6] for k, v in expected.items()}, {n: result.as_numpy(n) for n in names}, model["classifier"])

    reply = requests.post(f"{onnx_kiln.url}/deployments/{family}/invocations",
                          json={"dataframe_split": {"columns": model["columns"], "data": x.tolist()}})
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    if len(names) == 1:  # MLflow gives a single output's values as they are
        got = {names[0]: np.array(predictions)}
    else:
        got = {n: np.array([p[n] for p in predictions]) for n in names}
    check(expected, got, model["classifier"])


def test_manifest_create_fills_schema_sample_and_baseline_from_the_model(onnx_models):
    store, models = onnx_models
    manifest = tomllib.loads((models["forest"]["dir"] / "kiln.toml").read_text())
    assert manifest["scorer"] == "onnx"
    assert manifest["model"]["files"] == ["model.onnx"]
    assert manifest["schema"]["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert manifest["schema"]["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ]
    assert manifest["sample"]["file"] == "data.csv"
    assert "baseline" in manifest
    inspect = json.loads(kiln("image", "inspect", "forest:1", "--output", "json", "--store", str(store)).stdout)
    config = inspect["config"]
    assert config["scorer_source"].startswith("kiln/scorers/onnx:")
    assert [f["name"] for f in config["baseline"]["features"]] == models["forest"]["columns"]
    assert {p["name"] for p in config["baseline"]["predictions"]} >= {"label"}
    # The image pins the built-in scorer's component: the same layer as its store artifact.
    scorers = json.loads(kiln("scorer", "list", "--output", "json", "--store", str(store)).stdout)["items"]
    onnx = next(s for s in scorers if s["name"] == "onnx")
    assert config["scorer_source"] == f"{onnx['tag']}@{onnx['digest']}"
    builtin = json.loads(kiln("image", "inspect", onnx["tag"], "--output", "json", "--store", str(store)).stdout)
    assert builtin["kind"] == "wasm-component"
    assert inspect["component"] == builtin["component"]


def test_the_built_in_scorer_is_published_as_a_wasm_oci_artifact(onnx_models, registry):
    store, _ = onnx_models
    target = f"{registry}/kiln/scorers/onnx:test"
    kiln("push", "kiln/scorers/onnx:" + json.loads(
        kiln("scorer", "list", "--output", "json", "--store", str(store)).stdout)["items"][0]["version"],
        target, "--store", str(store), "--insecure-registry", registry)
    manifest = requests.get(f"http://{registry}/v2/kiln/scorers/onnx/manifests/test",
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
    assert manifest["config"]["mediaType"] == "application/vnd.wasm.config.v0+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/wasm"]


def test_an_unsupported_operator_fails_the_build_and_names_it(tmp_path):
    x, y, columns = diabetes()
    export(SVR().fit(x, y), x, tmp_path / "model.onnx")
    write_csv(tmp_path / "data.csv", columns, x[:20])
    done = kiln("manifest", "create", "--model", str(tmp_path / "model.onnx"), "--scorer", "onnx",
                "--sample", str(tmp_path / "data.csv"), "-o", str(tmp_path / "kiln.toml"),
                "--store", str(tmp_path / "store"), check=False)
    assert done.returncode != 0
    assert "unsupported ONNX operator: SVMRegressor (ai.onnx.ml)" in done.stderr, done.stderr
    assert not (tmp_path / "kiln.toml").exists()
    # A hand-written manifest fails at `kiln image build`, at load, before anything is stored.
    (tmp_path / "kiln.toml").write_text('name = "svr"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    done = kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store"), check=False)
    assert done.returncode != 0
    assert "SVMRegressor (ai.onnx.ml)" in done.stderr, done.stderr
    listed = kiln("image", "list", "--output", "json", "--store", str(tmp_path / "store")).stdout
    assert "svr" not in listed


def test_a_truncated_model_fails_the_build(onnx_models, tmp_path):
    _, models = onnx_models
    whole = (models["mlp"]["dir"] / "model.onnx").read_bytes()
    (tmp_path / "model.onnx").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "kiln.toml").write_text('name = "cut"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    done = kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store"), check=False)
    assert done.returncode != 0
    assert "model.onnx: not a readable ONNX model" in done.stderr, done.stderr
    # No .onnx file at all is named too.
    (tmp_path / "model.onnx").unlink()
    (tmp_path / "weights.bin").write_bytes(b"\0")
    (tmp_path / "kiln.toml").write_text('name = "none"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["weights.bin"]\n')
    done = kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store"), check=False)
    assert done.returncode != 0
    assert "no .onnx file among the image's model files (weights.bin)" in done.stderr, done.stderr


def test_a_tree_ensemble_whose_child_is_outside_its_tree_fails_the_build(onnx_models, tmp_path):
    """tract walks trees without bounds checks, so Kiln checks every child id when it loads."""
    _, models = onnx_models
    model = onnx.load(str(models["forestreg"]["dir"] / "model.onnx"))
    trees = next(n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor")
    true_ids = next(a for a in trees.attribute if a.name == "nodes_truenodeids")
    branch = next(i for i, v in enumerate(true_ids.ints) if v != 0)
    true_ids.ints[branch] = 100000
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    (tmp_path / "kiln.toml").write_text('name = "bad-tree"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    done = kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store"), check=False)
    assert done.returncode != 0
    assert "nodes_truenodeids" in done.stderr and "children among its" in done.stderr, done.stderr


def test_an_input_of_the_wrong_shape_or_type_is_a_400_and_the_server_keeps_serving(onnx_models, onnx_kiln):
    client = triton.InferenceServerClient(onnx_kiln.addr)
    wrong = triton.InferInput("X", [2, 3], "FP32")
    wrong.set_data_from_numpy(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(triton.InferenceServerException) as error:
        client.infer("logistic", [wrong])
    assert error.value.status() == "400"
    assert "[-1, 4]" in error.value.message()
    typed = triton.InferInput("X", [1, 4], "FP64")
    typed.set_data_from_numpy(np.ones((1, 4), dtype=np.float64))
    with pytest.raises(triton.InferenceServerException) as error:
        client.infer("logistic", [typed])
    assert error.value.status() == "400"
    assert "FP32" in error.value.message()
    reply = requests.post(f"{onnx_kiln.url}/deployments/logistic/invocations",
                          json={"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}})
    assert reply.status_code == 400, reply.text
    ok = triton.InferInput("X", [1, 4], "FP32")
    ok.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32))
    assert client.infer("logistic", [ok]).as_numpy("label").tolist() == [0]

"""Kiln's built-in ONNX scorer against onnxruntime: scikit-learn models exported by skl2onnx,
deployed with `scorer = "onnx"` and no scoring code, answer as onnxruntime does on the same
inputs, through Open Inference Protocol v2 (JSON and binary, with tritonclient) and MLflow.

The graphs run on the host (wasi:nn): every family on ONNX Runtime, and the families tract
runs on a second server forced to the tract backend."""
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
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_classification
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                              GradientBoostingRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR

from conftest import REPO, Kiln
import skl2onnx.common._container as skl2onnx_container

_make_node = skl2onnx_container.make_node


def _make_node_with_int_flags(*args, **attrs):
    """skl2onnx 1.20 passes HistGradientBoosting's missing-value flags as numpy bools, which
    onnx 1.23 refuses where it wants ints: hand them over as the ints they mean."""
    def fix(v):
        if isinstance(v, np.ndarray) and v.dtype == np.bool_:
            return v.astype(np.int64)
        if isinstance(v, (list, tuple)) and any(isinstance(b, (bool, np.bool_)) for b in v):
            return [int(b) if isinstance(b, (bool, np.bool_)) else b for b in v]
        return v
    return _make_node(*args, **{k: fix(v) for k, v in attrs.items()})


skl2onnx_container.make_node = _make_node_with_int_flags

KILN = os.environ.get("KILN_BIN", str(REPO / "target" / "debug" / "kiln"))


def iris():
    data = load_iris()
    return data.data.astype(np.float32), data.target, [n.replace(" (cm)", "").replace(" ", "_") for n in data.feature_names]


def diabetes():
    data = load_diabetes()
    return data.data.astype(np.float32), data.target, list(data.feature_names)


def cancer():
    """Binary classification, 30 features."""
    data = load_breast_cancer()
    return data.data.astype(np.float32), data.target, [f"f{i}" for i in range(data.data.shape[1])]


def wide():
    """Five classes over 20 features, 2,000 rows: big enough for deep, many-tree forests."""
    x, y = make_classification(n_samples=2000, n_features=20, n_informative=12, n_classes=5, random_state=3)
    return x.astype(np.float32), y, [f"f{i}" for i in range(20)]


def gapped():
    """Iris with a small-integer column to one-hot encode (the imputer is fitted on NaN-free rows:
    JSON cannot carry NaN)."""
    x, y, columns = iris()
    x = x.copy()
    x[:, 3] = np.round(x[:, 3] * 2)
    return x, y, columns


def onehot_pipeline():
    columns = make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), [3]),
        (make_pipeline(SimpleImputer(), StandardScaler()), [0, 1, 2]))
    return make_pipeline(columns, LogisticRegression(max_iter=2000))


# Families tract runs too (the server forced to the tract backend serves them).
TRACT = {"logistic", "mlp", "forest", "boosting", "linear", "mlpreg", "forestreg", "boostingreg", "scaled"}

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
    # Beyond tract: ONNX Runtime runs every ai.onnx.ml operator skl2onnx emits.
    "binaryboosting": (lambda: GradientBoostingClassifier(n_estimators=200, max_depth=4, random_state=0), cancer, True),
    "bigforest": (lambda: RandomForestClassifier(n_estimators=300, max_depth=12, random_state=0), wide, True),
    "binaryforest": (lambda: RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0), cancer, True),
    "extratrees": (lambda: ExtraTreesClassifier(n_estimators=200, max_depth=10, random_state=0), wide, True),
    "extratreesreg": (lambda: ExtraTreesRegressor(n_estimators=100, max_depth=10, random_state=0), diabetes, False),
    "histboosting": (lambda: HistGradientBoostingClassifier(max_iter=100, random_state=0), wide, True),
    "histboostingbin": (lambda: HistGradientBoostingClassifier(max_iter=100, random_state=0), cancer, True),
    "histboostingreg": (lambda: HistGradientBoostingRegressor(max_iter=100, random_state=0), diabetes, False),
    "deepforestreg": (lambda: RandomForestRegressor(n_estimators=200, max_depth=16, random_state=0), diabetes, False),
    "svc": (lambda: make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)), iris, True),
    "svcbinary": (lambda: make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)), cancer, True),
    "svr": (lambda: make_pipeline(StandardScaler(), SVR()), diabetes, False),
    "knn": (lambda: KNeighborsClassifier(n_neighbors=5), iris, True),
    "knnreg": (lambda: KNeighborsRegressor(n_neighbors=5), diabetes, False),
    "ridge": (lambda: make_pipeline(StandardScaler(), Ridge()), diabetes, False),
    "imputed": (onehot_pipeline, gapped, True),
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


@pytest.fixture(scope="session")
def tract_kiln(onnx_models):
    """The same images on a server whose graphs run on tract (trees slowly: a long deadline)."""
    store, _ = onnx_models
    deploys = []
    for name in sorted(TRACT):
        deploys += ["--deploy", f"{name}={name}:1"]
    server = Kiln(["--store", str(store), "--nn-backend", "tract", "--deadline-ms", "60000", *deploys])
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
        np.testing.assert_allclose(got["variable"].reshape(-1), expected["variable"].reshape(-1), rtol=1e-5, atol=1e-5)


CASES = [(f, "onnxruntime") for f in FAMILIES] + [(f, "tract") for f in FAMILIES if f in TRACT]


@pytest.mark.parametrize("family,backend", CASES)
def test_predictions_equal_onnxruntime_over_v2_json_binary_and_mlflow(request, onnx_models, family, backend):
    _, models = onnx_models
    model = models[family]
    server = request.getfixturevalue("onnx_kiln" if backend == "onnxruntime" else "tract_kiln")
    x = inputs_of(model)
    expected = reference(model, x)
    client = triton.InferenceServerClient(server.addr)
    assert client.is_model_ready(family)
    metadata = client.get_model_metadata(family)
    assert metadata["platform"] == f"{backend}_onnx"
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

    reply = requests.post(f"{server.url}/deployments/{family}/invocations",
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


def test_what_tract_cannot_run_fails_the_build_naming_onnx_runtime(tmp_path):
    x, y, columns = diabetes()
    export(SVR().fit(x, y), x, tmp_path / "model.onnx")
    write_csv(tmp_path / "data.csv", columns, x[:20])
    tract = {**os.environ, "KILN_NN_BACKEND": "tract"}
    create = [KILN, "manifest", "create", "--model", str(tmp_path / "model.onnx"), "--scorer", "onnx",
              "--sample", str(tmp_path / "data.csv"), "-o", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store")]
    done = subprocess.run(create, capture_output=True, text=True, env=tract)
    assert done.returncode != 0
    assert "unsupported ONNX operator: SVMRegressor (ai.onnx.ml)" in done.stderr, done.stderr
    assert "ONNX Runtime runs it" in done.stderr, done.stderr
    assert not (tmp_path / "kiln.toml").exists()
    # A hand-written manifest fails at `kiln image build`, at load, before anything is stored.
    (tmp_path / "kiln.toml").write_text('name = "svr"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    build = [KILN, "image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store")]
    done = subprocess.run(build, capture_output=True, text=True, env=tract)
    assert done.returncode != 0
    assert "SVMRegressor (ai.onnx.ml)" in done.stderr, done.stderr
    assert "svr" not in kiln("image", "list", "--output", "json", "--store", str(tmp_path / "store")).stdout
    # On ONNX Runtime (the default) the same manifest builds.
    kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store"))
    assert "svr" in kiln("image", "list", "--output", "json", "--store", str(tmp_path / "store")).stdout


def test_without_onnx_runtime_a_forest_fails_the_build_naming_it_as_the_fix(onnx_models, tmp_path):
    _, models = onnx_models
    (tmp_path / "model.onnx").write_bytes((models["forest"]["dir"] / "model.onnx").read_bytes())
    (tmp_path / "kiln.toml").write_text('name = "slow"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    missing = {**os.environ, "KILN_ONNXRUNTIME": str(tmp_path / "no-such-libonnxruntime.so")}
    done = subprocess.run([KILN, "image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store")],
                          capture_output=True, text=True, env=missing)
    assert done.returncode != 0
    assert "tract runs TreeEnsembleClassifier hundreds of times slower than ONNX Runtime" in done.stderr, done.stderr
    assert "install ONNX Runtime" in done.stderr and "no-such-libonnxruntime.so" in done.stderr, done.stderr


def test_a_truncated_model_fails_the_build(onnx_models, tmp_path):
    _, models = onnx_models
    whole = (models["mlp"]["dir"] / "model.onnx").read_bytes()
    (tmp_path / "model.onnx").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "kiln.toml").write_text('name = "cut"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    done = kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store"), check=False)
    assert done.returncode != 0
    assert "model.onnx: ONNX Runtime cannot load it" in done.stderr, done.stderr
    assert "protobuf parsing failed" in done.stderr, done.stderr
    # No .onnx file at all is named too.
    (tmp_path / "model.onnx").unlink()
    (tmp_path / "weights.bin").write_bytes(b"\0")
    (tmp_path / "kiln.toml").write_text('name = "none"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["weights.bin"]\n')
    done = kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store"), check=False)
    assert done.returncode != 0
    assert "no .onnx file among the image's model files (weights.bin)" in done.stderr, done.stderr


def test_a_tree_ensemble_whose_child_is_outside_its_tree_fails_the_build(onnx_models, tmp_path):
    """tract walks trees without bounds checks, so Kiln checks every child id when it loads;
    ONNX Runtime checks them itself."""
    _, models = onnx_models
    model = onnx.load(str(models["forestreg"]["dir"] / "model.onnx"))
    trees = next(n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor")
    true_ids = next(a for a in trees.attribute if a.name == "nodes_truenodeids")
    branch = next(i for i, v in enumerate(true_ids.ints) if v != 0)
    true_ids.ints[branch] = 100000
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    (tmp_path / "kiln.toml").write_text('name = "bad-tree"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    build = [KILN, "image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store")]
    done = subprocess.run(build, capture_output=True, text=True, env={**os.environ, "KILN_NN_BACKEND": "tract"})
    assert done.returncode != 0
    assert "nodes_truenodeids" in done.stderr and "children among its" in done.stderr, done.stderr
    done = subprocess.run(build, capture_output=True, text=True)
    assert done.returncode != 0
    assert "model.onnx: ONNX Runtime cannot load it" in done.stderr, done.stderr
    assert "bad-tree" not in kiln("image", "list", "--output", "json", "--store", str(tmp_path / "store")).stdout


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


def metric(server, name, **labels):
    """The value of one sample of a server's metrics, or None."""
    text = requests.get(f"http://{server.metrics_addr}/metrics").text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_32_clients_on_one_forest_get_its_answers_from_one_graph(onnx_models):
    store, models = onnx_models
    model = models["bigforest"]
    x = inputs_of(model)
    expected = reference(model, x)
    server = Kiln(["--store", str(store), "--deploy", "bigforest=bigforest:1", "--concurrency", "8", "--queue", "64"])
    try:
        def client(worker):
            rows = range(worker, len(x), 32)
            got = []
            for row in rows:
                reply = requests.post(f"{server.url}/v2/models/bigforest/infer", json={"inputs": [
                    {"name": "X", "shape": [1, x.shape[1]], "datatype": "FP32", "data": x[row].tolist()}]})
                assert reply.status_code == 200, reply.text
                outputs = {o["name"]: o["data"] for o in reply.json()["outputs"]}
                got.append((row, outputs["label"][0], outputs["probabilities"]))
            return got

        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(32) as pool:
            answers = [a for batch in pool.map(client, range(32)) for a in batch]
        assert len(answers) == len(x)
        for row, label, probabilities in answers:
            assert label == expected["label"][row]
            np.testing.assert_allclose(probabilities, expected["probabilities"][row], atol=1e-5, rtol=0)
        # Several instances served, one graph was parsed, and the time split is recorded.
        assert metric(server, "kiln_instances", deployment="bigforest") > 1
        assert metric(server, "kiln_graphs_loaded_total", deployment="bigforest", backend="onnxruntime") == 1
        assert metric(server, "kiln_graph_memory_bytes", deployment="bigforest", backend="onnxruntime") > 0
        graph_calls = metric(server, "kiln_graph_duration_seconds_count", deployment="bigforest", backend="onnxruntime")
        assert graph_calls == len(x)
        assert metric(server, "kiln_component_duration_seconds_count", deployment="bigforest") == len(x)
    finally:
        server.stop()


def chain_graph(path, width=512, depth=64):
    """A graph that takes time in proportion to its batch: `depth` MatMuls by one weight."""
    from onnx import TensorProto, helper, numpy_helper
    weight = numpy_helper.from_array((np.eye(width, dtype=np.float32) * 0.999), "W")
    nodes = [helper.make_node("MatMul", ["X" if i == 0 else f"h{i}", "W"], [f"h{i + 1}"]) for i in range(depth)]
    nodes.append(helper.make_node("Identity", [f"h{depth}"], ["Y"]))
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, width])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def test_a_graph_past_the_deadline_is_a_504_and_the_server_keeps_serving(tmp_path):
    chain_graph(tmp_path / "model.onnx")
    (tmp_path / "kiln.toml").write_text('name = "chain"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    store = tmp_path / "store"
    kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(store))
    server = Kiln(["--store", str(store), "--deploy", "chain=chain:1", "--deadline-ms", "100", "--concurrency", "1"])
    try:
        client = triton.InferenceServerClient(server.addr)
        big = triton.InferInput("X", [4096, 512], "FP32")
        big.set_data_from_numpy(np.ones((4096, 512), dtype=np.float32))
        with pytest.raises(triton.InferenceServerException) as error:
            client.infer("chain", [big])
        assert error.value.status() == "504", error.value.message()
        assert metric(server, "kiln_deadline_exceeded_total", deployment="chain") == 1
        small = triton.InferInput("X", [1, 512], "FP32")
        small.set_data_from_numpy(np.ones((1, 512), dtype=np.float32))
        y = client.infer("chain", [small]).as_numpy("Y")
        np.testing.assert_allclose(y, np.full((1, 512), 0.999 ** 64, dtype=np.float32), rtol=1e-4)
    finally:
        server.stop()


def test_a_graph_over_the_size_cap_fails_the_build(tmp_path):
    chain_graph(tmp_path / "model.onnx", width=600, depth=2)
    (tmp_path / "kiln.toml").write_text('name = "big"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    build = [KILN, "image", "build", str(tmp_path / "kiln.toml"), "--store", str(tmp_path / "store")]
    done = subprocess.run(build, capture_output=True, text=True, env={**os.environ, "KILN_MAX_GRAPH_MB": "1"})
    assert done.returncode != 0
    size = (tmp_path / "model.onnx").stat().st_size
    assert f"the graph is {size} bytes, over the cap of 1048576 bytes" in done.stderr, done.stderr
    assert "big" not in kiln("image", "list", "--output", "json", "--store", str(tmp_path / "store")).stdout


def test_a_component_importing_wasi_nn_needs_the_nn_grant(onnx_models, tmp_path):
    _, models = onnx_models
    (tmp_path / "model.onnx").write_bytes((models["logistic"]["dir"] / "model.onnx").read_bytes())
    component = REPO / "target" / "components" / "onnx.wasm"
    manifest = f'name = "own"\nversion = "1"\n[scorer]\ncomponent = "{component}"\n[model]\nfiles = ["model.onnx"]\n'
    (tmp_path / "kiln.toml").write_text(manifest)
    store = str(tmp_path / "store")
    done = kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", store, check=False)
    assert done.returncode != 0
    assert "it imports wasi:nn/" in done.stderr and 'capabilities = ["nn"]' in done.stderr, done.stderr
    (tmp_path / "kiln.toml").write_text('capabilities = ["network"]\n' + manifest)
    done = kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", store, check=False)
    assert done.returncode != 0
    assert "capability 'network' is not available" in done.stderr, done.stderr
    (tmp_path / "kiln.toml").write_text('capabilities = ["nn"]\n' + manifest)
    kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", store)
    # A bare component is refused the same way by `kiln serve` (its routes answer 503 with the
    # reason), and served with grant=nn.
    deploy = f"{component},artifacts={tmp_path}"
    server = Kiln(["--deploy", f"bare={deploy}", "--deploy", f"own={deploy},grant=nn"])
    try:
        reply = requests.post(f"{server.url}/v2/models/bare/infer", json={"inputs": [
            {"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]})
        assert reply.status_code == 503, reply.text
        assert "which needs the nn capability" in reply.json()["error"], reply.text
        client = triton.InferenceServerClient(server.addr)
        ok = triton.InferInput("X", [1, 4], "FP32")
        ok.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32))
        assert client.infer("own", [ok]).as_numpy("label").tolist() == [0]
    finally:
        server.stop()


def conv_graph(path):
    """A small convolutional network built with onnx.helper: Conv, Relu, MaxPool, Flatten, Gemm."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(11)
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "conv_b"),
        numpy_helper.from_array(rng.normal(0, 0.3, (3, 36)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (3,)).astype(np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["scores"], transB=1),
    ]
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 1, 6, 6])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


@pytest.mark.parametrize("backend", ["onnxruntime", "tract"])
def test_a_convolutional_graph_answers_as_onnxruntime_does(tmp_path, backend):
    conv_graph(tmp_path / "model.onnx")
    (tmp_path / "kiln.toml").write_text('name = "conv"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    store = tmp_path / "store"
    kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(store))
    images = np.random.default_rng(5).normal(0, 1, (17, 1, 6, 6)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": images})[0]
    server = Kiln(["--store", str(store), "--deploy", "conv=conv:1", "--nn-backend", backend])
    try:
        client = triton.InferenceServerClient(server.addr)
        assert client.get_model_metadata("conv")["platform"] == f"{backend}_onnx"
        tensor = triton.InferInput("image", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images)
        got = client.infer("conv", [tensor]).as_numpy("scores")
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    finally:
        server.stop()


def test_a_zipmap_output_is_served_as_a_probability_matrix_in_class_order(tmp_path):
    x, y, columns = iris()
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    (tmp_path / "model.onnx").write_bytes(to_onnx(forest, x[:1]).SerializeToString())  # ZipMap on
    (tmp_path / "kiln.toml").write_text('name = "zipped"\nversion = "1"\nscorer = "onnx"\n[model]\nfiles = ["model.onnx"]\n')
    store = tmp_path / "store"
    kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", str(store))
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    labels, maps = session.run(None, {"X": x})
    server = Kiln(["--store", str(store), "--deploy", "zipped=zipped:1"])
    try:
        client = triton.InferenceServerClient(server.addr)
        outputs = {o["name"]: o for o in client.get_model_metadata("zipped")["outputs"]}
        assert outputs["output_probability"] == {"name": "output_probability", "datatype": "FP32", "shape": [-1, -1]}
        tensor = triton.InferInput("X", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        result = client.infer("zipped", [tensor])
        np.testing.assert_array_equal(result.as_numpy("output_label"), labels)
        classes = sorted(maps[0])
        expected = np.array([[row[c] for c in classes] for row in maps], dtype=np.float32)
        np.testing.assert_allclose(result.as_numpy("output_probability"), expected, atol=1e-6, rtol=0)
    finally:
        server.stop()


def test_a_scorer_with_its_own_logic_around_a_graph(tmp_path):
    """examples/species: raw measurements scaled in the component, the graph on the host through
    the standard wasi:nn, class ids named in the component."""
    import sys
    subprocess.run([sys.executable, str(REPO / "examples" / "species" / "train.py"), str(tmp_path / "model")], check=True)
    component = REPO / "target" / "components" / "species.wasm"
    manifest = (f'name = "species"\nversion = "1"\n[scorer]\ncomponent = "{component}"\n[model]\n'
                'files = ["model/model.onnx", "model/scaler.json", "model/labels.json"]\n'
                '[sample]\nfile = "model/sample.csv"\n')
    (tmp_path / "kiln.toml").write_text(manifest)
    store = str(tmp_path / "store")
    refused = kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", store, check=False)
    assert refused.returncode != 0 and "which needs the nn capability" in refused.stderr, refused.stderr
    (tmp_path / "kiln.toml").write_text('capabilities = ["nn"]\n' + manifest)
    kiln("image", "build", str(tmp_path / "kiln.toml"), "--store", store)

    import importlib.util
    spec = importlib.util.spec_from_file_location("species_train", REPO / "examples" / "species" / "train.py")
    species_train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(species_train)
    scaler, model, data = species_train.train()
    x = data.data.astype(np.float32)
    x = np.concatenate([x, x * np.float32(1.07)]).astype(np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "model" / "model.onnx"), providers=["CPUExecutionProvider"])
    scaled = ((x - scaler.mean_.astype(np.float32)) / scaler.scale_.astype(np.float32)).astype(np.float32)
    labels, probabilities = session.run(None, {"X": scaled})
    names = np.array([data.target_names[i] for i in labels])

    server = Kiln(["--store", store, "--deploy", "species=species:1"])
    try:
        client = triton.InferenceServerClient(server.addr)
        metadata = client.get_model_metadata("species")
        assert [o["datatype"] for o in metadata["outputs"]] == ["BYTES", "FP32"]
        for binary in (True, False):
            tensor = triton.InferInput("measurements", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x, binary_data=binary)
            result = client.infer("species", [tensor])
            got = np.array([s.decode() if isinstance(s, bytes) else s for s in result.as_numpy("species")])
            np.testing.assert_array_equal(got, names)
            np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, atol=1e-5, rtol=0)
        reply = requests.post(f"{server.url}/v2/models/species/infer", json={"inputs": [
            {"name": "measurements", "shape": [1, 4], "datatype": "FP32", "data": [5.1, -3.5, 1.4, 0.2]}]})
        assert reply.status_code == 400, reply.text
        assert "lengths in centimetres, not -3.5" in reply.json()["error"]
        assert metric(server, "kiln_graphs_loaded_total", deployment="species", backend="onnxruntime") == 1
    finally:
        server.stop()

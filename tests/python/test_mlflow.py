"""The real `mlflow` client package against Kiln's MLflow-compatible API, with the values read
back through Kiln's own API."""
import math
import os
import pathlib
import time

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from conftest import KilnUp

WG = "/api/v1/teams/lab/workgroups/vision"


@pytest.fixture(scope="module")
def kiln(tmp_path_factory):
    up = KilnUp(tmp_path_factory.mktemp("kiln-mlflow"))
    up.call("POST", "/api/v1/teams", json={"name": "lab"})
    up.call("POST", "/api/v1/teams/lab/workgroups", json={"name": "vision"})
    up.call("POST", f"{WG}/projects", json={"name": "flowers"})
    os.environ["MLFLOW_TRACKING_URI"] = f"{up.api}{WG}/projects/flowers/mlflow"
    os.environ["MLFLOW_TRACKING_TOKEN"] = up.token
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    yield up
    up.stop()


def test_a_script_written_for_an_mlflow_server_logs_to_kiln(kiln, tmp_path):
    mlflow.set_experiment("Iris Classifier")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("solver", "lbfgs")
        mlflow.log_params({"C": 0.5, "max_iter": 100})
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metric("accuracy", 0.96)
        mlflow.log_metric("diverged", float("nan"))
        mlflow.log_metric("ceiling", float("inf"))
        now = int(time.time() * 1000)
        MlflowClient().log_batch(
            run.info.run_id,
            metrics=[Metric("f1", 0.93, now, 0), Metric("f1", 0.95, now + 1, 1)],
            params=[Param("penalty", "l2")],
            tags=[RunTag("stage", "dev")],
        )
        mlflow.set_tag("dataset", "iris")
        (tmp_path / "notes.txt").write_text("trained on iris\n")
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        model = tmp_path / "model"
        model.mkdir()
        (model / "MLmodel").write_text("flavors: {}\n")
        (model / "weights.json").write_text('{"coef": [1, 2, 3]}')
        mlflow.log_artifacts(str(model), "model")
        run_id = run.info.run_id

    # Read back through Kiln's own API.
    shown = kiln.call("GET", f"{WG}/runs/{run_id}")
    assert shown["experiment"] == "iris-classifier"
    assert shown["name"] == "baseline"
    assert shown["status"] == "completed"
    assert shown["executed"] is False
    data = shown["data"]
    assert data["params"] == {"solver": "lbfgs", "C": "0.5", "max_iter": "100", "penalty": "l2"}
    assert data["metrics"]["loss"] == 0.3
    assert data["metrics"]["accuracy"] == 0.96
    assert data["metrics"]["f1"] == 0.95
    assert data["metrics"]["diverged"] == "NaN"
    assert data["metrics"]["ceiling"] == 1.7976931348623157e308
    assert data["tags"]["dataset"] == "iris" and data["tags"]["stage"] == "dev"
    history = kiln.call("GET", f"{WG}/runs/{run_id}/metrics/loss")["items"]
    assert [(m["step"], m["value"]) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    listed = kiln.call("GET", f"{WG}/runs/{run_id}/artifacts?path=model")["items"]
    assert sorted(i["path"] for i in listed) == ["model/MLmodel", "model/weights.json"]
    notes = requests.get(f"{kiln.api}{WG}/runs/{run_id}/artifacts/notes.txt",
                         headers={"Authorization": f"Bearer {kiln.token}"})
    assert notes.text == "trained on iris\n"

    # And through the client, as an MLflow server would answer.
    fetched = MlflowClient().get_run(run_id)
    assert fetched.data.params["C"] == "0.5"
    assert math.isnan(fetched.data.metrics["diverged"])
    assert [m.value for m in MlflowClient().get_metric_history(run_id, "f1")] == [0.93, 0.95]
    artifacts = [a.path for a in MlflowClient().list_artifacts(run_id)]
    assert sorted(artifacts) == ["model", "notes.txt"]
    downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model",
                                                     dst_path=str(tmp_path / "down"))
    assert pathlib.Path(downloaded, "weights.json").read_text() == '{"coef": [1, 2, 3]}'


def test_search_runs_filters_and_orders(kiln):
    experiment = mlflow.set_experiment("search-me")
    for c, accuracy in [(0.1, 0.80), (1.0, 0.93), (10.0, 0.97)]:
        with mlflow.start_run():
            mlflow.log_param("C", c)
            mlflow.log_metric("accuracy", accuracy)
            mlflow.set_tag("family", "linear")
    found = mlflow.search_runs(experiment_ids=[experiment.experiment_id],
                               filter_string="metrics.accuracy > 0.9 and tags.family = 'linear'",
                               order_by=["metrics.accuracy DESC"])
    assert list(found["metrics.accuracy"]) == [0.97, 0.93]
    assert list(found["params.C"]) == ["10.0", "1.0"]
    runs = MlflowClient().search_runs([experiment.experiment_id],
                                      filter_string="params.C = '0.1'")
    assert len(runs) == 1 and runs[0].data.metrics["accuracy"] == 0.80
    page = MlflowClient().search_runs([experiment.experiment_id], max_results=2,
                                      order_by=["metrics.accuracy ASC"])
    assert len(page) == 2 and page.token
    rest = MlflowClient().search_runs([experiment.experiment_id], max_results=2,
                                      order_by=["metrics.accuracy ASC"], page_token=page.token)
    assert [r.data.metrics["accuracy"] for r in rest] == [0.97]
    with pytest.raises(MlflowException, match="invalid filter"):
        mlflow.search_runs(experiment_ids=[experiment.experiment_id],
                           filter_string="metrics.accuracy >")


def test_params_are_immutable_and_batches_are_bounded(kiln):
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(MlflowException, match="cannot change"):
            mlflow.log_param("lr", 0.2)
        now = int(time.time() * 1000)
        with pytest.raises(MlflowException, match="at most 1000 metrics"):
            MlflowClient()._tracking_client.store.log_batch(
                run.info.run_id, [Metric("m", float(i), now, i) for i in range(1001)], [], [])
    assert kiln.call("GET", f"{WG}/runs/{run.info.run_id}")["data"]["params"] == {"lr": "0.1"}


def test_register_model_versions_and_aliases(kiln, tmp_path):
    with mlflow.start_run() as run:
        model = tmp_path / "model"
        model.mkdir()
        (model / "MLmodel").write_text("flavors: {}\n")
        (model / "weights.json").write_text("[0.5]")
        mlflow.log_artifacts(str(model), "model")
    first = mlflow.register_model(f"runs:/{run.info.run_id}/model", "IrisModel")
    second = mlflow.register_model(f"runs:/{run.info.run_id}/model", "IrisModel")
    assert (first.version, second.version) == ("1", "2")
    client = MlflowClient()
    client.set_registered_model_alias("IrisModel", "champion", "1")
    assert client.get_model_version_by_alias("IrisModel", "champion").version == "1"
    assert client.get_registered_model("IrisModel").aliases == {"champion": "1"}
    assert client.get_latest_versions("IrisModel")[0].version == "2"
    versions = client.search_model_versions("name='IrisModel'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    # Kiln's own view: the model, its versions with their lineage, the alias.
    kiln_model = kiln.call("GET", f"{WG}/models/irismodel")
    assert kiln_model["aliases"] == {"champion": 1}
    version = kiln.call("GET", f"{WG}/models/irismodel/versions/1")
    assert version["run"] == run.info.run_id
    assert sorted(f["path"] for f in version["files"]) == ["MLmodel", "weights.json"]
    client.delete_registered_model_alias("IrisModel", "champion")
    assert kiln.call("GET", f"{WG}/models/irismodel")["aliases"] == {}


def test_a_reader_may_read_but_not_write(kiln):
    user = kiln.call("POST", "/api/v1/users", json={"name": "rita"})
    kiln.call("PUT", "/api/v1/teams/lab/members/rita", json={"role": "member"})
    kiln.call("PUT", f"{WG}/members/rita", json={"role": "reader"})
    token = user["token"]["token"]
    base = f"{kiln.api}{WG}/projects/flowers/mlflow/api/2.0/mlflow"
    headers = {"Authorization": f"Bearer {token}"}
    searched = requests.post(f"{base}/runs/search", json={"experiment_ids": ["0"]}, headers=headers)
    assert searched.status_code == 200, searched.text
    created = requests.post(f"{base}/experiments/create", json={"name": "nope"}, headers=headers)
    assert created.status_code == 403
    assert created.json()["error_code"] == "PERMISSION_DENIED"
    anonymous = requests.post(f"{base}/runs/search", json={"experiment_ids": ["0"]})
    assert anonymous.status_code == 401

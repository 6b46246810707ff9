"""Real client packages against a real `kiln serve`: the answers equal scikit-learn's."""
import asyncio
import time

import numpy as np
import pytest
import requests
import tritonclient.http as triton


def test_tritonclient_binary_and_json(kiln, iris_model):
    model, data, _ = iris_model
    x = data.data.astype(np.float32)
    client = triton.InferenceServerClient(kiln.addr)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("iris")
    assert [i["name"] for i in metadata["inputs"]] == ["input"]
    for binary in (True, False):
        tensor = triton.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("label", "probabilities")]
        result = client.infer("iris", [tensor], outputs=outputs)
        np.testing.assert_array_equal(result.as_numpy("label"), model.predict(data.data))
        np.testing.assert_allclose(result.as_numpy("probabilities"), model.predict_proba(data.data), atol=1e-5)
    # The client's defaults: binary inputs, no outputs named (binary_data_output on).
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer("iris", [tensor])
    np.testing.assert_array_equal(result.as_numpy("label"), model.predict(data.data))


def test_tritonclient_sees_errors_as_exceptions(kiln):
    client = triton.InferenceServerClient(kiln.addr)
    tensor = triton.InferInput("input", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(triton.InferenceServerException) as error:
        client.infer("iris", [tensor])
    assert error.value.status() == "400"
    assert "the model expects [-1, 4]" in error.value.message()
    assert not client.is_model_ready("rose")


def test_kserve_rest_client_v2(kiln, iris_model):
    kserve = pytest.importorskip("kserve", reason="the kserve package did not install here")
    model, data, _ = iris_model
    x = data.data.astype(np.float32)

    async def infer():
        client = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2"))
        tensor = kserve.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=False)
        request = kserve.InferRequest(model_name="iris", infer_inputs=[tensor])
        try:
            return await client.infer(kiln.url, request, model_name="iris")
        finally:
            await client.close()

    response = asyncio.run(infer())
    outputs = {o.name: o for o in response.outputs}
    np.testing.assert_array_equal(outputs["label"].as_numpy(), model.predict(data.data))
    np.testing.assert_allclose(outputs["probabilities"].as_numpy(), model.predict_proba(data.data), atol=1e-5)


def check_records(predictions, model, data):
    labels = [p["label"] for p in predictions]
    probabilities = np.array([p["probabilities"] for p in predictions])
    np.testing.assert_array_equal(labels, model.predict(data.data))
    np.testing.assert_allclose(probabilities, model.predict_proba(data.data), atol=1e-5)


def test_mlflow_formats_and_csv(kiln, iris_model):
    model, data, _ = iris_model
    columns = list(data.feature_names)
    rows = data.data.tolist()
    url = f"{kiln.url}/deployments/iris/invocations"
    split = requests.post(url, json={"dataframe_split": {"columns": columns, "data": rows}})
    assert split.status_code == 200, split.text
    check_records(split.json()["predictions"], model, data)
    records = [dict(zip(columns, r)) for r in rows]
    check_records(requests.post(url, json={"dataframe_records": records}).json()["predictions"], model, data)
    csv = ",".join(columns) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"
    reply = requests.post(url, data=csv, headers={"Content-Type": "text/csv"})
    assert reply.status_code == 200, reply.text
    check_records(reply.json()["predictions"], model, data)


def test_azure_ml_score(kiln, iris_model):
    model, data, _ = iris_model
    reply = requests.post(f"{kiln.url}/deployments/iris/score", json={"data": data.data.tolist()})
    assert reply.status_code == 200, reply.text
    check_records(reply.json(), model, data)


def test_prometheus_scrapes_per_deployment_metrics(kiln, tmp_path):
    """A real Prometheus server scrapes Kiln and reads the request counter it was sent."""
    import shutil
    import socket
    import subprocess

    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is required (Debian package prometheus)"
    sent = 7
    for _ in range(sent):
        assert requests.post(f"{kiln.url}/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).ok
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: kiln\n    static_configs: [{{targets: ['{kiln.metrics_addr}']}}]\n"
    )
    server = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    query = 'kiln_requests_total{deployment="iris",protocol="v1",code="200"}'
    try:
        value = None
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                reply = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=5)
                result = reply.json()["data"]["result"]
                if result:
                    value = float(result[0]["value"][1])
                    break
            except (requests.ConnectionError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        assert value == sent, f"Prometheus read {value} for {query}"
    finally:
        server.terminate()
        server.wait(30)

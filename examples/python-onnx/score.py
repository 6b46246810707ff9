"""Pre-processing in Python, the model in ONNX: measurements arrive in inches, the scikit-learn
model was trained in centimetres. The script converts them and runs the graph on the host
through wasi:nn (ONNX Runtime), then names the species."""

import kiln_scoring as kiln

CM_PER_INCH = 2.54
SPECIES = ["setosa", "versicolor", "virginica"]


def load(config):
    global model
    model = kiln.graph("model.onnx")  # parsed once per deployment, shared by every instance


def metadata():
    return kiln.Metadata(
        "iris-inches",
        inputs=[kiln.spec("inches", "FP32", [-1, 4])],
        outputs=[
            kiln.spec("label", "INT64", [-1]),
            kiln.spec("probabilities", "FP32", [-1, 3]),
            kiln.spec("species", "BYTES", [-1]),
        ],
    )


def predict(inputs):
    inches = inputs["inches"]
    if any(v < 0 for v in inches.data):
        raise ValueError("measurements are lengths: none may be negative")
    cm = kiln.tensor("X", [v * CM_PER_INCH for v in inches.data], "FP32", shape=inches.shape)
    out = model.compute({"X": cm})
    labels = out["label"].data
    return {
        "label": labels,
        "probabilities": out["probabilities"],
        "species": [SPECIES[i] for i in labels],
    }

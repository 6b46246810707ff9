"""Iris multinomial logistic regression in plain Python: weights from `weights.json` (written by
examples/iris/train.py), the same answers as the Rust iris scorer."""

import math

import kiln_scoring as kiln

coef, intercept, classes = [], [], []


def load(config):
    model = kiln.read_json("weights.json")
    coef[:] = model["coef"]
    intercept[:] = model["intercept"]
    classes[:] = model["classes"]


def metadata():
    return kiln.Metadata(
        "iris",
        inputs=[kiln.spec("input", "FP32", [-1, 4])],
        outputs=[
            kiln.spec("label", "INT64", [-1]),
            kiln.spec("probabilities", "FP32", [-1, len(classes)]),
        ],
    )


def predict(inputs):
    labels, probabilities = [], []
    for row in inputs["input"].rows():
        z = [b + sum(w * x for w, x in zip(ws, row)) for ws, b in zip(coef, intercept)]
        top = max(z)
        e = [math.exp(v - top) for v in z]
        total = sum(e)
        labels.append(classes[z.index(top)])
        probabilities.append([v / total for v in e])
    return {"label": labels, "probabilities": probabilities}

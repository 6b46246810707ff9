"""Train the species model: a StandardScaler whose parameters the scorer applies itself, and a
logistic regression on the scaled features, exported to ONNX (the graph the host runs).

Usage: python train.py [OUT_DIR]   (default: model/ beside this file)
Writes model.onnx, scaler.json, labels.json and sample.csv (raw measurements).
"""
import json
import pathlib
import sys

import numpy as np
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def train():
    data = load_iris()
    x = data.data.astype(np.float32)
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(max_iter=1000, random_state=0).fit(scaler.transform(x).astype(np.float32), data.target)
    return scaler, model, data


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "model"
    out.mkdir(parents=True, exist_ok=True)
    scaler, model, data = train()
    x = scaler.transform(data.data).astype(np.float32)
    onnx_model = to_onnx(model, x[:1], options={id(model): {"zipmap": False}})
    (out / "model.onnx").write_bytes(onnx_model.SerializeToString())
    (out / "scaler.json").write_text(json.dumps({"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}) + "\n")
    (out / "labels.json").write_text(json.dumps([str(n) for n in data.target_names]) + "\n")
    header = "sepal_length,sepal_width,petal_length,petal_width"
    (out / "sample.csv").write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in data.data[::5].tolist()) + "\n")
    print(f"wrote {out}: model.onnx, scaler.json, labels.json, sample.csv")


if __name__ == "__main__":
    main()

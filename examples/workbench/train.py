"""Train a wine classifier with scikit-learn and export it to ONNX for Kiln's built-in scorer.

Usage: python train.py [--trees N] [--depth D] [--out DIR]   (default DIR: outputs/)

Writes DIR/model.onnx (skl2onnx, ZipMap off: a `label` tensor and a `probabilities` tensor) and
DIR/data.csv (the training rows with their column names: the manifest's sample and drift
baseline). Run by Kiln (`kiln run submit -f train.py`), it also logs its params, its held-out
accuracy and DIR as the run's `model/` artifacts with Kiln's tracking helper.
"""
import argparse
import os
import pathlib

import numpy as np
from skl2onnx import to_onnx
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split


def columns(data):
    return [name.replace("/", "_") for name in data.feature_names]


def train(trees=30, depth=5):
    data = load_wine()
    x = data.data.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, data.target, test_size=0.3, random_state=0,
                                                        stratify=data.target)
    model = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0)
    model.fit(x_train, y_train)
    return model, data, x_train, model.score(x_test, y_test)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trees", type=int, default=30)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--out", default="outputs")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, data, x_train, accuracy = train(args.trees, args.depth)
    onnx = to_onnx(model, x_train[:1], options={id(model): {"zipmap": False}})
    (out / "model.onnx").write_bytes(onnx.SerializeToString())
    rows = "\n".join(",".join(repr(float(v)) for v in row) for row in x_train)
    (out / "data.csv").write_text(",".join(columns(data)) + "\n" + rows + "\n")
    print(f"wrote {out / 'model.onnx'} and {out / 'data.csv'} (held-out accuracy {accuracy:.3f})")
    if os.environ.get("KILN_RUN_URL"):
        import kiln_tracking as kiln  # on the PYTHONPATH of every Kiln run

        kiln.log_params({"trees": args.trees, "depth": args.depth, "model": "RandomForestClassifier"})
        kiln.log_metric("accuracy", accuracy)
        kiln.log_artifacts(str(out), "model")


if __name__ == "__main__":
    main()

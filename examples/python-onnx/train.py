"""Trains the python-onnx example's model: scikit-learn's logistic regression on iris in
centimetres, exported with skl2onnx (probabilities as a tensor, no ZipMap) to DIR/model.onnx,
and a sample of rows in inches to DIR/sample.csv (what the scorer takes).

Usage: python train.py [DIR]   (default: this directory)
"""

import sys
from pathlib import Path

import numpy as np
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
out.mkdir(parents=True, exist_ok=True)
(out / "model").mkdir(exist_ok=True)
data = load_iris()
x = data.data.astype(np.float32)
model = LogisticRegression(max_iter=1000).fit(x, data.target)
onnx = to_onnx(model, x[:1], options={id(model): {"zipmap": False}})
(out / "model" / "model.onnx").write_bytes(onnx.SerializeToString())
inches = x[::5] / 2.54
with open(out / "sample.csv", "w") as f:
    f.write("sepal_length_in,sepal_width_in,petal_length_in,petal_width_in\n")
    for row in inches:
        f.write(",".join(f"{v:.4f}" for v in row) + "\n")
print(f"wrote {out / 'model' / 'model.onnx'} and {out / 'sample.csv'}")

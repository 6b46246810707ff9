"""Train the iris model with scikit-learn and write the weights Kiln's iris scorer reads.

Usage: python train.py [OUT_DIR]   (default: model/ beside this file)
"""
import json
import pathlib
import sys

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def train():
    data = load_iris()
    model = LogisticRegression(max_iter=1000, random_state=0)
    model.fit(data.data, data.target)
    return model, data


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "model"
    out.mkdir(parents=True, exist_ok=True)
    model, data = train()
    weights = {
        "feature_names": list(data.feature_names),
        "classes": [int(c) for c in model.classes_],
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
    }
    (out / "weights.json").write_text(json.dumps(weights, indent=2) + "\n")
    print(f"wrote {out / 'weights.json'} (training accuracy {model.score(data.data, data.target):.3f})")


if __name__ == "__main__":
    main()

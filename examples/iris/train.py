"""Train the iris model with scikit-learn and write the weights Kiln's iris scorer reads.

Usage: python train.py [OUT_DIR]   (default: model/ beside this file)

Run by Kiln (`kiln run submit -f train.py model`), it also logs its params, its accuracy and the
weights (as the run's `model/` artifacts) with Kiln's tracking helper.
"""
import json
import os
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
    accuracy = model.score(data.data, data.target)
    print(f"wrote {out / 'weights.json'} (training accuracy {accuracy:.3f})")
    if os.environ.get("KILN_RUN_URL"):
        import kiln_tracking as kiln  # on the PYTHONPATH of every Kiln run

        kiln.log_params({"max_iter": model.max_iter, "solver": model.solver})
        kiln.log_metric("accuracy", accuracy)
        kiln.log_artifacts(str(out), "model")


if __name__ == "__main__":
    main()

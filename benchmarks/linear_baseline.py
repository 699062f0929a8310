"""Is the embedded default a non-linear task? A linear model on raw pixels, on the CNN's own folds.

SynthFACS must be hard in the way real faces are: identity, lighting and pose
vary far more than the few pixels an Action Unit moves, so a linear read-out
of pixels should do clearly worse than the CNN. This scores logistic
regression on exactly the folds `ferops cv` used (same params, same seed) and
prints it beside the CNN's result from outputs/cv/metrics.json.

    .venv/bin/python benchmarks/linear_baseline.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from ferops.config import load_params
from ferops.data.dataset import Dataset
from ferops.train.folds import PROTOCOLS, make_folds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--cnn-metrics", default="outputs/cv/metrics.json")
    args = ap.parse_args()
    params = load_params(args.params)
    data = Dataset.load(params.dataset.processed_dir)
    x = data.images.reshape(len(data), -1).astype(np.float32) / 255.0
    y = data.labels
    folds = make_folds(y, data.subjects, params.cv.folds, params.cv.protocol, params.seed)
    accuracy = []
    for k in tqdm(range(params.cv.folds), desc="logistic regression folds"):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=300))
        model.fit(x[folds != k], y[folds != k])
        accuracy.append(model.score(x[folds == k], y[folds == k]))
    majority = np.bincount(y).max() / len(y)
    print(f"{data.name}: {len(y)} images, {len(data.classes)} classes, {PROTOCOLS[params.cv.protocol]}")
    print(f"majority class        : {majority:.4f}")
    print(f"logistic regression   : {np.mean(accuracy):.4f} ± {np.std(accuracy, ddof=1):.4f}  (raw pixels, C=0.01)")
    cnn = Path(args.cnn_metrics)
    if cnn.exists():
        m = json.loads(cnn.read_text())
        print(f"paper CNN (ferops cv) : {m['cv_accuracy_mean']:.4f} ± {m['cv_accuracy_std']:.4f}  ({m['protocol']})")


if __name__ == "__main__":
    main()

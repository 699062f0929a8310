"""Do the micro frame CNN's frozen features carry a clip's class? LOSO linear probes, several views.

The CNN+LSTM sat at chance while LBP-TOP read the clips well (docs/micro.md). This pre-trains the
frame CNN exactly as `ferops micro` does (params.yaml, with --width and --pretrain-epochs), takes its
dense features of every key frame, and scores a leave-one-subject-out logistic regression (balanced
class weights, features standardised on the training subjects) on: the apex frame alone, apex minus
onset, all five frames, all five minus the first, and raw pixels apex minus onset. UF1 over the pooled
predictions, as the stage scores. Needs data/processed (dvc repro preprocess).

    .venv/bin/python benchmarks/micro_probe.py --width 0.25 --pretrain-epochs 4
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import LeaveOneGroupOut  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from ferops.config import load_params, replace  # noqa: E402
from ferops.data.dataset import Dataset  # noqa: E402
from ferops.experiments.micro.data import load_micro  # noqa: E402
from ferops.experiments.micro.train import frame_cnn, pretrain_cnn  # noqa: E402
from ferops.models import feature_extractor  # noqa: E402
from ferops.train.devices import dtype_policy  # noqa: E402
from ferops.train.precision import resolve  # noqa: E402


def loso_uf1(z: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    pred = np.zeros_like(y)
    for train, test in LeaveOneGroupOut().split(z, y, groups):
        scaler = StandardScaler().fit(z[train])
        model = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced")
        model.fit(scaler.transform(z[train]), y[train])
        pred[test] = model.predict(scaler.transform(z[test]))
    return float(f1_score(y, pred, average="macro"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--pretrain-epochs", type=int, default=4)
    args = ap.parse_args()
    params = replace(load_params(args.params), **{"micro.cnn.width": args.width,
                                                  "micro.cnn.pretrain_epochs": args.pretrain_epochs})
    started = time.perf_counter()
    clips = load_micro(params).clips
    shape = tuple(clips.images.shape[2:])
    pretrained = pretrain_cnn(params, Dataset.load(params.dataset.processed_dir), shape)
    with dtype_policy(resolve(params.train.precision)):
        features = feature_extractor(frame_cnn(params, pretrained, len(clips.classes) + 1, shape))
    x = clips.images.astype(np.float32)
    n, t = x.shape[:2]
    f = np.asarray(features.predict(x.reshape(n * t, *shape), verbose=0, batch_size=256), np.float32).reshape(n, t, -1)
    pixels = x.reshape(n, t, -1)
    views = {"apex frame alone": f[:, 2], "apex minus onset": f[:, 2] - f[:, 1], "all five frames": f.reshape(n, -1),
             "all five, each minus the first": (f - f[:, :1]).reshape(n, -1),
             "raw pixels, apex minus onset": pixels[:, 2] - pixels[:, 1]}
    print(f"micro CNN width {args.width}, {args.pretrain_epochs} pre-training epochs; LOSO logistic regression, UF1:")
    for name, z in views.items():
        print(f"  {name:32s} {loso_uf1(z, clips.labels, clips.subjects):.3f}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

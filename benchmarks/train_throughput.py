"""Training images/s: ferops `fit` (augmented tf.data stream + MLflow epoch logging)
against a plain Keras `model.fit` of the same model on the same in-memory data.

Both run in this one process, alternating, so machine noise hits both alike.
Target: ratio >= 0.95 (ferops' pipeline and tracking cost at most 5%).

    .venv/bin/python benchmarks/train_throughput.py [--n 2048] [--epochs 3] [--width 1.0] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mlflow  # noqa: E402
import numpy as np  # noqa: E402

from ferops.config import parse_params, replace  # noqa: E402
from ferops.models import build_cnn  # noqa: E402
from ferops.tracking.epoch_logger import EpochLogger  # noqa: E402
from ferops.tracking.store import configure  # noqa: E402
from ferops.train.fit import compile_model, fit, seed_everything  # noqa: E402


def plain_keras(params, x, y, n_classes) -> float:
    """Build, compile and fit a fresh model the plain way: float32 arrays straight into model.fit."""
    start = time.perf_counter()
    seed_everything(params.seed)
    model = compile_model(build_cnn(params.model, x.shape[1:], n_classes), params)
    model.fit(x.astype(np.float32), y, batch_size=params.train.batch_size, epochs=params.train.epochs, verbose=0)
    return len(x) * params.train.epochs / (time.perf_counter() - start)


def ferops_fit(params, x, y, n_classes) -> float:
    """The same, through ferops: uint8 stream, augmentation, MLflow per-epoch logging."""
    with mlflow.start_run() as run:
        start = time.perf_counter()
        fit(params, x, y, n_classes, callbacks=[EpochLogger(run.info.run_id)], verbose=0)
        return len(x) * params.train.epochs / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    params = parse_params({"model": {"width": args.width}, "train": {"epochs": args.epochs, "batch_size": 64}})
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.n, 48, 48, 1), dtype=np.uint8)
    y = rng.integers(0, 8, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        configure(params.tracking)  # a throwaway SQLite store: real tracking cost, no clutter
        # One throwaway run of each first: TensorFlow's one-time start-up costs belong to neither side.
        # After that both sides pay the same per-run costs (model build, graph tracing, training).
        tiny = replace(params, **{"train.epochs": 1})
        plain_keras(tiny, x[:128], y[:128], 8)
        ferops_fit(tiny, x[:128], y[:128], 8)
        plain, ours = [], []
        for _ in range(args.repeats):
            plain.append(plain_keras(params, x, y, 8))
            ours.append(ferops_fit(params, x, y, 8))
    p, o = max(plain), max(ours)
    print(f"images: {args.n} x {args.epochs} epochs, width {args.width}, batch 64, 48x48x1, 8 classes")
    print(f"plain keras model.fit : {p:8.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in plain)})")
    print(f"ferops fit            : {o:8.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in ours)})")
    print(f"ratio ferops/plain    : {o / p:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()

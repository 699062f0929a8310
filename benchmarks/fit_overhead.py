"""Per-fit overhead of `fit`: a fresh model per fit against a reused compiled model (CompiledModels).

N consecutive small fits of one architecture (as CV folds, AU folds, LOSO subjects, transfer cells
and tuning trials are), each 2 epochs on the same images, alternating fresh and reused so machine
noise hits both alike. A fit's overhead is its wall time minus twice its second epoch's time (the
steady cost of an epoch): model building, compiling and tracing the training step. Target: reused
overhead at least 3x smaller than fresh.

    .venv/bin/python benchmarks/fit_overhead.py [--fits 6] [--images 256] [--width 0.25]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ferops.config import load_params  # noqa: E402
from ferops.train.fit import COMPILED, fit  # noqa: E402
from ferops.train.tasks import emotion_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASK = emotion_task(("neutral", "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise"))


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = getattr(self, "times", []) + [time.perf_counter() - self.start]


def one_fit(params, x, y, reuse: bool, offset: int) -> float:
    """Overhead seconds of one 2-epoch fit."""
    epochs = EpochTimes()
    start = time.perf_counter()
    fit(params, TASK, x, y, callbacks=[epochs], seed_offset=offset, verbose=0, reuse=reuse)
    return time.perf_counter() - start - 2 * epochs.times[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", type=int, default=6)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--width", type=float, default=0.25)
    args = ap.parse_args()
    params = load_params(ROOT / "params.yaml", {"model": {"width": args.width},
                                                "train": {"epochs": 2, "batch_size": 32}})
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 48, 48, 1), dtype=np.uint8)
    y = rng.integers(0, 8, args.images)
    COMPILED.kept.clear()
    one_fit(params, x, y, reuse=False, offset=0)  # TensorFlow's one-time start-up belongs to neither side
    one_fit(params, x, y, reuse=True, offset=0)  # the reused side's one compile
    fresh, reused = [], []
    for i in range(args.fits):
        fresh.append(one_fit(params, x, y, reuse=False, offset=i + 1))
        reused.append(one_fit(params, x, y, reuse=True, offset=i + 1))
    f, r = statistics.median(fresh), statistics.median(reused)
    print(f"{args.fits} fits each, {args.images} images x 2 epochs, width {args.width}, batch 32, "
          f"{os.cpu_count()} CPU cores; overhead = wall - 2 x the second epoch")
    print(f"fresh model per fit : {f:5.2f} s overhead per fit (median; runs {', '.join(f'{v:.2f}' for v in fresh)})")
    print(f"reused compiled     : {r:5.2f} s overhead per fit (median; runs {', '.join(f'{v:.2f}' for v in reused)})")
    print(f"ratio fresh/reused  : {f / max(r, 1e-3):.1f}x  (target >= 3x)")


if __name__ == "__main__":
    main()

"""GPU training images/s of the paper CNN: float32 vs mixed precision, ferops `fit` vs plain `model.fit`, in one run.

For each batch size (256, 1024) and precision (float32, mixed_float16), on the
first GPU:

- plain Keras: the same model compiled the same way, `model.fit` on in-memory
  float32 tensors (no augmentation), the reference;
- ferops: `fit` with the same precision, streaming uint8 rows by index
  (ferops.train.streams) without augmentation: the pipeline's own cost;
- ferops + augmentation: the same with the paper's flips and affine warps in
  the tf.data map (what training really runs).

images/s counts epochs after the first (tracing, autotuning and XLA compilation
excluded), median over those epochs. Targets (issue 13, on one H100):
ferops >= 0.95x plain at equal precision, mixed >= 1.5x float32, and
>= 20,000 images/s for the full-width CNN at 48x48 with mixed precision.
`train.deterministic` is off here, as a GPU user would run it.

    .venv/bin/python benchmarks/gpu_throughput.py [--images 32768] [--epochs 4] [--width 1.0]

Without a GPU it says so and exits 0: there is nothing to measure. `--cpu` runs the same
code on the CPU with whatever sizes are given (a smoke test of this script; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ferops.config import load_params  # noqa: E402
from ferops.models import build_model  # noqa: E402
from ferops.train import devices  # noqa: E402
from ferops.train.fit import compile_model, fit, seed_everything  # noqa: E402
from ferops.train.tasks import emotion_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASK = emotion_task(("neutral", "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise"))
BATCHES = (256, 1024)
PRECISIONS = ("float32", "mixed_float16")


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def images_per_second(timer: EpochTimer, n: int) -> float:
    return n / float(np.median(timer.seconds[1:]))


def plain_keras(params, x: tf.Tensor, y: tf.Tensor) -> float:
    """The reference: the same model and optimizer, `model.fit` on in-memory tensors."""
    seed_everything(params.seed, deterministic=False)
    with devices.dtype_policy(params.train.precision):
        model = devices.float32_outputs(build_model(params.model, TASK.head, tuple(x.shape[1:])))
    compile_model(model, params, TASK)
    timer = EpochTimer()
    model.fit(x, y, batch_size=params.train.batch_size, epochs=params.train.epochs, shuffle=True, verbose=0,
              callbacks=[timer])
    return images_per_second(timer, int(x.shape[0]))


def ferops_fit(params, x: np.ndarray, y: np.ndarray, augment: bool) -> float:
    timer = EpochTimer()
    fit(params, TASK, x, y, callbacks=[timer], augment=augment, verbose=0)
    return images_per_second(timer, len(x))


def verdict(ok: bool) -> str:
    return "meets target" if ok else "BELOW target"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32768)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--cpu", action="store_true", help="smoke-run on the CPU (figures meaningless)")
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs must be >= 2: the first epoch (tracing, compilation) is not counted")
    devices.enable_memory_growth()
    if not args.cpu and not tf.config.list_physical_devices("GPU"):
        print("gpu_throughput: no GPU visible to TensorFlow on this machine; nothing to measure "
              "(install the .[gpu] extra on a machine with an NVIDIA GPU).")
        return
    print(f"device: {devices.describe()}; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"paper CNN width {args.width}, 48x48x1, {args.images} images, {args.epochs} epochs (first not counted)")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 48, 48, 1), dtype=np.uint8)
    y = rng.integers(0, len(TASK.labels), args.images)
    with tf.device("/CPU:0" if args.cpu else "/GPU:0"):
        x_tensor, y_tensor = tf.constant(x.astype(np.float32)), tf.constant(y)
    rates: dict[tuple[int, str, str], float] = {}
    for batch in BATCHES:
        for precision in PRECISIONS:
            params = load_params(ROOT / "params.yaml", {
                "model": {"width": args.width},
                "train": {"epochs": args.epochs, "batch_size": batch, "precision": precision,
                          "deterministic": False}})
            rates[batch, precision, "plain"] = plain_keras(params, x_tensor, y_tensor)
            rates[batch, precision, "ferops"] = ferops_fit(params, x, y, augment=False)
            rates[batch, precision, "ferops+aug"] = ferops_fit(params, x, y, augment=True)
            keras.backend.clear_session()
            print(f"batch {batch:5d} {precision:14s} plain {rates[batch, precision, 'plain']:9.0f} img/s   "
                  f"ferops {rates[batch, precision, 'ferops']:9.0f}   "
                  f"ferops+augment {rates[batch, precision, 'ferops+aug']:9.0f}", flush=True)
    print()
    for batch in BATCHES:
        for precision in PRECISIONS:
            ratio = rates[batch, precision, "ferops"] / rates[batch, precision, "plain"]
            print(f"batch {batch:5d} {precision:14s} ferops / plain = {ratio:.2f}  ({verdict(ratio >= 0.95)}: >= 0.95)")
        for side in ("plain", "ferops"):
            gain = rates[batch, "mixed_float16", side] / rates[batch, "float32", side]
            print(f"batch {batch:5d} {side:6s} mixed_float16 / float32 = {gain:.2f}  ({verdict(gain >= 1.5)}: >= 1.5)")
    best = max(rates[b, "mixed_float16", "ferops"] for b in BATCHES)
    print(f"best ferops mixed-precision rate: {best:.0f} img/s  ({verdict(best >= 20000)}: >= 20,000 on one H100)")


if __name__ == "__main__":
    sys.exit(main())

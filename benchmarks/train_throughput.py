"""Training images/s on this CPU: plain Keras float32, plain Keras bf16, and ferops `fit` under `auto`.

Plain Keras is a `model.fit` of the same model fed the same uint8 images the keras-io way
(from_tensor_slices, shuffle, batch, cast, prefetch), built under float32 or under
`mixed_bfloat16`; ferops goes through `fit` (index-gathered stream, augmentation, MLflow epoch
logging) with `train.precision: auto`, i.e. whatever ferops.train.precision picks on this machine.
Each side builds, compiles and fits a fresh model per run; the three alternate in this one process,
so machine noise hits them alike, and the best of `--repeats` runs per side is compared.

Printed: images/s, achieved GFLOP/s (3x the forward FLOPs counted from the model's layers) and its
share of the CPU's peak for that precision (benchmarks/flops.py says how the peak is computed), and
the ratios. Targets on a CPU with avx512_bf16: ferops >= 1.8x plain float32 and >= 0.95x plain bf16.
Where auto picks float32 (no native bf16), the targets are ferops >= 0.95x plain float32, and the
bf16 line shows what emulated bf16 would cost.

    .venv/bin/python benchmarks/train_throughput.py [--images 2048] [--epochs 3] [--width 1.0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ferops.config import load_params, replace  # noqa: E402
from ferops.models import build_model  # noqa: E402
from ferops.tracking.epoch_logger import EpochLogger  # noqa: E402
from ferops.tracking.store import configure  # noqa: E402
from ferops.train import devices, precision  # noqa: E402
from ferops.train.fit import fit, seed_everything  # noqa: E402
from ferops.train.tasks import emotion_task  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flops import cpu_peaks, forward_flops  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASK = emotion_task(("neutral", "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise"))


def uint8_stream(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """The plain Keras way to feed uint8 images: shuffled batches cast to float32 in the pipeline."""
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def plain_keras(params, x, y, policy: str = "float32") -> float:
    """The same model and optimizer compiled the plain way (built-in loss by name), fed the keras-io stream."""
    start = time.perf_counter()
    seed_everything(params.seed)
    with devices.dtype_policy(policy):  # keras.mixed_precision.set_global_policy, restored afterwards
        model = build_model(params.model, TASK.head, x.shape[1:])
    schedule = keras.optimizers.schedules.InverseTimeDecay(params.train.learning_rate, 1, params.train.decay)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(uint8_stream(x, y, params.train.batch_size, params.seed), epochs=params.train.epochs, shuffle=False,
              verbose=0)
    return len(x) * params.train.epochs / (time.perf_counter() - start)


def ferops_fit(params, x, y) -> float:
    with mlflow.start_run() as run:
        start = time.perf_counter()
        fit(params, TASK, x, y, callbacks=[EpochLogger(run.info.run_id)], verbose=0)
        return len(x) * params.train.epochs / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.repeats < 3:
        ap.error("--repeats must be >= 3: one run per side is noise on shared cores")
    params = load_params(ROOT / "params.yaml", {"model": {"width": args.width},
                                                "train": {"epochs": args.epochs, "batch_size": 64,
                                                          "precision": "auto"}})
    auto = precision.resolve("auto")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 48, 48, 1), dtype=np.uint8)
    y = rng.integers(0, 8, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        configure(params.tracking)  # a throwaway SQLite store: real tracking cost, no clutter
        # One throwaway run of each first: TensorFlow's one-time start-up costs belong to neither side.
        tiny = replace(params, **{"train.epochs": 1})
        plain_keras(tiny, x[:128], y[:128])
        plain_keras(tiny, x[:128], y[:128], "mixed_bfloat16")
        ferops_fit(tiny, x[:128], y[:128])
        sides = {"plain keras float32": [], "plain keras mixed_bfloat16": [], f"ferops fit, auto = {auto}": []}
        runs = (lambda: plain_keras(params, x, y), lambda: plain_keras(params, x, y, "mixed_bfloat16"),
                lambda: ferops_fit(params, x, y))
        for _ in range(args.repeats):
            for runs_of, run in zip(sides.values(), runs):
                runs_of.append(run())
    flops = 3 * forward_flops(build_model(params.model, TASK.head, x.shape[1:]))
    peaks, how = cpu_peaks()
    best = {name: max(v) for name, v in sides.items()}
    print(f"images: {args.images} x {args.epochs} epochs, width {args.width}, batch 64, 48x48x1, 8 classes, "
          f"best of {args.repeats}; training {flops / 1e6:.1f} MFLOP/image (3x forward)")
    print(f"peak: {how}")
    for (name, runs_of), policy in zip(sides.items(), ("float32", "mixed_bfloat16", auto)):
        achieved = best[name] * flops
        share = achieved / peaks[policy]
        print(f"{name:34s}: {best[name]:7.1f} images/s, {achieved / 1e9:6.1f} GFLOP/s"
              f" ({'emulated: no peak' if share != share else f'{share:.0%} of peak'})"
              f"  (runs: {', '.join(f'{v:.1f}' for v in runs_of)})")
    f32, bf16, ours = best.values()
    print(f"ratio ferops/plain float32       : {ours / f32:.3f}  "
          f"(target {'>= 1.8' if auto == 'mixed_bfloat16' else '>= 0.95: auto chose float32 here'})")
    print(f"ratio ferops/plain bf16          : {ours / bf16:.3f}  (target >= 0.95 where bf16 is native)")
    print(f"ratio plain bf16/plain float32   : {bf16 / f32:.3f}  (this CPU's bf16 speed-up; < 1 means emulated)")


if __name__ == "__main__":
    main()

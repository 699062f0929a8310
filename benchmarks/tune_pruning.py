"""Trials per hour of one Optuna study with pruning against the same study without it, in one run.

The study is built so that half its trials are hopeless: its trials are enqueued
(`tune.enqueue`) alternating the recipe's learning rate 1e-3 and 1e-7 (at which nothing trains in a few
epochs). Both studies use the same data (an easily learnable 3-class image set:
the bench measures the tuner, not the faces; a few epochs on a small SynthFACS
set leave every trial at the majority class, so nothing could be told apart),
the same TPE seed, the same trials and inner splits; only the pruner differs
(MedianPruner after 2 complete trials vs none). Printed: wall time, trials/hour,
pruned trials, and the best inner validation accuracy each study found.

    .venv/bin/python benchmarks/tune_pruning.py [--trials 8] [--images 240] [--width 0.125] [--epochs 2]

At the defaults each fit is a few seconds, most of it model build and tracing, which a pruned
trial pays too; `--images 1200 --width 0.5 --epochs 4` makes epochs the cost, as in a real study.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ferops.config import load_params  # noqa: E402
from ferops.data.dataset import Dataset  # noqa: E402
from ferops.tuning.study import run_tune  # noqa: E402


def bars(n: int, n_subjects: int = 12) -> Dataset:
    """Class k: a bright bar in row band k, on noise; subjects in blocks (subject-independent folds work)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    images = rng.integers(40, 90, (n, 48, 48, 1), dtype=np.uint8)
    for i, k in enumerate(labels):
        images[i, 8 + 12 * k: 14 + 12 * k, 6:42] = 230
    classes = ("neutral", "happiness", "surprise")
    subjects = [f"S{i * n_subjects // n:03d}" for i in range(n)]
    manifest = pd.DataFrame({"path": [f"bars/{i:04d}.png" for i in range(n)], "label": labels,
                             "label_name": [classes[k] for k in labels], "subject": subjects,
                             "sequence": [f"{s}_{i:03d}" for i, s in enumerate(subjects)], "frame": 1, "split": "train"})
    return Dataset(images, manifest, classes, "bars")


def study(tmp: Path, data: Path, pruner: str, trials: int, width: float, epochs: int) -> tuple[float, dict]:
    changes = {
        "dataset": {"processed_dir": str(data), "name": "bars"},
        "model": {"width": width}, "cv": {"folds": 2},
        "tune": {"enabled": True, "trials": trials, "inner_folds": 2, "storage": f"sqlite:///{tmp / f'{pruner}.db'}",
                 "study": f"bench-{pruner}", "workers": 1,
                 # params.yaml's recipe (1e-3) first, then hopeless and good settings alternating: half hopeless
                 "enqueue": [{"train.learning_rate": 0.0000001 if i % 2 == 0 else 0.001} for i in range(trials - 1)],
                 "pruner": {"kind": pruner, "startup_trials": 2, "warmup_steps": 0},
                 "space": {"train.learning_rate": ["choice", 0.001, 0.0000001], "train.epochs": ["int", epochs, epochs + 1]}},
        "train": {"learning_rate": 0.001, "epochs": epochs, "augment": {"flip": True, "rotation_deg": 0.0,
                  "translation": 0.0, "scale": 0.0, "shear": 0.0}},
    }
    params = load_params(ROOT / "params.yaml", changes)
    start = time.perf_counter()
    result = run_tune(params, out_dir=tmp / pruner, params_path=ROOT / "params.yaml", changes=changes)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="trials per outer fold (2 folds)")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--width", type=float, default=0.125, help="model.width: larger makes epochs, not "
                        "per-fit overhead, the cost (what pruning saves)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fit (trials draw epochs or epochs + 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.chdir(tmp)
        data = bars(args.images).save(tmp / "data")
        rows = {}
        for pruner in ("none", "median"):
            seconds, result = study(tmp, data, pruner, args.trials, args.width, args.epochs)
            m = result["metrics"]
            n = m["trials_complete"] + m["trials_pruned"]
            rows[pruner] = seconds
            print(f"{pruner:>6}: {n} trials in {seconds:.0f} s = {3600 * n / seconds:.0f} trials/hour; "
                  f"{m['trials_pruned']} pruned; best inner val accuracy (mean of folds) {m['inner_val_accuracy_mean']:.3f}")
        print(f"pruning speed-up (same trials): {rows['none'] / rows['median']:.2f}x")


if __name__ == "__main__":
    main()

"""What AU detection needs to learn: inner-validation AUROC and ICC for one (faces, width, epochs) recipe.

Why: `au.*` and `domains.au.n` trade data against epochs and width inside `make run`'s budget, and the
choice must not look at a test fold. This renders `domains.au` in memory (params.yaml `seed`), takes the
training subjects of the AU stage's first fold, splits them as `fit` does (inner validation subjects), trains
the stage's presence and/or intensity model (`--tasks`) on the fit rows, and scores only the
inner validation subjects. The test fold is never predicted. Prints one JSON line with the time it took.

    .venv/bin/python benchmarks/au_budget.py 4000 --epochs 30
    .venv/bin/python benchmarks/au_budget.py 8000 --epochs 15 --tasks presence intensity
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def probe(params, n: int, epochs: int, width: float, batch_size: int, folds: int, augment: bool,
          tasks=("presence",), per_au: bool = False) -> dict:
    """Train on the first fold's fit rows and score its inner validation subjects; the test fold is never predicted."""
    from ferops.config import replace
    from ferops.data.synthfacs_dataset import synthfacs_dataset
    from ferops.experiments.au.metrics import intensity_table, presence_table
    from ferops.experiments.au.stage import choose_aus, intensity_params
    from ferops.train.fit import fit, predict_proba
    from ferops.train.folds import inner_split, make_folds
    from ferops.train.tasks import au_intensity_task, au_presence_task

    au = params.au
    start = time.perf_counter()
    data = synthfacs_dataset("au", n, seed=params.seed, size=48, channels=1, masks=False)
    rendered = time.perf_counter() - start
    labels, _ = choose_aus(data, au.min_prevalence)
    fold = make_folds(np.zeros(len(data), int), data.subjects, folds, "subject", params.seed)
    fit_rows, val_rows = inner_split(np.flatnonzero(fold != 0), data.subjects, params.train.validation_fraction,
                                     params.seed)
    p = replace(params, **{"model.width": width, "train.epochs": epochs, "train.batch_size": batch_size})
    out = {"n": n, "width": width, "epochs": epochs, "batch_size": batch_size, "augment": augment,
           "n_fit": len(fit_rows), "n_validation": len(val_rows), "render_s": round(rendered, 1)}
    x = data.images
    kinds = {"presence": au_presence_task, "intensity": au_intensity_task}
    for task in (kinds[kind](labels, au.sparsity.l1, au.sparsity.l2) for kind in tasks):
        y = task.targets(data)
        start = time.perf_counter()
        recipe = intensity_params(p) if task.name == "au_intensity" else p  # the stage's own recipe per model
        result = fit(recipe, task, x[fit_rows], y[fit_rows], x[val_rows], y[val_rows], verbose=0, reuse=True,
                     augment=augment)
        pred = predict_proba(result.model, x[val_rows])
        out[f"{task.name}_fit_s"] = round(time.perf_counter() - start, 1)
        out[f"{task.name}_val_loss_last"] = round(result.history["val_loss"][-1], 4)
        out[f"{task.name}_val_loss_min"] = round(min(result.history["val_loss"]), 4)
        if task.name == "au_presence":
            table = presence_table(y[val_rows], pred, labels)
            out["val_auroc_mean"] = round(float(table["auroc"].mean()), 4)
            out["val_auroc_min"] = round(float(table["auroc"].min()), 4)
            if per_au:
                out["val_auroc"] = dict(zip(table["au"], table["auroc"].round(3)))
        else:
            out["val_icc_mean"] = round(float(intensity_table(y[val_rows], pred, labels)["icc"].mean()), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="faces, as domains.au.n")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--folds", type=int, default=2, help="as au.folds: the first fold's training subjects are used")
    ap.add_argument("--augment", action="store_true", help="train.augment's flips and affine jitter")
    ap.add_argument("--tasks", nargs="+", choices=["presence", "intensity"], default=["presence"],
                    help="the models to train: presence (AUROC on validation), intensity (ICC)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--per-au", action="store_true", help="print each AU's validation AUROC")
    ap.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a params.yaml value for this probe, as `dvc exp run -S` (model.dense_dropout=0.25)")
    args = ap.parse_args()

    import yaml

    from ferops.config import load_params, replace

    params = load_params(args.params)
    changes = dict(item.split("=", 1) for item in args.set)
    if changes:
        params = replace(params, **{key: yaml.safe_load(value) for key, value in changes.items()})
    print(json.dumps({**({"set": changes} if changes else {}), **probe(params, args.n, args.epochs, args.width, args.batch_size, args.folds,
                           args.augment, args.tasks, args.per_au)}))


if __name__ == "__main__":
    main()

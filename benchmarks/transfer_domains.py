"""What a transfer domain needs to learn on its own: within-domain CV accuracy for one (domain, size, epochs).

Why: the transfer matrix's diagonal is each domain's own subject-independent CV from scratch, and a matrix
whose diagonal is at chance measures nothing. This renders one SynthFACS domain in memory (the `domain`
stage's renderer, params.yaml `seed`), runs the diagonal's recipe (2 folds grouped by subject, inner
validation split of the training subjects, the paper CNN at `--width`, bf16 where the CPU has it) and prints
the pooled out-of-fold accuracy with the time it took, so sizes and epochs can be chosen against the budget.

    .venv/bin/python benchmarks/transfer_domains.py posed 600 --frames 3 3 --epochs 20
    .venv/bin/python benchmarks/transfer_domains.py wild 1500 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", choices=["posed", "wild", "webcam"])
    ap.add_argument("n", type=int, help="sequences (posed) or images (wild, webcam), as domains.NAME.n")
    ap.add_argument("--frames", type=int, nargs=2, default=None, help="posed: frames per sequence (domains.posed.frames)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args()

    from ferops.config import load_params, replace
    from ferops.data.synthfacs_dataset import synthfacs_dataset
    from ferops.train.fit import fit, predict_proba
    from ferops.train.folds import inner_split, make_folds
    from ferops.train.tasks import emotion_task

    params = load_params(args.params)
    start = time.perf_counter()
    data = synthfacs_dataset(args.preset, args.n, seed=params.seed, size=48, channels=1, masks=False,
                             frames=tuple(args.frames) if args.frames else None)
    rendered = time.perf_counter() - start
    task = emotion_task(data.classes)
    y = task.targets(data)
    keep = np.flatnonzero(task.labelled(y))
    images, y, subjects = data.images[keep], y[keep], data.subjects[keep]
    folds = make_folds(y, subjects, args.folds, "subject", params.seed)
    p = replace(params, **{"model.width": args.width, "train.epochs": args.epochs})
    pred = np.full(len(y), -1)
    start = time.perf_counter()
    for f in range(args.folds):
        fit_rows, val_rows = inner_split(np.flatnonzero(folds != f), subjects, p.train.validation_fraction,
                                         params.seed + f)
        model = fit(p, task, images[fit_rows], y[fit_rows], images[val_rows], y[val_rows], seed_offset=f,
                    verbose=0, reuse=True).model
        pred[folds == f] = predict_proba(model, images[folds == f]).argmax(axis=1)
    print(json.dumps({"preset": args.preset, "n": args.n, "images": len(y), "classes": len(data.classes),
                      "width": args.width, "epochs": args.epochs, "folds": args.folds,
                      "accuracy": round(float((pred == y).mean()), 4), "render_s": round(rendered, 1),
                      "fit_s": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()

"""Spread, not one draw: each experiment's headline figure over several seeds, mean ± sample std.

`params.seed` drives the fold assignment, the weight initialisation and the augmentation, so
rerunning a stage under another seed, with the data unchanged, shows how much of a figure is noise.
Each run is the stage's own function (the one `dvc repro` calls) on the project's data, logged
to its own MLflow experiment (`ferops-seeds`, so the results view is not crowded) and registering
nothing. Seed 42 is params.yaml's, so its row repeats `make run`'s figure.

    .venv/bin/python benchmarks/seed_spread.py                          # cv and micro, seeds 42 43 44
    .venv/bin/python benchmarks/seed_spread.py --stages cv au cross_task micro transfer --seeds 42 43 44

Run it after `make run` (it reads the processed data and domains that run made).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def headline_cv(params, out: Path) -> dict[str, float]:
    from ferops.experiments.emotion.cv import cross_validate

    m = cross_validate(params, out_dir=out).metrics
    return {"emotion CV accuracy": m["cv_accuracy_mean"]}


def headline_au(params, out: Path) -> dict[str, float]:
    from ferops.experiments.au.stage import run_au

    m = run_au(dataclasses.replace(params, au=dataclasses.replace(params.au, refit=False)), out_dir=out)
    return {"AU all-at-once mean F1": m["all_at_once"]["f1_mean"],
            "AU all-at-once mean AUROC": m["all_at_once"]["auroc_mean"],
            "AU intensity ICC(3,1)": m["intensity"]["icc_mean"]}


def headline_micro(params, out: Path) -> dict[str, float]:
    from ferops.experiments.micro.stage import micro

    m = micro(dataclasses.replace(params, micro=dataclasses.replace(params.micro, register=False)), out_dir=out)
    return {"micro CNN+LSTM UF1 (5 classes)": m["metrics"]["cnn_lstm"]["5class"]["uf1"],
            "micro LBP-TOP UF1 (5 classes)": m["metrics"]["lbp_top"]["5class"]["uf1"]}


def headline_cross_task(params, out: Path) -> dict[str, float]:
    from ferops.experiments.cross_task.stage import run_cross_task

    m = run_cross_task(params, ROOT / "outputs" / "model" / "model.keras", out_dir=out)["metrics"]  # refit's model
    return {"cross-task scratch F1 at 100%": m["scratch_f1@1"], "cross-task frozen F1 at 100%": m["frozen_f1@1"],
            "cross-task frozen - scratch at 10%": m["frozen_f1@0.1"] - m["scratch_f1@0.1"]}


def headline_transfer(params, out: Path) -> dict[str, float]:
    from ferops.experiments.transfer.stage import run_transfer

    m = run_transfer(params, out_dir=out)["metrics"]
    figures = {f"transfer within-dataset, {name}": value for name, value in m["within"].items()}
    figures |= {f"transfer off-diagonal {mode.replace('_', '-')}": m[mode]["off_diagonal_mean"]
                for mode in ("zero_shot", "frozen", "fine_tuned")}
    for f in params.transfer.fractions:
        figures[f"transfer curve at {f:.0%}: fine-tuned - scratch"] = (m["curve"][f"fine_tuned@{f:g}"]
                                                                      - m["curve"][f"scratch@{f:g}"])
    return figures


STAGES = {"cv": headline_cv, "au": headline_au, "cross_task": headline_cross_task, "micro": headline_micro,
          "transfer": headline_transfer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", choices=sorted(STAGES), default=["cv", "micro"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", default="ferops-seeds", help="MLflow experiment the runs go to")
    args = parser.parse_args()

    from ferops.config import load_params
    from ferops.quiet_tf import import_tensorflow

    import_tensorflow()
    base = load_params(args.params)
    base = dataclasses.replace(base, tracking=dataclasses.replace(base.tracking, experiment=args.experiment))
    figures: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ferops-seeds-") as tmp:
        for seed in args.seeds:
            params = dataclasses.replace(base, seed=seed)
            for stage in args.stages:
                start = time.perf_counter()
                found = STAGES[stage](params, Path(tmp) / f"{stage}-{seed}")
                print(f"seed {seed} {stage}: " + ", ".join(f"{k} {v:.4f}" for k, v in found.items())
                      + f" ({time.perf_counter() - start:.0f} s)", flush=True)
                for name, value in found.items():
                    figures.setdefault(name, {})[seed] = value
    print(f"\n{'figure':<34} " + " ".join(f"{'seed ' + str(s):>9}" for s in args.seeds) + f" {'mean ± std':>17}")
    for name, by_seed in figures.items():
        values = np.array([by_seed[s] for s in args.seeds])
        spread = f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values[0]:.3f}"
        print(f"{name:<34} " + " ".join(f"{v:9.3f}" for v in values) + f" {spread:>17}")


if __name__ == "__main__":
    main()

"""outputs/tune/best_params.yaml: what `ferops tune` hands to `ferops cv` and `ferops refit`.

Kept free of Optuna and TensorFlow imports: cv and refit read it on every run.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ferops.config import Params, replace
from ferops.errors import FeropsError
from ferops.io import atomic_file

BEST_PARAMS = Path("outputs/tune/best_params.yaml")


def write_overlay(data: dict, path: str | Path = BEST_PARAMS) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_text("# written by `ferops tune`; `ferops cv` trains fold i with folds[i], `ferops refit` with refit\n"
                       + yaml.safe_dump(data, sort_keys=False))
    return Path(path)


def read_overlay(path: str | Path = BEST_PARAMS) -> dict:
    """{} when tuning is off or has not run; else the per-fold and refit overrides (dotted keys)."""
    path = Path(path)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or "enabled" not in data:
        raise FeropsError(f"{path}: not a `ferops tune` overlay (no `enabled` key); rerun `dvc repro tune`")
    return data if data["enabled"] else {}


def fold_params(params: Params, overlay: dict, fold: int) -> Params:
    """The recipe outer fold `fold` trains with: its own study's best settings when tuning ran."""
    if not overlay:
        return params
    folds = overlay["folds"]
    if fold not in folds or len(folds) != params.cv.folds:
        raise FeropsError(f"{BEST_PARAMS}: tuned for {len(folds)} folds, cv.folds is {params.cv.folds}; "
                          f"rerun `dvc repro tune`")
    return replace(params, **folds[fold])


def refit_params(params: Params, overlay: dict) -> Params:
    return replace(params, **overlay["refit"]) if overlay else params

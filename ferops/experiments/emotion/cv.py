"""The `cv` stage: k-fold cross-validation of the recipe in params.yaml, nested inside tuning when it ran."""

from __future__ import annotations

from pathlib import Path

from ferops.config import Params
from ferops.data.dataset import Dataset
from ferops.stages import STAGES
from ferops.tracking.store import configure
from ferops.tuning.overlay import BEST_PARAMS, fold_params, read_overlay


def cross_validate(params: Params, out_dir: Path = STAGES["cv"].out, mapper=None, tuned: Path = BEST_PARAMS):
    """k-fold CV of the recipe in params.yaml (see ferops.train.cross_validation).

    When `ferops tune` ran (tune.enabled), fold i trains with the best settings of the
    study run on fold i's training subjects: a nested CV. `mapper` runs the folds
    (default: params.runner's; the Prefect flows pass one that makes each fold a task).
    """
    from ferops.train.cross_validation import cross_validate as run_cv

    configure(params.tracking)
    overlay = read_overlay(tuned)
    return run_cv(Dataset.load(params.dataset.processed_dir), params, out_dir, data_path=params.dataset.processed_dir, mapper=mapper,
                  fold_params=lambda i: fold_params(params, overlay, i))

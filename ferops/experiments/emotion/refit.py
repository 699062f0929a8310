"""The `refit` stage: the final emotion model on all data, linked to the CV run that is its evidence."""

from __future__ import annotations

from pathlib import Path

from ferops.config import Params
from ferops.data.dataset import Dataset
from ferops.experiments.emotion.records import read_cv_result, require_run
from ferops.stages import STAGES
from ferops.tracking.store import configure
from ferops.tuning.overlay import BEST_PARAMS, read_overlay, refit_params


def refit(params: Params, cv_dir: Path = STAGES["cv"].out, out_dir: Path = STAGES["refit"].out, tuned: Path = BEST_PARAMS) -> dict:
    """The final model on all data, linked to its CV evidence (or a note when cv.refit is false)."""
    from ferops.train.refit import refit as train_final, skip_refit

    if not params.cv.refit:
        return skip_refit(out_dir)
    configure(params.tracking)
    cv_metrics = read_cv_result(cv_dir)
    require_run(cv_metrics["run_id"], Path(cv_dir) / "run.json")
    return train_final(Dataset.load(params.dataset.processed_dir), refit_params(params, read_overlay(tuned)), cv_metrics, out_dir,
                       data_path=params.dataset.processed_dir)

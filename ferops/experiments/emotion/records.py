"""Reading the record one emotion stage leaves for the next, and refusing one the tracking store does not back."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from ferops.errors import FeropsError


def read_json(path: Path, fix: str) -> dict:
    """A stage's input record, or a one-line error saying which stage makes it."""
    if not path.exists():
        raise FeropsError(f"{path}: not found; {fix}")
    return json.loads(path.read_text())


def require_run(run_id: str, recorded_in: Path) -> None:
    """A record naming a run the store lacks (a new clone, a deleted mlflow.db) must not be built upon."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow.get_run(run_id)
    except MlflowException:
        raise FeropsError(f"{recorded_in}: run {run_id} is not in the tracking store {mlflow.get_tracking_uri()}; "
                          f"`make run` (which clears stale records) or `dvc repro --force` retrains it") from None


def read_cv_result(cv_dir: str | Path) -> dict:
    """metrics.json + run.json of a finished CV, as one dict (what refit and register build on)."""
    fix = "run the cv stage first (`dvc repro cv`)"
    return read_json(Path(cv_dir) / "metrics.json", fix) | read_json(Path(cv_dir) / "run.json", fix)

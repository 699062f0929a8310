"""The `register` stage: the refit model into the registry; champion only over a comparable, weaker champion."""

from __future__ import annotations

from pathlib import Path

from ferops.config import Params
from ferops.experiments.emotion.records import read_cv_result, read_json, require_run
from ferops.stages import STAGES
from ferops.tracking.registration import not_registered, register_model, write_registration
from ferops.tracking.registry import ComparabilityKey
from ferops.tracking.store import configure


def register(params: Params, cv_dir: Path = STAGES["cv"].out, model_dir: Path = STAGES["refit"].out,
             out_path: Path = STAGES["register"].out) -> dict:
    """Register the refit model under the task's name; champion only over a comparable, weaker champion."""
    refit_record = read_json(Path(model_dir) / "run.json", "run the refit stage first (`dvc repro refit`)")
    if not refit_record["refit"]:
        registration = not_registered(refit_record["reason"])
    else:
        configure(params.tracking)
        cv_metrics = read_cv_result(cv_dir)
        require_run(refit_record["run_id"], Path(model_dir) / "run.json")
        metric = params.tracking.promote_metric
        key = ComparabilityKey(task=cv_metrics["task"], dataset=cv_metrics["dataset"],
                               data_hash=cv_metrics["data_hash"], protocol=cv_metrics["protocol"],
                               classes=tuple(cv_metrics["classes"]))
        registration = register_model(refit_record["model_uri"], params.tracking.model_name, cv_metrics[metric],
                                      metric, key, refit_record["run_id"], cv_metrics["run_id"])
    write_registration(registration, out_path)
    return registration.as_dict()

"""The `register` stage: the refit model into the registry; champion only over a comparable, weaker champion."""

from __future__ import annotations

from pathlib import Path

from ferops.config import Params
from ferops.evaluation import write_json
from ferops.experiments.emotion.records import read_cv_result, read_json, require_run
from ferops.stages import STAGES
from ferops.tracking.store import configure


def register(params: Params, cv_dir: Path = STAGES["cv"].out, model_dir: Path = STAGES["refit"].out,
             out_path: Path = STAGES["register"].out) -> dict:
    """Register the refit model under the task's name; champion only over a comparable, weaker champion."""
    from ferops.tracking.registry import ComparabilityKey, register as register_version

    refit_record = read_json(Path(model_dir) / "run.json", "run the refit stage first (`dvc repro refit`)")
    if not refit_record["refit"]:
        record = {"registered": False, "reason": refit_record["reason"]}
        write_json(record, out_path)
        return record
    configure(params.tracking)
    cv_metrics = read_cv_result(cv_dir)
    require_run(refit_record["run_id"], Path(model_dir) / "run.json")
    metric = params.tracking.promote_metric
    key = ComparabilityKey(
        task=cv_metrics["task"], dataset=cv_metrics["dataset"], data_hash=cv_metrics["data_hash"],
        protocol=cv_metrics["protocol"], classes=tuple(cv_metrics["classes"]),
    )
    promotion = register_version(
        refit_record["model_uri"], params.tracking.model_name, cv_metrics[metric], metric, key,
        tags={"refit_run_id": refit_record["run_id"]}, cv_run_id=cv_metrics["run_id"],
    )
    record = {"registered": True, "model": promotion.name, "version": promotion.version,
              "champion": promotion.promoted, "reason": promotion.reason, "score": cv_metrics[metric],
              "metric": metric, "run_id": refit_record["run_id"]}
    write_json(record, out_path)
    return record

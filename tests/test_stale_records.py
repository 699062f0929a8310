"""`ferops reconcile` for the experiment stages: a record whose run (or registered version) the store lacks
is removed, so `dvc repro` reruns that stage; a record the store backs is kept."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from ferops.stages import STAGES
from ferops.tracking.stale_records import EXPERIMENTS, clear_stale_records

from conftest import make_params


def test_experiment_records_are_the_stages_run_files():
    from ferops.experiments.analysis import stage as analyze
    from ferops.experiments.au import stage as au
    from ferops.experiments.cross_task import stage as cross_task
    from ferops.experiments.micro import stage as micro
    from ferops.experiments.transfer import stage as transfer

    for module in (au, cross_task, transfer, analyze, micro):
        assert module.OUT_DIR / "run.json" in {stage.record for stage in EXPERIMENTS}


def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_reconcile_removes_exactly_the_records_the_store_cannot_back(mlflow_store, tmp_path):
    params = make_params()
    from ferops.tracking.store import configure

    configure(params.tracking)
    with mlflow.start_run() as run:
        pass
    au, micro, transfer = STAGES["au"], STAGES["micro"], STAGES["transfer"]
    kept, missing_run, missing_version = transfer.record, micro.record, au.record
    _write(kept, {"run_id": run.info.run_id})
    _write(missing_run, {"run_id": "0" * 32})
    _write(missing_version, {"run_id": run.info.run_id})
    _write(au.registration, {"registered": True, "reason": "r", "model": "fer-au", "version": "7", "run_id": "x"})
    lines = clear_stale_records(params)
    assert kept.exists() and not missing_run.exists() and not missing_version.exists()
    assert not au.registration.exists()  # its registration goes with it
    assert any(str(missing_run) in line and "will rerun" in line for line in lines)
    assert any("fer-au v7" in line for line in lines)
    assert clear_stale_records(params) == []  # nothing left to clear

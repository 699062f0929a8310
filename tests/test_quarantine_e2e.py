"""`dvc repro validate` of the project's dvc.yaml on a FER2013-shaped folder copy with faults, in a temp git repo.

stop: the validate stage fails and its summary names the offenders. quarantine: preprocess takes them out,
validate passes, and a second repro is a no-op (validate never rewrote its own dependency).
Only the stages up to validate run, so later stages of dvc.yaml do not matter here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import make_dvc_project, run_checked as _run
from format_fixtures import FER_FOLDER_FAULTS, fer_folder_copy

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
RAW = "data/raw/fer2013_folders"
PROCESSED = "data/processed/fer2013_folders"


def _project(repo: Path, on_fail: str) -> dict:
    """A git + DVC repo holding this project's code, dvc.yaml and tiny params over the faulty FER copy."""
    return make_dvc_project(repo, {
        "cv": {"folds": 2}, "train": {"epochs": 1}, "model": {"width": 0.125},
        "dataset": {"name": "fer2013_folders", "format": "folders", "raw_dir": RAW, "processed_dir": PROCESSED,
                    "subject_pattern": None},
        "validate": {"on_fail": on_fail},
        "_files": {RAW: fer_folder_copy},
    }, message="fer2013 folders with faults")


def test_dvc_repro_validate_under_stop_fails_naming_the_offenders(tmp_path):
    repo = tmp_path / "stop"
    env = _project(repo, "stop")
    result = _run(["dvc", "repro", "validate"], repo, env, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Running stage 'preprocess'" in output and "Running stage 'validate'" in output
    assert "✗ pixel std in [5, 110]" in output and "✗ pixel mean in [20, 235]" in output
    assert "train/angry/Training_900.jpg (std 0.0)" in output
    assert "train/angry/Training_123.jpg (train) = test/angry/PrivateTest_10131363.jpg (test)" in output
    assert json.loads((repo / "outputs/validation.json").read_text())["success"] is False


def test_dvc_repro_validate_under_quarantine_passes_and_stays_reproducible(tmp_path):
    repo = tmp_path / "quarantine"
    env = _project(repo, "quarantine")
    first = _run(["dvc", "repro", "validate"], repo, env)
    assert "quarantine: 2 blank (" in first.stdout and "quarantine: 1 duplicate_of_test (" in first.stdout
    assert "skipped 2 files: 2 not images (1 .DS_Store, 1 .txt)" in first.stdout
    assert "passed" in first.stdout and "note: quarantined by preprocess: 2 blank" in first.stdout

    rejects = pd.read_csv(repo / PROCESSED / "rejects.csv")
    assert {p: r.split(":")[0] for p, r in zip(rejects["path"], rejects["reason"])} == FER_FOLDER_FAULTS
    report = json.loads((repo / "outputs/validation.json").read_text())
    assert report["success"] and report["dataset"]["n"] == 20 and report["dataset"]["subjects_known"] is False

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("ferops-data").experiment_id])
    assert run.data.metrics["quarantined_blank"] == 2 and run.data.metrics["quarantined_total"] == 7

    second = _run(["dvc", "repro", "validate"], repo, env)
    assert "Running stage" not in second.stdout, second.stdout
    status = _run(["dvc", "status", "validate"], repo, env)
    assert "up to date" in status.stdout.lower(), status.stdout

"""validate.on_fail: quarantine takes per-image failures out (listed with reasons) and goes on; stop stops.

Real files (a FER2013-shaped folder copy with JPEG faults), real OpenCV decoding, real Great Expectations.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from ferops import pipeline
from ferops.data.dataset import Dataset
from ferops.data.quarantine import REASONS, quarantine
from ferops.data.validation import ValidationError
from ferops.tracking.store import data_runs

from conftest import ROOT, make_params
from format_fixtures import FER_FOLDER_FAULTS, fer_folder_copy
from test_validation import make_dataset

LEAK_KEPT = "test/angry/PrivateTest_10131363.jpg"
REPEAT_KEPT = "train/happy/Training_50.jpg"


def fer_params(tmp_path: Path, on_fail: str, **validate):
    raw = tmp_path / "raw" / "fer2013_folders"
    if not raw.exists():
        fer_folder_copy(raw)
    return make_params({
        "dataset": {"name": "fer2013_folders", "format": "folders", "raw_dir": str(raw),
                    "processed_dir": str(tmp_path / "processed" / "fer2013_folders"), "subject_pattern": None},
        "validate": {"on_fail": on_fail, **validate},
        "cv": {"folds": 2},
    })


def test_quarantine_reasons_and_which_copy_is_kept():
    ds = make_dataset()  # 24 noise faces; rows 18..23 are the test split
    ds.images[0] = 0  # black: blank (its mean is out of range too; one reason per image, blank first)
    ds.images[1] = 0  # the same black frame again: blank, not "duplicate"
    ds.images[2] = (ds.images[2] - 50) // 5  # dark but textured: mean ~15, std ~9
    ds.images[3] = np.where(np.indices((48, 48, 1))[1] % 2 == 0, 255, 0).astype(np.uint8)  # stripes: std 127.5
    ds.images[4] = ds.images[20]  # train copy of a test image, listed first: still the train copy goes
    ds.images[6] = ds.images[5]  # a repeat within train: the first is kept
    kept, held = quarantine(ds, (20.0, 235.0), (5.0, 110.0), test_duplicates="keep")
    reasons = dict(zip(held.rejects["path"], held.rejects["reason"]))
    paths = ds.manifest["path"]
    assert {p: r.split(":")[0] for p, r in reasons.items()} == {
        paths[0]: "blank", paths[1]: "blank", paths[2]: "dark", paths[3]: "high_contrast",
        paths[4]: "duplicate_of_test", paths[6]: "duplicate"}
    assert reasons[paths[4]] == f"duplicate_of_test: same pixels as {paths[20]} (kept)"
    assert reasons[paths[0]] == "blank: pixel std 0.0 < 5"
    assert held.counts == {"blank": 2, "dark": 1, "bright": 0, "high_contrast": 1, "duplicate_of_test": 1,
                           "duplicate": 1}
    assert list(held.counts) == list(REASONS)
    assert len(kept) == len(ds) - 6 and set(kept.manifest["path"]) == set(paths) - set(reasons)
    assert {paths[5], paths[20]} <= set(kept.manifest["path"])
    np.testing.assert_array_equal(kept.images, ds.images[[i for i in range(len(ds)) if paths[i] not in reasons]])
    assert kept.extras["quarantine"]["counts"] == held.counts and kept.extras["quarantine"]["n_before"] == len(ds)


def test_quarantine_of_clean_data_changes_nothing():
    ds = make_dataset()
    kept, held = quarantine(ds, (20.0, 235.0), (5.0, 110.0), test_duplicates="keep")
    assert held.rejects.empty and list(held.rejects.columns) == ["path", "reason"]
    assert held.flagged.empty and list(held.flagged.columns) == ["path", "reason"]
    np.testing.assert_array_equal(kept.images, ds.images)
    assert held.lines("x/rejects.csv") == [
        f"quarantine: kept {len(ds)} of {len(ds)} images; nothing quarantined",
        "quarantine: split test: 6 -> 6 images (0 quarantined)",
        "quarantine: split train: 18 -> 18 images (0 quarantined)",
        "quarantine: test split (test): 6 -> 6 images (0 quarantined), within-test duplicates kept "
        "(validate.test_duplicates: keep)"]


def test_pipeline_quarantine_drops_offenders_keeps_test_copies_and_validates(tmp_path, capsys):
    params = fer_params(tmp_path, "quarantine")
    out = pipeline.preprocess(params)
    printed = capsys.readouterr().out.splitlines()

    rejects = pd.read_csv(out / "rejects.csv")
    assert list(rejects.columns) == ["path", "reason"]
    assert {p: r.split(":")[0] for p, r in zip(rejects["path"], rejects["reason"])} == FER_FOLDER_FAULTS
    reason_of = dict(zip(rejects["path"], rejects["reason"]))
    assert reason_of["train/angry/Training_123.jpg"] == f"duplicate_of_test: same pixels as {LEAK_KEPT} (kept)"
    assert reason_of["train/happy/Training_51.jpg"] == f"duplicate: same pixels as {REPEAT_KEPT} (kept)"

    processed = Dataset.load(out)
    paths = set(processed.manifest["path"])
    assert not paths & set(FER_FOLDER_FAULTS) and {LEAK_KEPT, REPEAT_KEPT} <= paths
    assert len(processed) == 27 - 7 and processed.extras["subjects_known"] is False
    assert processed.extras["quarantine"]["counts"] == {
        "blank": 2, "dark": 1, "bright": 1, "high_contrast": 1, "duplicate_of_test": 1, "duplicate": 1}
    assert processed.extras["quarantine"]["test_split"] == {  # the folder copy's test/ is its held-out split
        "splits": ["test"], "before": 9, "quarantined": 2, "after": 7, "flagged_kept": 0,
        "reasons": {"blank": 1, "high_contrast": 1}}
    assert not [p.name for p in out.parent.iterdir() if p.name != out.name]  # no temp dirs left behind

    raw_dir = params.dataset.raw_dir
    assert f"{raw_dir}: skipped 2 files: 2 not images (1 .DS_Store, 1 .txt)" in printed
    for reason in ("blank", "dark", "bright", "high_contrast", "duplicate_of_test", "duplicate"):
        n = 2 if reason == "blank" else 1
        assert [line for line in printed if line.startswith(f"quarantine: {n} {reason} (")], (reason, printed)
    assert f"quarantine: kept 20 of 27 images; rejects listed in {out / 'rejects.csv'}" in printed

    report = pipeline.validate(params, report_path=tmp_path / "validation.json", track=False)
    assert report.success, report.summary()
    summary = report.summary()
    assert "image-level (subjects unknown)" in summary.splitlines()[0]
    assert "20 image ids (subjects unknown) over 2 folds" in summary
    assert ("note: quarantined by preprocess: 2 blank, 1 dark, 1 bright, 1 high_contrast, 1 duplicate_of_test, "
            f"1 duplicate (of 27 images; listed in {out / 'rejects.csv'})") in summary
    saved = json.loads((tmp_path / "validation.json").read_text())
    assert saved["success"] and saved["dataset"]["quarantined"]["blank"] == 2
    assert saved["dataset"]["subjects_known"] is False


def test_pipeline_stop_fails_validate_naming_the_offenders(tmp_path):
    params = fer_params(tmp_path, "stop")
    out = pipeline.preprocess(params)
    assert len(Dataset.load(out)) == 27 and pd.read_csv(out / "rejects.csv").empty
    with pytest.raises(ValidationError) as err:
        pipeline.validate(params, report_path=tmp_path / "validation.json", track=False)
    summary = str(err.value)
    assert "✗ pixel mean in [20, 235]" in summary and "✗ pixel std in [5, 110]" in summary
    assert "✗ no image in both train and test" in summary
    assert f"train/angry/Training_123.jpg (train) = {LEAK_KEPT} (test)" in summary
    for path, reason in FER_FOLDER_FAULTS.items():
        if reason != "duplicate":  # a repeat within one split is not a validation failure, only quarantined
            assert path in summary, path
    assert "quarantine" not in summary  # stop mode: no quarantine note
    assert json.loads((tmp_path / "validation.json").read_text())["success"] is False


def test_quarantine_still_stops_on_a_dataset_level_failure(tmp_path):
    params = fer_params(tmp_path, "quarantine", min_per_class=7)
    pipeline.preprocess(params)
    with pytest.raises(ValidationError) as err:
        pipeline.validate(params, report_path=tmp_path / "validation.json", track=False)
    summary = str(err.value)
    assert "✗ per-class count >= 7" in summary and "'neutral' has 6" in summary
    assert "✓ pixel std in [5, 110]" in summary and "✓ no image in both train and test" in summary


def test_validate_says_when_the_processed_set_was_not_quarantined(tmp_path):
    pipeline.preprocess(fer_params(tmp_path, "stop"))
    with pytest.raises(ValidationError) as err:
        pipeline.validate(fer_params(tmp_path, "quarantine"), report_path=tmp_path / "v.json", track=False)
    assert "note: validate.on_fail is quarantine, but" in str(err.value)
    assert "rerun the preprocess step" in str(err.value)


def test_validate_logs_quarantine_counts_and_rejects_to_mlflow(tmp_path, mlflow_store):
    params = fer_params(tmp_path, "quarantine")
    pipeline.preprocess(params)
    pipeline.validate(params, report_path=tmp_path / "validation.json", track=True)
    (run,) = mlflow.search_runs(experiment_names=[data_runs(params.tracking).experiment], output_format="list")
    metrics = run.data.metrics
    assert metrics["quarantined_blank"] == 2 and metrics["quarantined_duplicate_of_test"] == 1
    assert metrics["quarantined_bright"] == 1 and metrics["quarantined_total"] == 7
    assert metrics["validation_success"] == 1 and run.data.tags["validate.on_fail"] == "quarantine"
    assert metrics["test_split_n"] == 7 and metrics["test_split_n_before_quarantine"] == 9
    assert metrics["test_split_quarantined"] == 2 and metrics["flagged_duplicate_in_test"] == 0
    assert run.data.tags["validate.test_duplicates"] == "keep"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"rejects.csv", "flagged.csv", "validation.json"} <= artifacts


def test_dvc_preprocess_stage_reruns_when_quarantine_settings_change():
    """Quarantine happens in preprocess, so its settings and code must be that stage's params and deps."""
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["preprocess"]
    params = set(stage.get("params", []))
    for key in ("validate.on_fail", "validate.pixel_mean_range", "validate.pixel_std_range",
                "validate.test_duplicates"):
        assert key in params or "validate" in params, f"dvc.yaml: preprocess stage lacks param {key}"
    deps = stage.get("deps", [])
    for module in ("ferops/data/quarantine.py", "ferops/data/validation.py", "ferops/data/splits.py"):
        assert any(module == d or module.startswith(d.rstrip("/") + "/") for d in deps), \
            f"dvc.yaml: preprocess stage lacks dep {module}"

"""Each failure mode must stop the run and name the offending rows, not just say 'invalid'."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ferops.data.dataset import Dataset
from ferops.data.validation import ValidationError, ValidationReport, check, validate_dataset

CLASSES = ("neutral", "anger", "happiness", "surprise")
SHAPE = (48, 48, 1)


def make_dataset(per_class: int = 6, n_subjects: int = 4, seed: int = 0) -> Dataset:
    """Noise faces (mean ~125, std ~40), distinct by content; subjects alternate, last quarter is test."""
    rng = np.random.default_rng(seed)
    n = per_class * len(CLASSES)
    images = rng.integers(50, 200, size=(n, *SHAPE), dtype=np.uint8)
    labels = np.arange(n) % len(CLASSES)
    subjects = [f"S{i % n_subjects:03d}" for i in range(n)]
    split = np.where(np.arange(n) >= n * 3 // 4, "test", "train")
    manifest = pd.DataFrame({
        "path": [f"{subjects[i]}/img_{i:03d}.png" for i in range(n)],
        "label": labels,
        "label_name": [CLASSES[k] for k in labels],
        "subject": subjects,
        "sequence": 0,
        "frame": np.arange(n),
        "split": split,
    })
    return Dataset(images, manifest, CLASSES, name="toy")


def subject_folds(ds: Dataset) -> np.ndarray:
    return np.array([int(s[1:]) for s in ds.subjects])


def run(ds: Dataset, **kw) -> ValidationReport:
    kw.setdefault("image_shape", SHAPE)
    return validate_dataset(ds, **kw)


def failed(report: ValidationReport) -> dict[str, dict]:
    return {r["name"]: r for r in report.results if not r["success"]}


def test_clean_dataset_passes():
    ds = make_dataset()
    report = run(ds, min_per_class=6, folds=subject_folds(ds))
    assert report.success, report.summary()
    assert check(report) is report
    assert all(r["success"] for r in report.results)
    assert "passed" in report.summary()
    assert {r["expectation"] for r in report.results} >= {
        "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between", "expect_column_values_to_be_unique",
        "expect_column_pair_values_to_be_equal",
    }


def test_unknown_label_named_with_path():
    ds = make_dataset()
    ds.manifest.loc[3, "label_name"] = "angry"
    report = run(ds)
    assert not report.success
    assert "label_name in classes (4)" in failed(report)
    summary = report.summary()
    assert "S003/img_003.png: 'angry'" in summary
    assert "✗ label_name in classes" in summary


def test_missing_label_and_label_out_of_range():
    ds = make_dataset()
    ds.manifest.loc[1, "label_name"] = None
    ds.manifest["label"] = ds.manifest["label"].astype(float)
    ds.manifest.loc[2, "label"] = np.nan
    ds.manifest.loc[5, "label"] = 9
    bad = failed(run(ds))
    assert "S001/img_001.png" in bad["label_name not missing"]["observed"]
    assert "S002/img_002.png" in bad["label not missing (or not a number)"]["observed"]
    assert "S001/img_005.png: 9" in bad["label in 0..3"]["observed"]


def test_label_disagreeing_with_label_name():
    ds = make_dataset()
    ds.manifest.loc[0, "label"] = 2
    bad = failed(run(ds))
    assert "classes[label]='happiness' but label_name='neutral'" in bad["label indexes label_name"]["observed"]


def test_non_canonical_class_name():
    ds = make_dataset()
    classes = ("neutral", "anger", "happy", "surprise")
    ds.manifest["label_name"] = [classes[k] for k in ds.manifest["label"]]
    bad = failed(run(ds, classes=classes))
    assert "'happy'" in bad["classes are canonical names"]["observed"]


def test_too_few_per_class_names_class_and_count():
    ds = make_dataset(per_class=6)
    keep = np.flatnonzero((ds.manifest["label_name"] != "surprise").to_numpy() | (np.arange(len(ds)) < 8))
    ds = ds.subset(keep)  # surprise keeps 2 of 6
    report = run(ds, min_per_class=5)
    assert "✗ per-class count >= 5" in report.summary()
    assert "'surprise' has 2" in report.summary()
    # a class absent altogether is reported as 0, not skipped
    report = run(ds, classes=CLASSES + ("fear",), min_per_class=1)
    assert "'fear' has 0" in report.summary()


def test_wrong_shape_and_dtype():
    ds = make_dataset()
    report = run(ds, image_shape=(96, 96, 1))
    summary = report.summary()
    assert "✗ image shape = 96x96x1 uint8" in summary
    assert "height 48 (expected 96)" in summary and "width 48 (expected 96)" in summary
    ds.images = ds.images.astype(np.float32)  # Dataset refuses this at construction; simulate a later mutation
    assert "dtype float32 (expected uint8)" in run(ds).summary()


def test_dark_and_flat_images_named_by_path():
    ds = make_dataset()
    ds.images[4] = 0  # black frame: too dark and flat
    ds.images[7] = 128  # flat grey fill
    report = run(ds)
    bad = failed(report)
    assert "S000/img_004.png (mean 0.0)" in bad["pixel mean in [20, 235]"]["observed"]
    std = bad["pixel std in [5, 110]"]
    assert std["unexpected_count"] == 2
    assert {r["path"] for r in std["unexpected"]} == {"S000/img_004.png", "S003/img_007.png"}
    with pytest.raises(ValidationError) as err:
        run(ds, raise_on_failure=True)
    assert err.value.report.success is False
    assert "S003/img_007.png (std 0.0)" in str(err.value)


def test_duplicate_across_train_and_test_names_both_paths():
    ds = make_dataset()
    ds.images[-1] = ds.images[0]  # last row is test, first is train
    report = run(ds)
    observed = failed(report)["no image in both train and test"]["observed"]
    assert "1 image(s) in both" in observed
    assert "S000/img_000.png (train) = S003/img_023.png (test)" in observed


def test_duplicate_within_one_side_or_single_split_is_fine():
    ds = make_dataset()
    ds.images[1] = ds.images[0]  # both train
    assert run(ds).success
    ds.manifest["split"] = "Training"
    ds.images[-1] = ds.images[0]
    assert run(ds).success


def test_fer2013_split_names_count_as_train_and_test():
    ds = make_dataset()
    ds.manifest["split"] = np.where(ds.manifest["split"] == "train", "Training", "PrivateTest")
    ds.images[-2] = ds.images[2]
    assert "no image in both train and test" in failed(run(ds))


def test_subject_in_two_folds_named():
    ds = make_dataset()
    folds = subject_folds(ds)
    folds[1] = 3  # one S001 image lands in S003's fold
    report = run(ds, folds=folds)
    assert "subject 'S001' in folds 1,3" in report.summary()
    with pytest.raises(ValueError, match="one fold index per row"):
        run(ds, folds=folds[:-1])


def test_json_report_written(tmp_path):
    ds = make_dataset()
    ds.images[4] = 0
    report = run(ds, folds=subject_folds(ds))
    path = report.to_json(tmp_path / "reports" / "validation.json")
    data = json.loads(path.read_text())
    assert data["success"] is False
    assert data["dataset"]["name"] == "toy" and data["dataset"]["n"] == len(ds)
    mean = next(r for r in data["results"] if r["column"] == "pixel_mean")
    assert mean["unexpected"][0]["path"] == "S000/img_004.png"
    assert not list(tmp_path.glob("reports/.*"))  # no temp file left behind


def test_35k_faces_validate_in_seconds():
    import time

    rng = np.random.default_rng(1)
    n = 35_000
    images = rng.integers(30, 220, size=(n, 48, 48, 1), dtype=np.uint8)
    labels = np.arange(n) % len(CLASSES)
    manifest = pd.DataFrame({
        "path": [f"x/{i}.png" for i in range(n)], "label": labels, "label_name": np.array(CLASSES)[labels],
        "subject": [f"S{i % 500}" for i in range(n)], "sequence": 0, "frame": 0,
        "split": np.where(np.arange(n) < 30_000, "Training", "PublicTest"),
    })
    ds = Dataset(images, manifest, CLASSES)
    run(make_dataset())  # context/import warm-up is not what this measures
    start = time.perf_counter()
    report = run(ds, min_per_class=100, folds=np.array([int(s[1:]) % 10 for s in manifest["subject"]]))
    elapsed = time.perf_counter() - start
    assert report.success, report.summary()
    assert elapsed < 10, f"{elapsed:.1f}s"


def test_image_level_data_and_notes_are_in_the_summary():
    ds = make_dataset()
    assert "image-level" not in run(ds).summary()
    ds.extras["subjects_known"] = False  # as the FER2013 reader and image folders without subject_pattern set it
    report = run(ds)
    assert report.summary().splitlines()[0] == (
        "data validation of 'toy' (24 images 48x48x1, image-level (subjects unknown)): passed")
    assert report.dataset["subjects_known"] is False
    report.notes.append("quarantined by preprocess: 2 blank")
    assert report.summary().splitlines()[-1] == "  note: quarantined by preprocess: 2 blank"
    assert report.to_dict()["notes"] == ["quarantined by preprocess: 2 blank"]

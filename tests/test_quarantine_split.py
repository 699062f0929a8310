"""Quarantine must not silently change a standard test split (issue 22, item 8).

FER2013 figures are quoted on its test split (PublicTest + PrivateTest). Copies within that split are flagged and
kept by default (validate.test_duplicates: keep, listed in flagged.csv); `drop` removes them. Either way the record,
the validation report and every CV or test figure say how big the test split is and what quarantine took from it.
Real fer2013.csv parsing, real preprocess, real Great Expectations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferops import pipeline
from ferops.config import ParamsError, load_params
from ferops.data.dataset import Dataset
from ferops.data.quarantine import quarantine
from ferops.data.splits import data_report
from ferops.tracking.store import configure
from ferops.train.cross_validation import cross_validate

from conftest import ROOT, make_params
from format_fixtures import FER_CSV_COPIES, FER_CSV_KEPT_COPY, FER_CSV_SPLITS, fer_csv_with_test_copies
from test_validation import make_dataset

TEST_SPLITS = ["PrivateTest", "PublicTest"]
N_TEST = FER_CSV_SPLITS["PublicTest"] + FER_CSV_SPLITS["PrivateTest"]  # 19
WITHIN_TEST = {p for p, r in FER_CSV_COPIES.items() if r == "duplicate_in_test"}


def fer_csv_params(tmp_path: Path, test_duplicates: str, on_fail: str = "quarantine"):
    raw = tmp_path / "raw" / "fer2013"
    if not raw.exists():
        fer_csv_with_test_copies(raw)
    return make_params({
        "dataset": {"name": "fer2013", "format": "fer2013", "raw_dir": str(raw),
                    "processed_dir": str(tmp_path / "processed" / f"fer2013_{test_duplicates}")},
        "validate": {"on_fail": on_fail, "test_duplicates": test_duplicates},
        "cv": {"folds": 2},
    })


def listed(path: Path) -> dict[str, str]:
    table = pd.read_csv(path, keep_default_na=False)
    assert list(table.columns) == ["path", "reason"]
    return dict(zip(table["path"], table["reason"]))


def test_default_keeps_copies_within_the_test_split_flags_them_and_counts_every_split(tmp_path, capsys):
    params = fer_csv_params(tmp_path, "keep")
    assert load_params(ROOT / "params.yaml").validate.test_duplicates == "keep"  # the default
    out = pipeline.preprocess(params)
    printed = capsys.readouterr().out.splitlines()

    rejects = listed(out / "rejects.csv")
    assert {p: r.split(":")[0] for p, r in rejects.items()} == {
        p: r for p, r in FER_CSV_COPIES.items() if p not in WITHIN_TEST}
    assert rejects["fer2013.csv:23"] == "duplicate_of_test: same pixels as fer2013.csv:31 (kept)"
    flagged = listed(out / "flagged.csv")
    assert flagged == {p: f"duplicate_in_test: same pixels as {FER_CSV_KEPT_COPY[p]} (both kept)" for p in WITHIN_TEST}

    processed = Dataset.load(out)
    paths = set(processed.manifest["path"])
    assert WITHIN_TEST | {"fer2013.csv:31", "fer2013.csv:39"} <= paths and not paths & set(rejects)
    assert processed.manifest["split"].value_counts().to_dict() == {"Training": 21, "PublicTest": 8, "PrivateTest": 10}
    record = processed.extras["quarantine"]
    assert record["test_duplicates"] == "keep" and record["flagged"] == {"duplicate_in_test": 2}
    assert record["splits"] == {
        "PrivateTest": {"before": 11, "quarantined": 1, "after": 10, "flagged_kept": 2, "reasons": {"blank": 1}},
        "PublicTest": {"before": 8, "quarantined": 0, "after": 8, "flagged_kept": 0, "reasons": {}},
        "Training": {"before": 23, "quarantined": 2, "after": 21, "flagged_kept": 0,
                     "reasons": {"duplicate_of_test": 1, "duplicate": 1}}}
    assert record["test_split"] == {"splits": TEST_SPLITS, "before": N_TEST, "quarantined": 1, "after": N_TEST - 1,
                                    "flagged_kept": 2, "reasons": {"blank": 1}}

    assert "quarantine: split PrivateTest: 11 -> 10 images (1 quarantined: 1 blank; 2 flagged and kept)" in printed
    test_line = ("test split (PrivateTest, PublicTest): 19 -> 18 images (1 quarantined: 1 blank; 2 flagged and kept), "
                 "within-test duplicates kept (validate.test_duplicates: keep)")
    assert f"quarantine: {test_line}" in printed
    assert [line for line in printed if line.startswith("quarantine: flagged 2 duplicate_in_test (")
            and line.endswith(f"listed in {out / 'flagged.csv'}")], printed

    report = pipeline.validate(params, report_path=tmp_path / "validation.json", track=False)
    assert report.success, report.summary()  # copies within one side are no leak: validate passes with them kept
    assert f"note: {test_line}" in report.summary()
    assert f"note: flagged and kept by preprocess: 2 duplicate_in_test (listed in {out / 'flagged.csv'})" \
        in report.summary()
    saved = json.loads((tmp_path / "validation.json").read_text())["dataset"]
    assert saved["test_split"] == {"splits": TEST_SPLITS, "n": 18, "n_before_quarantine": 19, "quarantined": 1,
                                   "flagged_kept": 2, "quarantine": "keep"}
    assert saved["splits"]["PrivateTest"]["after"] == 10 and saved["flagged"] == {"duplicate_in_test": 2}


def test_drop_removes_copies_within_the_test_split_and_says_so(tmp_path, capsys):
    params = fer_csv_params(tmp_path, "drop")
    out = pipeline.preprocess(params)
    printed = capsys.readouterr().out.splitlines()

    rejects = listed(out / "rejects.csv")
    assert {p: r.split(":")[0] for p, r in rejects.items()} == {
        p: "duplicate" if p in WITHIN_TEST else r for p, r in FER_CSV_COPIES.items()}
    assert rejects["fer2013.csv:40"] == "duplicate: same pixels as fer2013.csv:39 (kept)"
    assert listed(out / "flagged.csv") == {}

    processed = Dataset.load(out)
    assert not set(processed.manifest["path"]) & WITHIN_TEST
    assert processed.manifest["split"].value_counts().to_dict() == {"Training": 21, "PublicTest": 8, "PrivateTest": 8}
    record = processed.extras["quarantine"]
    assert record["splits"]["PrivateTest"] == {"before": 11, "quarantined": 3, "after": 8, "flagged_kept": 0,
                                               "reasons": {"blank": 1, "duplicate": 2}}
    assert record["test_split"]["after"] == N_TEST - 3 and record["test_split"]["quarantined"] == 3
    assert ("quarantine: test split (PrivateTest, PublicTest): 19 -> 16 images (3 quarantined: 1 blank, "
            "2 duplicate), within-test duplicates dropped (validate.test_duplicates: drop)") in printed

    report = pipeline.validate(params, report_path=tmp_path / "validation.json", track=False)
    assert report.success, report.summary()
    assert json.loads((tmp_path / "validation.json").read_text())["dataset"]["test_split"] == {
        "splits": TEST_SPLITS, "n": 16, "n_before_quarantine": 19, "quarantined": 3, "flagged_kept": 0,
        "quarantine": "drop"}


def test_a_train_copy_of_a_test_image_goes_whatever_test_duplicates_says():
    """Duplicates that involve training images are handled as before; only held-out copies of each other differ."""
    ds = make_dataset()  # rows 18..23 are the test split
    ds.images[19] = ds.images[18]  # two test copies...
    ds.images[2] = ds.images[18]  # ...and a train one
    ds.images[4] = ds.images[3]  # a repeat within train
    for setting, expected in (("keep", {2: "duplicate_of_test", 4: "duplicate"}),
                              ("drop", {2: "duplicate_of_test", 4: "duplicate", 19: "duplicate"})):
        kept, held = quarantine(ds, (20.0, 235.0), (5.0, 110.0), test_duplicates=setting)
        paths = ds.manifest["path"]
        assert {p: r.split(":")[0] for p, r in zip(held.rejects["path"], held.rejects["reason"])} == {
            paths[i]: r for i, r in expected.items()}, setting
        assert list(held.flagged["path"]) == ([paths[19]] if setting == "keep" else [])
        assert (paths[19] in set(kept.manifest["path"])) == (setting == "keep")
        assert kept.extras["quarantine"]["test_split"]["after"] == (6 if setting == "keep" else 5)


def test_data_report_without_quarantine_and_from_an_older_record():
    ds = make_dataset()
    assert data_report(ds) == {"n_quarantined": 0, "test_split": {
        "splits": ["test"], "n": 6, "n_before_quarantine": 6, "quarantined": 0, "flagged_kept": 0, "quarantine": "off"}}
    ds.extras["quarantine"] = {"counts": {"blank": 2, "duplicate": 1}, "n_before": 27}  # before per-split counts
    assert data_report(ds)["test_split"]["quarantined"] is None and data_report(ds)["n_quarantined"] == 3
    train_only = ds.subset(np.arange(18))
    assert data_report(train_only)["test_split"] is None


@pytest.mark.slow
def test_cv_figure_reports_the_test_split_and_what_was_quarantined(tmp_path, mlflow_store):
    params = fer_csv_params(tmp_path, "keep")
    out = pipeline.preprocess(params)
    configure(params.tracking)
    result = cross_validate(Dataset.load(out), params, tmp_path / "cv", data_path=out)
    saved = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    expected = {"splits": TEST_SPLITS, "n": 18, "n_before_quarantine": 19, "quarantined": 1, "flagged_kept": 2,
                "quarantine": "keep"}
    assert saved["test_split"] == expected and saved["n_quarantined"] == 3 and saved["n_images"] == 39
    assert result.metrics["test_split"] == expected


def test_an_unknown_test_duplicates_value_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ParamsError) as err:
        load_params(ROOT / "params.yaml", {"validate": {"test_duplicates": "ignore"}})
    message = str(err.value)
    assert "validate.test_duplicates: 'ignore' is not one of ['keep', 'drop']" in message and "\n" not in message

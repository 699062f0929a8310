"""Which rows are training and which are held out, and what a figure must say about the standard test split.

A literature figure on FER2013 is quoted on its standard test split (PublicTest + PrivateTest, 7,178 images).
A figure computed on a set that quarantine shrank is not that figure, so every CV or test figure carries
`data_report`: the test split's size now, before quarantine, what quarantine took from it and what it only
flagged (validate.test_duplicates: keep). The numbers come from the quarantine record preprocess leaves in
meta.json (ferops.data.quarantine); this module only reads it, and imports neither GE nor OpenCV, so the
training stages that report it do not depend on the validation code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ferops.data.dataset import Dataset

# Split names as the loaders write them (FER2013 ships Training/PublicTest/PrivateTest).
# Anything held out from fitting counts as test-like: a validation image seen in
# training inflates model selection just as a test image inflates the final number.
TRAIN_SPLITS: frozenset[str] = frozenset({"train", "training"})
HELD_OUT_SPLITS: frozenset[str] = frozenset(
    {"test", "publictest", "privatetest", "val", "valid", "validation", "dev"}
)


def split_sides(manifest: pd.DataFrame) -> np.ndarray:
    """Per row: "train", "test" (any held-out split) or "" (a split that is neither, e.g. "unsplit")."""
    split = manifest["split"].astype(str).str.strip().str.lower().to_numpy()
    return np.where(np.isin(split, list(TRAIN_SPLITS)), "train",
                    np.where(np.isin(split, list(HELD_OUT_SPLITS)), "test", ""))


def held_out_names(manifest: pd.DataFrame) -> list[str]:
    """The held-out split names present, as the manifest spells them (sorted)."""
    split = manifest["split"].astype(str).str.strip().to_numpy()
    return sorted(set(split[split_sides(manifest) == "test"]))


def data_report(dataset: Dataset) -> dict:
    """What a CV or test figure on `dataset` reports about its data: quarantined images and the test split.

    {"n_quarantined": 96, "test_split": {"splits": ["PrivateTest", "PublicTest"], "n": 7082,
     "n_before_quarantine": 7178, "quarantined": 96, "flagged_kept": 0, "quarantine": "drop"}}.
    `quarantine` is how the test split's within-split duplicates were treated: "keep", "drop", or "off"
    (not quarantined: validate.on_fail: stop, or data not from the preprocess step). `n` counts the rows of
    `dataset` itself (a caller's subset counts only its rows). Counts a record predating them lacks are None;
    test_split is None where there is no held-out split.
    """
    manifest = dataset.manifest
    record = dataset.extras.get("quarantine")
    names = held_out_names(manifest)
    n = int((split_sides(manifest) == "test").sum())
    if record is None:
        total, test = 0, {"n_before_quarantine": n, "quarantined": 0, "flagged_kept": 0, "quarantine": "off"}
    elif (kept := record.get("test_split")) is None:  # quarantined before per-split counts: copies were dropped
        total, test = _total(record), {"n_before_quarantine": None, "quarantined": None, "flagged_kept": None,
                                       "quarantine": "drop"}
    else:
        names = sorted(set(names) | set(kept["splits"]))
        total, test = _total(record), {"n_before_quarantine": kept["before"], "quarantined": kept["quarantined"],
                                       "flagged_kept": kept["flagged_kept"],
                                       "quarantine": record.get("test_duplicates", "drop")}
    return {"n_quarantined": total, "test_split": {"splits": names, "n": n, **test} if names else None}


def _total(record: dict) -> int:
    return int(sum(record.get("counts", {}).values()))

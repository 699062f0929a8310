"""Fold assignment: subject-independent by default, the paper's frame-level protocol on request.

Frames of one person on both sides of a split let the network recognise the
person instead of the expression (about +10 points on CK+), so when the data
knows its subjects, folds are grouped by subject. `protocol="paper"` reproduces
the original frame-level stratified folds for comparison, and every result
carries the protocol it was measured under.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, StratifiedKFold

PROTOCOLS = {
    "subject": "subject-independent: StratifiedGroupKFold grouped by subject (no person in train and test)",
    "paper": "paper protocol: frame-level StratifiedKFold (frames of one subject may sit on both sides)",
}


def make_folds(labels: np.ndarray, subjects: np.ndarray, k: int, protocol: str, seed: int) -> np.ndarray:
    """Test-fold index (0..k-1) of every row."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"cv.protocol: {protocol!r} is not one of {sorted(PROTOCOLS)}")
    n_subjects = len(np.unique(subjects))
    if protocol == "subject":
        if n_subjects < k:
            raise ValueError(
                f"cv.folds: {k} subject-independent folds need at least {k} subjects, the data has {n_subjects}"
            )
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(labels)), labels, groups=subjects)
    else:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(labels)), labels)
    folds = np.full(len(labels), -1, dtype=np.int64)
    for i, (_, test) in enumerate(splits):
        folds[test] = i
    return folds


def holdout_split(subjects: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indices with no subject on both sides."""
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    train, val = next(splitter.split(np.zeros(len(subjects)), groups=subjects))
    return train, val

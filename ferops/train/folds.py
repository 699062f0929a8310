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

from ferops.errors import FeropsError

PROTOCOLS = {
    "subject": "subject-independent: StratifiedGroupKFold grouped by subject (no person in train and test)",
    "paper": "paper protocol: frame-level StratifiedKFold (frames of one subject may sit on both sides)",
}
IMAGE_LEVEL = "image-level (subjects unknown): StratifiedGroupKFold over single images; frames of one person may sit on both sides"


class FoldError(FeropsError):
    """The data cannot be split as params.yaml asks (cv.folds vs subjects or images)."""


def describe_protocol(protocol: str, subjects_known: bool) -> str:
    """What the folds really guarantee for this data (never 'subject-independent' without subject ids)."""
    if protocol == "subject" and not subjects_known:
        return IMAGE_LEVEL
    return PROTOCOLS[protocol]


def make_folds(labels: np.ndarray, subjects: np.ndarray, k: int, protocol: str, seed: int) -> np.ndarray:
    """Test-fold index (0..k-1) of every row."""
    if protocol not in PROTOCOLS:
        raise FoldError(f"cv.protocol: {protocol!r} is not one of {sorted(PROTOCOLS)}")
    if k < 2:
        raise FoldError(f"cv.folds: {k} folds cannot cross-validate; use 2 or more")
    n_subjects = len(np.unique(subjects))
    if k > len(labels):
        raise FoldError(f"cv.folds: {k} folds need at least {k} images, the data has {len(labels)}; lower cv.folds")
    if protocol == "subject":
        if n_subjects < k:
            raise FoldError(
                f"cv.folds: {k} subject-independent folds need at least {k} subjects, the data has {n_subjects}; "
                f"lower cv.folds to {n_subjects} or fewer"
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


def subject_subset(subjects: np.ndarray, rows: np.ndarray, fraction: float, seed) -> np.ndarray:
    """Whole subjects of `rows`: the first max(2, round(fraction x n)) of them in an order drawn from `seed`.

    One order per seed, so for one fold the 10% set is inside the 25% set, and the scratch and every
    fine-tuned point of a fraction train on the same people (transfer's learning curve, cross-task's).
    """
    people = np.unique(subjects[rows])
    order = np.random.default_rng(seed).permutation(people)
    n = min(len(people), max(2, int(round(fraction * len(people)))))
    return rows[np.isin(subjects[rows], order[:n])]


def inner_split(train_index: np.ndarray, subjects: np.ndarray, fraction: float, seed: int):
    """Split training rows into fit / validation rows, grouped by subject.

    Whatever `fit` is shown as validation data (learning curves, any early
    stopping or tuning) comes from here, never from the rows being tested.
    """
    fit_rows, val_rows = holdout_split(subjects[train_index], fraction, seed)
    return train_index[fit_rows], train_index[val_rows]


def emotion_folds(dataset, params):
    """The emotion CV's rows and folds: (labelled subset, class indices, test fold of each row).

    `ferops cv` and `ferops tune` both split through here, so a tuning study's
    training subjects are exactly the outer fold's training subjects.
    """
    from ferops.train.tasks import emotion_task

    task = emotion_task(dataset.classes)
    dataset = dataset.subset(np.flatnonzero(task.labelled(task.targets(dataset))))  # unlabelled rows score nothing
    y = task.targets(dataset)
    return dataset, y, make_folds(y, dataset.subjects, params.cv.folds, params.cv.protocol, params.seed)

"""Leakage guard for leave-one-subject-out: no test subject in training, nor in anything fitted.

Micro-expression papers have reported inflated numbers from two mistakes
(Varanka et al., arXiv 2211.11425): clips or frames of the test subject in
training, and normalisation (scalers, PCA, ...) fitted on all subjects. Every
fitted piece of a fold records the subjects it saw, at the call that fits it;
`check_fold` fails the stage if any of them holds the left-out subject.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
from sklearn.preprocessing import StandardScaler

from ferops.errors import FeropsError


class LeakageError(FeropsError):
    """A test subject reached training or a fitted normaliser."""


class SubjectScaler(StandardScaler):
    """StandardScaler that remembers whose rows it was fitted on (`subjects_`), for the guard."""

    def fit(self, X, y=None, sample_weight=None, *, subjects=None):  # noqa: N803 (sklearn's name)
        if subjects is None:
            raise LeakageError("SubjectScaler.fit needs subjects=: the leakage guard checks whose rows it saw")
        self.subjects_ = frozenset(np.asarray(subjects).astype(str).tolist())
        return super().fit(X, y, sample_weight)


def check_fold(name: str, train_subjects: Iterable, test_subjects: Iterable,
               fitted_on: Mapping[str, Iterable] | None = None) -> None:
    """Raise LeakageError if a test subject is among the training subjects or any fitted piece's subjects."""
    test = set(np.asarray(list(test_subjects)).astype(str).tolist())
    pieces = {"training data": train_subjects, **(fitted_on or {})}
    for what, subjects in pieces.items():
        shared = sorted(test & set(np.asarray(list(subjects)).astype(str).tolist()))
        if shared:
            raise LeakageError(f"{name}: test subject(s) {shared} also in the {what}; "
                               f"a leave-one-subject-out score must never see the left-out person")

"""What a model learns: emotions, AU presence or AU intensity, as one value passed to `fit`.

The paper trains the same CNN for several targets. Everything that differs
between them lives here, next to each other: which labels, which head, which
loss and metrics, how to read the targets from a Dataset, and what a
horizontal flip does to them. `fit` then has no task-specific branches.

Unknown labels are data, not zeros: emotion -1, AU NaN. Samples with no known
label at all are left out of training; unknown entries of partly coded samples
are masked out of the loss and metrics (ferops.train.masked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import keras
import numpy as np

from ferops.data.dataset import Dataset, au_label, mirrored
from ferops.models.heads import Head
from ferops.train.masked import (
    MaskedBinaryAccuracy,
    MaskedBinaryCrossentropy,
    MaskedMeanAbsoluteError,
    MaskedMeanSquaredError,
)

UNKNOWN_EMOTION = -1


@dataclass(frozen=True)
class Task:
    name: Literal["emotion", "au_presence", "au_intensity"]
    labels: tuple[str, ...]  # class names (emotion) or AU targets ("AU12" either side, "L12"/"R12" one side)
    head: Head
    monitor: str  # the validation metric to select and prune by
    monitor_mode: Literal["max", "min"]

    def __post_init__(self) -> None:
        if self.name not in ("emotion", "au_presence", "au_intensity"):
            raise ValueError(f"unknown task {self.name!r}; expected emotion, au_presence or au_intensity")
        if len(set(self.labels)) != len(self.labels) or not self.labels:
            raise ValueError(f"{self.name}: labels must be unique and non-empty, got {list(self.labels)}")
        if self.head.n_outputs != len(self.labels):
            raise ValueError(f"{self.name}: head has {self.head.n_outputs} outputs for {len(self.labels)} labels")
        if self.name != "emotion":
            unpaired = [label for label in self.labels if mirrored(label) not in self.labels]
            if unpaired:
                missing = [mirrored(u) for u in unpaired]
                raise ValueError(f"{self.name}: {unpaired} need their other side too ({missing}): "
                                 "a horizontal flip turns one into the other")

    @property
    def flip_permutation(self) -> np.ndarray | None:
        """Column i of a flipped sample's targets comes from column perm[i]; None if a flip changes no label."""
        if self.name == "emotion":
            return None
        perm = np.array([self.labels.index(mirrored(label)) for label in self.labels])
        return None if (perm == np.arange(len(perm))).all() else perm

    def targets(self, dataset: Dataset) -> np.ndarray:
        """Emotion: int64 index into `labels` (-1 unknown). AU: N x K float32 (NaN unknown)."""
        if self.name == "au_presence":
            return dataset.au_presence(self.labels)
        if self.name == "au_intensity":
            return dataset.au_intensity(self.labels)
        names = dataset.manifest["label_name"]
        unknown = names.isna().to_numpy() | (dataset.labels < 0)
        foreign = sorted(set(names[~unknown].astype(str)) - set(self.labels))
        if foreign:
            raise ValueError(f"{dataset.name}: emotions {foreign} are not classes of this task {list(self.labels)}")
        lookup = {name: i for i, name in enumerate(self.labels)}
        return np.array([UNKNOWN_EMOTION if u else lookup[n] for n, u in zip(names, unknown)], np.int64)

    def labelled(self, targets: np.ndarray) -> np.ndarray:
        """Rows with at least one known label: the only ones worth a training step."""
        if self.name == "emotion":
            return np.asarray(targets) >= 0
        return ~np.isnan(np.asarray(targets, np.float32)).all(axis=1)

    def loss(self) -> keras.losses.Loss:
        """A fresh loss object per compile (Keras losses and metrics hold per-model state)."""
        if self.name == "emotion":
            # Built in, so served emotion models load without ferops; ignore_class keeps unknowns out of it anyway.
            return keras.losses.SparseCategoricalCrossentropy(ignore_class=UNKNOWN_EMOTION)
        if self.name == "au_presence":
            return MaskedBinaryCrossentropy()
        return MaskedMeanSquaredError()

    def metrics(self) -> list:
        if self.name == "emotion":
            return ["accuracy"]  # exact: fit trains and validates on labelled rows only
        if self.name == "au_presence":
            return [MaskedBinaryAccuracy(name="accuracy")]
        return [MaskedMeanAbsoluteError(name="mae")]


def emotion_task(classes: Sequence[str], l1: float = 0.0, l2: float = 0.0) -> Task:
    classes = tuple(classes)
    return Task("emotion", classes, Head(len(classes), "softmax", l1, l2), "val_accuracy", "max")


def _au_labels(au_codes: Iterable[int | str]) -> tuple[str, ...]:
    return tuple(au_label(code) for code in au_codes)


def au_presence_task(au_codes: Iterable[int | str], l1: float = 0.0, l2: float = 0.0) -> Task:
    """Multi-label AU detection; codes like 12 or "AU12" (either side) and "L12"/"R12" (one side, in pairs)."""
    labels = _au_labels(au_codes)
    return Task("au_presence", labels, Head(len(labels), "sigmoid", l1, l2), "val_accuracy", "max")


def au_intensity_task(au_codes: Iterable[int | str], l1: float = 0.0, l2: float = 0.0) -> Task:
    """AU intensity regression on the FACS 0..5 scale."""
    labels = _au_labels(au_codes)
    return Task("au_intensity", labels, Head(len(labels), "intensity", l1, l2), "val_mae", "min")


__all__ = ["Task", "UNKNOWN_EMOTION", "au_intensity_task", "au_presence_task", "emotion_task"]

"""Which rows of a dataset a model has never seen: the only rows it may be scored on.

A model scored on its own training images reports memory, not skill. Every
model ferops trains records the image paths (and, when known, the subjects) it
trained on; scoring removes those paths and, for the same dataset, every image
of a training subject, because another frame of a person already seen is not
unseen data.
"""

from __future__ import annotations

import numpy as np

from ferops.data.dataset import Dataset
from ferops.errors import FeropsError


class EvaluationRefused(FeropsError):
    """Nothing in the requested data is unseen by the model."""


def unseen_rows(dataset: Dataset, record: dict, model_uri: str) -> tuple[np.ndarray, str]:
    """Indices of `dataset` the model behind `record` did not train on, and a phrase saying what they are."""
    paths = dataset.manifest["path"].astype(str)
    seen = paths.isin(set(record["paths"])).to_numpy()
    same_dataset = record["dataset"] == dataset.name
    if same_dataset and record["subjects_known"]:
        seen = seen | dataset.manifest["subject"].astype(str).isin(set(record["subjects"])).to_numpy()
    rows = np.flatnonzero(~seen)
    if len(rows) == 0:
        raise EvaluationRefused(
            f"{model_uri} trained on every image of {dataset.name} ({len(dataset)} images): scoring it there would "
            f"measure memory, not skill; point --params at a dataset it did not train on, or evaluate a model "
            f"trained with held-out subjects (`ferops train`)"
        )
    if same_dataset and record["subjects_known"]:
        n_subjects = dataset.manifest["subject"].iloc[rows].nunique()
        how = f"held-out subjects: {n_subjects} subjects, {len(rows)} images the model never saw"
    elif same_dataset:
        how = f"held-out images (image-level, subjects unknown): {len(rows)} images the model never saw"
    else:
        how = f"another dataset than the model trained on ({record['dataset']}): {len(rows)} images"
    return rows, how

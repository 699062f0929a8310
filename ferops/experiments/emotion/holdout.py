"""`ferops train`: one tracked subject-independent train/test split, for quick iteration (CV is the evidence)."""

from __future__ import annotations

from pathlib import Path

from ferops.config import Params
from ferops.data.dataset import Dataset
from ferops.stages import COMMANDS
from ferops.tracking.store import configure


def holdout_train(params: Params, out_dir: Path = COMMANDS["train"].out):
    """One subject-independent train/test split (quick iteration; CV is the evidence)."""
    from ferops.train.holdout import train_holdout

    configure(params.tracking)
    return train_holdout(Dataset.load(params.dataset.processed_dir), params, out_dir, data_path=params.dataset.processed_dir)

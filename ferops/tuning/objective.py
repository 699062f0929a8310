"""One trial: the recipe with the trial's settings, trained and scored on inner splits of one outer fold.

The trial sees only the outer fold's training rows. They are split again by
subject (`tune.inner_folds` ways); the objective is the mean final-epoch
validation accuracy over those inner splits. Every epoch's validation accuracy
is reported to Optuna on one step grid (inner split j, epoch e -> step
j * max_epochs + e), so the pruner compares trials at the same point even when
they train for different numbers of epochs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np
import optuna
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from ferops.config import Params
from ferops.train import fit as fit_module
from ferops.train.folds import make_folds
from ferops.train.out_of_fold import out_of_fold
from ferops.train.tasks import emotion_task
from ferops.tuning.space import max_epochs


def inner_splits(y: np.ndarray, subjects: np.ndarray, train_rows: np.ndarray, params: Params) -> list[tuple]:
    """(fit rows, validation rows) per inner split: subject-independent, inside `train_rows` only."""
    inner = make_folds(y[train_rows], subjects[train_rows], params.tune.inner_folds, params.cv.protocol, params.seed)
    return [(train_rows[inner != j], train_rows[inner == j]) for j in range(params.tune.inner_folds)]


@dataclass(frozen=True)
class InnerSplit:
    fold: int
    fit_rows: np.ndarray
    val_rows: np.ndarray


@dataclass(frozen=True)
class InnerScore:
    fold: int
    val_accuracy: float


class ReportEpochs(keras.callbacks.Callback):
    """Per-epoch validation accuracy -> Optuna (for the pruner) and the trial's MLflow run (for the curves)."""

    def __init__(self, trial: optuna.Trial, run_id: str, split: int, grid: int):
        super().__init__()
        self.trial, self.run_id, self.split, self.grid = trial, run_id, split, grid
        self.client = MlflowClient()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = self.split * self.grid + epoch
        value = float(logs["val_accuracy"])
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric("val_accuracy", value, now, step)] + [
            Metric(f"inner{self.split}_{k}", float(v), now, epoch) for k, v in logs.items()])
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"inner split {self.split}, epoch {epoch + 1}: val accuracy {value:.3f} "
                                     f"below the pruner's bar")


def score_trial(trial: optuna.Trial, params: Params, images, y: np.ndarray, subjects: np.ndarray,
                train_rows: np.ndarray, classes, run_id: str) -> float:
    """Mean validation accuracy of `params` over the inner splits of `train_rows` (raises TrialPruned)."""
    task = emotion_task(classes)
    grid = max_epochs(params)
    splits = [InnerSplit(j, fit_rows, val_rows)
              for j, (fit_rows, val_rows) in enumerate(inner_splits(y, subjects, train_rows, params))]

    def score(split: InnerSplit) -> InnerScore:
        result = fit_module.fit(params, task, images[split.fit_rows], y[split.fit_rows], images[split.val_rows],
                                y[split.val_rows], callbacks=[ReportEpochs(trial, run_id, split.fold, grid)],
                                seed_offset=split.fold, verbose=0,
                                reuse=True)  # trials of one architecture share a compiled model
        return InnerScore(split.fold, result.history["val_accuracy"][-1])

    # In this process, one split after another: the pruner may stop the trial between epochs.
    return float(np.mean([s.val_accuracy for s in out_of_fold("tune", splits, score)]))

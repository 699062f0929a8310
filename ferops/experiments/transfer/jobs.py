"""Transfer's trainings as independent jobs (ferops.runners): source models and cells, each in its own nested run.

Two kinds of job, in two waves (the off-diagonal cells need the source models):
- SourceJob: the emotion CNN trained on all of dataset A, returned as .keras
  bytes, so a cell on another machine gets its source model in the job itself;
- CellJob: one (train A, test B, mode) cell, pooled over B's folds; a fold
  that trains opens a nested `fold-k` run under the cell's run. A learning-curve
  point is the same job with a `fraction`: each fold trains on that share of
  the fold's training subjects (scratch: mode `within`; or fine-tuned from A)
  and is scored on the same untouched test fold.

A job carries its dataset's arrays (images, targets, subjects, folds), not a
path, and seeds everything it builds from (seed, fold): a fold's model is the
paper CNN built under those seeds with the source's weights copied in, so a
cell's result depends neither on the process that ran it nor on what that
process ran before, and the kernel's kept compiled model of its kind trains it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import mlflow
import numpy as np

from ferops.config import Params
from ferops.errors import FeropsError
from ferops.models.cnn import CONV_LAYERS, rebuilt_from
from ferops.models.heads import OUTPUT, Head
from ferops.runners import local_map
from ferops.tracking.epoch_logger import EpochLogger
from ferops.tracking.job_runs import RunTarget, child_run, current_target
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import inner_split, subject_subset
from ferops.train.out_of_fold import out_of_fold
from ferops.train.tasks import emotion_task

MODES = ("zero_shot", "frozen", "fine_tuned")
WITHIN = "within"  # the diagonal: CV from scratch on B itself


@dataclass(frozen=True)
class Domain:
    """One dataset as the jobs use it: emotion-labelled images at the common size, targets, subjects, folds."""
    name: str
    classes: tuple[str, ...]
    images: np.ndarray
    y: np.ndarray
    subjects: np.ndarray
    folds: np.ndarray  # B's subject-grouped folds: a cell's fold f trains on folds != f and scores fold f once


@dataclass(frozen=True)
class SourceJob:
    index: int  # seeds: 1000 + index, as the source models always had
    data: Domain
    params: Params
    target: RunTarget


@dataclass(frozen=True)
class CellJob:
    source: str
    source_classes: tuple[str, ...]
    mode: str  # within | zero_shot | frozen | fine_tuned
    data: Domain  # the target dataset B
    params: Params  # what its folds train with: the mode's epochs and learning rate
    tags: dict[str, str]
    target: RunTarget
    model: bytes | None  # the source model (.keras bytes); None on the diagonal
    fraction: float | None = None  # learning curve: share of each fold's training subjects; None = all of them

    @property
    def run_name(self) -> str:
        name = f"{self.source}->{self.data.name} {self.mode}"
        return name if self.fraction is None else f"{name} @{self.fraction:g}"

    def train_rows(self, fold: int) -> np.ndarray:
        """The rows fold `fold` trains on: B's other folds, or the curve's nested share of their subjects."""
        rows = np.flatnonzero(self.data.folds != fold)
        if self.fraction is None:
            return rows
        return subject_subset(self.data.subjects, rows, self.fraction, (self.params.seed, fold))


@dataclass(frozen=True)
class SourceResult:
    run_id: str
    model: bytes


@dataclass(frozen=True)
class CellResult:
    run_id: str
    metrics: dict  # accuracy, fold_accuracy, n_scored, excluded_classes


def source_run_name(name: str) -> str:
    return f"source-{name}"


def zero_shot_predictions(probs: np.ndarray, source: tuple[str, ...], target: tuple[str, ...],
                          y_target: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mask of scorable rows, predicted target indices, target classes the source lacks).

    A source model can only be right about classes it knows, so rows of other
    classes are excluded (and listed), and its prediction is the best-scoring
    class the target has.
    """
    shared = [c for c in target if c in source]
    if not shared:
        raise FeropsError(f"no emotion class in common between {list(source)} and {list(target)}")
    columns = [source.index(c) for c in shared]
    pred = np.array([target.index(shared[j]) for j in probs[:, columns].argmax(axis=1)])
    scorable = np.isin(np.asarray(target)[y_target], shared)
    return scorable, pred, [c for c in target if c not in source]


def model_bytes(model: keras.Model) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ferops-transfer-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


def load_model_bytes(blob: bytes) -> keras.Model:
    """A fresh copy of a saved model (cells must not share weights)."""
    with tempfile.TemporaryDirectory(prefix="ferops-transfer-") as tmp:
        path = Path(tmp) / "model.keras"
        path.write_bytes(blob)
        return keras.models.load_model(path)


def _fit(params: Params, data: Domain, rows: np.ndarray, run, *, model=None, seed_offset: int,
         reuse: bool = False) -> keras.Model:
    """Fit on `rows` in the active run `run`, validating on an inner split of their subjects (never a test fold)."""
    fit_rows, val_rows = inner_split(rows, data.subjects, params.train.validation_fraction, params.seed + seed_offset)
    mlflow.log_params({"n_fit": len(fit_rows), "n_validation": len(val_rows)})
    return fit(params, emotion_task(data.classes), data.images[fit_rows], data.y[fit_rows], data.images[val_rows],
               data.y[val_rows], model=model, callbacks=[EpochLogger(run.info.run_id)], seed_offset=seed_offset,
               reuse=reuse).model


def run_source(job: SourceJob) -> SourceResult:
    """The model trained on all of A, in its own nested run under the transfer parent."""
    with child_run(job.target, source_run_name(job.data.name), {"ferops.kind": "transfer-fit"}) as run:
        model = _fit(job.params, job.data, np.arange(len(job.data.y)), run, seed_offset=1000 + job.index, reuse=True)
        blob = model_bytes(model)  # before the next fit of this kind overwrites the kept model
    keras.backend.clear_session()
    return SourceResult(run.info.run_id, blob)


def carry_head(new: keras.layers.Dense, source: keras.layers.Dense, new_classes: tuple[str, ...],
               source_classes: tuple[str, ...]) -> None:
    """The source's output units for the classes both datasets have, by name; the new head's own (seeded,
    random) units for the rest. The emotion vocabulary is shared, so a fine-tuned model starts where the
    zero-shot one is, instead of relearning its classifier from random weights at a lowered learning rate."""
    kernel, bias = (np.array(w) for w in new.get_weights())
    source_kernel, source_bias = source.get_weights()
    for j, name in enumerate(new_classes):
        if name in source_classes:
            kernel[:, j], bias[j] = source_kernel[:, source_classes.index(name)], source_bias[source_classes.index(name)]
    new.set_weights([kernel, bias])


def _from_source(source: keras.Model, job: CellJob):
    """A builder of the paper CNN for B's classes, started from the source's weights.

    frozen: the source's conv and dense layers, conv kept fixed, a new head (the paper's frozen features);
    fine_tuned: the whole source network, its head carried over class by class (carry_head).
    Built fresh (rebuilt_from), so the kernel's kept compiled model of this kind trains it: one trace per
    (mode, head) for the whole matrix, not one per fold.
    """
    frozen = CONV_LAYERS if job.mode == "frozen" else ()

    def build() -> keras.Model:
        model = rebuilt_from(source, job.params.model, Head(len(job.data.classes), "softmax"),
                             job.data.images.shape[1:], freeze=frozen)
        if job.mode == "fine_tuned":
            carry_head(model.get_layer(OUTPUT), source.get_layer(OUTPUT), job.data.classes, job.source_classes)
        return model

    return build


def _fold_model(job: CellJob, train: np.ndarray, fold: int, source: keras.Model | None) -> keras.Model:
    build = None if job.mode == WITHIN else _from_source(source, job)
    return _fit(job.params, job.data, train, mlflow.active_run(), model=build, seed_offset=fold, reuse=True)


@dataclass(frozen=True)
class CellFold:
    """Fold f of a cell: train on B's other folds, score fold f once."""
    fold: int
    train: np.ndarray
    test: np.ndarray

    @property
    def run_name(self) -> str:
        return f"fold-{self.fold}"


@dataclass(frozen=True)
class CellFoldResult:
    fold: int
    run_id: str
    test_pred: np.ndarray


def cell_metrics(job: CellJob) -> dict:
    """Pooled accuracy of one (train A, test B, mode) cell, or curve point, over all of B's folds."""
    d = job.data
    pred, scorable, excluded = np.full(len(d.y), -1), np.ones(len(d.y), bool), []
    n_folds = int(d.folds.max()) + 1
    if job.mode == "zero_shot":
        probs = predict_proba(load_model_bytes(job.model), d.images)
        scorable, pred, excluded = zero_shot_predictions(probs, job.source_classes, d.classes, d.y)
    else:
        folds = [CellFold(f, job.train_rows(f), np.flatnonzero(d.folds == f)) for f in range(n_folds)]
        target = current_target()  # the cell's run
        source = None if job.mode == WITHIN else load_model_bytes(job.model)  # read once: its weights start each fold

        def train_fold(fold: CellFold) -> CellFoldResult:
            with child_run(target, fold.run_name, {"ferops.kind": "transfer-fit"}) as run:
                model = _fold_model(job, fold.train, fold.fold, source)
            test_pred = predict_proba(model, d.images[fold.test]).argmax(axis=1)  # the fold, once, after training
            return CellFoldResult(fold.fold, run.info.run_id, test_pred)

        for fold, result in zip(folds, out_of_fold(f"transfer {job.run_name}", folds, train_fold, local_map, target)):
            pred[fold.test] = result.test_pred
    accuracy = float((pred[scorable] == d.y[scorable]).mean())
    fold_acc = [float((pred[m] == d.y[m]).mean()) for f in range(n_folds) if (m := scorable & (d.folds == f)).any()]
    return {"accuracy": accuracy, "fold_accuracy": fold_acc, "n_scored": int(scorable.sum()),
            "excluded_classes": excluded}


def run_cell(job: CellJob) -> CellResult:
    """One cell in its own nested run under the transfer parent."""
    with child_run(job.target, job.run_name, job.tags) as run:
        result = cell_metrics(job)
        mlflow.log_metrics({"accuracy": result["accuracy"], "n_scored": result["n_scored"]})
        if result["excluded_classes"]:
            mlflow.set_tag("transfer.excluded_classes", ",".join(result["excluded_classes"]))
    keras.backend.clear_session()
    return CellResult(run.info.run_id, result)


def run_job(job: SourceJob | CellJob) -> SourceResult | CellResult:
    """The one function a runner maps over a wave that mixes source models and cells."""
    return run_source(job) if isinstance(job, SourceJob) else run_cell(job)

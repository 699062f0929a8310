"""k-fold cross-validation of the paper CNN, tracked as one MLflow parent run with a child per fold.

The parent carries what a paper table reports (fold-mean accuracy +- std) plus
what a researcher needs to trust it: F1 pooled over the out-of-fold
predictions, the confusion matrix, the classification report and the protocol.

Honesty rules this file enforces:
- the test fold is scored once, at the end of its fold, and never shown to `fit`;
- the validation data `fit` sees (learning curves, any future early stopping or
  tuning) is an inner split of that fold's *training* subjects;
- data without subject ids is reported as image-level, never as subject-independent.

Each fold is an independent job (`run_fold` on a `FoldJob`) handed to a
runner (ferops.runners: this process, a process pool or a Dask cluster); the
job logs its own nested run under the parent and the parent gathers the
results, so with the same seeds every runner gives the same metrics.

Files in `out_dir` are the DVC stage's metrics and plots; the same files are
logged to MLflow so `dvc metrics show` and the MLflow UI agree.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from ferops.config import Params
from ferops.data.dataset import Dataset
from ferops.data.splits import data_report
from ferops.errors import FeropsError
from ferops.evaluation import METRIC_DEFINITIONS, classification_metrics, plot_confusion_matrix, write_csv, write_json
from ferops.io import atomic_file
from ferops.runners import Mapper, mapper_for
from ferops.tracking.epoch_logger import EpochLogger
from ferops.tracking.job_runs import RunTarget, child_run, current_target
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.run_record import describe, log_param_sections, log_training_data, sig4
from ferops.train import devices
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import describe_protocol, inner_split, make_folds
from ferops.train.out_of_fold import out_of_fold
from ferops.train.precision import resolve as resolve_precision
from ferops.train.streams import Rows
from ferops.train.tasks import emotion_task

PARAM_SECTIONS = ("seed", "model", "train", "cv")  # what the cv stage reads (dvc.yaml `params:`), logged per run


RECORD_KEYS = ("run_id", "task", "classes", "absent_classes", "data_hash", "protocol_description", "definitions")


@dataclass
class CVResult:
    metrics: dict
    parent_run_id: str


@dataclass(frozen=True)
class FoldJob:
    """One fold, complete and picklable: what a worker process (here or on a Dask cluster) needs to train it.

    `images` is a saved dataset's images.npy path when there is one: the job
    memory-maps it where it runs, so rows travel, not pixels. Data that exists
    only in memory travels as the array itself. `rows` maps CV rows (the
    labelled images) to rows of `images`; fit/val/test index CV rows.
    """
    fold: int
    params: Params
    classes: tuple[str, ...]
    images: str | np.ndarray
    rows: np.ndarray
    targets: np.ndarray
    fit_rows: np.ndarray
    val_rows: np.ndarray
    test_rows: np.ndarray
    dataset: str
    target: RunTarget


@dataclass(frozen=True)
class FoldResult:
    fold: int
    run_id: str
    test_pred: np.ndarray
    accuracy: float
    history: dict[str, list[float]]


def fold_run_name(fold: int) -> str:
    return f"fold-{fold:02d}"


def _take(images, index: np.ndarray):
    """Rows of an in-memory array (a copy, as fit always got) or a lazy view of a memmap (stays on disk)."""
    return Rows(images, index) if isinstance(images, np.memmap) else images[index]


def _open_images(images: str | np.ndarray) -> np.ndarray:
    if not isinstance(images, str):
        return images
    if not Path(images).exists():
        raise FeropsError(f"{images}: not found on worker {socket.gethostname()}; Dask workers on other machines "
                          f"need the processed dataset at the same path (a shared filesystem, see infra/README.md)")
    return np.load(images, mmap_mode="r")


def run_fold(job: FoldJob) -> FoldResult:
    """Train one fold in its own nested run under the CV parent, score its test rows once; seeds from (seed, fold)."""
    params, i = job.params, job.fold
    images = _open_images(job.images)
    task = emotion_task(job.classes)
    y, rows = job.targets, job.rows
    tags = {"ferops.kind": "cv-fold", "ferops.parent_run": job.target.parent_run_id, "cv.fold": str(i),
            "cv.protocol": params.cv.protocol, "ferops.dataset": job.dataset, "ferops.device": devices.describe()}
    with child_run(job.target, fold_run_name(i), tags) as run:
        log_param_sections(params, PARAM_SECTIONS, {"fold": i, "n_fit": len(job.fit_rows),
                                                    "n_validation": len(job.val_rows), "n_test": len(job.test_rows)},
                           whole=False)
        result = fit(params, task, _take(images, rows[job.fit_rows]), y[job.fit_rows],
                     _take(images, rows[job.val_rows]), y[job.val_rows],
                     callbacks=[EpochLogger(run.info.run_id)], seed_offset=i,
                     reuse=True)  # the next fold retrains this compiled model: it is done with by then
        # The test fold is touched here, once, after training is over.
        test_pred = predict_proba(result.model, _take(images, rows[job.test_rows])).argmax(axis=1)
        m = classification_metrics(y[job.test_rows], test_pred, job.classes)
        mlflow.log_metrics({"test_accuracy": m["accuracy"], "test_f1_macro": m["f1_macro"]})
    return FoldResult(i, run.info.run_id, test_pred, m["accuracy"], result.history)


def _image_source(dataset: Dataset, data_path: str | Path | None) -> str | np.ndarray:
    """The images.npy `dataset` was loaded from (checked on its shape and end rows), else the images themselves."""
    if data_path is not None and (path := Path(data_path) / "images.npy").exists():
        disk, images = np.load(path, mmap_mode="r"), dataset.images
        if disk.shape == images.shape and disk.dtype == images.dtype and \
                np.array_equal(disk[:16], images[:16]) and np.array_equal(disk[-16:], images[-16:]):
            return str(path.resolve())
    return dataset.images


def cv_description(metrics: dict, lineage: dict) -> str:
    """The CV parent's description: the headline a researcher came for, how it was measured, on what data."""
    in_lock = "matches dvc.lock" if lineage.get("dvc.data.in_lock") == "true" else "NOT the data dvc.lock records"
    return (f"**cv_accuracy_mean = {sig4(metrics['cv_accuracy_mean'])} ± {sig4(metrics['cv_accuracy_std'])}** "
            f"(macro F1 {sig4(metrics['cv_f1_macro'])}), {metrics['folds']}-fold cross-validation over "
            f"{metrics['n_images']} images of `{metrics['dataset']}`\n\n"
            f"- protocol: {metrics['protocol_description']}\n"
            f"- data: DVC hash `{metrics['data_hash']}` ({in_lock})\n"
            f"- per fold: the nested `fold-*` runs; the final model is the nested `final-*` run, registered by "
            f"`ferops register` ([models](#/models?workflowType=machine_learning))\n")


def cross_validate(dataset: Dataset, params: Params, out_dir: str | Path, data_path: str | Path | None = None,
                   mapper: Mapper | None = None, fold_params=None) -> CVResult:
    """Run k-fold CV on `dataset` and write metrics and plots to `out_dir`.

    Folds run as independent jobs through `mapper` (default: params.runner's);
    `fold_params(i)`, when given, is the recipe fold i trains with (ferops tune's per-fold best settings);
    the parent's metrics are the same whichever runner trained them.
    """
    cv = params.cv
    task = emotion_task(dataset.classes)
    labelled = np.flatnonzero(task.labelled(task.targets(dataset)))  # unlabelled rows score nothing
    source = _image_source(dataset, data_path)
    dataset = dataset.subset(labelled)
    y, classes = task.targets(dataset), dataset.classes
    folds = make_folds(y, dataset.subjects, cv.folds, cv.protocol, params.seed)  # fails before anything is written
    protocol = describe_protocol(cv.protocol, dataset.subjects_known)
    out_dir = Path(out_dir)

    oof_pred = np.full(len(y), -1)
    lineage = lineage_tags({"data": data_path or dataset.name})
    with mlflow.start_run(run_name=f"cv-{dataset.name}") as parent:
        log_param_sections(params, PARAM_SECTIONS)
        mlflow.set_tags({
            **lineage,
            "ferops.precision": resolve_precision(params.train.precision),
            "ferops.kind": "cross-validation",
            "ferops.task": task.name,
            "ferops.dataset": dataset.name,
            "cv.protocol": cv.protocol,
            "cv.protocol_description": protocol,
        })
        mlflow.log_params({"data.n_images": len(y), "data.n_subjects": len(np.unique(dataset.subjects))})
        log_training_data(dataset.manifest, dataset.name, lineage["dvc.data"], str(data_path or dataset.name))
        target = current_target()
        jobs = []
        for i in range(cv.folds):
            fit_rows, val_rows = inner_split(np.flatnonzero(folds != i), dataset.subjects,
                                             params.train.validation_fraction, params.seed + i)
            recipe = fold_params(i) if fold_params else params
            jobs.append(FoldJob(i, recipe, classes, source, labelled, y, fit_rows, val_rows, np.flatnonzero(folds == i),
                                dataset.name, target))
        results = out_of_fold("cv", jobs, run_fold, mapper or mapper_for(params.runner), target,
                              run_name=lambda job: fold_run_name(job.fold))
        for r in results:
            oof_pred[jobs[r.fold].test_rows] = r.test_pred
        fold_acc = [r.accuracy for r in results]
        curves = [pd.DataFrame(r.history).assign(epoch=lambda d: np.arange(len(d)), fold=r.fold) for r in results]

        pooled = classification_metrics(y, oof_pred, classes)
        metrics = {
            "cv_accuracy_mean": float(np.mean(fold_acc)),
            "cv_accuracy_std": float(np.std(fold_acc, ddof=1)) if len(fold_acc) > 1 else 0.0,
            "cv_f1_macro": pooled["f1_macro"],
            "fold_accuracy": [float(a) for a in fold_acc],
            "f1": pooled["f1"],
            "absent_classes": pooled["absent_classes"],
            "definitions": METRIC_DEFINITIONS,
            "task": task.name,
            "classes": list(classes),
            "protocol": cv.protocol,
            "protocol_description": protocol,
            "folds": cv.folds,
            "n_images": int(len(y)),
            **data_report(dataset),  # n_quarantined (from these images) and the standard test split's sizes
            "dataset": dataset.name,
            "data_hash": lineage["dvc.data"],
            "run_id": parent.info.run_id,
        }
        mlflow.log_metrics({k: metrics[k] for k in ("cv_accuracy_mean", "cv_accuracy_std", "cv_f1_macro")})
        mlflow.log_metrics({f"f1_{name}": v for name, v in pooled["f1"].items()})
        describe(cv_description(metrics, lineage))

        # metrics.json: the numbers `dvc metrics show/diff` compares; run.json: what they mean and where they came from.
        write_json({k: v for k, v in metrics.items() if k not in RECORD_KEYS}, out_dir / "metrics.json")
        write_json({k: metrics[k] for k in RECORD_KEYS}, out_dir / "run.json")
        write_json({"classes": list(classes), "matrix": pooled["confusion_matrix"]}, out_dir / "confusion_matrix.json")
        plot_confusion_matrix(pooled["confusion_matrix"], classes, out_dir / "confusion_matrix.png",
                              f"{dataset.name}: {cv.folds}-fold CV ({cv.protocol}), "
                              f"acc {metrics['cv_accuracy_mean']:.3f} ± {metrics['cv_accuracy_std']:.3f}")
        write_csv(pd.DataFrame({"actual": np.asarray(classes)[y], "predicted": np.asarray(classes)[oof_pred],
                                "fold": folds, "path": dataset.manifest["path"].astype(str)}),
                  out_dir / "predictions.csv")
        per_epoch = pd.concat(curves).groupby("epoch").mean(numeric_only=True).drop(columns="fold").reset_index()
        write_csv(per_epoch, out_dir / "learning_curves.csv")
        with atomic_file(out_dir / "classification_report.txt") as tmp:
            tmp.write_text(f"protocol: {protocol}\n{METRIC_DEFINITIONS['cv_f1_macro']}\n\n{pooled['report']}")
        mlflow.log_artifacts(str(out_dir), artifact_path="cv")
    return CVResult(metrics, parent.info.run_id)

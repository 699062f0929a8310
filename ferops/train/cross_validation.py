"""k-fold cross-validation of the paper CNN, tracked as one MLflow parent run with a child per fold.

The parent carries what a paper table reports (fold-mean accuracy +- std) plus
what a researcher needs to trust it: F1 pooled over the out-of-fold
predictions, the confusion matrix, the classification report and the protocol.

Honesty rules this file enforces:
- the test fold is scored once, at the end of its fold, and never shown to `fit`;
- the validation data `fit` sees (learning curves, any future early stopping or
  tuning) is an inner split of that fold's *training* subjects;
- data without subject ids is reported as image-level, never as subject-independent.

Files in `out_dir` are the DVC stage's metrics and plots; the same files are
logged to MLflow so `dvc metrics show` and the MLflow UI agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ferops.config import Params, flatten
from ferops.data.dataset import Dataset
from ferops.errors import FeropsError
from ferops.evaluation import METRIC_DEFINITIONS, classification_metrics, plot_confusion_matrix, write_csv, write_json
from ferops.io import atomic_file
from ferops.tracking.epoch_logger import EpochLogger
from ferops.tracking.lineage import lineage_tags
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import describe_protocol, inner_split, make_folds
from ferops.train.tasks import emotion_task


RECORD_KEYS = ("run_id", "task", "classes", "absent_classes", "data_hash", "protocol_description", "definitions")


def read_cv_result(cv_dir: str | Path) -> dict:
    """metrics.json + run.json of a finished CV, as one dict (what refit and register build on)."""
    cv_dir = Path(cv_dir)
    out = {}
    for name in ("metrics.json", "run.json"):
        path = cv_dir / name
        if not path.exists():
            raise FeropsError(f"{path}: not found; run the cv stage first (`dvc repro cv`)")
        out.update(json.loads(path.read_text()))
    return out


@dataclass
class CVResult:
    metrics: dict
    parent_run_id: str


def cross_validate(dataset: Dataset, params: Params, out_dir: str | Path, data_path: str | Path | None = None) -> CVResult:
    """Run k-fold CV on `dataset` and write metrics and plots to `out_dir`."""
    cv = params.cv
    task = emotion_task(dataset.classes)
    dataset = dataset.subset(np.flatnonzero(task.labelled(task.targets(dataset))))  # unlabelled rows score nothing
    x, y, classes = dataset.images, task.targets(dataset), dataset.classes
    folds = make_folds(y, dataset.subjects, cv.folds, cv.protocol, params.seed)  # fails before anything is written
    protocol = describe_protocol(cv.protocol, dataset.subjects_known)
    out_dir = Path(out_dir)

    oof_pred = np.full(len(y), -1)
    fold_acc, curves = [], []
    lineage = lineage_tags({"data": data_path or dataset.name})
    with mlflow.start_run(run_name=f"cv-{dataset.name}") as parent:
        mlflow.log_params(flatten(params))
        mlflow.set_tags({
            **lineage,
            "ferops.kind": "cross-validation",
            "ferops.task": task.name,
            "ferops.dataset": dataset.name,
            "cv.protocol": cv.protocol,
            "cv.protocol_description": protocol,
        })
        mlflow.log_params({"data.n_images": len(y), "data.n_subjects": len(np.unique(dataset.subjects))})
        for i in tqdm(range(cv.folds), desc="cv folds", unit="fold"):
            test = np.flatnonzero(folds == i)
            fit_rows, val_rows = inner_split(np.flatnonzero(folds != i), dataset.subjects,
                                             params.train.validation_fraction, params.seed + i)
            with mlflow.start_run(run_name=f"fold-{i:02d}", nested=True) as run:
                mlflow.set_tags({"ferops.kind": "cv-fold", "ferops.parent_run": parent.info.run_id,
                                 "cv.fold": str(i), "cv.protocol": cv.protocol, "ferops.dataset": dataset.name})
                mlflow.log_params(flatten(params) | {"fold": i, "n_fit": len(fit_rows), "n_validation": len(val_rows),
                                                     "n_test": len(test)})
                result = fit(params, task, x[fit_rows], y[fit_rows], x[val_rows], y[val_rows],
                             callbacks=[EpochLogger(run.info.run_id)], seed_offset=i)
                # The test fold is touched here, once, after training is over.
                oof_pred[test] = predict_proba(result.model, x[test]).argmax(axis=1)
                m = classification_metrics(y[test], oof_pred[test], classes)
                mlflow.log_metrics({"test_accuracy": m["accuracy"], "test_f1_macro": m["f1_macro"]})
                fold_acc.append(m["accuracy"])
                curves.append(pd.DataFrame(result.history).assign(epoch=lambda d: np.arange(len(d)), fold=i))
            keras.backend.clear_session()

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
            "dataset": dataset.name,
            "data_hash": lineage["dvc.data"],
            "run_id": parent.info.run_id,
        }
        mlflow.log_metrics({k: metrics[k] for k in ("cv_accuracy_mean", "cv_accuracy_std", "cv_f1_macro")})
        mlflow.log_metrics({f"f1_{name}": v for name, v in pooled["f1"].items()})

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

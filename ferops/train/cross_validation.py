"""k-fold cross-validation of the paper CNN, tracked as one MLflow parent run with a child per fold.

The parent carries what a paper table reports (mean +- std accuracy over
folds) plus what a researcher needs to trust it: pooled per-class F1, the
confusion matrix, the classification report and the protocol. Files in
`out_dir` are the DVC stage's metrics and plots; the same files are logged to
MLflow so `dvc metrics show` and the MLflow UI agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ferops.config import Params, flatten
from ferops.data.dataset import Dataset
from ferops.evaluation import classification_metrics, plot_confusion_matrix, write_json
from ferops.io import atomic_file
from ferops.tracking.epoch_logger import EpochLogger
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.model_logging import log_keras_model
from ferops.tracking.registry import Promotion, register_and_promote
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import PROTOCOLS, make_folds


@dataclass
class CVResult:
    metrics: dict
    parent_run_id: str
    promotion: Promotion | None


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False)


def cross_validate(dataset: Dataset, params: Params, out_dir: str | Path, data_path: str | Path | None = None) -> CVResult:
    """Run k-fold CV on `dataset`, write metrics/plots to `out_dir`, register a refit model."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cv = params.cv
    x, y, classes = dataset.images, dataset.labels, dataset.classes
    folds = make_folds(y, dataset.subjects, cv.folds, cv.protocol, params.seed)

    oof_pred = np.full(len(y), -1)
    fold_acc, curves = [], []
    with mlflow.start_run(run_name=f"cv-{dataset.name}") as parent:
        mlflow.log_params(flatten(params))
        mlflow.set_tags({
            **lineage_tags({"data": data_path or dataset.name}),
            "ferops.kind": "cross-validation",
            "ferops.dataset": dataset.name,
            "cv.protocol": cv.protocol,
            "cv.protocol_description": PROTOCOLS[cv.protocol],
        })
        mlflow.log_params({"data.n_images": len(y), "data.n_subjects": len(np.unique(dataset.subjects))})
        for i in tqdm(range(cv.folds), desc="cv folds", unit="fold"):
            train, test = folds != i, folds == i
            with mlflow.start_run(run_name=f"fold-{i:02d}", nested=True) as run:
                mlflow.set_tags({"ferops.kind": "cv-fold", "cv.fold": str(i), "cv.protocol": cv.protocol})
                mlflow.log_params({"fold": i, "n_train": int(train.sum()), "n_test": int(test.sum())})
                result = fit(params, x[train], y[train], len(classes), x[test], y[test],
                             callbacks=[EpochLogger(run.info.run_id)], seed_offset=i)
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
            "protocol": cv.protocol,
            "protocol_description": PROTOCOLS[cv.protocol],
            "folds": cv.folds,
            "n_images": int(len(y)),
            "dataset": dataset.name,
        }
        mlflow.log_metrics({k: metrics[k] for k in ("cv_accuracy_mean", "cv_accuracy_std", "cv_f1_macro")})
        mlflow.log_metrics({f"f1_{name}": v for name, v in pooled["f1"].items()})

        write_json(metrics, out_dir / "metrics.json")
        write_json({"classes": list(classes), "matrix": pooled["confusion_matrix"]}, out_dir / "confusion_matrix.json")
        plot_confusion_matrix(pooled["confusion_matrix"], classes, out_dir / "confusion_matrix.png",
                              f"{dataset.name}: {cv.folds}-fold CV ({cv.protocol}), "
                              f"acc {metrics['cv_accuracy_mean']:.3f} ± {metrics['cv_accuracy_std']:.3f}")
        _write_csv(pd.DataFrame({"actual": np.asarray(classes)[y], "predicted": np.asarray(classes)[oof_pred],
                                 "fold": folds, "path": dataset.manifest["path"].astype(str)}),
                   out_dir / "predictions.csv")
        per_epoch = pd.concat(curves).groupby("epoch").mean(numeric_only=True).drop(columns="fold").reset_index()
        _write_csv(per_epoch, out_dir / "learning_curves.csv")
        with atomic_file(out_dir / "classification_report.txt") as tmp:
            tmp.write_text(f"protocol: {PROTOCOLS[cv.protocol]}\n\n{pooled['report']}")
        mlflow.log_artifacts(str(out_dir), artifact_path="cv")

        promotion = None
        if cv.refit:
            promotion = _refit_and_register(dataset, params, metrics, parent.info.run_id)
            write_json({"model": promotion.name, "version": promotion.version, "promoted": promotion.promoted,
                        "reason": promotion.reason}, out_dir / "registry.json")
            mlflow.log_artifact(str(out_dir / "registry.json"), artifact_path="cv")
    return CVResult(metrics, parent.info.run_id, promotion)


def _refit_and_register(dataset: Dataset, params: Params, metrics: dict, parent_run_id: str) -> Promotion:
    """Train on all data; the CV score above is the evidence the registry judges it by."""
    with mlflow.start_run(run_name="final", nested=True) as run:
        mlflow.set_tags({"ferops.kind": "cv-refit", "cv.protocol": params.cv.protocol})
        result = fit(params, dataset.images, dataset.labels, len(dataset.classes),
                     callbacks=[EpochLogger(run.info.run_id)], seed_offset=params.cv.folds)
        info = log_keras_model(result.model, dataset.images[:4], metadata={"classes": list(dataset.classes)})
    name, metric = params.tracking.model_name, params.tracking.promote_metric
    return register_and_promote(
        info.model_uri, name, metric, metrics[metric],
        tags={"cv.protocol": params.cv.protocol, "dataset": dataset.name, "cv_run_id": parent_run_id},
    )

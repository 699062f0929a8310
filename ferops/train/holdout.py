"""One tracked train/test run: the quick loop between full cross-validations.

The split comes from the data's own `split` column when it has one (FER2013's
Training vs PublicTest) and is otherwise a subject-grouped holdout, so the
held-out number is never inflated by a person seen in training. The model
records the rows it trained on, so `ferops evaluate` can later score it on the
held-out subjects, and only on them.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np

from ferops.config import Params, flatten
from ferops.data.dataset import Dataset
from ferops.data.splits import data_report
from ferops.evaluation import classification_metrics, plot_confusion_matrix, write_json
from ferops.tracking.epoch_logger import EpochLogger
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.model_logging import log_keras_model
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import holdout_split, inner_split
from ferops.train.refit import TRAINING_ROWS, training_rows
from ferops.train.tasks import emotion_task

TRAIN_SPLITS = {"train", "training"}


def split_indices(dataset: Dataset, params: Params) -> tuple[np.ndarray, np.ndarray, str]:
    split = dataset.manifest["split"].astype(str).str.lower()
    is_train = split.isin(TRAIN_SPLITS).to_numpy()
    if is_train.any() and (~is_train).any():
        return np.flatnonzero(is_train), np.flatnonzero(~is_train), "dataset split column"
    train, test = holdout_split(dataset.subjects, params.train.validation_fraction, params.seed)
    how = "subject-grouped holdout" if dataset.subjects_known else "image-level holdout (subjects unknown)"
    return train, test, how


def train_holdout(dataset: Dataset, params: Params, out_dir: str | Path, data_path: str | Path | None = None) -> dict:
    train, val, how = split_indices(dataset, params)
    task = emotion_task(dataset.classes)
    x, y, classes = dataset.images, task.targets(dataset), dataset.classes
    with mlflow.start_run(run_name=f"train-{dataset.name}") as run:
        mlflow.log_params(flatten(params))
        mlflow.set_tags({**lineage_tags({"data": data_path or dataset.name}), "ferops.kind": "holdout",
                         "ferops.dataset": dataset.name, "split": how})
        fit_rows, val_rows = inner_split(train, dataset.subjects, params.train.validation_fraction, params.seed)
        result = fit(params, task, x[fit_rows], y[fit_rows], x[val_rows], y[val_rows],
                     callbacks=[EpochLogger(run.info.run_id)])
        mlflow.log_dict(training_rows(dataset, train), TRAINING_ROWS)
        pred = predict_proba(result.model, x[val]).argmax(axis=1)
        metrics = classification_metrics(y[val], pred, classes)
        mlflow.log_metrics({"heldout_accuracy": metrics["accuracy"], "heldout_f1_macro": metrics["f1_macro"]})
        out_dir = Path(out_dir)
        write_json({k: v for k, v in metrics.items() if k != "report"}
                   | {"split": how, "n_test": int(len(val)), **data_report(dataset)}, out_dir / "metrics.json")
        plot_confusion_matrix(metrics["confusion_matrix"], classes, out_dir / "confusion_matrix.png",
                              f"{dataset.name} ({how}): acc {metrics['accuracy']:.3f}")
        mlflow.log_artifacts(str(out_dir), artifact_path="train")
        info = log_keras_model(result.model, x[:4], name=f"{params.tracking.model_name}-holdout",
                               metadata={"classes": list(classes), "task": task.name, "dataset": dataset.name})
        mlflow.log_metrics({"heldout_accuracy": metrics["accuracy"]}, model_id=info.model_id)
    return metrics | {"run_id": run.info.run_id, "model_uri": info.model_uri}

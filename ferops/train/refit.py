"""The final model: trained on every image once cross-validation has measured the recipe.

CV says how well the *recipe* (params + data) generalises; the model a
downstream user pulls is this refit, trained on all the data with the same
recipe, and the CV score is the evidence the registry judges it by. So the
refit run links back to its CV parent, carries the same params and lineage,
and records exactly which rows it trained on: `ferops evaluate` reads that
record to refuse scoring the model on its own training data.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np

from ferops.config import Params
from ferops.data.dataset import Dataset
from ferops.evaluation import write_json
from ferops.io import atomic_dir
from ferops.tracking.epoch_logger import EpochLogger
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.model_logging import log_keras_model
from ferops.tracking.run_record import log_param_sections, log_training_data
from ferops.train.fit import fit
from ferops.train.tasks import emotion_task

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
TRAINING_ROWS = "training_rows.json"


def training_rows(dataset: Dataset, rows: np.ndarray) -> dict:
    """What a model trained on, for later honesty checks: the image paths and, when known, the subjects."""
    part = dataset.manifest.iloc[rows]
    known = dataset.subjects_known
    return {
        "dataset": dataset.name,
        "subjects_known": known,
        "subjects": sorted(part["subject"].astype(str).unique().tolist()) if known else [],
        "paths": part["path"].astype(str).tolist(),
    }


def refit(dataset: Dataset, params: Params, cv_metrics: dict, out_dir: str | Path,
          data_path: str | Path | None = None) -> dict:
    """Train on all of `dataset`, log the model with its CV evidence, write model + record to `out_dir`."""
    task = emotion_task(dataset.classes)
    y = task.targets(dataset)
    with mlflow.start_run(run_name=f"final-{dataset.name}", parent_run_id=cv_metrics["run_id"]) as run:
        lineage = lineage_tags({"data": data_path or dataset.name})
        log_param_sections(params, ("seed", "model", "train", "cv"), {"n_train": len(y)})  # the refit stage's
        log_training_data(dataset.manifest, dataset.name, lineage["dvc.data"], str(data_path or dataset.name))
        mlflow.set_tags({
            **lineage,
            "ferops.kind": "cv-refit",
            "ferops.task": task.name,
            "ferops.dataset": dataset.name,
            "ferops.cv_run_id": cv_metrics["run_id"],
            "cv.protocol": params.cv.protocol,
        })
        result = fit(params, task, dataset.images, y, callbacks=[EpochLogger(run.info.run_id)],
                     seed_offset=params.cv.folds)
        record = training_rows(dataset, np.arange(len(dataset)))
        mlflow.log_dict(record, TRAINING_ROWS)
        evidence = {k: cv_metrics[k] for k in ("cv_accuracy_mean", "cv_accuracy_std", "cv_f1_macro")}
        info = log_keras_model(result.model, dataset.images[:4], name=params.tracking.model_name,
                               metadata={"classes": list(dataset.classes), "task": task.name,
                                         "dataset": dataset.name, "cv_run_id": cv_metrics["run_id"]})
        # The model's page in the UI shows the CV score (its evidence), not the refit's training accuracy.
        mlflow.log_metrics(evidence, model_id=info.model_id)
    summary = {"refit": True, "run_id": run.info.run_id, "model_uri": info.model_uri, "model_id": info.model_id,
               "cv_run_id": cv_metrics["run_id"], "task": task.name, "classes": list(dataset.classes)}
    with atomic_dir(out_dir, stage="refit") as tmp:
        result.model.save(tmp / MODEL_FILE)
        write_json(record, tmp / TRAINING_ROWS)
        write_json(summary, tmp / RUN_FILE)
    return summary


def skip_refit(out_dir: str | Path) -> dict:
    """cv.refit: false still leaves the stage's declared output, saying why there is no model."""
    summary = {"refit": False, "reason": "cv.refit is false in params.yaml: no final model was trained"}
    with atomic_dir(out_dir, stage="refit") as tmp:
        write_json(summary, tmp / RUN_FILE)
    return summary

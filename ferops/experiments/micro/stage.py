"""Stage `micro`: the paper's micro-expression result (Breuer & Kimmel §4, Table 4), scored as the field does now.

CNN+LSTM against LBP-TOP + linear SVM, leave-one-subject-out over the clips'
subjects, one MLflow parent run with a nested run per left-out subject. Each
subject is an independent job (ferops.experiments.micro.jobs) handed to the
runner params.yaml's `runner:` names; every runner gives the same metrics.
Reported like Table 4 plus MEGC 2019's UF1/UAR, for CASME II's 5 classes and
the 3-class composite, with chance and majority-class rows beside them.

Honesty rules this file enforces:
- a subject's clips are scored once, by models that never saw that subject: the
  leakage guard (ferops.experiments.micro.leakage) checks every fold's training data
  and every fitted piece (CNN frames, LSTM clips, LBP-TOP scaler) and fails the stage;
- UF1/UAR come from predictions pooled over all folds, never per-fold averages;
- the registered model (`micro.model_name`) is a CNN+LSTM refit on every subject with
  the same recipe; its evidence is the LOSO UF1 under a comparability key.
"""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut

from ferops.config import Params, flatten
from ferops.data.dataset import Dataset
from ferops.evaluation import plot_confusion_matrix, write_csv, write_json
from ferops.experiments.micro import metrics as mm
from ferops.experiments.micro.data import MicroData, load_micro
from ferops.experiments.micro.jobs import (
    PROTOCOL,
    LosoJob,
    LosoSetup,
    fold_run_name,
    release,
    run_loso_fold,
    trainer_for,
)
from ferops.experiments.micro.train import CnnLstm, pretrain_cnn
from ferops.features.lbp_top import lbp_top_features
from ferops.runners import mapper_for
from ferops.tracking.job_runs import current_target
from ferops.tracking.lineage import git_commit
from ferops.tracking.model_logging import log_keras_model
from ferops.tracking.registration import Registration, not_registered, register_model, write_registration
from ferops.tracking.registry import ComparabilityKey
from ferops.tracking.run_record import describe, note, registry_line, sig4
from ferops.tracking.store import configure
from ferops.train.out_of_fold import out_of_fold
from ferops.train.precision import resolve as resolve_precision

OUT_DIR = Path("outputs/micro")
TASK = "micro_emotion"
MODELS = {"cnn_lstm": "CNN+LSTM", "lbp_top": "LBP-TOP + SVM"}
# Breuer & Kimmel 2017, Table 4: CASME II, 5 classes, LOSO accuracy (UF1/UAR not reported).
PAPER = {"cnn_lstm": 0.5947, "lbp_top": 0.4412}


def micro(params: Params, out_dir: Path = OUT_DIR, data: MicroData | None = None,
          emotion: Dataset | None = None) -> dict:
    """Run the LOSO experiment on the clips `params.micro.data` names; write metrics, tables, plots, run.json.

    `data` (default: load_micro(params)) and `emotion`, the dataset the CNN is pre-trained on
    (default: params.dataset.processed_dir when micro.cnn.pretrain_epochs > 0), let tests pass small ones.
    """
    started = time.perf_counter()
    configure(params.tracking)
    mp = params.micro
    data = data or load_micro(params)
    clips, classes = data.clips, tuple(data.clips.classes)
    y, subjects = clips.labels, clips.subjects
    lbp = lbp_top_features(data.lbp_clips.images, 8, mp.lbp_top.radius, mp.lbp_top.time_radius, mp.lbp_top.blocks)
    if emotion is None and mp.cnn.pretrain_epochs:
        emotion = Dataset.load(params.dataset.processed_dir)
    folds = list(LeaveOneGroupOut().split(lbp, y, groups=subjects))

    proba = np.zeros((len(y), len(classes)), np.float32)
    svm_scores = np.zeros((len(y), len(classes)))
    with mlflow.start_run(run_name=f"micro-{data.name}") as parent:
        _log_parent(params, data, len(folds))
        pretrained = pretrain_cnn(params, emotion, tuple(clips.images.shape[2:]))
        target = current_target()
        setup = LosoSetup(parent.info.run_id, params, clips, pretrained, lbp)
        jobs = [LosoJob(i, setup, train, test, target) for i, (train, test) in enumerate(folds)]
        try:
            results = out_of_fold("micro", jobs, run_loso_fold, mapper_for(params.runner), target,
                                  run_name=lambda job: fold_run_name(str(subjects[job.test[0]])))
            for r in results:
                proba[jobs[r.fold].test], svm_scores[jobs[r.fold].test] = r.proba, r.svm_scores
            metrics, record = summarise(y, {"cnn_lstm": proba, "lbp_top": svm_scores}, classes, out_dir, clips, data)
            mlflow.log_metrics(_flat(metrics))
            record.update({"run_id": parent.info.run_id, "protocol": PROTOCOL, "n_folds": len(folds)})
            registration = (register_final(params, trainer_for(setup), data, metrics, parent.info.run_id)
                            if mp.register else not_registered("micro.register is false"))
            describe(note(", ".join(f"{MODELS[m]} UF1 {sig4(metrics[m]['5class']['uf1'])}, "
                                    f"UAR {sig4(metrics[m]['5class']['uar'])}" for m in ("cnn_lstm", "lbp_top")),
                          f"{PROTOCOL}, {len(folds)} folds; UF1/UAR pooled over all folds (5 classes; 3-class "
                          f"composite in the metrics)", f"`{data.name}`, {len(y)} clips, DVC hash `{data.data_hash}`",
                          (registry_line(registration.as_dict()),)))
        finally:
            release()
        record["wall_s"] = round(time.perf_counter() - started, 1)
        write_json(metrics, Path(out_dir) / "metrics.json")
        write_registration(registration, Path(out_dir) / "registry.json")  # the registration's one record
        write_json(record, Path(out_dir) / "run.json")
        mlflow.log_artifacts(str(out_dir), artifact_path="micro")
    return {"metrics": metrics, **record, "registry": registration.as_dict()}


def _log_parent(params: Params, data: MicroData, n_folds: int) -> None:
    mlflow.log_params(flatten(params.micro, "micro.") | {"seed": params.seed, "model.filters": list(params.model.filters)})
    mlflow.log_params({"data.n_clips": len(data.clips), "data.n_subjects": n_folds,
                       "data.clip_shape": list(data.clips.images.shape[1:])})
    mlflow.set_tags({**git_commit(), "ferops.precision": resolve_precision(params.train.precision),
                     "ferops.kind": "micro", "ferops.task": TASK, "ferops.dataset": data.name,
                     "dvc.data": data.data_hash, "data.data.path": data.source, "cv.protocol": PROTOCOL,
                     "cv.protocol_description": "leave-one-subject-out: one fold per subject, scored once"})


def _flat(metrics: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}_"))
        elif isinstance(value, (int, float)):
            out[f"{prefix}{key}"] = float(value)
    return out


def summarise(y: np.ndarray, scores: dict[str, np.ndarray], classes: tuple[str, ...], out_dir: Path,
              clips: Dataset, data: MicroData) -> tuple[dict, dict]:
    """Pooled metrics for both models and both class sets; writes the table, recalls, predictions and plots."""
    out_dir = Path(out_dir)
    metrics: dict = {}
    recall_rows, table = [], []
    keep3, truth3, _ = mm.composite(scores["cnn_lstm"], y, classes)
    sets = {"5class": (classes, y), "3class": (mm.COMPOSITE_CLASSES, truth3)}
    preds = {}
    for model, score in scores.items():
        preds[model] = {"5class": score.argmax(axis=1), "3class": mm.composite(score, y, classes)[2]}
        metrics[model] = {}
        for name, (names, truth) in sets.items():
            rep = mm.report(truth, preds[model][name], tuple(names))
            metrics[model][name] = {k: rep[k] for k in ("accuracy", "uf1", "uar")}
            recall_rows += [{"model": model, "classes": name, "class": c, "recall": r} for c, r in rep["recall"].items()]
            table.append({"model": MODELS[model], "classes": name, **metrics[model][name],
                          "paper_accuracy": PAPER[model] if name == "5class" else None})
            plot_confusion_matrix(rep["confusion_matrix"], list(names), out_dir / f"confusion_{model}_{name}.png",
                                  f"{MODELS[model]}, LOSO {name}\nUF1 {rep['uf1']:.3f}, UAR {rep['uar']:.3f}, "
                                  f"acc {rep['accuracy']:.3f}")
    for name, (names, truth) in sets.items():
        for kind, value in mm.baselines(truth, len(names)).items():
            metrics.setdefault(kind, {})[name] = value
            table.append({"model": kind, "classes": name, **value, "paper_accuracy": None})
    write_csv(pd.DataFrame(table), out_dir / "table.csv")
    write_csv(pd.DataFrame(recall_rows), out_dir / "per_class_recall.csv")
    names = np.asarray(classes)
    frame = pd.DataFrame({"sequence": clips.sequences, "subject": clips.subjects, "actual": names[y],
                          "cnn_lstm": names[preds["cnn_lstm"]["5class"]], "lbp_top": names[preds["lbp_top"]["5class"]]})
    write_csv(frame, out_dir / "predictions.csv")
    record = {"task": TASK, "dataset": data.name, "data_hash": data.data_hash, "source": data.source,
              "classes": list(classes), "composite_classes": list(mm.COMPOSITE_CLASSES),
              "n_clips": int(len(y)), "n_clips_3class": int(len(keep3)), "definitions": mm.DEFINITIONS,
              "paper_table4_accuracy": PAPER, "dropped": clips.extras.get("dropped", {})}
    return metrics, record


def register_final(params: Params, trainer: CnnLstm, data: MicroData, metrics: dict,
                   parent_run_id: str) -> Registration:
    """CNN+LSTM refit on every subject, logged and registered with its LOSO UF1 as evidence."""
    mp, clips = params.micro, data.clips
    everyone = np.arange(len(clips))
    score = metrics["cnn_lstm"]["5class"]["uf1"]
    with mlflow.start_run(run_name=f"micro-final-{data.name}", nested=True) as run:
        mlflow.set_tags({"ferops.kind": "micro-refit", "ferops.task": TASK, "ferops.dataset": data.name,
                         "ferops.cv_run_id": parent_run_id, "dvc.data": data.data_hash, "cv.protocol": PROTOCOL})
        mlflow.log_params({"n_train": len(clips), "n_subjects": len(np.unique(clips.subjects))})
        model = trainer.train(everyone, seed=params.seed + len(np.unique(clips.subjects)))
        info = log_keras_model(model, clips.images[:2], name=mp.model_name,
                               metadata={"classes": list(clips.classes), "task": TASK, "dataset": data.name,
                                         "cv_run_id": parent_run_id, "frames": mp.clip.frames})
        mlflow.log_metrics({"loso_uf1": score}, model_id=info.model_id)
    key = ComparabilityKey(task=TASK, dataset=data.name, data_hash=data.data_hash, protocol=PROTOCOL,
                           classes=tuple(clips.classes))
    return register_model(info.model_uri, mp.model_name, score, "uf1", key, run.info.run_id, parent_run_id)

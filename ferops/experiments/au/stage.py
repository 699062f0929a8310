"""AU detection (the paper's §3.2): the paper CNN with AU heads, cross-validated by subject.

Modes, as in the paper:
- all_at_once: one multi-label sigmoid head over every AU with enough positives;
- one_vs_all: one binary model per AU (either side), each its own nested MLflow run.
Intensity, always: the same network regressing 0..5 per AU (5 x sigmoid head).
The L1 + L2 activity penalty on the output layer is the paper's sparsity prior.

Every test fold is scored once, after training on the other folds' subjects;
`fit` validates on an inner split of those training subjects only, and each AU's
decision threshold is the one with the best F1 on that split. Unknown
labels are masked out of the loss and the metrics (ferops.train.masked). The
all-at-once presence model is then refit on every subject and registered as
`au.model_name` (fer-au), its CV mean F1 the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from ferops.config import Params, replace
from ferops.data.dataset import Dataset, mirrored
from ferops.errors import FeropsError
from ferops.evaluation import save_figure, write_csv, write_json
from ferops.experiments.au.metrics import (
    INTENSITY_DEFINITIONS,
    PRESENCE_DEFINITIONS,
    choose_thresholds,
    intensity_table,
    presence_table,
    summarise,
)
from ferops.runners import mapper_for
from ferops.tracking.epoch_logger import EpochLogger
from ferops.tracking.job_runs import RunTarget, child_run, current_target
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.model_logging import log_keras_model
from ferops.tracking.registration import Registration, not_registered, register_model, write_registration
from ferops.tracking.registry import ComparabilityKey
from ferops.tracking.run_record import describe, log_param_sections, note, registry_line, round_table, sig4
from ferops.tracking.store import configure
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import describe_protocol, inner_split, make_folds
from ferops.train.out_of_fold import out_of_fold
from ferops.train.precision import resolve as resolve_precision
from ferops.train.tasks import Task, au_intensity_task, au_presence_task

OUT_DIR = Path("outputs/au")
PARAM_SECTIONS = ("seed", "au", "model", "train")  # what the au stage reads (dvc.yaml `params:`)


def experiment_params(params: Params) -> Params:
    """The AU experiment's recipe: the shared model/train sections at this experiment's width and epochs."""
    return replace(params, **{"model.width": params.au.width, "train.epochs": params.au.epochs,
                              "train.batch_size": params.au.batch_size})


def intensity_params(p: Params) -> Params:
    """The intensity regressor's recipe: the experiment's, at au.intensity_dense_dropout.

    Dropout before a regression output trains it on noisier features than it is scored on; the intensity
    model learns better without it (docs/au.md), while the presence model needs the paper's to not overfit.
    """
    return replace(p, **{"model.dense_dropout": p.au.intensity_dense_dropout})


def choose_aus(dataset: Dataset, min_prevalence: float) -> tuple[tuple[str, ...], dict[str, float]]:
    """(AU labels to learn, {skipped label: prevalence}); a side-specific AU is kept only with its other side."""
    labels = dataset.au_labels
    if not labels:
        raise FeropsError(f"{dataset.name}: the dataset has no AU columns; AU detection needs AU-coded data "
                          f"(SynthFACS domains.au, or CK+ with its FACS folder)")
    prevalence = dict(zip(labels, np.nanmean(dataset.au_presence(labels), axis=0).tolist()))
    ok = {label for label, p in prevalence.items() if p >= min_prevalence}
    kept = tuple(label for label in labels if label in ok and mirrored(label) in ok)
    if not kept:
        raise FeropsError(f"{dataset.name}: no AU reaches au.min_prevalence {min_prevalence}; lower it")
    return kept, {label: round(p, 4) for label, p in prevalence.items() if label not in kept}


@dataclass(frozen=True)
class AuFoldJob:
    """One fold of one AU model, complete and picklable (ferops.runners): it runs here, in a pool or on Dask.

    It carries its images (the AU probe sets are small; no shared filesystem needed) and logs its own
    nested run under the mode's run (`target`).
    """
    fold: int
    name: str  # run-name prefix: au-all, au-AU12, au-intensity
    params: Params
    task: Task
    images: np.ndarray
    targets: np.ndarray
    fit_rows: np.ndarray
    val_rows: np.ndarray
    test_rows: np.ndarray
    target: RunTarget

    @property
    def run_name(self) -> str:
        return f"{self.name}-fold-{self.fold:02d}"


@dataclass(frozen=True)
class AuFoldResult:
    fold: int
    run_id: str
    pred: np.ndarray  # the test fold's outputs (N_test x K)
    thresholds: np.ndarray | None  # presence: each AU's threshold, chosen on the fold's validation rows (K,)


def decision_thresholds(model: keras.Model, images: np.ndarray, targets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each AU's F1-best threshold on `rows`: the fold's inner validation rows (training subjects), never its test."""
    return choose_thresholds(targets[rows], predict_proba(model, images[rows]))


def run_au_fold(job: AuFoldJob) -> AuFoldResult:
    """The test fold's outputs, from a model trained on the other folds' subjects; the test fold scored once after."""
    task, i, x, y = job.task, job.fold, job.images, job.targets
    tags = {"ferops.kind": "au-fold", "cv.fold": str(i), "ferops.task": task.name}
    with child_run(job.target, job.run_name, tags) as run:
        mlflow.log_params({"fold": i, "n_fit": len(job.fit_rows), "n_validation": len(job.val_rows),
                           "n_test": len(job.test_rows), "labels": ",".join(task.labels)})
        result = fit(job.params, task, x[job.fit_rows], y[job.fit_rows], x[job.val_rows], y[job.val_rows],
                     callbacks=[EpochLogger(run.info.run_id)], seed_offset=i, augment=job.params.au.augment,
                     reuse=True)  # one compiled model per AU head kind, reset for every fold
        thresholds = (decision_thresholds(result.model, x, y, job.val_rows) if task.name == "au_presence"
                      and len(job.val_rows) else None)
        if thresholds is not None:
            mlflow.log_dict({"labels": list(task.labels), "thresholds": thresholds.round(4).tolist()},
                            "thresholds.json")
        pred = predict_proba(result.model, x[job.test_rows])
    return AuFoldResult(i, run.info.run_id, pred, thresholds)


def _out_of_fold(params: Params, task: Task, dataset: Dataset, folds: np.ndarray,
                 name: str) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions of `task` (N x K) and each row's decision thresholds (N x K, 0.5 for intensity):
    each fold a job on params.runner's runner, its own nested run."""
    x, y, subjects = dataset.images, task.targets(dataset), dataset.subjects
    target = current_target()
    jobs = []
    for i in range(int(folds.max()) + 1):
        fit_rows, val_rows = inner_split(np.flatnonzero(folds != i), subjects,
                                         params.train.validation_fraction, params.seed + i)
        jobs.append(AuFoldJob(i, name, params, task, x, y, fit_rows, val_rows, np.flatnonzero(folds == i), target))
    results = out_of_fold(f"au {name}", jobs, run_au_fold, mapper_for(params.runner), target)
    oof = np.full(y.shape, np.nan, np.float32)
    cut = np.full(y.shape, 0.5)
    for job, result in zip(jobs, results):
        oof[job.test_rows] = result.pred
        if result.thresholds is not None:
            cut[job.test_rows] = result.thresholds
    return oof, cut


SAME_AUS = "all_at_once_on_one_vs_all_aus"  # the joint head's summary over the AUs one_vs_all trained


def one_vs_all_labels(labels: tuple[str, ...], dataset: Dataset, top: int) -> list[str]:
    """The AUs one_vs_all trains a model for: bilateral ones (a flip keeps them), commonest first; `top` 0 = all."""
    bilateral = [label for label in labels if label.startswith("AU")]
    prevalence = np.nanmean(dataset.au_presence(bilateral), axis=0)
    ranked = [bilateral[k] for k in np.argsort(-prevalence, kind="stable")]
    return ranked[:top] if top else ranked


def _log_table(table: pd.DataFrame, out: Path, artifact: str) -> None:
    write_csv(table, out)
    first = [c for c in ("mode", "au", "f1") if c in table]  # the UI's table view cuts off its right end
    shown = table[first + [c for c in table if c not in first]]
    mlflow.log_table(round_table(shown), artifact_file=f"au/{artifact}.json")


def plot_presence(tables: dict[str, pd.DataFrame], path: Path, title: str) -> Path:
    """Per-AU F1 and accuracy against the always-absent accuracy (one panel per mode): the inflation
    the paper's accuracy figure hides."""
    width = max(8, 0.5 * max(len(t) for t in tables.values()))
    fig, axes = plt.subplots(len(tables), 1, figsize=(width, 4.2 * len(tables)), squeeze=False)
    for ax, (mode, table) in zip(axes[:, 0], tables.items()):
        x = np.arange(len(table))
        ax.bar(x - 0.27, table["f1"], 0.27, label="F1")
        ax.bar(x, table["accuracy"], 0.27, label="accuracy")
        ax.bar(x + 0.27, table["always_absent_accuracy"], 0.27, label="always 'absent' accuracy", color="0.7")
        ax.set_xticks(x, table["au"], rotation=60, fontsize=10)
        ax.set_ylim(0, 1.18)  # headroom: the legend sits above the bars, not on them
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_title(f"{title}: {mode.replace('_', ' ')}\nmean F1 {sig4(table['f1'].mean())}, accuracy "
                     f"{sig4(table['accuracy'].mean())} vs always-absent {sig4(table['always_absent_accuracy'].mean())}",
                     fontsize=12)
        ax.legend(fontsize=10, loc="upper center", ncol=3, frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)


def _presence_summary(table: pd.DataFrame) -> dict:
    out = summarise(table, PRESENCE_DEFINITIONS)
    out["always_absent_f1_mean"] = 0.0  # "absent" for everything finds no positive
    out["auroc_min"] = float(np.nanmin(table["auroc"])) if table["auroc"].notna().any() else float("nan")
    out["n_aus"] = int(len(table))
    return out


def _refit_and_register(params: Params, task: Task, dataset: Dataset, parent_id: str, score: float,
                        data_hash: str, protocol: str, thresholds: dict[str, float]) -> Registration:
    """All-at-once presence model on every subject, logged under the AU run and registered on its CV F1.

    Its metadata carries each AU's decision threshold (the mean over the CV folds' validation-chosen ones).
    """
    with mlflow.start_run(run_name="au-final", nested=True) as run:
        mlflow.set_tags({"ferops.kind": "cv-refit", "ferops.task": task.name, "ferops.cv_run_id": parent_id})
        result = fit(params, task, dataset.images, task.targets(dataset), callbacks=[EpochLogger(run.info.run_id)],
                     seed_offset=params.au.folds, augment=params.au.augment)
        # Served without ferops: the masked training loss is a ferops class, so the logged model carries a
        # built-in loss instead (inference never uses it; `models:/fer-au@champion` loads anywhere).
        result.model.compile(loss="binary_crossentropy")
        info = log_keras_model(result.model, dataset.images[:4], name=params.au.model_name,
                               metadata={"labels": list(task.labels), "task": task.name, "dataset": dataset.name,
                                         "cv_run_id": parent_id, "thresholds": thresholds})
        mlflow.log_metrics({"cv_au_f1_mean": score}, model_id=info.model_id)
    keras.backend.clear_session()
    key = ComparabilityKey(task=task.name, dataset=dataset.name, data_hash=data_hash, protocol=protocol,
                           classes=task.labels)
    return register_model(info.model_uri, params.au.model_name, score, "cv_au_f1_mean", key, run.info.run_id,
                          parent_id)


def run_au(params: Params, out_dir: Path = OUT_DIR) -> dict:
    """The `au` stage: CV per mode and for intensity, per-AU tables and plots, refit and registration."""
    au = params.au
    if not au.modes:
        raise FeropsError("au.modes: empty; list all_at_once and/or one_vs_all")
    configure(params.tracking)
    p = experiment_params(params)
    dataset = Dataset.load(au.data)
    labels, skipped = choose_aus(dataset, au.min_prevalence)
    presence = au_presence_task(labels, au.sparsity.l1, au.sparsity.l2)
    dataset = dataset.subset(np.flatnonzero(presence.labelled(presence.targets(dataset))))
    folds = make_folds(np.zeros(len(dataset), int), dataset.subjects, au.folds, "subject", params.seed)
    protocol = describe_protocol("subject", dataset.subjects_known)
    out_dir = Path(out_dir)
    lineage = lineage_tags({"data": au.data})
    metrics: dict = {"dataset": dataset.name, "n_images": len(dataset), "folds": au.folds, "labels": list(labels),
                     "skipped_rare": skipped, "protocol_description": protocol,
                     "definitions": PRESENCE_DEFINITIONS | INTENSITY_DEFINITIONS}
    tables: dict[str, pd.DataFrame] = {}

    with mlflow.start_run(run_name=f"au-{dataset.name}") as parent:
        log_param_sections(p, PARAM_SECTIONS)
        mlflow.set_tags({**lineage, "ferops.precision": resolve_precision(params.train.precision),
                         "ferops.kind": "au-detection", "ferops.dataset": dataset.name,
                         "cv.protocol_description": protocol})
        y = presence.targets(dataset)
        if "all_at_once" in au.modes:
            with mlflow.start_run(run_name="all-at-once", nested=True):
                mlflow.set_tags({"ferops.kind": "au-mode", "au.mode": "all_at_once"})
                oof, cut = _out_of_fold(p, presence, dataset, folds, "au-all")
            tables["all_at_once"] = presence_table(y, oof, labels, cut)
            metrics["thresholds"] = {label: round(float(np.mean(cut[:, k])), 4) for k, label in enumerate(labels)}
        if "one_vs_all" in au.modes:
            columns = []
            for label in one_vs_all_labels(labels, dataset, au.one_vs_all_aus):
                with mlflow.start_run(run_name=f"one-vs-all-{label}", nested=True):
                    mlflow.set_tags({"ferops.kind": "au-mode", "au.mode": "one_vs_all", "au.label": label})
                    task = au_presence_task([label], au.sparsity.l1, au.sparsity.l2)
                    oof, cut = _out_of_fold(p, task, dataset, folds, f"au-{label}")
                    table = presence_table(task.targets(dataset), oof, [label], cut)
                    mlflow.log_metrics({"f1": table["f1"][0], "accuracy": table["accuracy"][0]})
                    columns.append(table)
            tables["one_vs_all"] = pd.concat(columns, ignore_index=True)
        summaries = dict(tables)
        if {"all_at_once", "one_vs_all"} <= tables.keys():  # like for like: the joint head on one_vs_all's AUs
            same = tables["all_at_once"]["au"].isin(tables["one_vs_all"]["au"])
            summaries[SAME_AUS] = tables["all_at_once"][same].reset_index(drop=True)
        for mode, table in summaries.items():
            metrics[mode] = _presence_summary(table)
            mlflow.log_metrics({f"{mode}_{k}": v for k, v in metrics[mode].items()})
        _log_table(pd.concat([t.assign(mode=m) for m, t in tables.items()], ignore_index=True),
                   out_dir / "presence.csv", "presence")
        plot_presence(tables, out_dir / "presence.png", dataset.name)
        task = au_intensity_task(labels, au.sparsity.l1, au.sparsity.l2)
        with mlflow.start_run(run_name="intensity", nested=True):
            mlflow.set_tags({"ferops.kind": "au-mode", "au.mode": "intensity"})
            mlflow.log_param("model.dense_dropout.intensity", au.intensity_dense_dropout)
            oof, _ = _out_of_fold(intensity_params(p), task, dataset, folds, "au-intensity")
        table = intensity_table(task.targets(dataset), oof, labels)
        metrics["intensity"] = summarise(table, INTENSITY_DEFINITIONS)
        _log_table(table, out_dir / "intensity.csv", "intensity")
        mlflow.log_metrics({f"intensity_{k}": v for k, v in metrics["intensity"].items()})
        mlflow.log_artifacts(str(out_dir), artifact_path="au")

        registration = not_registered("au.refit is false" if not au.refit else
                                      "only the all_at_once model is registered, and au.modes lacks it")
        if au.refit and "all_at_once" in au.modes:
            registration = _refit_and_register(p, presence, dataset, parent.info.run_id,
                                               metrics["all_at_once"]["f1_mean"], lineage["dvc.data"], "subject",
                                               metrics["thresholds"])
        registry = registration.as_dict()
        headline = ", ".join(f"{mode.replace('_', '-')} presence F1 = {sig4(metrics[mode]['f1_mean'])}"
                             for mode in tables)
        describe(note(f"{headline} over {metrics[next(iter(tables))]['n_aus']} AUs" if tables else "AU intensity only",
                      f"{au.folds}-fold CV, {protocol}", f"`{dataset.name}`, {len(dataset)} images, DVC hash "
                      f"`{lineage['dvc.data']}`", (registry_line(registry),)))
    record = {"run_id": parent.info.run_id, "data_hash": lineage["dvc.data"]}
    numbers = {k: v for k, v in metrics.items() if k in ("all_at_once", "one_vs_all", SAME_AUS, "intensity", "n_images")}
    write_json(numbers, out_dir / "metrics.json")
    write_registration(registration, out_dir / "registry.json")  # the registration's one record
    write_json({**record, **{k: v for k, v in metrics.items() if k not in numbers}}, out_dir / "run.json")
    return {**metrics, **record, "registry": registry}


__all__ = ["choose_aus", "experiment_params", "intensity_params", "plot_presence", "run_au"]

"""The pipeline's steps as plain functions: params in, files out.

DVC stages (through the CLI), Prefect tasks and tests all call these and only
these, so a step exists once. Each takes the typed Params (or the section it
needs) and writes its declared outputs atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np

from ferops.config import Params, SynthFacsParams
from ferops.data.dataset import Dataset
from ferops.errors import FeropsError
from ferops.evaluation import write_json
from ferops.io import atomic_dir
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.store import configure
from ferops.tuning.overlay import BEST_PARAMS, fold_params, read_overlay, refit_params

VALIDATION_REPORT = Path("outputs/validation.json")
CV_DIR = Path("outputs/cv")
MODEL_DIR = Path("outputs/model")
REGISTRY_RECORD = Path("outputs/registry.json")


def read_json(path: Path, fix: str) -> dict:
    """A stage's input record, or a one-line error saying which stage makes it."""
    if not path.exists():
        raise FeropsError(f"{path}: not found; {fix}")
    return json.loads(path.read_text())


def require_run(run_id: str, recorded_in: Path) -> None:
    """A record naming a run the store lacks (a new clone, a deleted mlflow.db) must not be built upon."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow.get_run(run_id)
    except MlflowException:
        raise FeropsError(f"{recorded_in}: run {run_id} is not in the tracking store {mlflow.get_tracking_uri()}; "
                          f"`make run` (which clears stale records) or `dvc repro --force` retrains it") from None


def generate(sp: SynthFacsParams, seed: int, track: bool = False, tracking=None) -> Path:
    """Render a SynthFACS dataset and write it in a real dataset's on-disk format, plus a contact sheet."""
    from ferops.data import formats
    from ferops.data.synthfacs import contact_sheet, generate as render

    dataset = render(sp.preset, sp.n, seed=seed, size=sp.size, channels=sp.channels)
    out = formats.write(sp.format, dataset, sp.out)
    sheet = contact_sheet(dataset, Path(f"{sp.out}.contact_sheet.png"))
    if track and tracking is not None:
        configure(tracking)
        with mlflow.start_run(run_name=f"generate-{sp.preset}"):
            mlflow.set_tags({"ferops.kind": "generate"})
            mlflow.log_params({f"synthfacs.{k}": v for k, v in vars(sp).items()} | {"seed": seed})
            mlflow.log_artifact(str(sheet))
    return Path(out)


def reader_options(params: Params) -> dict:
    """The loader options params.yaml sets for the dataset's format."""
    d = params.dataset
    return {
        "ck+": {"last_k": d.last_k, "neutral_first_frame": d.neutral_first_frame},
        "folders": {"subject_pattern": d.subject_pattern},
    }.get(d.format, {})


def preprocess(params: Params) -> Path:
    """Raw dataset as shipped -> aligned, resized face crops in the common form (+ rejects.csv).

    Under validate.on_fail: quarantine the per-image checks run here, before the one atomic write, because
    the processed dir is the validate stage's dependency and DVC forbids a stage rewriting its own (see
    ferops.data.quarantine). Every image left out, and every file the reader skipped, is counted on stdout.
    """
    import pandas as pd

    from ferops.data import formats
    from ferops.data.faces import preprocess as crop_faces
    from ferops.data.formats.skipped import reader_notes
    from ferops.data.quarantine import quarantine

    raw = formats.read(params.dataset.format, params.dataset.raw_dir, **reader_options(params))
    raw.name = params.dataset.name
    for line in reader_notes(raw.extras):
        print(f"{params.dataset.raw_dir}: {line}")
    pp, vp = params.preprocess, params.validate
    processed, rejects = crop_faces(raw, size=pp.image_size, channels=pp.channels, detect_faces=pp.detect_faces)
    for reason, n in rejects["reason"].value_counts().items():
        print(f"preprocess: rejected {n} image{'s' if n != 1 else ''}: {reason} (listed in rejects.csv)")
    out = Path(params.dataset.processed_dir)
    if vp.on_fail == "quarantine":
        processed, held = quarantine(processed, vp.pixel_mean_range, vp.pixel_std_range)
        rejects = pd.concat([rejects, held.rejects], ignore_index=True)
        for line in held.lines(out / "rejects.csv"):
            print(line)
    with atomic_dir(out) as tmp:
        processed.save(tmp)
        rejects.to_csv(tmp / "rejects.csv", index=False)
    return out


def load_processed(params: Params) -> Dataset:
    return Dataset.load(params.dataset.processed_dir)


def validate(params: Params, report_path: Path = VALIDATION_REPORT, track: bool = True):
    """Great Expectations checks on the processed dataset; raises ValidationError when any fails.

    Only checks, never edits: under validate.on_fail: quarantine the preprocess step already took per-image
    failures out, so what can still fail here (images per class, labels, folds) stops the run either way.
    What was quarantined goes into the report, and into MLflow as quarantined_<reason> metrics + rejects.csv.
    """
    from ferops.data.quarantine import REASONS, notes
    from ferops.data.validation import ValidationError, validate_dataset
    from ferops.train.folds import make_folds

    dataset = load_processed(params)
    pp, vp = params.preprocess, params.validate
    folds = None
    if params.cv.protocol == "subject":
        folds = make_folds(dataset.labels, dataset.subjects, params.cv.folds, "subject", params.seed)
    report = validate_dataset(
        dataset,
        image_shape=(pp.image_size, pp.image_size, pp.channels),
        min_per_class=vp.min_per_class,
        pixel_mean_range=vp.pixel_mean_range,
        pixel_std_range=vp.pixel_std_range,
        folds=folds,
    )
    rejects = Path(params.dataset.processed_dir) / "rejects.csv"
    record = dataset.extras.get("quarantine")
    report.notes += notes(record, vp.on_fail, vp.pixel_mean_range, vp.pixel_std_range, rejects)
    if record is not None:
        report.dataset["quarantined"] = record["counts"]
    report.to_json(report_path)
    if track:
        configure(params.tracking)
        with mlflow.start_run(run_name=f"validate-{dataset.name}"):
            mlflow.set_tags({"ferops.kind": "validate", "validate.on_fail": vp.on_fail,
                             **lineage_tags({"data": params.dataset.processed_dir})})
            mlflow.log_metric("validation_success", float(report.success))
            if record is not None:
                counts = {reason: record["counts"].get(reason, 0) for reason in REASONS}
                mlflow.log_metrics({f"quarantined_{reason}": n for reason, n in counts.items()}
                                   | {"quarantined_total": sum(counts.values())})
            if rejects.exists():
                mlflow.log_artifact(str(rejects))
            mlflow.log_artifact(str(report_path))
    if not report.success:
        raise ValidationError(report)
    return report


def cross_validate(params: Params, out_dir: Path = CV_DIR, mapper=None, tuned: Path = BEST_PARAMS):
    """k-fold CV of the recipe in params.yaml (see ferops.train.cross_validation).

    When `ferops tune` ran (tune.enabled), fold i trains with the best settings of the
    study run on fold i's training subjects: a nested CV. `mapper` runs the folds
    (default: params.runner's; the Prefect flows pass one that makes each fold a task).
    """
    from ferops.train.cross_validation import cross_validate as run_cv

    configure(params.tracking)
    overlay = read_overlay(tuned)
    return run_cv(load_processed(params), params, out_dir, data_path=params.dataset.processed_dir, mapper=mapper,
                  fold_params=lambda i: fold_params(params, overlay, i))


def refit(params: Params, cv_dir: Path = CV_DIR, out_dir: Path = MODEL_DIR, tuned: Path = BEST_PARAMS) -> dict:
    """The final model on all data, linked to its CV evidence (or a note when cv.refit is false)."""
    from ferops.train.cross_validation import read_cv_result
    from ferops.train.refit import refit as train_final, skip_refit

    if not params.cv.refit:
        return skip_refit(out_dir)
    configure(params.tracking)
    cv_metrics = read_cv_result(cv_dir)
    require_run(cv_metrics["run_id"], Path(cv_dir) / "run.json")
    return train_final(load_processed(params), refit_params(params, read_overlay(tuned)), cv_metrics, out_dir,
                       data_path=params.dataset.processed_dir)


def register(params: Params, cv_dir: Path = CV_DIR, model_dir: Path = MODEL_DIR,
             out_path: Path = REGISTRY_RECORD) -> dict:
    """Register the refit model under the task's name; champion only over a comparable, weaker champion."""
    from ferops.tracking.registry import ComparabilityKey, register as register_version
    from ferops.train.cross_validation import read_cv_result

    refit_record = read_json(Path(model_dir) / "run.json", "run the refit stage first (`dvc repro refit`)")
    if not refit_record["refit"]:
        record = {"registered": False, "reason": refit_record["reason"]}
        write_json(record, out_path)
        return record
    configure(params.tracking)
    cv_metrics = read_cv_result(cv_dir)
    require_run(refit_record["run_id"], Path(model_dir) / "run.json")
    metric = params.tracking.promote_metric
    key = ComparabilityKey(
        task=cv_metrics["task"], dataset=cv_metrics["dataset"], data_hash=cv_metrics["data_hash"],
        protocol=cv_metrics["protocol"], classes=tuple(cv_metrics["classes"]),
    )
    promotion = register_version(
        refit_record["model_uri"], params.tracking.model_name, cv_metrics[metric], metric, key,
        tags={"refit_run_id": refit_record["run_id"]}, cv_run_id=cv_metrics["run_id"],
    )
    record = {"registered": True, "model": promotion.name, "version": promotion.version,
              "champion": promotion.promoted, "reason": promotion.reason, "score": cv_metrics[metric],
              "metric": metric, "run_id": refit_record["run_id"]}
    write_json(record, out_path)
    return record


def holdout_train(params: Params, out_dir: Path = Path("outputs/train")):
    """One subject-independent train/test split (quick iteration; CV is the evidence)."""
    from ferops.train.holdout import train_holdout

    configure(params.tracking)
    return train_holdout(load_processed(params), params, out_dir, data_path=params.dataset.processed_dir)


def evaluate(model_uri: str, params: Params, out_dir: Path = Path("outputs/evaluate")) -> dict:
    """Score a trained model (registry URI or .keras path) on the rows of the processed dataset it never saw."""
    from ferops.evaluation import classification_metrics, plot_confusion_matrix
    from ferops.predict import load_model, trained_on
    from ferops.train.fit import predict_proba
    from ferops.train.unseen import unseen_rows

    configure(params.tracking)
    model, classes = load_model(model_uri)
    dataset = load_processed(params)
    rows, how = unseen_rows(dataset, trained_on(model_uri), model_uri)
    scored = dataset.subset(rows)
    pred = predict_proba(model, scored.images).argmax(axis=1)
    y_true = np.array([list(classes).index(n) if n in classes else -1 for n in scored.manifest["label_name"]])
    known = y_true >= 0
    metrics = classification_metrics(y_true[known], pred[known], tuple(classes))
    metrics.update({"model": model_uri, "dataset": dataset.name, "scored": how, "n_scored": int(known.sum()),
                    "n_unknown_label": int((~known).sum())})
    out_dir = Path(out_dir)
    write_json({k: v for k, v in metrics.items() if k != "report"}, out_dir / "metrics.json")
    plot_confusion_matrix(metrics["confusion_matrix"], classes, out_dir / "confusion_matrix.png",
                          f"{model_uri} on {dataset.name} ({how}): acc {metrics['accuracy']:.3f}")
    return metrics

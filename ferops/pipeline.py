"""The pipeline's steps as plain functions: params in, files out.

DVC stages (through the CLI), Prefect tasks and tests all call these and only
these, so a step exists once. Each takes the typed Params (or the section it
needs) and writes its declared outputs atomically.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np

from ferops.config import Params, SynthFacsParams
from ferops.data.dataset import Dataset
from ferops.evaluation import write_json
from ferops.io import atomic_file
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.store import configure

VALIDATION_REPORT = Path("outputs/validation.json")
CV_DIR = Path("outputs/cv")


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
    """Raw dataset as shipped -> aligned, resized face crops in the common form (+ rejects.csv)."""
    from ferops.data import formats
    from ferops.data.faces import preprocess as crop_faces

    raw = formats.read(params.dataset.format, params.dataset.raw_dir, **reader_options(params))
    raw.name = params.dataset.name
    pp = params.preprocess
    processed, rejects = crop_faces(raw, size=pp.image_size, channels=pp.channels, detect_faces=pp.detect_faces)
    out = processed.save(params.dataset.processed_dir)
    with atomic_file(out / "rejects.csv") as tmp:
        rejects.to_csv(tmp, index=False)
    return out


def load_processed(params: Params) -> Dataset:
    return Dataset.load(params.dataset.processed_dir)


def validate(params: Params, report_path: Path = VALIDATION_REPORT, track: bool = True):
    """Great Expectations checks on the processed dataset; raises ValidationError when any fails."""
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
    report.to_json(report_path)
    if track:
        configure(params.tracking)
        with mlflow.start_run(run_name=f"validate-{dataset.name}"):
            mlflow.set_tags({"ferops.kind": "validate", **lineage_tags({"data": params.dataset.processed_dir})})
            mlflow.log_metric("validation_success", float(report.success))
            mlflow.log_artifact(str(report_path))
    if not report.success:
        raise ValidationError(report)
    return report


def cross_validate(params: Params, out_dir: Path = CV_DIR):
    """k-fold CV + refit + registry promotion (see ferops.train.cross_validation)."""
    from ferops.train.cross_validation import cross_validate as run_cv

    configure(params.tracking)
    return run_cv(load_processed(params), params, out_dir, data_path=params.dataset.processed_dir)


def holdout_train(params: Params, out_dir: Path = Path("outputs/train")):
    """One subject-independent train/validation split (quick iteration; CV is the evidence)."""
    from ferops.train.holdout import train_holdout

    configure(params.tracking)
    return train_holdout(load_processed(params), params, out_dir, data_path=params.dataset.processed_dir)


def evaluate(model_uri: str, params: Params, out_dir: Path = Path("outputs/evaluate")) -> dict:
    """Score a trained model (registry URI or .keras path) on the processed dataset."""
    from ferops.evaluation import classification_metrics, plot_confusion_matrix
    from ferops.predict import load_model
    from ferops.train.fit import predict_proba

    dataset = load_processed(params)
    model, classes = load_model(model_uri)
    pred = predict_proba(model, dataset.images).argmax(axis=1)
    y_true = np.array([list(classes).index(n) if n in classes else -1 for n in dataset.manifest["label_name"]])
    known = y_true >= 0
    metrics = classification_metrics(y_true[known], pred[known], tuple(classes))
    metrics.update({"model": model_uri, "dataset": dataset.name, "n_scored": int(known.sum()),
                    "n_unknown_label": int((~known).sum())})
    out_dir = Path(out_dir)
    write_json({k: v for k, v in metrics.items() if k != "report"}, out_dir / "metrics.json")
    plot_confusion_matrix(metrics["confusion_matrix"], classes, out_dir / "confusion_matrix.png",
                          f"{model_uri} on {dataset.name}: acc {metrics['accuracy']:.3f}")
    return metrics

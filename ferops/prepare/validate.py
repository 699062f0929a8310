"""The `validate` stage: Great Expectations checks on the processed dataset."""

from __future__ import annotations

from pathlib import Path

import mlflow

from ferops.config import Params
from ferops.data.dataset import Dataset
from ferops.stages import STAGES
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.store import configure, data_runs


def validate(params: Params, report_path: Path = STAGES["validate"].out, track: bool = True):
    """Great Expectations checks on the processed dataset; raises ValidationError when any fails.

    Only checks, never edits: under validate.on_fail: quarantine the preprocess step already took per-image
    failures out, so what can still fail here (images per class, labels, folds) stops the run either way.
    What was quarantined goes into the report, and into MLflow as quarantined_<reason> metrics + rejects.csv;
    what was only flagged (validate.test_duplicates: keep) as flagged_<flag> + flagged.csv; the test split's size
    before and after, and what quarantine took from it, as test_split_* metrics and the report's test_split.
    """
    from ferops.data.quarantine import FLAGGED, FLAGS, REASONS, notes
    from ferops.data.splits import data_report
    from ferops.data.validation import ValidationError, validate_dataset
    from ferops.train.folds import make_folds

    dataset = Dataset.load(params.dataset.processed_dir)
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
    flagged = rejects.with_name(FLAGGED)
    report.notes += notes(record, vp.on_fail, vp.pixel_mean_range, vp.pixel_std_range, rejects, vp.test_duplicates)
    summary = data_report(dataset)
    report.dataset["test_split"] = summary["test_split"]
    if record is not None:
        report.dataset["quarantined"] = record["counts"]
        report.dataset["flagged"] = record.get("flagged", {})
        report.dataset["splits"] = record.get("splits")
    report.to_json(report_path)
    if track:
        configure(data_runs(params.tracking))  # its own experiment: data runs don't crowd the results
        with mlflow.start_run(run_name=f"validate-{dataset.name}"):
            mlflow.set_tags({"ferops.kind": "validate", "validate.on_fail": vp.on_fail,
                             "validate.test_duplicates": vp.test_duplicates,
                             **lineage_tags({"data": params.dataset.processed_dir})})
            mlflow.log_metric("validation_success", float(report.success))
            if record is not None:
                counts = {reason: record["counts"].get(reason, 0) for reason in REASONS}
                mlflow.log_metrics({f"quarantined_{reason}": n for reason, n in counts.items()}
                                   | {"quarantined_total": sum(counts.values())}
                                   | {f"flagged_{flag}": record.get("flagged", {}).get(flag, 0) for flag in FLAGS})
            test = summary["test_split"]
            if test is not None:
                mlflow.log_metrics({f"test_split_{k}": v for k, v in test.items()
                                    if k in ("n", "n_before_quarantine", "quarantined", "flagged_kept") and v is not None})
            for listed in (rejects, flagged):
                if listed.exists():
                    mlflow.log_artifact(str(listed))
            mlflow.log_artifact(str(report_path))
    if not report.success:
        raise ValidationError(report)
    return report

import json

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from ferops.tracking.store import configure
from ferops.train.cross_validation import cross_validate


def test_cv_parent_folds_metrics_and_registry(mlflow_store, tiny_params, toy_dataset, tmp_path):
    configure(tiny_params.tracking)
    result = cross_validate(toy_dataset, tiny_params, tmp_path / "cv")
    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["cv.protocol"] == "subject"
    assert {"cv_accuracy_mean", "cv_accuracy_std", "cv_f1_macro", "f1_neutral"} <= set(parent.data.metrics)
    assert parent.data.params["cv.folds"] == "3"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'"
    )
    folds = [r for r in children if r.data.tags.get("ferops.kind") == "cv-fold"]
    assert len(folds) == 3 and all("test_accuracy" in r.data.metrics for r in folds)
    history = client.get_metric_history(folds[0].info.run_id, "val_accuracy")
    assert [m.step for m in history] == [0]  # one point per epoch
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id, "cv")}
    assert {"cv/metrics.json", "cv/confusion_matrix.png", "cv/confusion_matrix.json",
            "cv/classification_report.txt"} <= artifacts

    metrics = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    assert metrics["protocol"] == "subject" and len(metrics["fold_accuracy"]) == 3
    assert abs(metrics["cv_accuracy_mean"] - parent.data.metrics["cv_accuracy_mean"]) < 1e-9
    predictions = pd.read_csv(tmp_path / "cv" / "predictions.csv")
    assert len(predictions) == len(toy_dataset) and set(predictions.fold) == {0, 1, 2}
    # subject-independent: each subject's rows sit in one fold
    assert (predictions.assign(s=toy_dataset.subjects).groupby("s").fold.nunique() == 1).all()

    version = client.get_model_version_by_alias("fer-emotion", "champion")
    assert str(version.version) == result.promotion.version == "1"
    assert str(client.get_model_version_by_alias("fer-emotion", "candidate").version) == "1"
    assert mlflow.models.get_model_info(f"models:/fer-emotion@champion").metadata["classes"] == list(toy_dataset.classes)

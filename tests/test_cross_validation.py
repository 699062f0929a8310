import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import accuracy_score, f1_score

from ferops.tracking.store import configure
from ferops.train import cross_validation
from ferops.train.cross_validation import cross_validate
from ferops.train.folds import IMAGE_LEVEL, FoldError

from conftest import make_params, make_toy_dataset


@pytest.fixture
def fit_calls(monkeypatch):
    """Record what `fit` is shown (the real fit still runs)."""
    calls = []
    real_fit = cross_validation.fit

    def spy(params, task, x_train, y_train, x_val=None, y_val=None, **kwargs):
        calls.append({"x_train": x_train.copy(), "x_val": None if x_val is None else x_val.copy()})
        return real_fit(params, task, x_train, y_train, x_val, y_val, **kwargs)

    monkeypatch.setattr(cross_validation, "fit", spy)
    return calls


@pytest.mark.slow
def test_cv_parent_folds_and_metrics(mlflow_store, tiny_params, toy_dataset, tmp_path, fit_calls):
    configure(tiny_params.tracking)
    result = cross_validate(toy_dataset, tiny_params, tmp_path / "cv")
    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["cv.protocol"] == "subject"
    assert {"cv_accuracy_mean", "cv_accuracy_std", "cv_f1_macro", "f1_neutral"} <= set(parent.data.metrics)
    assert parent.data.params["cv.folds"] == "3"
    # The sections the cv stage reads, not all of params.yaml (which is one artifact beside them).
    assert {k.split(".")[0] for k in parent.data.params} == {"seed", "model", "train", "cv", "data"}
    assert "analysis.top_n" not in parent.data.params
    logged = client.download_artifacts(result.parent_run_id, "params.yaml", str(tmp_path))
    assert "analysis:" in open(logged).read()
    (data_input,) = parent.inputs.dataset_inputs  # the runs table's Dataset column
    assert data_input.dataset.name == toy_dataset.name
    assert data_input.dataset.digest == parent.data.tags["dvc.data"][:36]
    note = parent.data.tags["mlflow.note.content"]  # the run page's description: headline, protocol, data hash
    mean = parent.data.metrics["cv_accuracy_mean"]
    assert note.startswith(f"**cv_accuracy_mean = {mean:.4g} ± ") and "subject" in note
    assert parent.data.tags["dvc.data"] in note
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'"
    )
    folds = [r for r in children if r.data.tags.get("ferops.kind") == "cv-fold"]
    assert len(folds) == 3 and all("test_accuracy" in r.data.metrics for r in folds)
    # Fold runs carry the full recipe and a link to their parent, so they compare in the UI on their own.
    assert all(r.data.params["train.epochs"] == "1" and r.data.tags["ferops.parent_run"] == result.parent_run_id
               for r in folds)
    assert all(set(r.data.params) - set(parent.data.params) == {"fold", "n_fit", "n_validation", "n_test"}
               for r in folds)  # comparing folds shows what differs first
    history = client.get_metric_history(folds[0].info.run_id, "val_accuracy")
    assert [m.step for m in history] == [0]  # one point per epoch
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id, "cv")}
    assert {"cv/metrics.json", "cv/confusion_matrix.png", "cv/confusion_matrix.json",
            "cv/classification_report.txt"} <= artifacts

    metrics = {**json.loads((tmp_path / "cv" / "metrics.json").read_text()),
               **json.loads((tmp_path / "cv" / "run.json").read_text())}
    assert metrics["protocol"] == "subject" and len(metrics["fold_accuracy"]) == 3
    assert metrics["run_id"] == result.parent_run_id and metrics["task"] == "emotion"
    assert abs(metrics["cv_accuracy_mean"] - parent.data.metrics["cv_accuracy_mean"]) < 1e-9

    # Both headline figures recompute from predictions.csv exactly as metrics.json defines them.
    predictions = pd.read_csv(tmp_path / "cv" / "predictions.csv")
    assert len(predictions) == len(toy_dataset) and set(predictions.fold) == {0, 1, 2}
    per_fold = predictions.groupby("fold").apply(lambda d: accuracy_score(d.actual, d.predicted))
    assert metrics["cv_accuracy_mean"] == pytest.approx(per_fold.mean(), abs=1e-12)
    assert metrics["cv_accuracy_std"] == pytest.approx(per_fold.std(ddof=1), abs=1e-12)
    present = sorted(predictions.actual.unique())
    pooled = f1_score(predictions.actual, predictions.predicted, labels=present, average="macro", zero_division=0)
    assert metrics["cv_f1_macro"] == pytest.approx(pooled, abs=1e-12)
    # subject-independent: each subject's rows sit in one fold
    assert (predictions.assign(s=toy_dataset.subjects).groupby("s").fold.nunique() == 1).all()

    # No test-fold image is ever shown to fit, as training or as validation data.
    assert len(fit_calls) == 3
    for i, call in enumerate(fit_calls):
        test_images = {img.tobytes() for img in toy_dataset.images[(predictions.fold == i).to_numpy()]}
        assert call["x_val"] is not None and len(call["x_val"]) > 0
        assert not test_images & {img.tobytes() for img in call["x_val"]}
        assert not test_images & {img.tobytes() for img in call["x_train"]}


def test_folds_beyond_subjects_fail_in_one_line_before_writing(mlflow_store, toy_dataset, tmp_path):
    params = make_params({"cv": {"folds": 7}})  # the toy data has 6 subjects
    configure(params.tracking)
    with pytest.raises(FoldError, match="cv.folds: 7 subject-independent folds need at least 7 subjects, "
                                        "the data has 6; lower cv.folds"):
        cross_validate(toy_dataset, params, tmp_path / "cv")
    assert not (tmp_path / "cv").exists()
    assert MlflowClient().search_runs([MlflowClient().get_experiment_by_name("ferops").experiment_id]) == []


@pytest.mark.slow
def test_data_without_subjects_is_reported_image_level(mlflow_store, tmp_path):
    dataset = make_toy_dataset(n=30, n_subjects=30)  # one id per image: subjects unknown
    params = make_params()
    configure(params.tracking)
    result = cross_validate(dataset, params, tmp_path / "cv")
    assert result.metrics["protocol_description"] == IMAGE_LEVEL
    assert "image-level (subjects unknown)" in (tmp_path / "cv" / "classification_report.txt").read_text()
    assert np.isfinite(result.metrics["cv_accuracy_mean"])

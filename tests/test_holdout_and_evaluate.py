import json

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from ferops import pipeline
from ferops.config import replace
from ferops.train.holdout import split_indices
from ferops.train.unseen import EvaluationRefused


@pytest.fixture
def processed(mlflow_store, tiny_params, toy_dataset, tmp_path):
    params = replace(tiny_params, **{"dataset.processed_dir": str(tmp_path / "processed")})
    toy_dataset.save(params.dataset.processed_dir)
    return params


@pytest.mark.slow
def test_holdout_model_is_scored_on_its_held_out_subjects_only(processed, toy_dataset, tmp_path):
    metrics = pipeline.holdout_train(processed, out_dir=tmp_path / "train")
    run = MlflowClient().get_run(metrics["run_id"])
    assert run.data.tags["split"] == "subject-grouped holdout"
    assert {"heldout_accuracy", "heldout_f1_macro", "loss", "val_accuracy"} <= set(run.data.metrics)
    assert json.loads((tmp_path / "train" / "metrics.json").read_text())["split"] == "subject-grouped holdout"
    assert mlflow.models.get_model_info(metrics["model_uri"]).metadata["classes"] == list(toy_dataset.classes)

    train, test, _ = split_indices(toy_dataset, processed)
    scored = pipeline.evaluate(metrics["model_uri"], processed, out_dir=tmp_path / "eval")
    assert scored["n_scored"] == len(test) < len(toy_dataset)
    assert scored["scored"].startswith("held-out subjects")
    assert scored["accuracy"] == pytest.approx(metrics["accuracy"])  # the same unseen rows as the holdout score
    assert (tmp_path / "eval" / "confusion_matrix.png").stat().st_size > 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["accuracy"] == scored["accuracy"]


@pytest.mark.slow
def test_evaluate_refuses_a_model_on_its_own_training_data(processed, tmp_path):
    cv = pipeline.cross_validate(processed, out_dir=tmp_path / "cv")
    summary = pipeline.refit(processed, cv_dir=tmp_path / "cv", out_dir=tmp_path / "model")
    refit_run = MlflowClient().get_run(summary["run_id"])
    # the final model's run carries the recipe, the lineage and its CV parent
    assert refit_run.data.params["train.epochs"] == "1"
    assert {"git_commit", "dvc.data"} <= set(refit_run.data.tags)
    assert refit_run.data.tags["mlflow.parentRunId"] == cv.parent_run_id
    assert "analysis.top_n" not in refit_run.data.params  # the refit stage's sections only; params.yaml beside
    (data_input,) = refit_run.inputs.dataset_inputs
    assert data_input.dataset.digest == refit_run.data.tags["dvc.data"][:36]
    info = mlflow.models.get_model_info(summary["model_uri"])
    assert info.name == processed.tracking.model_name
    logged = mlflow.get_logged_model(summary["model_id"])
    assert {m.key: m.value for m in logged.metrics}["cv_accuracy_mean"] == pytest.approx(
        cv.metrics["cv_accuracy_mean"])
    for uri in (summary["model_uri"], str(tmp_path / "model" / "model.keras")):
        with pytest.raises(EvaluationRefused, match="trained on every image of toy"):
            pipeline.evaluate(uri, processed, out_dir=tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


def test_holdout_uses_the_datasets_own_split(tiny_params, toy_dataset):
    toy_dataset.manifest["split"] = ["Training"] * 50 + ["PublicTest"] * 10
    train, val, how = split_indices(toy_dataset, tiny_params)
    assert how == "dataset split column" and len(train) == 50 and list(val) == list(range(50, 60))


def test_refit_false_still_writes_the_stage_outputs_dvc_expects(processed, tmp_path):
    import yaml

    from conftest import ROOT

    params = replace(processed, **{"cv.refit": False})
    pipeline.refit(params, cv_dir=tmp_path / "cv", out_dir=tmp_path / "outputs" / "model")
    record = pipeline.register(params, cv_dir=tmp_path / "cv", model_dir=tmp_path / "outputs" / "model",
                               out_path=tmp_path / "outputs" / "registry.json")
    assert record["registered"] is False and record["model"] is None
    assert record["reason"] == "cv.refit is false in params.yaml: no final model was trained"
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in ("refit", "register"):
        for out in stages[stage]["outs"]:
            path = next(iter(out)) if isinstance(out, dict) else out
            assert (tmp_path / path).exists(), f"{stage} must leave {path} for DVC even when cv.refit is false"
    assert not (tmp_path / "outputs" / "model" / "model.keras").exists()

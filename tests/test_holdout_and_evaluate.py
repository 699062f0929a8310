import json

import mlflow
from mlflow.tracking import MlflowClient

from ferops import pipeline
from ferops.config import replace
from ferops.train.holdout import split_indices


def test_holdout_train_then_evaluate_from_the_logged_model(mlflow_store, tiny_params, toy_dataset, tmp_path):
    params = replace(tiny_params, **{"dataset.processed_dir": str(tmp_path / "processed")})
    toy_dataset.save(params.dataset.processed_dir)

    metrics = pipeline.holdout_train(params, out_dir=tmp_path / "train")
    run = MlflowClient().get_run(metrics["run_id"])
    assert run.data.tags["split"] == "subject-grouped holdout"
    assert {"val_accuracy_final", "val_f1_macro", "loss"} <= set(run.data.metrics)
    assert json.loads((tmp_path / "train" / "metrics.json").read_text())["split"] == "subject-grouped holdout"

    scored = pipeline.evaluate(metrics["model_uri"], params, out_dir=tmp_path / "eval")
    assert scored["n_scored"] == len(toy_dataset) and scored["classes"] == list(toy_dataset.classes)
    assert (tmp_path / "eval" / "confusion_matrix.png").stat().st_size > 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["accuracy"] == scored["accuracy"]
    assert mlflow.models.get_model_info(metrics["model_uri"]).metadata["classes"] == list(toy_dataset.classes)


def test_holdout_uses_the_datasets_own_split(tiny_params, toy_dataset):
    toy_dataset.manifest["split"] = ["Training"] * 50 + ["PublicTest"] * 10
    train, val, how = split_indices(toy_dataset, tiny_params)
    assert how == "dataset split column" and len(train) == 50 and list(val) == list(range(50, 60))

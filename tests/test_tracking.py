"""The tracking store and Keras model logging (registry: test_registry.py; lineage: test_lineage.py)."""

import json
from pathlib import Path

import mlflow
import numpy as np

from ferops.models import build_cnn
from ferops.tracking.model_logging import log_keras_model
from ferops.tracking.store import configure

from conftest import make_params


def _tiny_model():
    return build_cnn(make_params({"model": {"width": 0.0625}}).model, (48, 48, 1), 8)


def test_default_store_is_sqlite_with_local_artifacts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking = make_params().tracking
    configure(tracking)
    assert tracking.tracking_uri == "sqlite:///mlflow.db"
    assert mlflow.get_tracking_uri() == "sqlite:///mlflow.db"
    assert (tmp_path / "mlflow.db").exists()
    experiment = mlflow.get_experiment_by_name(tracking.experiment)
    assert experiment.artifact_location == (tmp_path / tracking.artifact_root).resolve().as_uri()


def test_env_overrides_store(mlflow_store):
    configure(make_params({"tracking": {"tracking_uri": "sqlite:///elsewhere.db"}}).tracking)
    assert mlflow.get_tracking_uri() == mlflow_store
    assert not Path("elsewhere.db").exists()


def test_keras_model_logged_with_signature_and_input_example(mlflow_store):
    configure(make_params().tracking)
    model = _tiny_model()
    x = np.random.default_rng(0).integers(0, 255, (3, 48, 48, 1)).astype(np.float32)
    with mlflow.start_run():
        info = log_keras_model(model, x, metadata={"classes": ["a"] * 8})
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 48, 48, 1)
    assert info.saved_input_example_info["artifact_path"] == "input_example.json"
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    example = json.loads((local / "input_example.json").read_text())
    assert np.asarray(example).shape == (3, 48, 48, 1)
    assert (local / "data" / "model.keras").exists()  # native Keras 3 format
    loaded = mlflow.keras.load_model(info.model_uri)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


def test_logged_keras_model_pins_this_environment_without_inferring(mlflow_store, monkeypatch):
    """requirements.txt names the installed versions; MLflow's inference (a subprocess importing TF) never runs."""
    import importlib.metadata

    import mlflow.utils.environment as environment

    def no_inference(*args, **kwargs):
        raise AssertionError("MLflow inferred the requirements (a subprocess that imports TensorFlow)")

    monkeypatch.setattr(environment, "_infer_requirements", no_inference)
    configure(make_params().tracking)
    x = np.zeros((2, 48, 48, 1), np.float32)
    with mlflow.start_run():
        info = log_keras_model(_tiny_model(), x)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    pins = set((local / "requirements.txt").read_text().split())
    tf = "tensorflow" if any(d.metadata["Name"] == "tensorflow" for d in importlib.metadata.distributions()) \
        else "tensorflow-cpu"
    for name in ("mlflow", tf, "keras", "numpy"):
        assert f"{name}=={importlib.metadata.version(name)}" in pins, (name, pins)



def test_epoch_metrics_go_async_only_to_a_store_over_the_network(tmp_path):
    """A local store is written directly: closing a run that used MLflow's async queue waits up to 1 s for it."""
    import mlflow

    from ferops.tracking.epoch_logger import EpochLogger

    saved = mlflow.get_tracking_uri()
    try:
        for uri, asynchronous in ((f"sqlite:///{tmp_path}/m.db", False),
                                  ("http://127.0.0.1:5000", True)):
            mlflow.set_tracking_uri(uri)
            assert EpochLogger("run").asynchronous is asynchronous, uri
    finally:
        mlflow.set_tracking_uri(saved)

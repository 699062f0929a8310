import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ferops.config import ModelParams, TrackingParams
from ferops.models import build_cnn
from ferops.tracking.lineage import dvc_hash, git_commit
from ferops.tracking.model_logging import log_keras_model
from ferops.tracking.registry import CANDIDATE, CHAMPION, register_and_promote
from ferops.tracking.store import configure


def _tiny_model():
    return build_cnn(ModelParams(width=0.0625), (48, 48, 1), 8)


def test_default_store_is_sqlite_with_local_artifacts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    configure(TrackingParams())
    assert mlflow.get_tracking_uri() == "sqlite:///mlflow.db"
    assert (tmp_path / "mlflow.db").exists()
    experiment = mlflow.get_experiment_by_name("ferops")
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()


def test_env_overrides_store(mlflow_store):
    configure(TrackingParams(tracking_uri="sqlite:///elsewhere.db"))
    assert mlflow.get_tracking_uri() == mlflow_store
    assert not Path("elsewhere.db").exists()


def test_keras_model_logged_with_signature_and_input_example(mlflow_store):
    configure(TrackingParams())
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


def test_registry_promotes_only_on_evidence(mlflow_server, monkeypatch):
    """Against a real `mlflow server`: first model champion, worse one candidate only, better one champion."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    configure(TrackingParams(experiment="registry-test"))
    model = _tiny_model()
    x = np.zeros((2, 48, 48, 1), np.float32)
    name = "fer-emotion-test"
    outcomes = []
    for score in (0.70, 0.65, 5 / 6, 5 / 6):  # 5/6 has more digits than any rounded tag
        with mlflow.start_run():
            mlflow.log_metric("cv_accuracy_mean", score)
            info = log_keras_model(model, x)
        outcomes.append(register_and_promote(info.model_uri, name, "cv_accuracy_mean", score))
    assert [o.promoted for o in outcomes] == [True, False, True, False]  # a tie is not evidence
    assert "does not beat champion 0.7000" in outcomes[1].reason
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == outcomes[2].version
    assert str(client.get_model_version_by_alias(name, CANDIDATE).version) == outcomes[3].version
    v2 = client.get_model_version(name, outcomes[1].version)
    assert float(v2.tags["cv_accuracy_mean"]) == 0.65 and "does not beat" in v2.tags["promotion"]
    pulled = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    assert pulled.predict(x).shape == (2, 8)


def test_lineage_reads_dvc_lock_and_git(tmp_path):
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  preprocess:\n    cmd: ferops preprocess\n    outs:\n"
        "    - path: data/processed/x\n      hash: md5\n      md5: abc123.dir\n"
    )
    (tmp_path / "data.dvc").write_text("outs:\n- md5: def456.dir\n  path: data/raw\n")
    assert dvc_hash("data/processed/x", root=tmp_path) == "abc123.dir"
    assert dvc_hash("data/processed/x/images.npy", root=tmp_path) == "abc123.dir"
    assert dvc_hash("data/raw/ck+", root=tmp_path) == "def456.dir"
    assert dvc_hash("elsewhere", root=tmp_path) is None
    assert git_commit(tmp_path) == {"git_commit": "unknown"}  # not a git repo: said so, not guessed

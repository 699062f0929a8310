"""The Prefect flow on a real Prefect test server, running the same steps as `dvc repro`."""

import pytest
from mlflow.tracking import MlflowClient
from prefect.testing.utilities import prefect_test_harness

from conftest import ROOT, TINY
from flows.training import emotion_cv_flow

pytestmark = pytest.mark.slow


def _dotted(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _dotted(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_emotion_cv_flow_runs_pipeline_and_registers(mlflow_store, tmp_path):
    overrides = dict(_dotted(TINY)) | {"synthfacs.n": 21}
    with prefect_test_harness(server_startup_timeout=120):
        state = emotion_cv_flow(params_path=str(ROOT / "params.yaml"), overrides=overrides,
                                outputs=str(tmp_path / "outputs"), return_state=True)
    assert state.is_completed(), state
    metrics = state.result()
    assert metrics["folds"] == 3 and metrics["protocol"] == "subject"
    assert metrics["registry"]["version"] == "1" and metrics["registry"]["champion"]
    assert (tmp_path / "outputs" / "cv" / "metrics.json").exists()
    assert (tmp_path / "data" / "processed" / "synthfacs_posed" / "images.npy").exists()
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("fer-emotion", "champion").version) == "1"

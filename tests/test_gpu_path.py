"""The GPU path's settings, checked where CPUs can check them (benchmarks/gpu_throughput.py runs on a GPU).

Precision policies, the determinism switch, system metrics and a model built
inside a MirroredStrategy scope behave the same on CPU devices; only speed and
memory growth need a real card.
"""

import subprocess
import sys
import textwrap

import keras
import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tensorflow.python.framework import config as tf_config

from ferops.tracking.store import configure
from ferops.train.fit import fit
from ferops.train.tasks import emotion_task

from conftest import ROOT, make_params

TOY = emotion_task(("neutral", "happiness", "surprise"))
TINY_MODEL = {"model": {"width": 0.0625}}


@pytest.mark.parametrize("precision, compute, loss_scaled", [
    ("mixed_float16", "float16", True),
    ("mixed_bfloat16", "bfloat16", False),
])
@pytest.mark.slow
def test_mixed_precision_computes_low_and_keeps_float32_outputs(toy_dataset, precision, compute, loss_scaled):
    params = make_params({**TINY_MODEL, "train": {"precision": precision}})
    result = fit(params, TOY, toy_dataset.images, toy_dataset.labels, verbose=0)
    model = result.model
    assert model.get_layer("conv1").compute_dtype == compute
    assert model.get_layer("conv1").variable_dtype == "float32"  # master weights stay float32
    assert keras.backend.standardize_dtype(model.outputs[0].dtype) == "float32"  # softmax and loss in float32
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) is loss_scaled
    assert np.isfinite(result.history["loss"]).all()
    assert keras.config.dtype_policy().name == "float32"  # the next model anyone builds is unaffected


@pytest.mark.slow
def test_determinism_follows_train_deterministic(toy_dataset):
    for deterministic in (False, True):  # True last: leave the process as every other test expects it
        params = make_params({**TINY_MODEL, "train": {"deterministic": deterministic}})
        fit(params, TOY, toy_dataset.images[:16], toy_dataset.labels[:16], verbose=0)
        assert tf_config.is_op_determinism_enabled() is deterministic


def _system_metrics(run_id: str) -> set[str]:
    return {k for k in MlflowClient().get_run(run_id).data.metrics if k.startswith("system/")}


@pytest.mark.slow
def test_system_metrics_are_sampled_into_the_training_run_when_enabled(mlflow_store, toy_dataset, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    configure(make_params().tracking)
    runs = {}
    for enabled in (True, False):
        params = make_params({**TINY_MODEL, "train": {"epochs": 2, "system_metrics": enabled}})
        with mlflow.start_run() as run:
            fit(params, TOY, toy_dataset.images, toy_dataset.labels, verbose=0)
        runs[enabled] = run.info.run_id
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= _system_metrics(runs[True])
    assert _system_metrics(runs[False]) == set()


MIRRORED = textwrap.dedent("""
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, "tests")
    from conftest import make_params, make_toy_dataset
    from ferops.models import build_model
    from ferops.train.fit import fit, predict_proba
    from ferops.train.tasks import emotion_task

    data, params = make_toy_dataset(), make_params({"model": {"width": 0.0625}})
    task = emotion_task(data.classes)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        result = fit(params, task, data.images, data.labels, data.images[:8], data.labels[:8], verbose=0,
                     model=lambda: build_model(params.model, task.head, (48, 48, 1)))
    print("replicas", strategy.num_replicas_in_sync)
    print("kernel", type(result.model.get_layer("conv1").kernel.value).__name__)
    print("predict", predict_proba(result.model, data.images[:5]).shape)
""")


@pytest.mark.slow
def test_a_model_built_by_fit_is_mirrored_across_two_devices():
    """What several GPUs get (MirroredStrategy, model built and compiled in its scope), on two logical CPUs."""
    result = subprocess.run([sys.executable, "-c", MIRRORED], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout
    assert "kernel MirroredVariable" in result.stdout  # variables live on both replicas: built inside the scope
    assert "predict (5, 3)" in result.stdout

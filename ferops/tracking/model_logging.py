"""Log Keras models to MLflow in native .keras format, with signature AND input example.

mlflow.keras.log_model (3.17) writes the input example before creating the
model directory and fails with FileNotFoundError; routing the same call through
a flavor shim that creates the directory first keeps MLflow's own code path
(signature, serving input, LoggedModel entity, registry) intact.
tests/test_tracking.py pins that the example is really stored.

Requirements are given, pinned to this environment, never inferred: MLflow's
inference starts a subprocess that loads the model and imports TensorFlow
(seconds per logged model, on every refit and registration).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import types

import keras
import mlflow
import numpy as np
from mlflow.models import Model, infer_signature

# What a logged Keras model needs to load: distribution names, the first installed one of a tuple.
KERAS_REQUIREMENTS = ("mlflow", ("tensorflow", "tensorflow-cpu"), "keras", "numpy", "pandas", "pyarrow")


def pinned_requirements(names=KERAS_REQUIREMENTS) -> list[str]:
    """`name==version` of each distribution as installed here (for a tuple, the first one that is)."""
    pins = []
    for entry in names:
        for name in (entry,) if isinstance(entry, str) else entry:
            try:
                pins.append(f"{name}=={importlib.metadata.version(name)}")
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return pins


def _save_model(model, path, **kwargs):
    os.makedirs(path, exist_ok=True)
    return mlflow.keras.save_model(model, path, **kwargs)


_KERAS_FLAVOR = types.SimpleNamespace(__name__="mlflow.keras", save_model=_save_model)


@contextlib.contextmanager
def _op_determinism_off():
    """`model.predict` on NumPy under op determinism makes TF log a harmless `E0000 ... use_unbounded_threadpool`
    line (its determinism rewrite keeps an option it then ignores). Logging predicts twice (the signature here,
    MLflow's serving-input check), so determinism is paused for it; training stays deterministic. TF 2.21 has no
    public way to turn it off, hence the private module."""
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    tf_config.disable_op_determinism()
    try:
        yield
    finally:
        if was_on:
            tf_config.enable_op_determinism()


def log_keras_model(model: keras.Model, example: np.ndarray, name: str = "model", **kwargs):
    """Log `model` with a signature inferred from `example` (a few input rows) and the example itself."""
    example = np.asarray(example, dtype=np.float32)
    with _op_determinism_off():
        signature = infer_signature(example, model.predict(example, verbose=0))
        return Model.log(
            artifact_path=None,
            name=name,
            flavor=_KERAS_FLAVOR,
            model=model,
            signature=signature,
            input_example=example,
            pip_requirements=kwargs.pop("pip_requirements", None) or pinned_requirements(),
            **kwargs,
        )

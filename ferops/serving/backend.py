"""Which Keras backend `ferops predict` answers on: JAX where it is installed and no GPU is, else TensorFlow.

Start-up decides how long one photo takes: on a 2-core EPYC `import keras` costs 5.8 s
on TensorFlow (most of it loading its 1 GB shared library) and 4.6 s on JAX, and JAX's
persistent compilation cache (~/.cache/ferops/jax) saves the second run about 1 s of
jit-compiling the layers' initializers (benchmarks/startup.py).
A `.keras` file is backend-neutral, so the same registered model gives the same
answers on either (tests/test_serving_backend.py). On a machine with an NVIDIA
driver TensorFlow stays, since the GPU build is what that machine installed.
KERAS_BACKEND, when set, always wins. This must run before anything imports keras.
A few photos need no Keras at all (ferops.serving.numpy_model), so TensorFlow is
imported only when a model is loaded in Keras (`quiet_keras_import`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from ferops.train.precision import has_nvidia_driver, keras_backend

BACKEND_ENV = "KERAS_BACKEND"


def choose_backend() -> str:
    """Set KERAS_BACKEND for this process if nobody has (and Keras is not imported yet); returns the backend."""
    if "keras" in sys.modules or os.environ.get(BACKEND_ENV):  # chosen already (or too late to choose)
        return keras_backend()
    backend = "jax" if importlib.util.find_spec("jax") is not None and not has_nvidia_driver() else "tensorflow"
    os.environ[BACKEND_ENV] = backend
    if backend == "jax":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # no accelerator probing on a machine without one
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path.home() / ".cache" / "ferops" / "jax"))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # the small jits add up
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
    return backend


def quiet_keras_import() -> None:
    """Before Keras first loads on TensorFlow: import TensorFlow with its no-GPU chatter dropped (ferops.quiet_tf)."""
    if "keras" not in sys.modules and keras_backend() == "tensorflow":
        from ferops.quiet_tf import import_tensorflow

        import_tensorflow()

"""What `fit` trains on: GPU memory growth, op determinism, the dtype policy and the multi-GPU strategy.

One training loop serves a 2-core laptop and a GPU box, so the device choices
live here, each driven by params.yaml, none by the machine silently:

- memory growth: TensorFlow otherwise claims a whole card at the first op, and
  a second fold worker on the same GPU then fails to start;
- `train.deterministic`: identical reruns (on CPU, always); on a GPU it costs
  speed and stops ops that have no deterministic kernel, so the user chooses;
- `train.precision`: mixed_float16 / mixed_bfloat16 run convolutions on tensor
  cores; the model's output stays float32 (softmax and loss in float32, as the
  Keras mixed-precision guide prescribes) and Keras adds loss scaling for float16;
- several local GPUs: `tf.distribute.MirroredStrategy`, model built and
  compiled inside its scope. Across machines jobs are distributed instead
  (ferops.runners): MultiWorkerMirroredStrategy is broken with Keras 3
  (keras-team/keras#20585).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import keras
import tensorflow as tf

from ferops.models.heads import float32_outputs  # noqa: F401  (re-exported: fit and the GPU benchmark use it)


def enable_memory_growth() -> None:
    """GPU memory claimed as needed, not all at start (a no-op without GPUs)."""
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the GPU is initialised already; growth was settled by the first call
            pass


def set_determinism(deterministic: bool) -> None:
    """Turn TF op determinism on or off for the ops that follow (TF 2.21 has no public switch off)."""
    from tensorflow.python.framework import config as tf_config

    if deterministic:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Layers created inside compute in `name` (float32, mixed_float16, mixed_bfloat16); the global policy is restored."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over this machine's GPUs when it has several; TF's default (no-op) strategy otherwise."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


def describe() -> str:
    """The devices training runs on, for the run's tags: 'CPU' or e.g. '2x NVIDIA H100 80GB HBM3'."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    names = sorted({tf.config.experimental.get_device_details(gpu).get("device_name", "GPU") for gpu in gpus})
    return f"{len(gpus)}x {', '.join(names)}"

"""Training any ferops model, start to finish, in one place.

Read top to bottom this is the whole recipe: seed everything, get the model
(a fresh paper CNN for the task, a pretrained one, or a builder to call inside
a distribution scope), Adam with the paper's inverse-time decay, the task's
loss and metrics, an augmented tf.data stream, fit. Cross-validation, the
holdout `train` command, the Prefect flows and the benchmarks all call `fit`,
so there is exactly one training loop in ferops.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from ferops.config import Params
from ferops.models import build_model
from ferops.train.streams import Rows, eval_stream, training_stream
from ferops.train.tasks import Task


def seed_everything(seed: int) -> None:
    """Same params -> same weights, folds, batches and (on CPU) the same metrics."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def compile_model(model: keras.Model, params: Params, task: Task) -> keras.Model:
    # lr / (1 + decay * step): the legacy Keras Adam `decay=1e-5` the paper used.
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        params.train.learning_rate, decay_steps=1, decay_rate=params.train.decay
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss=task.loss(), metrics=task.metrics())
    return model


@dataclass
class FitResult:
    model: keras.Model
    history: dict[str, list[float]]


ModelSource = keras.Model | Callable[[], keras.Model] | None


def _model(source: ModelSource, params: Params, task: Task, input_shape: tuple[int, ...]) -> keras.Model:
    if source is None:
        if len(input_shape) != 3:
            raise ValueError(f"inputs of shape {input_shape} are clips: pass a sequence model as model=")
        return build_model(params.model, task.head, input_shape)
    model = source if isinstance(source, keras.Model) else source()
    if model.output_shape[-1] != task.head.n_outputs:
        raise ValueError(f"model {model.name} has {model.output_shape[-1]} outputs, task {task.name} "
                         f"needs {task.head.n_outputs} ({list(task.labels)})")
    return model


def _labelled(task: Task, x, y):
    """Rows with a known label (a view, not a copy, so a memmap stays on disk)."""
    y = np.asarray(y, np.int64 if task.name == "emotion" else np.float32)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} targets")
    keep = task.labelled(y)
    if not keep.any():
        raise ValueError(f"task {task.name}: no sample has a known label")
    return (x, y) if keep.all() else (Rows(x, keep), y[keep])


def fit(
    params: Params,
    task: Task,
    x_train,
    y_train: np.ndarray,
    x_val=None,
    y_val: np.ndarray | None = None,
    *,
    model: ModelSource = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    seed_offset: int = 0,
    augment: bool = True,
    verbose: int | None = None,
) -> FitResult:
    """Train on uint8 images (N, H, W, C) or clips (N, T, H, W, C) with `task.targets(...)`-style targets.

    `model`: None builds a fresh paper CNN for the task; a Keras model (pretrained,
    frozen layers kept frozen) or a zero-argument builder is compiled and trained.
    Images may be arrays, np.memmaps or `Rows` views of either.
    """
    seed = params.seed + seed_offset
    seed_everything(seed)
    model = compile_model(_model(model, params, task, tuple(x_train.shape[1:])), params, task)
    x_train, y_train = _labelled(task, x_train, y_train)
    train_ds = training_stream(x_train, y_train, params.train.batch_size,
                               params.train.augment if augment else None, seed, task.flip_permutation)
    val_ds = None if x_val is None else eval_stream(*_labelled(task, x_val, y_val), params.train.batch_size)
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2  # one line per epoch in logs (dvc repro, CI)
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=params.train.epochs, callbacks=callbacks or [],
        shuffle=False,  # the stream reshuffles itself, reproducibly
        verbose=verbose,
    )
    return FitResult(model, {k: [float(v) for v in vs] for k, vs in history.history.items()})


def predict_proba(model: keras.Model, images, batch_size: int = 256) -> np.ndarray:
    """Model outputs (class probabilities, AU probabilities or intensities) for arrays or memmaps."""
    return model.predict(eval_stream(images, None, batch_size), verbose=0)

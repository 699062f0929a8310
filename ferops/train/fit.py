"""Training the paper CNN, start to finish, in one place.

Read top to bottom this is the whole recipe: seed everything, build the model
from params, Adam with the paper's inverse-time decay, an augmented tf.data
stream, fit, and log every epoch to MLflow when a run is given. Cross-
validation, the holdout `train` command, the Prefect flows and the benchmarks
all call `fit`, so there is exactly one training loop in ferops.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ferops.config import Params
from ferops.models import build_cnn
from ferops.train.augment import eval_stream, training_stream


def seed_everything(seed: int) -> None:
    """Same params -> same weights, folds, batches and (on CPU) the same metrics."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def compile_model(model: keras.Model, params: Params) -> keras.Model:
    # lr / (1 + decay * step): the legacy Keras Adam `decay=1e-5` the paper used.
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        params.train.learning_rate, decay_steps=1, decay_rate=params.train.decay
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@dataclass
class FitResult:
    model: keras.Model
    history: dict[str, list[float]]


def fit(
    params: Params,
    x_train: np.ndarray,
    y_train: np.ndarray,
    n_classes: int,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    seed_offset: int = 0,
    augment: bool = True,
    verbose: int | None = None,
) -> FitResult:
    """Train a fresh paper CNN on uint8 images (N, H, W, C) with integer labels."""
    seed = params.seed + seed_offset
    seed_everything(seed)
    model = compile_model(build_cnn(params.model, x_train.shape[1:], n_classes), params)
    train_ds = training_stream(
        x_train, y_train, params.train.batch_size, params.train.augment if augment else None, seed
    )
    val_ds = None if x_val is None else eval_stream(x_val, y_val, params.train.batch_size)
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2  # one line per epoch in logs (dvc repro, CI)
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=params.train.epochs, callbacks=callbacks or [],
        shuffle=False,  # the stream reshuffles itself, reproducibly
        verbose=verbose,
    )
    return FitResult(model, {k: [float(v) for v in vs] for k, vs in history.history.items()})


def predict_proba(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return model.predict(eval_stream(images, None, batch_size), verbose=0)

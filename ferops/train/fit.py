"""Training any ferops model, start to finish, in one place.

Read top to bottom this is the whole recipe: seed everything, get the model
(a fresh paper CNN for the task, a pretrained one, or a builder called inside
the precision policy and, with several GPUs, a MirroredStrategy scope), Adam
with the paper's inverse-time decay, the task's loss and metrics, an augmented
tf.data stream, fit. Cross-validation, the holdout `train` command, the Prefect
flows and the benchmarks all call `fit`, so there is exactly one training loop
in ferops, and the device choices (ferops.train.devices) apply to all of them.
"""

from __future__ import annotations

import contextlib
import random
import sys
import weakref
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np

from ferops.config import Params
from ferops.models import build_model
from ferops.tracking.epoch_logger import system_metrics
from ferops.train import devices, precision
from ferops.train.streams import Rows, eval_stream, training_stream
from ferops.train.tasks import Task


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Same params -> same weights, folds, batches and (deterministic, on CPU) the same metrics."""
    keras.utils.set_random_seed(seed)
    devices.set_determinism(deterministic)


@contextlib.contextmanager
def private_layer_seeds(seed: int):
    """Keras draws every default layer seed (initializers, dropout) from Python's global `random`.

    Other threads of the process draw from it too: a Dask worker's event loop
    samples collections with it (dask.sizeof) while a fold builds its model, so
    the same seed gave other weights on a Dask worker than in a plain process.
    Inside this block Keras draws from a generator of its own, seeded as
    `random.seed(seed)` would seed the global one: the same draws as before,
    now whatever else runs in the process. (One fit per process at a time.)
    """
    from keras.src.random import seed_generator

    shared = seed_generator.python_random
    seed_generator.python_random = random.Random(seed)
    try:
        yield
    finally:
        seed_generator.python_random = shared


def compile_model(model: keras.Model, params: Params, task: Task) -> keras.Model:
    # lr / (1 + decay * step): the legacy Keras Adam `decay=1e-5` the paper used.
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        params.train.learning_rate, decay_steps=1, decay_rate=params.train.decay
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss=task.loss(), metrics=task.metrics())
    return model


def tag_precision(params: Params) -> str:
    """The policy this machine trains `params` in, recorded as `ferops.precision` on the active run (if any)."""
    import mlflow

    policy = precision.announce(params.train.precision)
    if mlflow.active_run() is not None:
        mlflow.set_tag("ferops.precision", policy)
    return policy


@dataclass
class FitResult:
    model: keras.Model
    history: dict[str, list[float]]


ModelSource = keras.Model | Callable[[], keras.Model] | None


def _check_outputs(model: keras.Model, task: Task) -> keras.Model:
    if model.output_shape[-1] != task.head.n_outputs:
        raise ValueError(f"model {model.name} has {model.output_shape[-1]} outputs, task {task.name} "
                         f"needs {task.head.n_outputs} ({list(task.labels)})")
    return model


class CompiledModels:
    """Compiled models kept for reuse, one per (architecture, task, optimizer settings, policy).

    Keras traces a new model's training step on its first fit: 2-4 s on 2 CPU cores, more than
    the training itself at experiment sizes, and paid again for every fold, subject, cell and
    trial. A kept model is instead loaded with the variables of a model freshly built for this
    fit (same seed, so the same initial weights and dropout seed states) and its optimizer
    state is zeroed (moments and step count: the learning-rate decay restarts): the same start a
    fresh build gives, without the tracing (tests/test_train.py checks they train identically).
    The model a reusing fit returns is overwritten by the next fit of the same kind: callers
    opt in (`reuse=True`) only where they are done with it by then. At most `size` are kept.
    """

    def __init__(self, size: int = 8):
        self.size, self.kept = size, {}
        self.given = weakref.WeakKeyDictionary()  # models passed in by callers -> the settings they were compiled for

    @staticmethod
    def settings(params: Params, task: Task) -> tuple:
        return task.name, type(task.loss()).__name__, params.train.learning_rate, params.train.decay

    def resume(self, model: keras.Model, params: Params, task: Task) -> keras.Model:
        """A caller's own model (sharing layers with another, or set to pretrained weights) trained from its
        current weights: compiled the first time, later only its optimizer state is zeroed (no retracing)."""
        settings = self.settings(params, task)
        if self.given.get(model) == settings and model.optimizer is not None:
            _zero_optimizer(model)
            return model
        self.given[model] = settings
        return compile_model(model, params, task)

    @staticmethod
    def key(model: keras.Model, params: Params, task: Task) -> str:
        import json

        return json.dumps([model.get_config(), task.name, type(task.loss()).__name__, params.train.learning_rate,
                           params.train.decay], sort_keys=True, default=str)

    def take(self, fresh: keras.Model, params: Params, task: Task) -> keras.Model:
        """A compiled model in `fresh`'s exact starting state (`fresh` itself, compiled, the first time)."""
        key = self.key(fresh, params, task)
        kept = self.kept.pop(key, None)
        if kept is None:
            kept = compile_model(fresh, params, task)
        else:
            for target, value in zip(kept.variables, fresh.variables, strict=True):
                target.assign(value)
            _zero_optimizer(kept)
        self.kept[key] = kept  # most recent last
        while len(self.kept) > self.size:
            self.kept.pop(next(iter(self.kept)))
        return kept


def _zero_optimizer(model: keras.Model) -> None:
    """Adam's moments and step count back to zero: the learning-rate decay restarts, as on a new optimizer."""
    for variable in model.optimizer.variables:
        variable.assign(np.zeros(variable.shape, variable.dtype))


COMPILED = CompiledModels()  # this process's kept models (each runner worker process has its own)


def _compiled_model(source: ModelSource, params: Params, task: Task, input_shape: tuple[int, ...],
                    reuse: bool = False) -> keras.Model:
    """A given model compiled as it is; a built one made under train.precision and, on several GPUs, mirrored."""
    if isinstance(source, keras.Model):  # built elsewhere: its dtype policy and placement are its builder's
        _check_outputs(source, task)
        return COMPILED.resume(source, params, task) if reuse else compile_model(source, params, task)
    if source is None and len(input_shape) != 3:
        raise ValueError(f"inputs of shape {input_shape} are clips: pass a sequence model as model=")
    build = source or (lambda: build_model(params.model, task.head, input_shape))
    with devices.strategy().scope():
        with devices.dtype_policy(precision.resolve(params.train.precision)):  # Keras scales float16 losses
            model = _check_outputs(devices.float32_outputs(build()), task)
        return COMPILED.take(model, params, task) if reuse else compile_model(model, params, task)


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
    class_weight: dict[int, float] | None = None,
    reuse: bool = False,
) -> FitResult:
    """Train on uint8 images (N, H, W, C) or clips (N, T, H, W, C) with `task.targets(...)`-style targets.

    `model`: None builds a fresh paper CNN for the task; a Keras model (pretrained,
    frozen layers kept frozen) or a zero-argument builder is compiled and trained.
    Images may be arrays, np.memmaps or `Rows` views of either. With several
    GPUs only a model built here (None or a builder) is mirrored across them.
    `class_weight`: per-class loss weights (Keras'). `reuse`: train a kept compiled model
    of the same kind instead of a fresh one (CompiledModels: identical result, no retracing);
    with a given model, that model itself, from its current weights, without recompiling.
    `augment=False` with float `x_train` (per-frame features of clips): a plain shuffled stream.
    """
    seed = params.seed + seed_offset
    devices.enable_memory_growth()
    tag_precision(params)
    seed_everything(seed, params.train.deterministic)
    with private_layer_seeds(seed):
        model = _compiled_model(model, params, task, tuple(x_train.shape[1:]), reuse)
    x_train, y_train = _labelled(task, x_train, y_train)
    train_ds = training_stream(x_train, y_train, params.train.batch_size,
                               params.train.augment if augment else None, seed, task.flip_permutation)
    val_ds = None if x_val is None else eval_stream(*_labelled(task, x_val, y_val), params.train.batch_size)
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2  # one line per epoch in logs (dvc repro, CI)
    with system_metrics(params.train.system_metrics):
        history = model.fit(
            train_ds, validation_data=val_ds, epochs=params.train.epochs, callbacks=callbacks or [],
            shuffle=False,  # the stream reshuffles itself, reproducibly
            verbose=verbose, class_weight=class_weight,
        )
    return FitResult(model, {k: [float(v) for v in vs] for k, vs in history.history.items()})


def predict_proba(model: keras.Model, images, batch_size: int = 256) -> np.ndarray:
    """Model outputs (class probabilities, AU probabilities or intensities) for arrays or memmaps."""
    return model.predict(eval_stream(images, None, batch_size), verbose=0)

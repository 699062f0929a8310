"""tf.data streams that read images by index, so the images never enter the graph.

`from_tensor_slices(images)` copies the whole array into the graph as a
constant: twice the memory for an in-memory dataset, and impossible for one
larger than memory. Here the graph holds only batch positions; each batch is
gathered from the array (or a read-only np.memmap of a saved dataset) by a
NumPy call, in parallel with training. One path serves both, so a memmapped
dataset trains batch-for-batch like the same data in memory.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ferops.config import AugmentParams
from ferops.train.augment import augment


class Rows:
    """`array[index]` without the copy: a fold of a memmapped dataset stays on disk until batches are read."""

    def __init__(self, array, index) -> None:
        index = np.asarray(index)
        index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64)
        if isinstance(array, Rows):  # a fold of a fold: compose the indices
            array, index = array.array, array.index[index]
        self.array, self.index = array, index
        self.shape = (len(index),) + tuple(array.shape[1:])
        self.dtype, self.ndim = array.dtype, array.ndim

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, positions):
        return gather(self.array, self.index[positions])


def gather(array, index: np.ndarray) -> np.ndarray:
    """array[index], reading a memmap front to back (sorted) and returning rows in the asked order."""
    if isinstance(array, Rows):
        return array[index]
    order = np.argsort(index, kind="stable")
    out = np.empty((len(index),) + tuple(array.shape[1:]), array.dtype)
    out[order] = array[index[order]]
    return out


def _batches(images, targets, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Batches of `images` (uint8 images, or float features such as per-frame CNN outputs) and their targets,
    gathered by position; shuffled anew each epoch when seeded."""
    n = len(images)
    positions = tf.data.Dataset.range(n)
    if seed is not None:
        positions = positions.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    positions = positions.batch(batch_size)
    x_spec = tf.TensorShape((None,) + tuple(images.shape[1:]))
    x_dtype = tf.as_dtype(images.dtype)
    if targets is None:
        def load(pos):
            x = tf.numpy_function(lambda p: gather(images, p), [pos], x_dtype, stateful=False)
            x.set_shape(x_spec)
            return x
    else:
        targets = np.asarray(targets)
        y_spec = tf.TensorShape((None,) + targets.shape[1:])

        def load(pos):
            x, y = tf.numpy_function(lambda p: (gather(images, p), targets[p]), [pos],
                                     (x_dtype, tf.as_dtype(targets.dtype)), stateful=False)
            x.set_shape(x_spec)
            y.set_shape(y_spec)
            return x, y
    return positions.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def training_stream(images, targets, batch_size: int, aug: AugmentParams | None, seed: int,
                    flip_permutation=None) -> tf.data.Dataset:
    """Shuffled float32 batches, augmented if `aug` (one draw per image or per clip); reproducible from `seed`.

    Without `aug` the rows may be any array of numbers (a clip's per-frame features): they are cast, not scaled.
    """
    ds = _batches(images, targets, batch_size, seed)
    if aug is None:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, s: augment(tf.cast(batch[0], tf.float32), batch[1], s, aug, flip_permutation),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_stream(images, targets, batch_size: int) -> tf.data.Dataset:
    """Unshuffled, unaugmented float32 batches (targets None: images only, for predict)."""
    ds = _batches(images, targets, batch_size, seed=None)
    if targets is None:
        ds = ds.map(lambda x: tf.cast(x, tf.float32))
    else:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(tf.data.AUTOTUNE)

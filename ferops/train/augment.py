"""On-the-fly augmentation: random flip + one composed affine warp per image.

The paper augments with flips and affine transforms (rotation, translation,
scale, shear). Composing all four into one matrix and resampling once keeps
the image sharp (four chained Keras layers would interpolate four times) and
costs one cheap op per batch inside tf.data, so it overlaps with training
instead of living on disk as precomputed copies. Randomness is stateless and
seeded per batch, so a seed reproduces the exact augmented stream.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ferops.config import AugmentParams


def _uniform(seed: tf.Tensor, n: tf.Tensor, limit: float, salt: int) -> tf.Tensor:
    return tf.random.stateless_uniform([n], seed=seed + salt, minval=-limit, maxval=limit)


def random_affine_matrices(seed: tf.Tensor, n: tf.Tensor, size: tuple[int, int], aug: AugmentParams) -> tf.Tensor:
    """n inverse (output -> input) affine transforms, flattened to ImageProjectiveTransform's 8-vector."""
    h, w = float(size[0]), float(size[1])
    angle = _uniform(seed, n, math.radians(aug.rotation_deg), 1)
    scale = 1.0 + _uniform(seed, n, aug.scale, 2)
    shear = _uniform(seed, n, aug.shear, 3)
    tx = _uniform(seed, n, aug.translation * w, 4)
    ty = _uniform(seed, n, aug.translation * h, 5)
    if aug.flip:
        flip = tf.where(tf.random.stateless_uniform([n], seed=seed + 6) < 0.5, -1.0, 1.0)
    else:
        flip = tf.ones([n])
    cos, sin = tf.cos(angle), tf.sin(angle)
    zeros, ones = tf.zeros([n]), tf.ones([n])

    def mat(rows):
        return tf.reshape(tf.stack([v for row in rows for v in row], axis=-1), [-1, 3, 3])

    cx, cy = (w - 1) / 2, (h - 1) / 2
    to_center = mat([[ones, zeros, -cx * ones], [zeros, ones, -cy * ones], [zeros, zeros, ones]])
    from_center = mat([[ones, zeros, (cx * ones) + tx], [zeros, ones, (cy * ones) + ty], [zeros, zeros, ones]])
    rotate = mat([[cos, -sin, zeros], [sin, cos, zeros], [zeros, zeros, ones]])
    shear_m = mat([[ones, shear, zeros], [zeros, ones, zeros], [zeros, zeros, ones]])
    scale_flip = mat([[scale * flip, zeros, zeros], [zeros, scale, zeros], [zeros, zeros, ones]])
    forward = from_center @ rotate @ shear_m @ scale_flip @ to_center
    inverse = tf.linalg.inv(forward)
    inverse = inverse / inverse[:, 2:3, 2:3]
    return tf.reshape(inverse, [-1, 9])[:, :8]


def augment_batch(images: tf.Tensor, seed: tf.Tensor, aug: AugmentParams) -> tf.Tensor:
    """Warp a float32 batch (B, H, W, C) with one random affine per image."""
    shape = tf.shape(images)
    transforms = random_affine_matrices(seed, shape[0], images.shape[1:3], aug)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def training_stream(
    images: np.ndarray, labels: np.ndarray, batch_size: int, aug: AugmentParams | None, seed: int
) -> tf.data.Dataset:
    """Shuffled, batched, augmented (if `aug`) float32 batches; reshuffled every epoch, reproducibly."""
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if aug is not None:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, s: (augment_batch(batch[0], s, aug), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_stream(images: np.ndarray, labels: np.ndarray | None, batch_size: int) -> tf.data.Dataset:
    """Unshuffled, unaugmented float32 batches."""
    ds = tf.data.Dataset.from_tensor_slices(images if labels is None else (images, labels)).batch(batch_size)
    if labels is None:
        ds = ds.map(lambda x: tf.cast(x, tf.float32))
    else:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(tf.data.AUTOTUNE)

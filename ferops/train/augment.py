"""On-the-fly augmentation: random flip + one composed affine warp per sample.

The paper augments with flips and affine transforms (rotation, translation,
scale, shear). Composing all four into one matrix and resampling once keeps
the image sharp (four chained Keras layers would interpolate four times) and
costs one cheap op per batch inside tf.data, so it overlaps with training
instead of living on disk as precomputed copies. Randomness is stateless and
seeded per batch, so a seed reproduces the exact augmented stream.

Two things ride on the draw besides pixels. A clip gets one transform for all
its frames: a face does not jump between frames, and motion is what a
sequence model reads. And a flip is a label change for lateral AUs (a
left-sided AU12 becomes a right-sided one), so the flip decision comes back
out and swaps those target columns of exactly the flipped samples.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ferops.config import AugmentParams


def _uniform(seed: tf.Tensor, n: tf.Tensor, limit: float, salt: int) -> tf.Tensor:
    return tf.random.stateless_uniform([n], seed=seed + salt, minval=-limit, maxval=limit)


def random_transforms(seed: tf.Tensor, n: tf.Tensor, size: tuple[int, int], aug: AugmentParams):
    """n inverse (output -> input) affine transforms as ImageProjectiveTransform 8-vectors, and which are flipped."""
    h, w = float(size[0]), float(size[1])
    angle = _uniform(seed, n, math.radians(aug.rotation_deg), 1)
    scale = 1.0 + _uniform(seed, n, aug.scale, 2)
    shear = _uniform(seed, n, aug.shear, 3)
    tx = _uniform(seed, n, aug.translation * w, 4)
    ty = _uniform(seed, n, aug.translation * h, 5)
    if aug.flip:
        flipped = tf.random.stateless_uniform([n], seed=seed + 6) < 0.5
    else:
        flipped = tf.zeros([n], tf.bool)
    flip = tf.where(flipped, -1.0, 1.0)
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
    return tf.reshape(inverse, [-1, 9])[:, :8], flipped


def warp(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Resample a float32 batch (B, H, W, C), one transform per image."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def augment(images: tf.Tensor, targets, seed: tf.Tensor, aug: AugmentParams, flip_permutation=None):
    """Warp a float32 batch of images (B, H, W, C) or clips (B, T, H, W, C); swap targets of flipped samples.

    `flip_permutation[i]` is the target column a flipped sample's column i takes
    its value from (L12 <- R12); None when a flip changes no label (emotions).
    """
    static, shape = images.shape, tf.shape(images)
    transforms, flipped = random_transforms(seed, shape[0], static[-3:-1], aug)
    if static.rank == 5:
        flat = tf.reshape(images, tf.concat([[-1], shape[2:]], axis=0))
        images = tf.reshape(warp(flat, tf.repeat(transforms, shape[1], axis=0)), shape)
    else:
        images = warp(images, transforms)
    images.set_shape(static)
    if flip_permutation is not None and targets is not None:
        swapped = tf.gather(targets, np.asarray(flip_permutation, np.int32), axis=1)
        targets = tf.where(flipped[:, None], swapped, targets)
    return images, targets

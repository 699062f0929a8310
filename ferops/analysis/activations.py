"""F_{l,j}(i): how strongly filter j of layer l fires anywhere on image i, and which filters never fire.

The paper ranks images by each filter's strongest response and calls a filter
dead when no input ever makes it fire. Both need only the spatial maximum of
each feature map, so one batched forward pass through a sub-model that ends in
a global max-pool per layer gives every F_{l,j}(i) without keeping whole maps.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def filter_maxima(model: keras.Model, images: np.ndarray, layers: tuple[str, ...],
                  batch_size: int = 256) -> dict[str, np.ndarray]:
    """layer name -> N x J float32 spatial maxima of its (post-ReLU) feature maps over `images` (raw pixels)."""
    probe = keras.Model(model.input, [keras.layers.GlobalMaxPooling2D()(model.get_layer(name).output)
                                      for name in layers])
    step = tf.function(lambda batch: probe(batch, training=False), reduce_retracing=True)
    parts: list[list[np.ndarray]] = [[] for _ in layers]
    for start in range(0, len(images), batch_size):
        outputs = step(tf.convert_to_tensor(np.asarray(images[start:start + batch_size]), tf.float32))
        for part, out in zip(parts, outputs if isinstance(outputs, (list, tuple)) else [outputs]):
            part.append(np.asarray(out))
    return {name: np.concatenate(part).astype(np.float32) for name, part in zip(layers, parts)}


def alive_filters(maxima: np.ndarray, eps: float) -> np.ndarray:
    """J bools: filters that exceed `eps` on at least one input (dead = never above eps on any input)."""
    return np.asarray(maxima).max(axis=0) > eps


def top_n(maxima: np.ndarray, n: int) -> np.ndarray:
    """J x n row indices: for each filter, the n images it responds to most, strongest first (stable on ties)."""
    order = np.argsort(-np.asarray(maxima), axis=0, kind="stable")
    return order[:n].T

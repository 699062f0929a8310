"""The paper's CNN (Breuer & Kimmel 2017, Fig. 1), built from params.

Three conv blocks (5x5, 64/128/256 filters, ReLU, 2x2 max-pool) learn the
features whose filters the paper later matches to Action Units; dropout 0.25
after the conv stack and 0.5 after the 512-unit dense layer keep a 5.7M
parameter model from memorising small datasets like CK+.
"""

from __future__ import annotations

import keras
from keras import layers

from ferops.config import ModelParams

LAST_CONV = "conv3"  # layer name the AU-correlation and visualisation code reads


def scaled(units: int, width: float) -> int:
    """Channel count under the width multiplier (never below 1)."""
    return max(1, int(round(units * width)))


def build_cnn(
    params: ModelParams,
    input_shape: tuple[int, int, int],
    n_outputs: int,
    output_activation: str = "softmax",
    name: str = "paper_cnn",
) -> keras.Model:
    """Paper CNN for `input_shape` (H, W, C) with an `n_outputs` head.

    softmax for emotions (8 classes); sigmoid or linear heads for up to 50 AUs.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    # Raw 0..255 pixels in, centred to [-1, 1] inside the model: served models take plain images, and
    # zero-centred inputs get the paper CNN off the class-prior plateau epochs sooner than [0, 1] does.
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    for i, filters in enumerate(params.filters, start=1):
        x = layers.Conv2D(
            scaled(filters, params.width), params.kernel_size, padding="same", activation="relu", name=f"conv{i}"
        )(x)
        x = layers.MaxPooling2D(params.pool_size, name=f"pool{i}")(x)
    x = layers.Dropout(params.conv_dropout, name="conv_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(scaled(params.dense_units, params.width), activation="relu", name="dense")(x)
    x = layers.Dropout(params.dense_dropout, name="dense_dropout")(x)
    outputs = layers.Dense(n_outputs, activation=output_activation, name="output")(x)
    return keras.Model(inputs, outputs, name=name)

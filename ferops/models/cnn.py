"""The paper's CNN (Breuer & Kimmel 2017, Fig. 1), built from params.

Three conv blocks (5x5, 64/128/256 filters, ReLU, 2x2 max-pool) learn the
features whose filters the paper later matches to Action Units; dropout 0.25
after the conv stack and 0.5 after the 512-unit dense layer keep a 5.7M
parameter model from memorising small datasets like CK+.

Every task shares this backbone and differs only in its head (models.heads).
The model is one flat functional graph, not a backbone model nested in a task
model, so `conv1..conv3`, `dense` and `output` are reachable by name for the
AU-correlation analysis, for freezing in transfer, and for the per-frame
feature extractor of the CNN+LSTM.
"""

from __future__ import annotations

import keras
from keras import layers

from ferops.config import ModelParams
from ferops.models.heads import OUTPUT, Head, attach_head

LAST_CONV = "conv3"  # layer name the AU-correlation and visualisation code reads
FEATURES = "dense"  # the 512 features a sequence model reads per frame
CONV_LAYERS = ("conv1", "conv2", "conv3")


def scaled(units: int, width: float) -> int:
    """Channel count under the width multiplier (never below 1)."""
    return max(1, int(round(units * width)))


def backbone(inputs, params: ModelParams):
    """Raw 0..255 pixels -> dropout-regularised 512 features (the layers every task shares)."""
    # Centred to [-1, 1] inside the model: served models take plain images, and zero-centred
    # inputs get the paper CNN off the class-prior plateau epochs sooner than [0, 1] does.
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    for i, filters in enumerate(params.filters, start=1):
        x = layers.Conv2D(
            scaled(filters, params.width), params.kernel_size, padding="same", activation="relu", name=f"conv{i}"
        )(x)
        x = layers.MaxPooling2D(params.pool_size, name=f"pool{i}")(x)
    x = layers.Dropout(params.conv_dropout, name="conv_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(scaled(params.dense_units, params.width), activation="relu", name=FEATURES)(x)
    return layers.Dropout(params.dense_dropout, name="dense_dropout")(x)


def build_model(params: ModelParams, head: Head, input_shape: tuple[int, int, int],
                name: str = "paper_cnn") -> keras.Model:
    """Paper CNN for images `input_shape` (H, W, C) with `head` on top."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    return keras.Model(inputs, attach_head(backbone(inputs, params), head), name=name)


def build_cnn(
    params: ModelParams,
    input_shape: tuple[int, int, int],
    n_outputs: int,
    output_activation: str = "softmax",
    name: str = "paper_cnn",
) -> keras.Model:
    """build_model with an unregularised `n_outputs` head (softmax for emotions, sigmoid for AUs)."""
    return build_model(params, Head(n_outputs, output_activation), input_shape, name)


def feature_extractor(model: keras.Model) -> keras.Model:
    """The model up to its 512 `dense` features (shared weights), e.g. for TimeDistributed under an LSTM."""
    return keras.Model(model.input, model.get_layer(FEATURES).output, name=f"{model.name}_features")


def rebuilt_from(source: keras.Model, params: ModelParams, head: Head, input_shape: tuple[int, int, int],
                 freeze: tuple[str, ...] = ()) -> keras.Model:
    """A fresh paper CNN with `head`, every layer but the head set to `source`'s weights; `freeze` stop training.

    What replace_head gives, as a new model of the standard architecture: the training kernel keeps one
    compiled model per architecture (ferops.train.fit.CompiledModels), so fits started from a pretrained
    backbone reuse its traced step instead of tracing a graph of their own each time.
    """
    model = build_model(params, head, input_shape)
    for layer in model.layers:
        if layer.name != OUTPUT and layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
        layer.trainable = layer.name not in freeze
    return model


def replace_head(model: keras.Model, head: Head, freeze: tuple[str, ...] = (), name: str | None = None) -> keras.Model:
    """A trained model's backbone (shared weights) with a fresh `head`; layers named in `freeze` stop training.

    Transfer in the paper's sense: emotion-trained conv features reused for AUs,
    or one dataset's CNN fine-tuned on another.
    """
    for layer_name in freeze:
        model.get_layer(layer_name).trainable = False
    features = model.get_layer("dense_dropout").output
    return keras.Model(model.input, attach_head(features, head), name=name or model.name)

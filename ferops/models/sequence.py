"""The paper's micro-expression model: CNN features per frame -> one LSTM -> softmax (Breuer & Kimmel §4).

The emotion CNN (fine-tuned on single frames) is reused up to its 512-unit
`dense` layer and applied to every time step with TimeDistributed; an LSTM
with recurrent dropout reads the T feature vectors and a softmax names the
clip's class. The backbone is trained frozen first (a few hundred clips
cannot retrain millions of conv weights), then optionally unfrozen for
fine-tuning. One flat graph: a served model takes raw uint8-range clips
N x T x H x W x C, as `fit` and `predict_proba` feed them.
"""

from __future__ import annotations

import keras
from keras import layers

from ferops.models.cnn import feature_extractor

BACKBONE = "frame_features"  # the TimeDistributed layer holding the CNN


INPUTS = ("features", "change", "both")


def step_inputs(x, inputs: str, length: int):
    """What the LSTM reads at each step: the frame's features, their change since the clip's first frame, or both.

    A micro-expression is a small change on one face: frame features are dominated by who the person is,
    while their change from the clip's own first (onset) frame is not. Built-in layers only (no Lambda),
    so a served model loads anywhere.
    """
    if inputs == "features":
        return x
    first = layers.UpSampling1D(length, name="first_step")(layers.Cropping1D((0, length - 1), name="crop_first")(x))
    change = layers.Subtract(name="change")([x, first])
    return change if inputs == "change" else layers.Concatenate(name="features_and_change")([x, change])


def build_sequence_model(cnn: keras.Model, n_classes: int, length: int, units: int, dropout: float,
                         recurrent_dropout: float, name: str = "cnn_lstm", inputs: str = "features") -> keras.Model:
    """A copy of `cnn` (a paper CNN) up to its dense features, per frame, under one LSTM; the copy starts frozen.

    A copy, not shared layers: freezing a Keras sub-model freezes its layers wherever they are used,
    which would silently stop `cnn` itself from training. load_backbone refreshes the copy.
    """
    source = feature_extractor(cnn)
    extractor = keras.models.clone_model(source)
    extractor.set_weights(source.get_weights())
    extractor.trainable = False
    clip = keras.Input(shape=(length, *cnn.input_shape[1:]), name="clip")
    x = step_inputs(layers.TimeDistributed(extractor, name=BACKBONE)(clip), inputs, length)
    x = layers.LSTM(units, dropout=dropout, recurrent_dropout=recurrent_dropout, name="lstm")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output", dtype="float32")(x)  # exact under bf16
    return keras.Model(clip, outputs, name=name)


def load_backbone(model: keras.Model, cnn: keras.Model) -> keras.Model:
    """Copy `cnn`'s weights up to its dense features into the sequence model's per-frame backbone."""
    model.get_layer(BACKBONE).layer.set_weights(feature_extractor(cnn).get_weights())
    return model


def lstm_head(model: keras.Model) -> keras.Model:
    """The model's LSTM and softmax on precomputed per-frame features (N x T x D), sharing their weights.

    With the backbone frozen, the features of a clip never change while the LSTM trains, so
    computing them once and training this head on them is the same training at a fraction of the cost.
    """
    backbone = model.get_layer(BACKBONE)
    length, width = model.input_shape[1], backbone.layer.output_shape[-1]
    features = keras.Input(shape=(length, width), name="frame_features")
    names = {layer.name for layer in model.layers}
    mode = "both" if "features_and_change" in names else "change" if "change" in names else "features"
    x = step_inputs(features, mode, length)  # parameter-free: the same op as the model's, on given features
    outputs = model.get_layer("output")(model.get_layer("lstm")(x))
    return keras.Model(features, outputs, name=f"{model.name}_head")


def set_backbone_trainable(model: keras.Model, trainable: bool) -> keras.Model:
    """Unfreeze (or freeze) the per-frame CNN; recompile afterwards (`fit` does)."""
    model.get_layer(BACKBONE).layer.trainable = trainable
    return model

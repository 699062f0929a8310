"""The NumPy runtime computes what Keras computes from the same .keras file, and refuses what it cannot compute.

`ferops predict` on a few photos uses it so that no Keras starts (ferops.serving.numpy_model);
these tests hold it to Keras in float32 on the paper CNN (saved in float32 and in bf16) and on a
chain that exercises strides, 'valid' and asymmetric 'same' padding and other activations.
"""

import dataclasses
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from keras import layers

from ferops.errors import FeropsError
from ferops.models import build_cnn
from ferops.serving.numpy_model import NotSupported, load_numpy_model
from ferops.serving.runtime import head_model
from ferops.serving.synthetic import still
from ferops.train import precision

from conftest import ROOT, make_params

RNG = np.random.default_rng(0)


def _keras_float32(path):
    return precision.load_keras(path, "float32")


def _same(path, batch: np.ndarray) -> None:
    ours = load_numpy_model(path)
    theirs = _keras_float32(path)
    assert ours.input_shape == tuple(theirs.input_shape) and ours.output_shape == tuple(theirs.output_shape)
    np.testing.assert_allclose(ours.predict_on_batch(batch), np.asarray(theirs.predict_on_batch(batch)),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_paper_cnn_gives_keras_float32_outputs(tmp_path, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_cnn(dataclasses.replace(make_params().model, width=0.125), (48, 48, 1), 8)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.save(tmp_path / "cnn.keras")
    faces = RNG.integers(0, 256, (70, 48, 48, 1)).astype(np.float32)  # more than one im2col chunk
    _same(tmp_path / "cnn.keras", faces)
    probs = load_numpy_model(tmp_path / "cnn.keras").predict_on_batch(faces)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_strides_padding_and_activations_match_keras(tmp_path):
    inputs = keras.Input((21, 17, 3), name="image")
    x = layers.Rescaling(0.5, offset=-3.0)(inputs)
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh")(x)  # odd sizes: the extra pad after
    x = layers.Conv2D(5, (3, 2), padding="valid", use_bias=False)(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = layers.SpatialDropout2D(0.3)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(7, activation="sigmoid")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "chain.keras")
    _same(tmp_path / "chain.keras", RNG.normal(size=(9, 21, 17, 3)).astype(np.float32))


def _unsupported(tmp_path):
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(2, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    model.save(tmp_path / "bn.keras")
    return tmp_path / "bn.keras"


def test_a_layer_it_lacks_is_refused_and_keras_takes_it(tmp_path):
    path = _unsupported(tmp_path)
    with pytest.raises(NotSupported, match="BatchNormalization"):
        load_numpy_model(path)
    assert isinstance(head_model(str(path), "numpy", required=False), keras.Model)  # auto: Keras instead
    with pytest.raises(FeropsError, match=r"bn\.keras: the numpy runtime cannot compute it .*BatchNormalization"):
        head_model(str(path), "numpy", required=True)  # asked for by name: one line, no silent switch


def test_a_branching_graph_is_refused(tmp_path):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, layers.Add()([layers.Dense(6)(inputs), inputs]))
    model.save(tmp_path / "residual.keras")
    with pytest.raises(NotSupported, match="not a plain chain"):
        load_numpy_model(tmp_path / "residual.keras")


@pytest.mark.slow
def test_one_photo_is_answered_without_keras_with_the_keras_answer(tmp_path, monkeypatch):
    """The real command in a fresh process: runtime auto loads no Keras and gives the float32 Keras answer."""
    from ferops.cli import main

    model = build_cnn(dataclasses.replace(make_params().model, width=0.125), (48, 48, 1), 8)
    model.save(tmp_path / "model.keras")
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(still(seed=2), cv2.COLOR_RGB2BGR))
    args = ["predict", "--model", str(tmp_path / "model.keras"), "--params", str(ROOT / "params.yaml"),
            "--no-progress", str(photo)]
    monkeypatch.setenv(precision.PRECISION_ENV, "float32")  # Keras in float32 here, as NumPy computes
    precision._machine_choice.cache_clear()
    try:
        main([*args, "--runtime", "keras", "--out", str(tmp_path / "keras.csv")])
    finally:
        precision._machine_choice.cache_clear()
    script = ("import sys; from ferops.cli import main\nmain(sys.argv[1:])\n"
              "print('KERAS LOADED', 'keras' in sys.modules, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", script, *args, "--out", str(tmp_path / "numpy.csv")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "KERAS LOADED False" in done.stderr
    ours, theirs = pd.read_csv(tmp_path / "numpy.csv"), pd.read_csv(tmp_path / "keras.csv")
    assert len(ours) == len(theirs) == 1 and ours["prediction"][0] == theirs["prediction"][0]
    probs = [c for c in ours if c.startswith("p_")]
    np.testing.assert_allclose(ours[probs].to_numpy(), theirs[probs].to_numpy(), atol=1e-5)

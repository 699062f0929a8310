import dataclasses

import keras
import numpy as np
import pytest

from ferops.models import LAST_CONV, Head, build_cnn, build_model, feature_extractor, replace_head

from conftest import make_params

PAPER = make_params({"model": {"width": 1.0}}).model  # the paper's CNN, whatever width params.yaml runs at


def tiny(width=0.0625):
    return dataclasses.replace(PAPER, width=width)


def test_paper_default_parameter_count():
    model = build_cnn(PAPER, (48, 48, 1), 8)
    assert model.count_params() == 5_749_256
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 8)
    assert build_model(PAPER, Head(8, "softmax"), (48, 48, 1)).count_params() == 5_749_256


def test_architecture_follows_params():
    model = build_cnn(PAPER, (48, 48, 1), 8)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.name for c in convs] == ["conv1", "conv2", "conv3"]
    assert [c.filters for c in convs] == [64, 128, 256]
    assert all(c.kernel_size == (5, 5) and c.activation.__name__ == "relu" for c in convs)
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.25, 0.5]
    assert model.get_layer("dense").units == 512
    assert model.get_layer("output").activation.__name__ == "softmax"
    assert model.get_layer(LAST_CONV).filters == 256


def test_width_multiplier_and_heads():
    small = build_cnn(tiny(0.125), (64, 64, 3), 50, output_activation="sigmoid")
    assert [layer.filters for layer in small.layers if isinstance(layer, keras.layers.Conv2D)] == [8, 16, 32]
    assert small.get_layer("dense").units == 64
    assert small.output_shape == (None, 50)
    assert small.get_layer("output").activation.__name__ == "sigmoid"


@pytest.mark.parametrize("width", [0.0001, 0.5])
def test_width_never_zero(width):
    model = build_cnn(tiny(width), (48, 48, 1), 8)
    assert min(layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)) >= 1


def test_served_models_take_raw_pixels():
    model = build_model(tiny(), Head(3, "softmax"), (32, 32, 1))
    x = np.full((1, 32, 32, 1), 255.0, np.float32)
    assert model.layers[1].name == "rescale"
    np.testing.assert_allclose(model.get_layer("rescale")(x), 1.0)


def test_intensity_head_stays_on_the_facs_scale():
    model = build_model(tiny(), Head(4, "intensity"), (32, 32, 1))
    out = model(np.random.default_rng(0).integers(0, 256, (16, 32, 32, 1)).astype(np.float32)).numpy()
    assert out.shape == (16, 4) and (out >= 0).all() and (out <= 5).all()
    assert model.get_layer("output").activation.__name__ == "sigmoid"


def test_output_sparsity_is_a_head_parameter():
    plain = build_model(tiny(), Head(5, "sigmoid"), (32, 32, 1))
    sparse = build_model(tiny(), Head(5, "sigmoid", l1=0.01, l2=0.001), (32, 32, 1))
    assert plain.get_layer("output").activity_regularizer is None
    reg = sparse.get_layer("output").activity_regularizer
    assert reg.l1 == pytest.approx(0.01) and reg.l2 == pytest.approx(0.001)
    x = np.zeros((2, 32, 32, 1), np.float32)
    sparse(x)
    assert len(sparse.losses) == 1 and float(sparse.losses[0]) > 0  # the penalty reaches the training loss


def test_feature_extractor_runs_per_frame_under_time_distributed():
    model = build_model(tiny(), Head(3, "softmax"), (32, 32, 1))
    features = feature_extractor(model)
    assert features.output_shape == (None, model.get_layer("dense").units)
    clips = keras.Input((5, 32, 32, 1))
    seq = keras.Model(clips, keras.layers.LSTM(4)(keras.layers.TimeDistributed(features)(clips)))
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 32, 32, 1)).astype(np.float32)
    assert seq(x).shape == (2, 4)
    per_frame = keras.layers.TimeDistributed(features)(x).numpy()
    np.testing.assert_allclose(per_frame[1, 3], features(x[1, 3:4]).numpy()[0], rtol=1e-5, atol=1e-6)


def test_replace_head_shares_the_backbone_and_freezes_what_it_is_told():
    model = build_model(tiny(), Head(8, "softmax"), (32, 32, 1))
    au = replace_head(model, Head(6, "sigmoid"), freeze=("conv1", "conv2", "conv3"))
    assert au.output_shape == (None, 6) and au.get_layer("conv2") is model.get_layer("conv2")
    assert not au.get_layer("conv3").trainable and au.get_layer("dense").trainable
    frozen = {w.path for w in au.non_trainable_weights}
    assert {"conv1/kernel", "conv3/bias"} <= frozen and "dense/kernel" not in frozen


def test_head_rejects_nonsense():
    with pytest.raises(ValueError, match="activation"):
        Head(3, "relu")
    with pytest.raises(ValueError, match="at least one"):
        Head(0, "softmax")

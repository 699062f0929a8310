import keras
import pytest

from ferops.config import ModelParams
from ferops.models import LAST_CONV, build_cnn


def test_paper_default_parameter_count():
    model = build_cnn(ModelParams(), (48, 48, 1), 8)
    assert model.count_params() == 5_749_256
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 8)


def test_architecture_follows_params():
    model = build_cnn(ModelParams(), (48, 48, 1), 8)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 128, 256]
    assert all(c.kernel_size == (5, 5) and c.activation.__name__ == "relu" for c in convs)
    assert [l.rate for l in model.layers if isinstance(l, keras.layers.Dropout)] == [0.25, 0.5]
    assert model.get_layer("dense").units == 512
    assert model.get_layer("output").activation.__name__ == "softmax"
    assert model.get_layer(LAST_CONV).filters == 256


def test_width_multiplier_and_heads():
    small = build_cnn(ModelParams(width=0.125), (64, 64, 3), 50, output_activation="sigmoid")
    assert [l.filters for l in small.layers if isinstance(l, keras.layers.Conv2D)] == [8, 16, 32]
    assert small.get_layer("dense").units == 64
    assert small.output_shape == (None, 50)
    assert small.get_layer("output").activation.__name__ == "sigmoid"


@pytest.mark.parametrize("width", [0.0001, 0.5])
def test_width_never_zero(width):
    model = build_cnn(ModelParams(width=width), (48, 48, 1), 8)
    assert min(l.filters for l in model.layers if isinstance(l, keras.layers.Conv2D)) >= 1

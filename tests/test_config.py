import pytest

from ferops.config import ParamsError, flatten, load_params, parse_params, replace

from conftest import ROOT


def test_project_params_parse_to_typed_objects():
    params = load_params(ROOT / "params.yaml")
    assert params.model.filters == (64, 128, 256)
    assert params.cv.folds == 10 and params.cv.protocol == "subject"
    assert isinstance(params.train.learning_rate, float)
    assert params.dataset.raw_dir == params.synthfacs.out  # the default trains on what generate wrote


@pytest.mark.parametrize(
    "data, key",
    [
        ({"trian": {}}, "trian"),
        ({"train": {"epoch": 3}}, "train.epoch"),
        ({"train": {"augment": {"flipp": True}}}, "train.augment.flipp"),
    ],
)
def test_unknown_key_is_named(data, key):
    with pytest.raises(ParamsError, match=f"unknown key {key}"):
        parse_params(data)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"epochs": "ten"}}, "train.epochs: expected an integer"),
        ({"train": {"epochs": 2.5}}, "train.epochs: expected an integer"),
        ({"train": {"augment": {"flip": "yes"}}}, "train.augment.flip: expected true/false"),
        ({"model": {"filters": [64, "x"]}}, r"model.filters\[1\]: expected an integer"),
        ({"cv": {"protocol": "random"}}, "cv.protocol: 'random' is not one of"),
        ({"validate": {"pixel_mean_range": [1.0]}}, "validate.pixel_mean_range: expected 2 values"),
        ({"model": 3}, "model: expected a mapping"),
    ],
)
def test_wrong_type_is_named(data, message):
    with pytest.raises(ParamsError, match=message):
        parse_params(data)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  epochs: [1\n")
    with pytest.raises(ParamsError, match="params.yaml: not valid YAML"):
        load_params(bad)
    bad.write_text("seed: 1\nsynthfacs:\n  preset: cartoon\n")
    with pytest.raises(ParamsError, match=r"params.yaml: synthfacs.preset: 'cartoon'"):
        load_params(bad)


def test_flatten_and_replace():
    params = replace(parse_params({}), **{"train.epochs": 2, "train.augment.flip": False, "seed": 7})
    flat = flatten(params)
    assert flat["train.epochs"] == 2 and flat["train.augment.flip"] is False and flat["seed"] == 7
    assert flat["model.filters"] == [64, 128, 256]

import pytest
import yaml

from ferops.config import ParamsError, flatten, load_params, overlay, parse_params, replace

from conftest import ROOT

PROJECT = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_changes(changes: dict) -> dict:
    return overlay(PROJECT, changes)


def test_project_params_parse_to_typed_objects():
    params = load_params(ROOT / "params.yaml")
    assert params.model.filters == (64, 128, 256)
    assert params.cv.folds == 5 and params.cv.protocol == "subject"
    assert params.domains["au"].frames is None and params.domains["posed"].frames == (3, 3)
    assert params.au.modes == ("all_at_once",) and isinstance(params.au.sparsity.l1, float)
    assert isinstance(params.train.learning_rate, float)
    assert params.dataset.raw_dir == params.synthfacs.out  # the default trains on what generate wrote


@pytest.mark.parametrize(
    "data, key",
    [
        ({"domains": {"au": {"presett": "au"}}}, "domains.au.presett"),
        ({"trian": {}}, "trian"),
        ({"train": {"epoch": 3}}, "train.epoch"),
        ({"train": {"augment": {"flipp": True}}}, "train.augment.flipp"),
    ],
)
def test_unknown_key_is_named(data, key):
    with pytest.raises(ParamsError, match=f"unknown key {key}"):
        parse_params(with_changes(data))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"epochs": "ten"}}, "train.epochs: expected an integer"),
        ({"train": {"epochs": 2.5}}, "train.epochs: expected an integer"),
        ({"train": {"augment": {"flip": "yes"}}}, "train.augment.flip: expected true/false"),
        ({"model": {"filters": [64, "x"]}}, r"model.filters\[1\]: expected an integer"),
        ({"cv": {"protocol": "random"}}, "cv.protocol: 'random' is not one of"),
        ({"au": {"modes": ["all_at_twice"]}}, r"au.modes\[0\]: 'all_at_twice' is not one of"),
        ({"domains": {"au": {"frames": [5, 3]}}}, r"domains.au.frames: \[5, 3\] must be \[low, high\]"),
        ({"domains": {"au": {"n": 0}}}, "domains.au.n: 0 must be >= 1"),
        ({"validate": {"pixel_mean_range": [1.0]}}, "validate.pixel_mean_range: expected 2 values"),
        ({"model": 3}, "model: expected a mapping"),
        ({"runner": {"kind": "threads"}}, "runner.kind: 'threads' is not one of"),
        ({"runner": {"address": 8786}}, "runner.address: 8786 does not match"),
        ({"train": {"precision": "float16"}}, "train.precision: 'float16' is not one of"),
        ({"train": {"deterministic": "yes"}}, "train.deterministic: expected true/false"),
        ({"serving": {"detector": "yunet"}}, "serving.detector: 'yunet' is not one of"),
    ],
)
def test_wrong_type_is_named(data, message):
    with pytest.raises(ParamsError, match=message):
        parse_params(with_changes(data))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"epochs": -1}}, "train.epochs: -1 must be >= 1"),
        ({"train": {"epochs": 0}}, "train.epochs: 0 must be >= 1"),
        ({"model": {"width": -0.5}}, "model.width: -0.5 must be > 0"),
        ({"model": {"conv_dropout": 1.0}}, "model.conv_dropout: 1.0 must be < 1"),
        ({"model": {"filters": [64, 0]}}, "model.filters: 0 must be >= 1"),
        ({"cv": {"folds": 1}}, "cv.folds: 1 must be >= 2"),
        ({"train": {"validation_fraction": 0.0}}, "train.validation_fraction: 0.0 must be > 0"),
        ({"validate": {"pixel_std_range": [100.0, 5.0]}}, r"validate.pixel_std_range: \[100.0, 5.0\] must be \[low, high\]"),
        ({"tracking": {"promote_metric": "cv_acuracy_mean"}}, "tracking.promote_metric: 'cv_acuracy_mean' is not one of"),
        ({"validate": {"on_fail": "ignore"}}, "validate.on_fail: 'ignore' is not one of"),
        ({"runner": {"workers": 0}}, "runner.workers: 0 must be >= 1"),
        ({"serving": {"stride": 0}}, "serving.stride: 0 must be >= 1"),
        ({"serving": {"detect_width": -1}}, "serving.detect_width: -1 must be >= 0"),
    ],
)
def test_out_of_range_values_are_named_before_any_work(data, message):
    with pytest.raises(ParamsError, match=message):
        parse_params(with_changes(data))


def test_a_missing_key_fails_by_name():
    data = with_changes({})
    del data["train"]["decay"]
    with pytest.raises(ParamsError, match="missing key train.decay"):
        parse_params(data)


def test_exponent_floats_are_numbers(tmp_path):
    # YAML 1.1 reads 1e-3 (no dot) as the string "1e-3"; a researcher writes it that way.
    text = (ROOT / "params.yaml").read_text().replace("learning_rate: 0.001", "learning_rate: 1e-3")
    assert "learning_rate: 1e-3" in text
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert load_params(path).train.learning_rate == 0.001
    with pytest.raises(ParamsError, match="train.learning_rate: expected a number, got '1e-3x'"):
        parse_params(with_changes({"train": {"learning_rate": "1e-3x"}}))


def test_subject_pattern_may_be_null():
    assert parse_params(with_changes({"dataset": {"subject_pattern": None}})).dataset.subject_pattern is None


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  epochs: [1\n")
    with pytest.raises(ParamsError, match="params.yaml: not valid YAML"):
        load_params(bad)
    bad.write_text(yaml.safe_dump(with_changes({"synthfacs": {"preset": "cartoon"}})))
    with pytest.raises(ParamsError, match=r"params.yaml: synthfacs.preset: 'cartoon'"):
        load_params(bad)


def test_flatten_and_replace():
    params = replace(parse_params(PROJECT), **{"train.epochs": 2, "train.augment.flip": False, "seed": 7})
    flat = flatten(params)
    assert flat["train.epochs"] == 2 and flat["train.augment.flip"] is False and flat["seed"] == 7
    assert flat["model.filters"] == [64, 128, 256]

"""The `ferops` command as a user meets it: help everywhere, and every expected failure in one line, exit 2."""

import dataclasses
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from ferops.cli import build_parser
from ferops.models import build_cnn

from conftest import ROOT, TINY, make_params, make_toy_dataset

COMMANDS = ["generate", "import-data", "preprocess", "validate", "train", "cv", "refit", "register", "evaluate",
            "predict", "reconcile", "registry", "domain", "au", "transfer", "cross-task", "analyze", "micro", "tune", "package",
            "results"]


def _ferops(*args, cwd=None, env=None):
    env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "ferops.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env)


def _one_line_error(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _params_file(tmp_path, changes=None):
    """The project's params.yaml with tiny settings, its paths inside tmp_path."""
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    from ferops.config import overlay

    data = overlay(data, overlay(TINY, {"dataset": {"processed_dir": str(tmp_path / "processed"),
                                                    "raw_dir": str(tmp_path / "raw")},
                                        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                     "artifact_root": str(tmp_path / "mlartifacts")}}))
    data = overlay(data, changes or {})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _tiny_model():
    return build_cnn(dataclasses.replace(make_params().model, width=0.0625), (48, 48, 1), 8)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_and_option_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: ferops {command}" in capsys.readouterr().out
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    for action in sub._actions:
        assert action.help, f"ferops {command} {action.option_strings or action.dest} has no help text"


def test_console_script_lists_commands_and_version():
    result = _ferops("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    version = _ferops("--version")
    assert version.returncode == 0 and version.stdout.startswith("ferops ")


def test_params_is_accepted_after_the_subcommand(tmp_path):
    other = _params_file(tmp_path, {"train": {"epochs": "ten"}})
    before = _ferops("--params", str(other), "cv", cwd=tmp_path)
    after = _ferops("cv", "--params", str(other), cwd=tmp_path)
    assert _one_line_error(before, "train.epochs: expected an integer") == _one_line_error(after)


@pytest.mark.slow
def test_predict_prints_probabilities_as_json(tmp_path):
    _params_file(tmp_path)  # a plain emotion model takes its serving settings from params.yaml
    _tiny_model().save(tmp_path / "model.keras")
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((120, 100, 3), 128, np.uint8))  # colour, odd size: converted and resized
    result = _ferops("predict", str(face), "--whole-image", "--model", str(tmp_path / "model.keras"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out[0]["image"] == str(face)
    assert len(out[0]["probabilities"]) == 8 and out[0]["prediction"] in out[0]["probabilities"]
    assert sum(out[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_predict_names_a_corrupt_image(tmp_path):
    _params_file(tmp_path)
    _tiny_model().save(tmp_path / "model.keras")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    result = _ferops("predict", str(bad), "--model", str(tmp_path / "model.keras"), cwd=tmp_path)
    _one_line_error(result, "broken.png")


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"train": {"epochz": 3}}, "unknown key train.epochz"),
        ({"train": {"epochs": -1}}, "train.epochs: -1 must be >= 1"),
        ({"model": {"width": -0.5}}, "model.width: -0.5 must be > 0"),
        ({"cv": {"folds": 1}}, "cv.folds: 1 must be >= 2"),
        ({"tracking": {"promote_metric": "cv_acc"}}, "tracking.promote_metric: 'cv_acc' is not one of"),
    ],
)
def test_bad_params_fail_before_any_work(tmp_path, changes, fragment):
    _params_file(tmp_path, changes)
    _one_line_error(_ferops("cv", "--out", "out", cwd=tmp_path), "params.yaml", fragment)
    assert not (tmp_path / "out").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_more_folds_than_subjects_is_one_line_and_writes_nothing(tmp_path):
    _params_file(tmp_path, {"cv": {"folds": 7}})
    make_toy_dataset().save(tmp_path / "processed")  # 6 subjects
    result = _ferops("cv", "--out", "out", cwd=tmp_path)
    _one_line_error(result, "cv.folds: 7 subject-independent folds need at least 7 subjects", "lower cv.folds")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_missing_raw_data_names_the_path_and_the_key(tmp_path):
    _params_file(tmp_path)
    result = _ferops("preprocess", cwd=tmp_path)
    _one_line_error(result, str(tmp_path / "raw"))
    assert not (tmp_path / "processed").exists()


@pytest.mark.slow
def test_missing_model_file_is_one_line(tmp_path):
    _params_file(tmp_path)
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((48, 48), 128, np.uint8))
    _one_line_error(_ferops("predict", str(face), "--model", "nowhere/model.keras", cwd=tmp_path),
                    "nowhere/model.keras: no such model file")


@pytest.mark.slow
@pytest.mark.parametrize("uri, fragment", [("models:/fer-emotion@nonexistent", "nonexistent"),
                                           ("models:/no-such-model@champion", "no-such-model")])
def test_unknown_registry_model_or_alias_is_one_line(tmp_path, uri, fragment):
    import mlflow

    params_path = _params_file(tmp_path)
    from ferops.config import load_params
    from ferops.tracking.model_logging import log_keras_model
    from ferops.tracking.store import configure

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        configure(load_params(params_path).tracking)
        with mlflow.start_run():
            info = log_keras_model(_tiny_model(), np.zeros((2, 48, 48, 1), np.uint8))
        mlflow.register_model(info.model_uri, "fer-emotion")
    finally:
        os.chdir(cwd)
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((48, 48), 128, np.uint8))
    _one_line_error(_ferops("predict", str(face), "--model", uri, cwd=tmp_path), uri)
    _one_line_error(_ferops("evaluate", "--model", uri, cwd=tmp_path), fragment)


@pytest.mark.slow
def test_unreachable_tracking_server_is_one_line(tmp_path):
    _params_file(tmp_path)
    make_toy_dataset().save(tmp_path / "processed")
    result = _ferops("cv", "--out", "out", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    _one_line_error(result, "http://127.0.0.1:9")
    assert not (tmp_path / "out").exists()


NO_TF_CHECK = ("import sys; from ferops.cli import main\nmain(sys.argv[1:])\n"
               "print('IMPORTED', 'tensorflow' in sys.modules, 'keras' in sys.modules, file=sys.stderr)\n")


@pytest.mark.slow
def test_data_stages_never_import_tensorflow(tmp_path):
    """generate, preprocess, validate and domain are DVC stages of their own: each saves TensorFlow's ~7 s start."""
    params = _params_file(tmp_path, {"domains": {"au": {"n": 24, "out": str(tmp_path / "domains" / "au")}}})
    for args in (["generate", "--out", str(tmp_path / "raw")], ["preprocess"], ["validate", "--report", str(tmp_path / "validation.json")],
                 ["domain", "au"]):
        done = subprocess.run([sys.executable, "-c", NO_TF_CHECK, "--params", str(params), *args], cwd=tmp_path,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        assert "IMPORTED False False" in done.stderr, (args, done.stderr[-2000:])

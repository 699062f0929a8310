import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ferops.cli import build_parser
from ferops.config import ModelParams
from ferops.models import build_cnn

COMMANDS = ["generate", "import-data", "preprocess", "validate", "train", "cv", "evaluate", "predict"]


def _ferops(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ferops.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: ferops {command}" in capsys.readouterr().out


def test_console_script_lists_commands():
    result = _ferops("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


def test_predict_prints_probabilities_as_json(tmp_path):
    model = build_cnn(ModelParams(width=0.0625), (48, 48, 1), 8)
    model.save(tmp_path / "model.keras")
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((120, 100, 3), 128, np.uint8))  # colour, odd size: converted and resized
    result = _ferops("predict", str(face), "--model", str(tmp_path / "model.keras"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out[0]["image"] == str(face)
    assert len(out[0]["probabilities"]) == 8 and out[0]["prediction"] in out[0]["probabilities"]
    assert sum(out[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_predict_names_a_corrupt_image(tmp_path):
    model = build_cnn(ModelParams(width=0.0625), (48, 48, 1), 8)
    model.save(tmp_path / "model.keras")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    result = _ferops("predict", str(bad), "--model", str(tmp_path / "model.keras"), cwd=tmp_path)
    assert result.returncode == 2
    assert "broken.png" in result.stderr and "Traceback" not in result.stderr


def test_bad_params_fail_with_the_key(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  epochz: 3\n")
    result = _ferops("cv", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown key train.epochz" in result.stderr and "Traceback" not in result.stderr

"""params.paper.yaml reaches params.yaml through DVC's own `-S` path unchanged; a bad profile is one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from dvc.utils.hydra import apply_overrides

from ferops.config import flatten, load_overrides, load_params
from ferops.profile import dvc_set_args

ROOT = Path(__file__).resolve().parents[1]


def test_the_paper_profile_becomes_exactly_its_values_through_dvc_set(tmp_path):
    profile = load_overrides(ROOT / "params.paper.yaml", ROOT / "params.yaml")
    args = dvc_set_args(profile)
    assert args[::2] == ["-S"] * len(profile)
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    apply_overrides(str(params), args[1::2])  # what `dvc exp run -S ...` does to params.yaml
    changed = flatten(load_params(params))
    assert {key: changed[key] for key in profile} == profile
    unchanged = flatten(load_params(ROOT / "params.yaml"))
    assert {k: v for k, v in changed.items() if k not in profile} == {k: v for k, v in unchanged.items()
                                                                       if k not in profile}
    assert profile["cv.folds"] == 10 and profile["model.width"] == 1.0 and profile["au.folds"] == 10


def test_a_bad_profile_is_one_line_naming_the_key_and_prints_no_arguments(tmp_path):
    for text, expected in (("cv.fold: 10\n", "cv.fold is not a params.yaml setting"),
                           ("cv.folds: 1\n", "cv.folds: 1 must be >= 2")):
        profile = tmp_path / "profile.yaml"
        profile.write_text(text)
        result = subprocess.run([sys.executable, "-m", "ferops.profile", str(profile), str(ROOT / "params.yaml")],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and expected in result.stderr and str(profile) in result.stderr

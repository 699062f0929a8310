"""Nothing lost, nothing run that shouldn't be (issue 22): a careless or hostile input gets one line, exit 2.

Every refusal here is checked the same way: one stderr line of at most 200 characters, exit status 2, no
traceback, and the files around it byte-for-byte as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY, make_toy_dataset

from ferops import cli
from ferops.io import MARKER, OutputRefused, atomic_dir, atomic_file


def ferops_process(*args, cwd=None, env=None):
    """The real `ferops` program (a fresh process: what a user sees, tracebacks included)."""
    return subprocess.run([sys.executable, "-m", "ferops.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})})


def ferops_here(argv, capsys) -> tuple[int, str]:
    """`ferops ARGV` in this process (TensorFlow already loaded: fast): exit status and stderr."""
    try:
        cli.main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def one_line(code: int, stderr: str, *fragments: str) -> str:
    """The house rule for an expected failure: exit 2, one stderr line of <= 200 characters, no traceback."""
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert len(lines[0]) <= 200, lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with a digest of its content: equal snapshots mean nothing changed."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = "dir" if path.is_dir() and not path.is_symlink() else (
            f"link:{os.readlink(path)}" if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def params_file(tmp_path: Path, changes: dict | None = None, name: str = "params.yaml") -> Path:
    """The project's params.yaml with tiny settings and every path inside tmp_path."""
    from ferops.config import overlay

    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data = overlay(data, overlay(TINY, {"dataset": {"processed_dir": str(tmp_path / "processed"),
                                                    "raw_dir": str(tmp_path / "raw")},
                                        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                     "artifact_root": str(tmp_path / "mlartifacts")}}))
    path = tmp_path / name
    path.write_text(yaml.safe_dump(overlay(data, changes or {})))
    return path


# ---------------------------------------------------------------------------- 1. never delete what ferops did not write


@pytest.fixture
def foreign(tmp_path):
    """A user's folder with their thesis in it."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.txt").write_text("three years of work\n")
    return folder


def test_generate_onto_a_users_folder_keeps_the_file(tmp_path, foreign):
    params = params_file(tmp_path)
    before = snapshot(tmp_path)
    result = ferops_process("--params", str(params), "generate", "--preset", "posed", "--n", "3",
                            "--out", str(foreign), "--no-track", cwd=tmp_path)
    one_line(result.returncode, result.stderr, str(foreign), "did not write", "another --out")
    assert (foreign / "thesis.txt").read_text() == "three years of work\n"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("target", ["file", ".", "project root"])
def test_generate_onto_a_file_the_working_folder_or_the_project_root_is_refused(tmp_path, capsys, target):
    params = params_file(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me\n")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")  # tmp_path is a project root
    out = {"file": str(tmp_path / "notes.txt"), ".": ".", "project root": str(tmp_path)}[target]
    before = snapshot(tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, err = ferops_here(["--params", str(params), "generate", "--n", "2", "--out", out, "--no-track"], capsys)
    finally:
        os.chdir(cwd)
    one_line(code, err, f"--out {out}")
    assert snapshot(tmp_path) == before  # and no hidden .notes.txt.old


def test_preprocess_onto_a_folder_holding_raw_data_is_refused_before_any_work(tmp_path, capsys):
    """`dataset.processed_dir: data` must not wipe data/raw."""
    make_toy_dataset().save(tmp_path / "processed")  # (an input this stage would not even read)
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    params = params_file(tmp_path, {"dataset": {"processed_dir": str(data)}})
    before = snapshot(tmp_path)
    code, err = ferops_here(["--params", str(params), "preprocess"], capsys)
    one_line(code, err, f"dataset.processed_dir {data}", "did not write")
    assert snapshot(tmp_path) == before


def test_domain_onto_a_users_folder_is_refused(tmp_path, capsys, foreign):
    params = params_file(tmp_path, {"domains": {"posed": {"out": str(foreign)}}})
    before = snapshot(tmp_path)
    code, err = ferops_here(["--params", str(params), "domain", "posed"], capsys)
    one_line(code, err, f"domains.posed.out {foreign}", "did not write")
    assert snapshot(tmp_path) == before


def test_a_folder_ferops_wrote_is_replaced_and_marked(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target, stage="generate") as tmp:
        (tmp / "a.txt").write_text("1")
    assert json.loads((target / MARKER).read_text()) == {"written_by": "ferops", "stage": "generate"}
    with atomic_dir(target, stage="generate") as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "b.txt"]
    make_toy_dataset().save(tmp_path / "older")  # a dataset from before the marker: its meta.json is recognised
    (tmp_path / "older" / MARKER).unlink()
    with atomic_dir(tmp_path / "older") as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["older", "out"]  # no .old or .tmp left beside


def test_import_onto_an_existing_name_is_one_line_naming_the_flag(tmp_path, capsys):
    from format_fixtures import make

    from ferops.data.formats import write

    source = write("folders", make("wild", n=7, seed=0, size=32), tmp_path / "src" / "faces")
    args = ["import-data", str(source), "--format", "folders", "--raw-root", str(tmp_path / "raw"), "--no-dvc"]
    assert ferops_here(args, capsys)[0] == 0
    before = snapshot(tmp_path)
    one_line(*ferops_here(args, capsys), "already exists", "--name")
    assert snapshot(tmp_path) == before


def test_outputs_respect_the_umask(tmp_path):
    """mkstemp/mkdtemp alone make 0600/0700 files, which colleagues on a shared machine cannot read."""
    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "registry.json") as tmp:
            tmp.write_text("{}")
        with atomic_dir(tmp_path / "processed") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "registry.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "processed").stat().st_mode & 0o777 == 0o755


def test_an_output_file_in_a_missing_folder_is_refused_not_created(tmp_path):
    with pytest.raises(OutputRefused, match="does not exist"):
        with atomic_file(tmp_path / "no" / "such" / "x.csv", make_parents=False):
            pass
    assert list(tmp_path.iterdir()) == []

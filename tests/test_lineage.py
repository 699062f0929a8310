"""Lineage hashes are DVC's own hashes, computed from the data: checked against a real `dvc add` / `dvc repro`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ferops.tracking.lineage import data_hash, dvc_hash, git_commit, lineage_tags, recorded_out

EMPTY_DIR = "d751713988987e9331980363e24189ce.dir"  # md5 of "[]": what data.dvc records for the empty data/raw


def _run(cmd, cwd):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _dvc(*args, cwd):
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _fill(folder: Path) -> None:
    """Files that would expose a wrong walk, sort order, newline handling or JSON escaping."""
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "b.txt").write_bytes(b"x\r\ny\n")  # CRLF: DVC 3 hashes bytes, no dos2unix
    (folder / "a").mkdir()
    (folder / "a" / "z.txt").write_text("a/z.txt sorts after a-b.txt: relpaths compare as strings\n")
    (folder / "a-b.txt").write_text("'-' < '/': a per-component sort would put it after a/\n")
    (folder / "sub" / "deeper" / "c.bin").write_bytes(bytes(range(256)) * 64)
    (folder / "sub" / "émotion.txt").write_text("non-ASCII name: JSON escapes it\n")
    (folder / ".hidden").write_text("dotfiles count\n")
    (folder / "images.npy").write_bytes(os.urandom(300_000))


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory):
    """A real git + DVC repo: `data` added with `dvc add`, `processed` produced by `dvc repro`."""
    root = tmp_path_factory.mktemp("dvcrepo")
    _run(["git", "init", "-q"], root)
    _dvc("init", "-q", cwd=root)
    _fill(root / "data")
    (root / "single.bin").write_bytes(b"one file\n" * 1000)
    _dvc("add", "-q", "data", "single.bin", cwd=root)
    script = "import shutil; shutil.copytree('data', 'processed')"
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"prep": {
        "cmd": f"{sys.executable} -c \"{script}\"", "deps": ["data"], "outs": ["processed"]}}}))
    _dvc("repro", "-q", cwd=root)
    return root


def _dvcfile_md5(path: Path) -> str:
    return yaml.safe_load(path.read_text())["outs"][0]["md5"]


@pytest.mark.slow
def test_directory_hash_equals_dvc_add(dvc_repo):
    recorded = _dvcfile_md5(dvc_repo / "data.dvc")
    assert recorded.endswith(".dir")
    assert data_hash(dvc_repo / "data") == recorded


def test_file_hash_equals_dvc_add(dvc_repo):
    assert data_hash(dvc_repo / "single.bin") == _dvcfile_md5(dvc_repo / "single.bin.dvc")


def test_directory_hash_equals_dvc_lock_out(dvc_repo):
    lock = yaml.safe_load((dvc_repo / "dvc.lock").read_text())
    out = lock["stages"]["prep"]["outs"][0]
    assert out["path"] == "processed"
    assert data_hash(dvc_repo / "processed") == out["md5"]
    assert recorded_out("processed/sub/deeper/c.bin", dvc_repo) == ("processed", out["md5"])


def test_empty_directory_hash(tmp_path):
    (tmp_path / "raw").mkdir()
    assert data_hash(tmp_path / "raw") == EMPTY_DIR


@pytest.mark.slow
def test_lineage_tags_flag_data_changed_after_repro(tmp_path):
    """The case the tag exists for: data edited, `ferops cv` run without `dvc repro` -> in_lock false."""
    root = tmp_path / "repo"
    root.mkdir()
    _run(["git", "init", "-q"], root)
    _dvc("init", "-q", cwd=root)
    _fill(root / "data")
    _dvc("add", "-q", "data", cwd=root)
    recorded = _dvcfile_md5(root / "data.dvc")

    tags = lineage_tags({"data": "data/images.npy"}, root=root)  # a file inside the tracked folder
    assert tags["dvc.data"] == recorded
    assert tags["dvc.data.recorded"] == recorded
    assert tags["dvc.data.in_lock"] == "true"

    npy = root / "data" / "images.npy"
    npy.write_bytes(os.urandom(npy.stat().st_size))  # same size: only the content (and mtime) tell
    changed = lineage_tags({"data": root / "data"}, root=root)  # absolute path: same answer
    assert changed["dvc.data"] != recorded
    assert changed["dvc.data.recorded"] == recorded
    assert changed["dvc.data.in_lock"] == "false"

    _dvc("commit", "-q", "-f", "data.dvc", cwd=root)
    assert lineage_tags({"data": "data"}, root=root)["dvc.data.in_lock"] == "true"


def test_untracked_and_missing_paths(tmp_path):
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "x.txt").write_text("x")
    tags = lineage_tags({"loose": "loose", "gone": "nowhere"}, root=tmp_path)
    assert tags["dvc.loose"] == data_hash(tmp_path / "loose")
    assert tags["dvc.loose.recorded"] == "untracked" and tags["dvc.loose.in_lock"] == "false"
    assert tags["dvc.gone"] == "missing" and tags["dvc.gone.in_lock"] == "false"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data_hash(tmp_path / "nowhere")


def test_recorded_hash_from_lock_and_dvc_files(tmp_path):
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  preprocess:\n    cmd: ferops preprocess\n    outs:\n"
        "    - path: data/processed/x\n      hash: md5\n      md5: abc123.dir\n"
    )
    (tmp_path / "data.dvc").write_text("outs:\n- md5: def456.dir\n  path: data/raw\n")
    assert dvc_hash("data/processed/x", root=tmp_path) == "abc123.dir"
    assert dvc_hash("data/processed/x/images.npy", root=tmp_path) == "abc123.dir"
    assert dvc_hash("data/raw/ck+", root=tmp_path) == "def456.dir"
    assert dvc_hash("data/processed/xy", root=tmp_path) is None  # a prefix of a name is not inside it
    assert dvc_hash("elsewhere", root=tmp_path) is None
    assert git_commit(tmp_path) == {"git_commit": "unknown"}  # not a git repo: said so, not guessed

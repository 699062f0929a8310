"""import_data: validate first, copy atomically, `dvc add` inside a DVC repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ferops.data.formats import DatasetFormatError, write
from ferops.data.importing import import_data

from format_fixtures import make


@pytest.fixture
def folders_source(tmp_path):
    return write("folders", make("wild", n=7, seed=0, size=32), tmp_path / "src" / "fer_folders")


def test_import_copies_validated_source(tmp_path, folders_source):
    dest = import_data("folders", folders_source, raw_root=tmp_path / "raw", dvc=False)
    assert dest == tmp_path / "raw" / "fer_folders"
    src_files = sorted(p.relative_to(folders_source) for p in folders_source.rglob("*"))
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == src_files
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["fer_folders"]  # no temp leftovers
    with pytest.raises(FileExistsError, match="already exists"):
        import_data("folders", folders_source, raw_root=tmp_path / "raw", dvc=False)
    again = import_data("folders", folders_source, raw_root=tmp_path / "raw", name="copy2", dvc=False)
    assert again.name == "copy2"


def test_bad_source_is_refused_before_copying(tmp_path, folders_source):
    (folders_source / "Training" / "bored").mkdir()
    shutil.copy(next((folders_source / "Training").glob("*/*.png")), folders_source / "Training" / "bored" / "x.png")
    with pytest.raises(DatasetFormatError, match="class folder 'bored' is not in the mapping"):
        import_data("folders", folders_source, raw_root=tmp_path / "raw", dvc=False)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


def test_symlink_out_of_source_is_refused(tmp_path, folders_source):
    (tmp_path / "secret.txt").write_text("not part of the dataset")
    os.symlink(tmp_path / "secret.txt", folders_source / "notes.txt")
    with pytest.raises(DatasetFormatError, match="outside the dataset root"):
        import_data("folders", folders_source, raw_root=tmp_path / "raw", dvc=False)
    assert not (tmp_path / "raw" / "fer_folders").exists()


def test_fer2013_file_with_ferplus(tmp_path):
    src = tmp_path / "kaggle"
    write("fer2013", make("wild", n=3, seed=0, size=48), src)
    votes = "\n".join(f"Training,fer{i}.png,0,10,0,0,0,0,0,0,0,0" for i in range(3))
    (src / "fer2013new.csv").write_text("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                                       "contempt,unknown,NF\n" + votes + "\n")
    dest = import_data("fer2013", src / "fer2013.csv", raw_root=tmp_path / "raw", dvc=False, ferplus=True)
    assert dest.name == "fer2013"
    assert sorted(p.name for p in dest.iterdir()) == [".ferops-output", "fer2013.csv", "fer2013new.csv"]


def test_unknown_format_and_missing_source(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format"):
        import_data("jaffe", tmp_path)
    with pytest.raises(FileNotFoundError):
        import_data("folders", tmp_path / "nope", raw_root=tmp_path / "raw")


def test_no_dvc_repo_skips_dvc(tmp_path, folders_source, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dest = import_data("folders", folders_source, raw_root="data/raw", dvc=True)
    assert dest.is_dir() and not (tmp_path / "data/raw/fer_folders.dvc").exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="dvc add needs git")
def test_dvc_add_in_dvc_repo(tmp_path, folders_source, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], check=True)
    dest = import_data("folders", folders_source, dvc=True)
    assert dest == repo / "data/raw/fer_folders" or dest.resolve() == (repo / "data/raw/fer_folders").resolve()
    dvc_file = repo / "data/raw/fer_folders.dvc"
    assert dvc_file.is_file() and "md5" in dvc_file.read_text()
    assert "/fer_folders" in (repo / "data/raw/.gitignore").read_text()
    assert len(list(dest.rglob("*.png"))) == 7


@pytest.mark.skipif(shutil.which("git") is None, reason="dvc add needs git")
def test_dvc_add_git_ignored_explains(tmp_path, folders_source, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], check=True)
    (repo / ".gitignore").write_text("data/\n")
    with pytest.raises(RuntimeError, match="would be git-ignored"):
        import_data("folders", folders_source, dvc=True)
    assert (repo / "data/raw/fer_folders").is_dir()  # the validated copy is kept; only `dvc add` is left to redo


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="dvc needs git")
def test_raw_root_tracked_as_one_output(tmp_path, folders_source, monkeypatch):
    """The project tracks data/raw with data.dvc; an import must update it, not `dvc add` inside it."""
    repo = tmp_path / "repo"
    (repo / "data/raw").mkdir(parents=True)
    monkeypatch.chdir(repo)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], check=True)
    (repo / "data.dvc").write_text("# like the project's data.dvc: data/raw starts empty\nouts:\n"
                                   "- md5: d751713988987e9331980363e24189ce.dir\n  size: 0\n  nfiles: 0\n"
                                   "  hash: md5\n  path: data/raw\n")
    before = (repo / "data.dvc").read_text()
    import_data("folders", folders_source, dvc=True)
    after = (repo / "data.dvc").read_text()
    assert after != before and "nfiles: 8" in after  # 7 images and ferops' output marker
    assert not (repo / "data/raw/fer_folders.dvc").exists()


def test_import_prints_what_the_reader_skipped(tmp_path, folders_source, capsys):
    (folders_source / "Training" / "notes.txt").write_text("outside the class folders")
    class_dir = next(p for p in (folders_source / "Training").iterdir() if p.is_dir())
    (class_dir / ".DS_Store").write_bytes(b"\0")
    (class_dir / "readme.txt").write_text("x")
    dest = import_data("folders", folders_source, raw_root=tmp_path / "raw", dvc=False)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"{folders_source}: skipped 3 files: 1 outside class folders (1 .txt), "
                       f"2 not images (1 .DS_Store, 1 .txt)"]
    assert (dest / "Training" / "notes.txt").exists()  # skipped when reading, still copied: the copy is as shipped


def test_import_prints_nothing_when_nothing_was_skipped(tmp_path, folders_source, capsys):
    import_data("folders", folders_source, raw_root=tmp_path / "raw", dvc=False)
    assert capsys.readouterr().out == ""


def test_import_prints_casme2_exclusions(tmp_path, capsys):
    micro = make("micro", n=6, seed=0, size=32)
    src = write("casme2", micro, tmp_path / "casme")
    kept = ("happiness", "disgust")
    clips = micro.manifest.groupby("sequence")["label_name"].first()
    n = int((~clips.isin(kept)).sum())
    assert 0 < n < len(clips)
    import_data("casme2", src, raw_root=tmp_path / "raw", dvc=False, classes=kept)
    assert capsys.readouterr().out.splitlines() == [f"{src}: excluded {n} by the format's protocol: {n} class not kept"]

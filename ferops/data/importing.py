"""Bring a user's licensed dataset copy into the project under DVC.

The copy is validated by reading it with its format's reader first, so a
damaged or mis-pointed source is refused before anything is copied; the copy
itself goes through atomic_dir, so data/raw/<name> is either complete or
absent. DVC then records it: `dvc add data/raw/<name>` (leaving
data/raw/<name>.dvc for git), or, when data/raw is already one tracked output
(this project's data.dvc), `dvc commit` of that file. Either way the data stays
out of git, its hash goes in, and every later stage can name exactly which
copy it was trained on.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from ferops.data.formats import FORMATS, DatasetFormatError, read
from ferops.data.formats._images import inside, safe_name
from ferops.data.formats.skipped import reader_notes
from ferops.errors import FeropsError
from ferops.io import atomic_dir

log = logging.getLogger(__name__)

VALIDATION_SIZE = 32  # decode every image, but keep only thumbnails in memory while validating


class DestinationExists(FeropsError, FileExistsError):
    """data/raw/<name> is taken: a second import must not replace the first copy unasked."""


def _dvc_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def _check_links(source: Path) -> None:
    """Refuse symlinks that would copy files from outside the source into data/raw."""
    for path in source.rglob("*"):
        if path.is_symlink():
            inside(path, source, "symlink in source")


def _companions(source: Path, read_opts: dict) -> list[tuple[Path, str]]:
    """Files to copy for a single-file source (FERPlus labels travel with fer2013.csv)."""
    files = [(source, source.name)]
    ferplus = read_opts.get("ferplus")
    if ferplus:
        plus = source.with_name("fer2013new.csv") if ferplus is True else Path(ferplus)
        files.append((plus, "fer2013new.csv"))
    return files


def import_data(format: str, source: str | Path, raw_root: str | Path = "data/raw", name: str | None = None,
                dvc: bool = True, overwrite: bool = False, **read_opts) -> Path:
    """Validate `source`, copy it to <raw_root>/<name> atomically, `dvc add` it; returns the copy's path.

    read_opts go to the format's reader (e.g. ferplus=True, sheet=...). Runs
    dvc only when `dvc` is true and the working directory is inside a DVC repo.
    Files the reader skipped are copied all the same (the copy is the user's
    dataset as shipped) but counted on stdout in one line, so a misplaced
    folder of images is noticed at import, not after training.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown dataset format {format!r}; expected one of {list(FORMATS)}")
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: dataset source not found")
    dataset = read(format, source, **{"size": VALIDATION_SIZE, **read_opts})
    log.info("validated %s as %s: %d images", source, format, len(dataset))
    for line in reader_notes(dataset.extras):
        print(f"{source}: {line}")
    name = safe_name(name or (source.name if source.is_dir() else source.stem), "dataset name")
    dest = Path(raw_root) / name
    if dest.exists() and not overwrite:
        raise DestinationExists(f"{dest} already exists; pass another --name, or remove it to import again")
    if source.is_dir():
        _check_links(source)
    with atomic_dir(dest, stage="import-data") as tmp:
        if source.is_dir():
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        else:
            for file, target in _companions(source, read_opts):
                shutil.copy2(file, tmp / target)
    if dvc:
        _dvc_add(dest)
    return dest


def _covering_dvc_file(dest: Path, root: Path) -> Path | None:
    """A .dvc file (e.g. the project's data.dvc for data/raw) whose output already contains `dest`.

    DVC refuses to `dvc add` a path inside a tracked output; then the import is
    recorded by re-committing that file instead. Only the .dvc files beside
    dest's ancestors are read, so a large data tree is never walked.
    """
    import yaml

    dest = dest.resolve()
    for folder in dest.parents:
        if not folder.is_relative_to(root):
            break
        for dvc_file in sorted(f for f in folder.glob("?*.dvc") if f.is_file() and not f.name.startswith(".")):
            try:
                outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", [])
            except (yaml.YAMLError, AttributeError):
                continue
            for out in outs:
                target = (dvc_file.parent / str(out.get("path", ""))).resolve()
                if dest == target or dest.is_relative_to(target):
                    return dvc_file
    return None


def _dvc_add(dest: Path) -> None:
    root = _dvc_root(Path.cwd().resolve())
    if root is None:
        log.info("not inside a DVC repository; skipped `dvc add %s`", dest)
        return
    covering = _covering_dvc_file(dest, root)
    args = ["commit", "--force", str(covering)] if covering else ["add", str(dest)]
    result = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        hint = ""
        if "git-ignored" in result.stderr:
            hint = (f"\nthe .dvc file would be git-ignored: un-ignore it (e.g. in .gitignore replace 'data/' by "
                    f"'/data/*', '!/data/raw/', '/data/raw/*', '!/data/raw/*.dvc') and run `dvc add {dest}`")
        raise RuntimeError(f"copied to {dest}, but `dvc {' '.join(args)}` failed (exit {result.returncode}):\n"
                           f"{result.stderr.strip()}{hint}")
    tracked = covering or Path(f"{dest}.dvc")
    log.info("dvc %s: now `git add %s`", args[0], tracked)


__all__ = ["import_data", "DatasetFormatError"]

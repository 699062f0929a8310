"""Atomic file output: a crash or a bad input never leaves half a dataset behind.

Everything ferops writes goes to a temporary sibling first and is renamed into
place only when complete; a rename within one filesystem is atomic on POSIX.

A folder is replaced only when ferops wrote it (it holds the MARKER file, or a
meta.json/run.json record ferops recognises) or it is empty: an `--out` that
names a user's folder, a file or the working folder is refused in one line,
never deleted or renamed away. Outputs get the permissions the umask asks for
(mkstemp/mkdtemp alone make them private), so colleagues can read them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ferops.errors import FeropsError, shown_path

MARKER = ".ferops-output"  # in every folder atomic_dir writes: {"written_by": "ferops", "stage": ...}


class OutputRefused(FeropsError):
    """The output path holds something ferops did not write, so replacing it could lose a user's files."""


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask can only set it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _recognised_record(path: Path) -> bool:
    """A dataset meta.json or a stage run.json, as ferops writes them (folders from before the marker)."""
    for name, keys in (("meta.json", {"classes", "shape"}), ("run.json", {"run_id"}), ("run.json", {"refit"})):
        try:
            data = json.loads((path / name).read_text()) if (path / name).is_file() else None
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and keys <= set(data):
            return True
    return False


def written_by_ferops(path: Path) -> bool:
    """Whether `path` is a folder ferops may replace: its marker, a record it recognises, or nothing at all."""
    if (path / MARKER).is_file() or _recognised_record(path):
        return True
    return not any(path.iterdir())


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse (one line) an output folder whose replacement could delete what ferops did not write.

    Called before the work starts, so a refused run costs nothing, and again before the swap.
    """
    path = Path(path)
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise OutputRefused(f"{what} {shown_path(path)}: is the working folder (or holds it); choose a new folder for the output")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        kind = "symlink" if path.is_symlink() else "file"
        raise OutputRefused(f"{what} {shown_path(path)}: is a {kind}, not an output folder; choose another {what} or remove it")
    if path.is_dir() and not written_by_ferops(path):
        raise OutputRefused(f"{what} {shown_path(path)}: ferops did not write this folder; choose another {what} or remove it")
    return path


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only on success.

    `make_parents=False` (a user's `--out FILE`) refuses a missing parent folder instead of creating it.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputRefused(f"{shown_path(path)}: is a folder, expected a file name; choose another output path")
    if not make_parents and not path.parent.is_dir():
        raise OutputRefused(f"{shown_path(path)}: folder {shown_path(path.parent)} does not exist; create it first or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, stage: str = "ferops", what: str = "output folder") -> Iterator[Path]:
    """Yield a temporary directory beside `path`; swap it in for `path` only on success.

    An existing `path` is replaced only if ferops wrote it (see check_output_dir); the new folder
    carries MARKER naming `stage`, so the next run may replace it in turn.
    """
    path = check_output_dir(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"written_by": "ferops", "stage": stage}) + "\n")
        check_output_dir(path, what)  # the folder may have changed while the stage ran
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

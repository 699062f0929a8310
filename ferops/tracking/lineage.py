"""Which code and which data produced a run: git commit and DVC content hashes.

A metric is only evidence if one can get back to exactly what produced it, so
every run is tagged with the commit (and whether the tree was dirty) and the
hash of the data it read. That hash is computed from the files themselves, the
way DVC computes it, not copied from dvc.lock: after someone edits the data
and runs `ferops cv` without `dvc repro`, the lock still names the old data,
and a run that copied it would claim lineage it does not have. Comparing the
two (`dvc.<name>.in_lock`) makes that case visible in the run's tags.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import yaml

# (absolute path, size, mtime_ns, inode) -> md5. A file whose stat is unchanged is not re-read: the
# registry, lineage tags and comparability key all hash the same processed data in one process.
_MD5_CACHE: dict[tuple[str, int, int, int], str] = {}
_CHUNK = 1 << 20


def git_commit(cwd: str | Path = ".") -> dict[str, str]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": "unknown"}
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()}


def file_md5(path: str | Path) -> str:
    """md5 of a file's bytes (what DVC 3 records for a file with `hash: md5`), cached by stat."""
    path = Path(path)
    st = path.stat()
    cache_key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    cached = _MD5_CACHE.get(cache_key)
    if cached is not None:
        return cached
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    _MD5_CACHE[cache_key] = value = digest.hexdigest()
    return value


def data_hash(path: str | Path) -> str:
    """The md5 DVC would record for `path` (a file, or a directory with a `.dir` suffix), from its content.

    DVC 3 hashes a directory as the md5 of the JSON list of {"md5", "relpath"} entries of all its
    files, sorted by relpath (dvc_data.hashfile.tree.Tree.as_bytes); tests/test_lineage.py checks
    this against hashes written by a real `dvc add` and `dvc repro`. `.dvcignore` rules are not
    applied: ferops' data folders have none.
    """
    path = Path(path)
    if path.is_file():
        return file_md5(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or directory to hash")
    entries = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for fname in filenames:
            full = Path(dirpath, fname)
            if full.is_file():
                entries.append({"md5": file_md5(full), "relpath": full.relative_to(path).as_posix()})
    entries.sort(key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def _outs(entries) -> list[dict]:
    return [o for o in entries or [] if isinstance(o, dict) and "path" in o]


def _relative(path: str | Path, root: Path) -> str:
    path = Path(path)
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(root.resolve())
        except ValueError:
            return path.as_posix()
    return path.as_posix().rstrip("/")


def recorded_out(path: str | Path, root: str | Path = ".") -> tuple[str, str] | None:
    """(out path, md5) of the DVC output that contains `path`, from dvc.lock or a .dvc file; None if untracked."""
    root = Path(root)
    target = _relative(path, root)
    candidates: list[dict] = []
    lock = root / "dvc.lock"
    if lock.exists():
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        for stage in stages.values():
            candidates += _outs(stage.get("outs"))
    dvcfiles = [*root.glob("*.dvc"), *(root / "data").glob("**/*.dvc")]
    for dvcfile in (f for f in dvcfiles if f.is_file()):
        rel = dvcfile.parent.relative_to(root)
        for out in _outs((yaml.safe_load(dvcfile.read_text()) or {}).get("outs")):
            candidates.append({**out, "path": (rel / out["path"]).as_posix()})
    for out in candidates:
        out_path = str(out["path"]).rstrip("/")
        if target == out_path or target.startswith(out_path + "/"):
            value = out.get("md5") or out.get("hash")
            if value:
                return out_path, str(value)
    return None


def dvc_hash(path: str | Path, root: str | Path = ".") -> str | None:
    """DVC's recorded md5 for the output containing `path` (dvc.lock / .dvc), or None when DVC does not track it."""
    found = recorded_out(path, root)
    return found[1] if found else None


def lineage_tags(data_paths: dict[str, str | Path], root: str | Path = ".") -> dict[str, str]:
    """Tags for a run: git commit plus, per data path, its content hash and whether dvc.lock agrees.

    - `dvc.<name>`: content hash of the DVC output holding the path (the whole directory DVC
      versions, so it compares with the lock), or of the path itself when DVC does not track it;
      `missing` when the path does not exist.
    - `dvc.<name>.recorded`: the hash dvc.lock / the .dvc file records, or `untracked`.
    - `dvc.<name>.in_lock`: `true` only when both agree: `false` means the run read data that
      `dvc repro` / `dvc commit` has not recorded, so the run cannot be reproduced from git + DVC.
    """
    root = Path(root)
    tags = git_commit(root)
    for name, path in data_paths.items():
        found = recorded_out(path, root)
        hashed = root / found[0] if found else (Path(path) if Path(path).is_absolute() else root / path)
        content = data_hash(hashed) if hashed.exists() else "missing"
        tags[f"dvc.{name}"] = content
        tags[f"dvc.{name}.recorded"] = found[1] if found else "untracked"
        tags[f"dvc.{name}.in_lock"] = str(found is not None and found[1] == content).lower()
        tags[f"data.{name}.path"] = str(path)
    return tags

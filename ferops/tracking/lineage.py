"""Which code and which data produced a run: git commit and DVC content hashes.

A metric is only evidence if one can get back to exactly what produced it, so
every run is tagged with the commit (and whether the tree was dirty) and the
DVC hash of the data it read, as recorded in dvc.lock / *.dvc files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml


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


def _outs(entries) -> list[dict]:
    return [o for o in entries or [] if isinstance(o, dict) and "path" in o]


def dvc_hash(path: str | Path, root: str | Path = ".") -> str | None:
    """DVC's md5 for `path` from dvc.lock or a .dvc file, or None when DVC does not track it."""
    root = Path(root)
    target = Path(path).as_posix().rstrip("/")
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
            return out.get("md5") or out.get("hash")
    return None


def lineage_tags(data_paths: dict[str, str | Path]) -> dict[str, str]:
    """Tags for a run: git commit plus `dvc.<name>` = DVC hash of each data path."""
    tags = git_commit()
    for name, path in data_paths.items():
        tags[f"dvc.{name}"] = dvc_hash(path) or "untracked"
        tags[f"data.{name}.path"] = str(path)
    return tags

"""A local SQLite tracking store checked before a command starts: one line, not MLflow's 90-line traceback.

MLflow meets a truncated or non-SQLite mlflow.db, or a read-only one, deep inside SQLAlchemy ("raised as a
result of Query-invoked autoflush"), after the command has already rewritten its outputs; and a mistyped
path makes even `ferops registry list` create a folder and an empty store. Checking the file first (with
sqlite3 alone, no MLflow import) names the path, what is wrong and the fix, before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from ferops.errors import FeropsError, shown_path

SQLITE_HEADER = b"SQLite format 3\x00"
FIX_URI = "fix tracking.tracking_uri (or MLFLOW_TRACKING_URI)"


class StoreError(FeropsError):
    """The tracking store's file is missing, damaged, not a database, or read-only for a writing command."""


def sqlite_path(uri: str) -> Path | None:
    """The file behind a `sqlite:///...` URI (None for servers, Postgres, in-memory stores)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _writable(path: Path) -> bool:
    """Whether this process may write the store; a file with every write bit cleared counts as read-only
    even for root, since its owner marked it so."""
    if not (path.stat().st_mode & 0o222) or not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        return False
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=0.5)) as db:  # a read-only filesystem refuses the lock
            db.execute("BEGIN IMMEDIATE")
            db.rollback()
    except sqlite3.OperationalError as exc:
        return "readonly" not in str(exc) and "read-only" not in str(exc)  # "locked": busy, not read-only
    return True


def check_sqlite_store(uri: str, write: bool) -> None:
    """Raise StoreError (one line) when the SQLite store at `uri` cannot serve a reading or writing command.

    A missing file is fine for a writing command whose folder exists (MLflow creates the store there); a
    reading command never creates one.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    if not path.exists():
        if not write:
            raise StoreError(f"tracking store {shown_path(path)} does not exist (nothing was created); {FIX_URI}")
        if not path.parent.is_dir():
            raise StoreError(f"tracking store {shown_path(path)}: folder {shown_path(path.parent)} does not exist; {FIX_URI}")
        return
    if path.is_dir():
        raise StoreError(f"tracking store {shown_path(path)} is a folder, not an SQLite file; {FIX_URI}")
    with path.open("rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise StoreError(f"tracking store {shown_path(path)} is not an SQLite database; {FIX_URI}, or restore the file")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            result = db.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"tracking store {shown_path(path)} is damaged ({exc}); restore a backup or {FIX_URI}") from None
    if result is None or result[0] != "ok":
        raise StoreError(f"tracking store {shown_path(path)} is damaged (integrity check failed); restore a backup or {FIX_URI}")
    if write and not _writable(path):
        raise StoreError(f"tracking store {shown_path(path)} is read-only and this command records runs; make it writable "
                         f"(or use --no-track where offered)")

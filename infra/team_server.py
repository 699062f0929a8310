"""infra/team_server.sh from Python: real PostgreSQL + `mlflow server` in a throwaway directory, on free ports.

Tests (tests/test_team_server.py) and benchmarks (benchmarks/scale.py) need
the team setup exactly as a team runs it, so they start the script itself:

    from infra.team_server import running_team_server
    with running_team_server() as server:   # server.tracking_uri, server.optuna_storage, ...
        ...
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SCRIPT = Path(__file__).resolve().with_name("team_server.sh")


@dataclass(frozen=True)
class TeamServer:
    tracking_uri: str  # http://127.0.0.1:<port>: what MLFLOW_TRACKING_URI is set to
    optuna_storage: str  # postgresql+psycopg2://...: Optuna's RDB storage on the same PostgreSQL
    mlflow_db: str  # the MLflow backend store the server runs on
    directory: Path  # TEAM_DIR: pgdata/, artifacts/, mlflow.log


def postgres_missing() -> str | None:
    """Why PostgreSQL cannot run here (a skip reason), or None."""
    found = shutil.which("pg_config") or glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return "PostgreSQL is not installed (no pg_config, no /usr/lib/postgresql/*/bin/initdb)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user for PostgreSQL to run as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _script(command: str, env: dict) -> str:
    result = subprocess.run([str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        logs = "".join(f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in Path(env["TEAM_DIR"]).glob("*.log"))
        raise RuntimeError(f"team_server.sh {command} failed: {result.stderr[-2000:]}{logs}")
    return result.stdout


@contextlib.contextmanager
def running_team_server(durable: bool = False, workers: int = 1) -> Iterator[TeamServer]:
    """Start infra/team_server.sh in a fresh directory; stop it and delete everything after.

    `durable=False` (tests) turns PostgreSQL's fsync off: the data is thrown away
    anyway. Benchmarks pass True to time what a team's server really does.
    """
    # Not under pytest's tmp_path: that is private to this user, and PostgreSQL runs as `postgres` under root.
    directory = Path(tempfile.mkdtemp(prefix="ferops-team-"))
    directory.chmod(0o711)
    env = {**os.environ, "TEAM_DIR": str(directory), "PG_PORT": str(_free_port()),
           "MLFLOW_PORT": str(_free_port()), "MLFLOW_WORKERS": str(workers),
           # this interpreter's environment, wherever the checkout's .venv is (or is not)
           "PYTHON": sys.executable, "MLFLOW": str(Path(sys.executable).parent / "mlflow")}
    env.pop("PG_PASSWORD", None)
    if not durable:
        env.update(INITDB_OPTS="--no-sync", PG_OPTS="-c fsync=off -c synchronous_commit=off")
    try:
        out = dict(line.split("=", 1) for line in _script("start", env).split())
        port = env["PG_PORT"]
        yield TeamServer(out["MLFLOW_TRACKING_URI"], out["OPTUNA_STORAGE"],
                         f"postgresql+psycopg2://ferops@127.0.0.1:{port}/mlflow", directory)
    finally:
        try:
            _script("stop", env)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

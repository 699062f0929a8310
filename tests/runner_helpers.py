"""Runner tests' helpers, stdlib-only at import: jobs that spawned processes and Dask workers import fast,
and the documented multi-machine Dask setup (`dask scheduler` + `dask worker`) run on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

TESTS = Path(__file__).resolve().parent


def late_echo(job: tuple[int, float]) -> int:
    """Return the job's number after `delay` seconds: early jobs finish last, so order must come from the runner."""
    number, delay = job
    time.sleep(delay)
    return number


def fail_on_one(job: int) -> int:
    if job == 1:
        raise ValueError(f"job {job} failed")
    return job


def _wait_for_scheduler_file(path: Path, scheduler: subprocess.Popen, log: Path) -> str:
    for _ in range(240):
        if path.exists() and path.read_text().strip():
            return json.loads(path.read_text())["address"]
        if scheduler.poll() is not None:
            raise RuntimeError(f"dask scheduler exited: {log.read_text()[-2000:]}")
        time.sleep(0.25)
    raise RuntimeError("dask scheduler wrote no scheduler file in 60 s")


@contextlib.contextmanager
def dask_cli_cluster(root: Path, workers: int = 2) -> Iterator[str]:
    """`dask scheduler` + `dask worker --nworkers N --nthreads 1` (with nannies) on loopback: the scheduler address."""
    from distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    log_path = root / "dask.log"
    procs = []
    with open(log_path, "w") as log:
        try:
            procs.append(subprocess.Popen(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                 "--scheduler-file", str(root / "scheduler.json")],
                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            address = _wait_for_scheduler_file(root / "scheduler.json", procs[0], log_path)
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nworkers", str(workers), "--nthreads", "1", "--no-dashboard",
                 "--local-directory", str(root)],
                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            with Client(address, timeout=60) as client:
                client.wait_for_workers(workers, timeout=120)
            yield address
        finally:  # a throwaway cluster: each command's whole process group (nannies, workers) at once
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

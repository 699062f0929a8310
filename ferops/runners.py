"""Fan independent jobs out to this process, a process pool, or a Dask cluster: `mapper_for(params.runner)`.

CV folds, AU folds, LOSO subjects, transfer sources and cells, and (on Dask)
tuning workers are independent trainings. Each caller plans its jobs (small, picklable, top-level function
plus arguments), hands them to a Mapper and gathers the results; where they ran
changes nothing in what comes back:

- results come back in job order, one per job;
- a job that raises makes the whole map raise (no silent partial results);
- on Dask, a job whose worker process dies (OOM killer, SIGKILL, a lost
  machine) is rescheduled by the scheduler on another worker, up to
  `distributed.scheduler.allowed-failures` deaths (Dask's default: 3).

Workers are separate processes started with `spawn` (a forked TensorFlow is
unsafe), each running one job at a time: one fold per worker process.
"""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

from ferops.config import RunnerParams

J = TypeVar("J")
R = TypeVar("R")
Mapper = Callable[[Callable[[J], R], Sequence[J]], list[R]]


def local_map(fn: Callable[[J], R], jobs: Sequence[J]) -> list[R]:
    """Jobs one after another in this process: the reference every other runner must reproduce."""
    return [fn(job) for job in jobs]


def process_map(workers: int) -> Mapper:
    """A pool of `workers` spawned processes on this machine (no scheduler, no extra service)."""

    def run(fn: Callable[[J], R], jobs: Sequence[J]) -> list[R]:
        if not jobs:
            return []
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            futures = [pool.submit(fn, job) for job in jobs]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:  # the map has failed: do not train what nobody will read
                    future.cancel()
                raise

    return run


def dask_map(address: str | None, workers: int) -> Mapper:
    """Jobs as Dask tasks: on the scheduler at `address`, or on a LocalCluster of `workers` processes.

    A LocalCluster lives for one map (started and closed here); a scheduler at
    `address` is someone else's and is only connected to. Tasks are impure
    (`pure=False`): two equal jobs are two trainings, never one cached result.
    """

    def run(fn: Callable[[J], R], jobs: Sequence[J]) -> list[R]:
        from distributed import Client, LocalCluster

        if not jobs:
            return []
        if address is not None:
            with Client(address) as client:
                return _gather(client, fn, jobs)
        with LocalCluster(n_workers=min(workers, len(jobs)), threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            return _gather(client, fn, jobs)

    return run


def _gather(client, fn, jobs):
    futures = client.map(fn, list(jobs), pure=False)
    try:
        return client.gather(futures)  # in job order; the first failed job raises its own exception
    finally:
        client.cancel(futures)


_OVERRIDE: contextvars.ContextVar[Mapper | None] = contextvars.ContextVar("ferops_mapper", default=None)


@contextlib.contextmanager
def jobs_run_by(mapper: Mapper) -> Iterator[None]:
    """Within this block every `mapper_for` answers `mapper`: how a Prefect flow makes a stage's jobs its tasks."""
    token = _OVERRIDE.set(mapper)
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


def mapper_for(runner: RunnerParams) -> Mapper:
    """The Mapper params.yaml's `runner:` section asks for (or the one a `jobs_run_by` block installed)."""
    if (override := _OVERRIDE.get()) is not None:
        return override
    if runner.kind == "local":
        return local_map
    if runner.kind == "processes":
        return process_map(runner.workers)
    return dask_map(runner.address, runner.workers)

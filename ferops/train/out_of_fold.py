"""Every out-of-fold fan-out in ferops, once: fold jobs to a runner, results checked, in fold order.

Emotion CV folds, AU folds, LOSO subjects, a transfer cell's folds and a tuning trial's inner splits
are each a list of jobs with a `fold` number. A runner (ferops.runners) may run them anywhere and a
Dask scheduler may retry a job whose worker died; what comes back must still be one result per fold,
in order, or the pooled predictions would be assembled wrongly. With a parent run (`target`), a dead
worker's orphaned attempt of a fold is marked FAILED, so each fold has one finished run: the one used.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, TypeVar

from ferops.errors import FeropsError, shown
from ferops.runners import Mapper, local_map
from ferops.tracking.job_runs import RunTarget, keep_only


class NumberedJob(Protocol):
    fold: int


J = TypeVar("J", bound=NumberedJob)
R = TypeVar("R")


def out_of_fold(stage: str, jobs: Sequence[J], run_job: Callable[[J], R], mapper: Mapper = local_map,
                target: RunTarget | None = None, run_name: Callable[[J], str] | None = None) -> list[R]:
    """`run_job` on every job through `mapper`; the results (each with `.fold`, and `.run_id` when `target`).

    Raises when the runner did not return each job's fold exactly once, in job order. With `target`
    (the parent run), `run_name(job)` names each fold's nested run for the FAILED bookkeeping.
    """
    results = mapper(run_job, jobs)
    expected, returned = [job.fold for job in jobs], [result.fold for result in results]
    if returned != expected:
        raise FeropsError(f"{stage}: the runner returned folds {shown(returned)}, expected {shown(expected)}")
    if target is not None:
        name = run_name or (lambda job: job.run_name)
        keep_only(target, {name(job): result.run_id for job, result in zip(jobs, results)})
    return results

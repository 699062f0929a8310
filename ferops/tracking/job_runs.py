"""Nested MLflow runs started by jobs in other processes, possibly on other machines.

A fold run used to start inside its parent's `with` block, in the parent's
process. A job on a Dask worker has no active run, and maybe another working
directory: it gets the store, the experiment and the parent run explicitly (a
`RunTarget`, with any local store path made absolute) and starts its run as a
child by id. A job Dask retried after its worker died leaves the dead
attempt's run behind (RUNNING, or even FINISHED if the worker died after
closing it); once the results are in, `keep_only` marks every attempt whose
result was not used FAILED and names the run that replaced it, so the parent
ends with exactly one finished run per job: the one its metrics came from.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from ferops.tracking.run_safety import END_TAG, NOTE_TAG, register_process_tags


@dataclass(frozen=True)
class RunTarget:
    """Where a job logs: the tracking store, the experiment and the parent run."""
    tracking_uri: str
    experiment_id: str
    parent_run_id: str


def portable_uri(uri: str) -> str:
    """The same store seen from any working directory: relative SQLite / file paths made absolute."""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        return uri if path.startswith("/") or path == ":memory:" else f"sqlite:///{Path(path).resolve()}"
    if "://" not in uri:  # a plain directory: MLflow's file store
        return str(Path(uri).resolve())
    return uri


def current_target() -> RunTarget:
    """The active run of this process as the parent of jobs that run elsewhere."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("current_target() needs an active MLflow run (the parent)")
    return RunTarget(portable_uri(mlflow.get_tracking_uri()), run.info.experiment_id, run.info.run_id)


@contextlib.contextmanager
def child_run(target: RunTarget, run_name: str, tags: dict[str, str]) -> Iterator[mlflow.ActiveRun]:
    """`mlflow.start_run` nested under `target.parent_run_id`, from any process."""
    if portable_uri(mlflow.get_tracking_uri()) != target.tracking_uri:
        mlflow.set_tracking_uri(target.tracking_uri)
    register_process_tags()  # ferops.pid/host on the run: a dead worker's run is recognisable as such
    with mlflow.start_run(run_name=run_name, experiment_id=target.experiment_id, parent_run_id=target.parent_run_id,
                          nested=mlflow.active_run() is not None, tags=tags) as run:  # nested: in the parent's process
        yield run


def keep_only(target: RunTarget, kept: dict[str, str]) -> list[str]:
    """`kept`: run name -> the run whose result the parent used. Mark FAILED the parent's other runs of those names."""
    client = MlflowClient(target.tracking_uri)
    children = client.search_runs([target.experiment_id], f"tags.mlflow.parentRunId = '{target.parent_run_id}'")
    failed = []
    for run in children:
        name, run_id = run.info.run_name, run.info.run_id
        if name not in kept or kept[name] == run_id or run.info.status == "FAILED":
            continue
        client.set_tag(run_id, NOTE_TAG, f"**FAILED: its worker died before its result reached the parent.** "
                                         f"The job was retried as run {kept[name]}, whose result the parent used.")
        client.set_tag(run_id, END_TAG, f"retried as {kept[name]}")
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        failed.append(run_id)
    return failed

"""Runners: the same jobs, the same results, in this process, a process pool or a Dask cluster.

`dask_cli` (conftest) is the documented multi-machine setup run on loopback:
`dask scheduler` plus `dask worker` processes started from the command line;
`dask` without an address starts a LocalCluster for the map.
"""

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ferops.config import RunnerParams
from ferops.runners import mapper_for
from ferops.tracking.store import configure
from ferops.train.cross_validation import cross_validate

from conftest import make_params, make_toy_dataset
from runner_helpers import fail_on_one, late_echo


def _runner(kind: str, address: str | None = None, workers: int = 2) -> RunnerParams:
    return RunnerParams(kind=kind, workers=workers, address=address)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "processes", "dask-local", "dask-cli"])
def test_results_come_back_in_job_order_and_a_failed_job_raises(kind, request):
    address = request.getfixturevalue("dask_cli") if kind == "dask-cli" else None
    mapper = mapper_for(_runner(kind.split("-")[0], address))
    jobs = [(0, 1.0), (1, 0.5), (2, 0.0)]  # the first job finishes last
    assert mapper(late_echo, jobs) == [0, 1, 2]
    with pytest.raises(ValueError, match="job 1 failed"):
        mapper(fail_on_one, [0, 1, 2])
    assert mapper(late_echo, []) == []


class WorkerKiller(threading.Thread):
    """SIGKILLs the process of the first fold run seen RUNNING after start: a worker dying mid-fold."""

    def __init__(self, experiment_id: str):
        super().__init__(daemon=True)
        self.experiment_id, self.since = experiment_id, int(time.time() * 1000)
        self.killed_run, self.stop = None, threading.Event()

    def run(self):
        client = MlflowClient()
        while not self.stop.is_set():
            running = client.search_runs([self.experiment_id], f"tags.`ferops.kind` = 'cv-fold' and "
                                         f"attributes.status = 'RUNNING' and attributes.start_time >= {self.since}")
            if running:
                pid = int(running[0].data.tags["ferops.pid"])
                assert pid != os.getpid()  # a worker's, never this test's process
                os.kill(pid, signal.SIGKILL)
                self.killed_run = running[0].info.run_id
                return
            time.sleep(0.1)


def _outputs(cv_dir: Path) -> dict[str, str]:
    return {name: (cv_dir / name).read_text() for name in ("metrics.json", "learning_curves.csv", "predictions.csv")}


@pytest.mark.slow
def test_cv_is_identical_on_every_runner_and_survives_a_killed_worker(mlflow_store, tmp_path, dask_cli):
    params = make_params({"cv": {"folds": 2}})
    experiment_id = configure(params.tracking)
    data = make_toy_dataset()
    data.save(tmp_path / "data")  # processes and Dask read rows of its images.npy; local gets the arrays

    reference = cross_validate(data, params, tmp_path / "local", mapper=mapper_for(_runner("local")))
    cross_validate(data, params, tmp_path / "processes", data_path=tmp_path / "data",
                   mapper=mapper_for(_runner("processes", workers=1)))  # other processes; one TF import
    killer = WorkerKiller(experiment_id)
    killer.start()
    try:
        on_dask = cross_validate(data, params, tmp_path / "dask", data_path=tmp_path / "data",
                                 mapper=mapper_for(_runner("dask", dask_cli)))
    finally:
        killer.stop.set()
    assert killer.killed_run is not None, "no fold was seen running on a worker: the kill was not tested"

    # Same seeds, same fold metrics, learning curves and out-of-fold predictions, whichever runner trained them.
    for kind in ("processes", "dask"):
        assert _outputs(tmp_path / kind) == _outputs(tmp_path / "local"), kind
    assert on_dask.metrics["fold_accuracy"] == reference.metrics["fold_accuracy"]

    # The killed attempt is FAILED and says so; each fold has exactly one finished run, the one the parent used.
    client = MlflowClient()
    children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{on_dask.parent_run_id}'")
    finished = sorted(r.info.run_name for r in children if r.info.status == "FINISHED")
    assert finished == ["fold-00", "fold-01"]
    killed = client.get_run(killer.killed_run)
    assert killed.info.status == "FAILED" and "retried as run" in killed.data.tags["mlflow.note.content"]
    fold = [r for r in children if r.info.status == "FINISHED"][0]
    assert fold.data.tags["ferops.device"] == "CPU" and fold.data.params["train.deterministic"] == "True"
    assert int(fold.data.tags["ferops.pid"]) != os.getpid()  # trained on a worker, logged under the parent

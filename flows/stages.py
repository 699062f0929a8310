"""What every ferops flow is made of: one Prefect task per DVC stage.

The rule, applied to every stage: a task runs the stage's own `ferops <command>`
from dvc.yaml in its process (ferops.cli.run_command), with params.yaml as DVC
sees it, and then records the stage in dvc.lock (`dvc commit`), so that after a flow run
`dvc status` is clean and a later `dvc repro` does not redo the work. A stage
DVC already reports up to date is skipped (as `dvc repro` would), unless the
flow is asked to `force` it.

Settings: a flow's `overrides` (dotted keys) are written into params.yaml
before anything runs, exactly as `dvc exp run -S key=value` does, so the files,
dvc.lock and the MLflow runs all describe the same settings
(`git diff params.yaml` shows them; `git checkout params.yaml` undoes them).

Fan-out: the jobs a stage hands to ferops.runners (CV folds and the other
independent trainings) run as Prefect tasks on the task runner that
params.yaml's `runner:` names (threads for `local`, a process pool, or Dask).

Every MLflow run a flow starts carries the tag `prefect.flow_run_id`.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed, State
from ruamel.yaml import YAML

from ferops.quiet_tf import import_tensorflow

import_tensorflow()  # flow runs start in a fresh process: no GPU-build start-up chatter in their logs
from ferops.config import Params, load_params, nest  # noqa: E402
from ferops.errors import FeropsError  # noqa: E402
from ferops.io import atomic_file  # noqa: E402
from ferops.tracking.run_safety import FLOW_RUN_ENV  # noqa: E402

PARAMS = Path("params.yaml")
SKIPPED = "Skipped"  # the name of a stage task's Completed state when DVC reports the stage up to date


# ------------------------------------------------------------------ settings

def apply_overrides(overrides: dict[str, Any] | None, path: Path = PARAMS) -> Params:
    """params.yaml with `overrides` written into it (validated first: a bad key changes nothing)."""
    if overrides:
        load_params(path, nest(overrides))  # raises with the key's name before the file is touched
        rt = YAML()  # round-trip: the file keeps its comments and layout, as with `dvc exp run -S`
        rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
        data = rt.load(Path(path).read_text())
        for key, value in overrides.items():
            *heads, last = key.split(".")
            node = data
            for head in heads:
                node = node[head]
            node[last] = value
        with atomic_file(path) as tmp, tmp.open("w") as out:
            rt.dump(data, out)
        print(f"params.yaml: {overrides} (as `dvc exp run -S` would; `git checkout params.yaml` undoes it)")
    return load_params(path)


def tag_runs_with_flow_run() -> None:
    """Make every MLflow run of this process and its workers carry the flow run's id."""
    if flow_run.id:
        os.environ[FLOW_RUN_ENV] = str(flow_run.id)


# ------------------------------------------------------------------ DVC bookkeeping

def _dvc(*args: str) -> subprocess.CompletedProcess:
    with FileLock(".dvc/tmp/ferops-flow.lock"):  # one DVC command at a time: DVC locks the repo
        return subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)


def is_current(stage: str) -> bool:
    """True when `dvc status` has nothing to say about the stage (its deps, params and outs match dvc.lock)."""
    result = _dvc("status", "--quiet", stage)
    return result.returncode == 0


def commit(stage: str) -> None:
    result = _dvc("commit", "--force", "--quiet", stage)
    if result.returncode != 0:
        raise FeropsError(f"dvc commit {stage}: {(result.stderr or result.stdout).strip().splitlines()[-1]}")


# ------------------------------------------------------------------ fan-out

def task_runner(params: Params):
    """The Prefect task runner params.yaml's `runner:` names (created per use: a runner is a context manager)."""
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    r = params.runner
    if r.kind == "local":
        return ThreadPoolTaskRunner(max_workers=1)
    if r.kind == "processes":
        return ProcessPoolTaskRunner(max_workers=r.workers)
    from prefect_dask import DaskTaskRunner

    if r.address:
        return DaskTaskRunner(address=r.address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": r.workers, "threads_per_worker": 1, "processes": True})


def prefect_mapper(params: Params):
    """A ferops.runners Mapper whose jobs are Prefect tasks: each fold shows in the UI, retried on a crash."""
    def mapper(fn: Callable, jobs):
        arg = next(iter(inspect.signature(fn).parameters))
        job_task = task(fn, name=fn.__name__.replace("_", "-"), retries=1, cache_policy=NO_CACHE)
        with task_runner(params) as runner:
            futures = [runner.submit(job_task, {arg: job}) for job in jobs]
            return [f.result() for f in futures]  # a failed job raises here: the flow fails, nothing partial
    return mapper


# ------------------------------------------------------------------ the stages

def plan(targets: list[str]) -> list[str]:
    """`targets` and every stage upstream of them, in dependency order, read from dvc.yaml (as `dvc repro` does)."""
    import networkx as nx
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    with Repo(".") as repo:
        graph = repo.index.graph  # edges: stage -> the stages it depends on
        by_name = {node.addressing: node for node in graph.nodes if isinstance(node, PipelineStage)}
        unknown = sorted(set(targets) - set(by_name))
        if unknown:
            raise FeropsError(f"dvc.yaml has no stage {unknown[0]!r}; stages: {sorted(by_name)}")
        nodes = set().union(*({by_name[t], *nx.descendants(graph, by_name[t])} for t in targets))
        order = nx.lexicographical_topological_sort(graph.subgraph(nodes).reverse(), key=lambda n: n.addressing)
        return [n.addressing for n in order if n.addressing in by_name]


def all_stages() -> list[str]:
    """Every stage of dvc.yaml, in dependency order."""
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    with Repo(".") as repo:
        return plan([n.addressing for n in repo.index.graph.nodes if isinstance(n, PipelineStage)])


def run_stages(targets: list[str], overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """The body of every flow: settings into params.yaml, then each planned stage as a task, in order."""
    tag_runs_with_flow_run()
    apply_overrides({k: v for k, v in (overrides or {}).items() if v is not None})
    results = {}
    for stage in plan(targets):
        results[stage] = stage_result(run_stage(stage, force=force))  # a failed stage raises: later ones don't run
    return results


def stage_result(value: dict | State) -> dict:
    """A stage task's dict: a task that returns its own state (Skipped) hands that state to its caller."""
    return value.result() if isinstance(value, State) else value


def stage_command(stage: str) -> list[str]:
    """The arguments of the stage's `ferops ...` cmd in dvc.yaml (foreach entries resolved, as DVC runs them)."""
    import shlex

    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    with Repo(".") as repo:
        found = [n for n in repo.index.graph.nodes if isinstance(n, PipelineStage) and n.addressing == stage]
    if not found:
        raise FeropsError(f"dvc.yaml has no stage {stage!r}")
    argv = shlex.split(found[0].cmd)
    if argv[:1] != ["ferops"]:
        raise FeropsError(f"dvc.yaml stage {stage!r}: cmd {found[0].cmd!r} is not a ferops command; flows run only those")
    return argv[1:]


@task(retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE, task_run_name="{stage}")
def run_stage(stage: str, params_path: str = str(PARAMS), force: bool = False) -> dict:
    """Run one DVC stage's own `ferops` command in this process and record it in dvc.lock; skip it when current.

    A skipped stage ends in a Completed state named `Skipped` whose message says why; one that ran, `Completed`.

    The command comes from dvc.yaml, so a flow cannot drift from `dvc repro`. Jobs the stage
    fans out (CV folds and the other runner jobs) become Prefect tasks on `runner:`'s task runner.
    Retries cover transient failures (a tracking server restarting); a stage that fails on
    its data fails the same way three times and then fails the flow.
    """
    from ferops.cli import run_command
    from ferops.runners import jobs_run_by

    if not force and is_current(stage):
        reason = f"{stage}: up to date (dvc status: deps, params and outs match dvc.lock), skipped"
        print(reason)
        # A Completed state of its own name: the Prefect UI tells a run that recomputed nothing from one that did.
        return Completed(name=SKIPPED, message=reason, data={"stage": stage, "ran": False, "reason": reason})
    argv = stage_command(stage)
    with jobs_run_by(prefect_mapper(load_params(params_path))):
        run_command(["--params", params_path, *argv])
    commit(stage)
    print(f"{stage}: done, recorded in dvc.lock")
    return {"stage": stage, "ran": True, "command": "ferops " + " ".join(argv)}

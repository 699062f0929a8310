"""What every ferops flow is made of: one Prefect task per DVC stage.

The rule, applied to every stage: a task calls the same ferops function as the
stage's `ferops <command>` in dvc.yaml, with params.yaml as DVC sees it, and
then records the stage in dvc.lock (`dvc commit`), so that after a flow run
`dvc status` is clean and a later `dvc repro` does not redo the work. A stage
DVC already reports up to date is skipped (as `dvc repro` would), unless the
flow is asked to `force` it.

Settings: a flow's `overrides` (dotted keys) are written into params.yaml
before anything runs, exactly as `dvc exp run -S key=value` does, so the files,
dvc.lock and the MLflow runs all describe the same settings
(`git diff params.yaml` shows them; `git checkout params.yaml` undoes them).

Fan-out: CV folds run as Prefect tasks on the task runner that params.yaml's
`runner:` names (threads for `local`, a process pool, or Dask).

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
from ruamel.yaml import YAML
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from ferops.quiet_tf import import_tensorflow

import_tensorflow()  # flow runs start in a fresh process: no GPU-build start-up chatter in their logs
from ferops import pipeline  # noqa: E402
from ferops.config import Params, load_params, nest, read_params_file
from ferops.errors import FeropsError
from ferops.io import atomic_file
from ferops.tracking.run_safety import FLOW_RUN_ENV
from ferops.tracking.store import configure

PARAMS = Path("params.yaml")
MODEL = "outputs/model/model.keras"


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
        results[stage] = run_stage(stage, force=force)  # a failed stage raises: the flow fails, later stages don't run
    return results


def _experiment(fn: Callable[[Params], dict]) -> Callable[[Params], dict]:
    def run(params: Params) -> dict:
        configure(params.tracking)
        return fn(params)
    return run


def _stage_functions() -> dict[str, Callable[[Params], Any]]:
    """DVC stage name -> the function its `ferops <command>` calls (same arguments as the command's defaults)."""
    from ferops.data.domains import render_domain
    from ferops.experiments.analyze import analyze
    from ferops.experiments.au import run_au
    from ferops.experiments.cross_task import run_cross_task
    from ferops.experiments.micro import micro
    from ferops.experiments.transfer import run_transfer
    from ferops.serving.package import package
    from ferops.tuning.study import run_tune

    stages: dict[str, Callable[[Params], Any]] = {
        "generate": lambda p: pipeline.generate(p.synthfacs, p.seed, track=True, tracking=p.tracking),
        "preprocess": pipeline.preprocess,
        "validate": lambda p: pipeline.validate(p, report_path=Path("outputs/validation.json")).success,
        "tune": lambda p: run_tune(p),
        "cv": lambda p: pipeline.cross_validate(p, mapper=prefect_mapper(p)).metrics,
        "refit": pipeline.refit,
        "register": pipeline.register,
        "au": _experiment(lambda p: run_au(p, out_dir=Path("outputs/au"))),
        "transfer": _experiment(lambda p: run_transfer(p, out_dir=Path("outputs/transfer"))["metrics"]),
        "cross_task": _experiment(lambda p: run_cross_task(p, MODEL, out_dir=Path("outputs/cross_task"))["metrics"]),
        "analyze": lambda p: analyze(p, MODEL, out_dir=Path("outputs/analysis")),
        "micro": lambda p: micro(p, out_dir=Path("outputs/micro"))["metrics"],
        "package": lambda p: package(p, out_path=Path("outputs/package/run.json"))["registry"],
    }
    for name in read_params_file(PARAMS)["domains"]:
        stages[f"domain@{name}"] = lambda p, name=name: str(render_domain(p.domains[name], p.seed, name))
    return stages


@task(retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE, task_run_name="{stage}")
def run_stage(stage: str, params_path: str = str(PARAMS), force: bool = False) -> dict:
    """Run one DVC stage through its ferops function and record it in dvc.lock; skip it when DVC says current.

    Retries cover transient failures (a tracking server restarting); a stage that fails on
    its data fails the same way three times and then fails the flow.
    """
    if not force and is_current(stage):
        print(f"{stage}: up to date (dvc status), skipped")
        return {"stage": stage, "ran": False}
    functions = _stage_functions()
    if stage not in functions:
        raise FeropsError(f"no ferops stage {stage!r}; known: {sorted(functions)}")
    result = functions[stage](load_params(params_path))
    commit(stage)
    print(f"{stage}: done, recorded in dvc.lock")
    return {"stage": stage, "ran": True, "result": _jsonable(result)}


def _jsonable(value):
    import json

    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)

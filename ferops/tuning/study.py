"""`ferops tune`: one Optuna study per outer CV fold, worked by N processes, tracked in MLflow.

Layout in MLflow: a `tune` run, one nested run per study (best params, best
value, optimisation-history / importance / parallel-coordinate plots as PNG and
HTML) and, under each study, one nested run per trial (its settings, its
per-epoch validation curves, its Optuna state: COMPLETE, PRUNED or FAIL).

Workers are processes (TensorFlow does not train in threads). This process is
their supervisor: a worker that dies (killed, out of memory) has its running
trial marked FAIL at once, that trial is enqueued again (RetryHeartbeatStaleTrialCallback),
and a replacement worker joins, so the study still ends with `tune.trials`
finished trials. Trials run by workers on other machines (an RDB storage) are
covered by Optuna's heartbeat instead.

With `runner.kind: dask` the workers are Dask tasks instead of child processes
(run_dask_workers), so they can run on other machines sharing the storage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import psutil
from mlflow.tracking import MlflowClient
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from ferops.config import Params, flatten, load_params, overlay
from ferops.data.dataset import Dataset
from ferops.errors import FeropsError
from ferops.evaluation import save_figure, write_csv, write_json
from ferops.runners import mapper_for
from ferops.tracking.job_runs import portable_uri
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.run_safety import process_tags
from ferops.tracking.store import configure
from ferops.train.folds import emotion_folds
from ferops.train.precision import resolve as resolve_precision
from ferops.tuning.objective import score_trial
from ferops.tuning.overlay import BEST_PARAMS, write_overlay
from ferops.tuning.space import apply, baseline, max_epochs, trial_overrides
from ferops.tuning.storage import open_storage

OUT_DIR = BEST_PARAMS.parent
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def settings_hash(params: Params, data_hash: str) -> str:
    """What makes two studies the same study: data, recipe, search space, inner splits, pruner, seed."""
    flat = flatten(params)
    keep = {k: v for k, v in flat.items() if k.split(".")[0] in ("seed", "model", "train", "cv")}
    keep |= {k: v for k, v in flat.items() if k.startswith(("tune.space", "tune.inner_folds", "tune.pruner"))}
    blob = json.dumps({"data": data_hash, "settings": keep}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def make_sampler(params: Params, fold: int, worker: int) -> optuna.samplers.BaseSampler:
    # Each worker its own seed: equal seeds would propose the same first settings in every process.
    return optuna.samplers.TPESampler(seed=params.seed + 1000 * fold + worker,
                                      n_startup_trials=max(2, params.tune.trials // 3))


def make_pruner(params: Params) -> optuna.pruners.BasePruner:
    p = params.tune.pruner
    if p.kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_steps)
    if p.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=params.tune.inner_folds * max_epochs(params))
    return optuna.pruners.NopPruner()


# ---------------------------------------------------------------- the worker side

def work(plan: dict, worker: int, recover: bool = False) -> None:
    """Run trials of every study in the plan until each has `tune.trials` finished trials.

    `recover`: first fail (and enqueue again) the trials of dead workers on this host: a Dask task
    rerun after its worker process died starts here, with nobody else to clean up after it.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "tracking_uri" in plan:  # a Dask worker's own environment may name another store
        os.environ["MLFLOW_TRACKING_URI"] = plan["tracking_uri"]
    params = load_params(plan["params_path"], plan["changes"])
    configure(params.tracking)
    dataset, y, folds = emotion_folds(Dataset.load(params.dataset.processed_dir), params)
    storage = open_storage(params.tune.storage, params.tune.heartbeat_s)
    if recover:
        recover_dead_trials(storage, plan, params)
    for entry in plan["studies"]:
        fold, run_id = entry["fold"], entry["run_id"]
        study = optuna.load_study(study_name=entry["name"], storage=storage,
                                  sampler=make_sampler(params, fold, worker), pruner=make_pruner(params))
        if len(study.get_trials(deepcopy=False, states=FINISHED)) >= params.tune.trials:
            continue
        train_rows = np.flatnonzero(folds != fold)  # the outer test fold never reaches a trial

        def objective(trial: optuna.Trial) -> float:
            trial.set_user_attr("worker", worker_id())
            overrides = trial_overrides(trial, params)
            tags = {"ferops.kind": "tune-trial", "optuna.study": entry["name"], "optuna.trial": str(trial.number),
                    "cv.outer_fold": str(fold), "ferops.worker": worker_id(), **process_tags()}
            with mlflow.start_run(run_name=f"fold{fold}-trial{trial.number:03d}", parent_run_id=run_id,
                                  tags=tags) as run:
                trial.set_user_attr("mlflow_run_id", run.info.run_id)
                mlflow.log_params(overrides | {"outer_fold": fold, "n_train_rows": len(train_rows)})
                pruned = None
                try:
                    value = score_trial(trial, apply(params, overrides), dataset.images, y, dataset.subjects,
                                        train_rows, dataset.classes, run.info.run_id)
                except optuna.TrialPruned as exc:
                    pruned = exc
                mlflow.set_tag("optuna.state", "PRUNED" if pruned else "COMPLETE")
                if not pruned:
                    mlflow.log_metric("objective", value)
            print(f"tune fold {fold} trial {trial.number}: "
                  + (f"pruned ({pruned})" if pruned else f"inner val accuracy {value:.4f}"), flush=True)
            if pruned:
                raise pruned
            return value

        study.optimize(objective, callbacks=[MaxTrialsCallback(params.tune.trials, states=FINISHED)])


# ---------------------------------------------------------------- the supervisor side

def recover_dead_trials(storage, plan: dict, params: Params, alive=psutil.pid_exists, retry: bool = True) -> list[int]:
    """FAIL (and, with `retry`, enqueue again) the RUNNING trials whose worker process on this host is gone.

    Only this host's workers can be checked (by pid); a worker on another machine is
    covered by an RDB storage's heartbeat, or by a later `ferops tune` on its own host.
    """
    host = socket.gethostname()
    enqueue = RetryHeartbeatStaleTrialCallback(max_retry=1) if retry else (lambda study, trial: None)
    client = MlflowClient()
    recovered = []
    for entry in plan["studies"]:
        study = optuna.load_study(study_name=entry["name"], storage=storage)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = trial.user_attrs.get("worker", "")
            name, _, pid = worker.partition(":")
            if name != host or not pid.isdigit() or alive(int(pid)):
                continue
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            enqueue(study, storage.get_trial(trial._trial_id))
            if "mlflow_run_id" in trial.user_attrs:
                client.set_tag(trial.user_attrs["mlflow_run_id"], "optuna.state", "FAIL")
                client.set_terminated(trial.user_attrs["mlflow_run_id"], "FAILED")
            print(f"tune: worker {worker} died during fold {entry['fold']} trial {trial.number}: "
                  f"marked FAIL{', enqueued again' if retry else ''}", flush=True)
            recovered.append(trial.number)
    return recovered


def run_workers(plan: dict, plan_path: Path, n: int, storage, params: Params) -> None:
    """n worker processes on the plan; a dead one is recovered and replaced (at most n times in all)."""
    def start(k: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "ferops.tuning.worker", str(plan_path), str(k)])

    procs = {k: start(k) for k in range(n)}
    plan["worker_pids"] = {k: p.pid for k, p in procs.items()}
    replacements = 0
    while procs:
        time.sleep(0.5)
        for k, proc in list(procs.items()):
            code = proc.poll()
            if code is None:
                continue
            del procs[k]
            if code == 0:
                continue
            recover_dead_trials(storage, plan, params)
            if replacements >= n:
                for other in procs.values():
                    other.kill()
                raise FeropsError(f"tune: worker {k} exited with code {code} and {replacements} workers were "
                                  f"already replaced; the worker output above says why")
            replacements += 1
            procs[k] = start(k)
            print(f"tune: worker {k} exited with code {code}; started a replacement (pid {procs[k].pid})", flush=True)


def portable_plan(plan: dict, params: Params) -> dict:
    """The plan with every path absolute and the tracking store named: what a Dask worker anywhere needs.

    Workers on other machines need the same paths (a shared filesystem, or the same checkout and
    data at the same place) and a storage they can all reach (an RDB URL; a journal on shared disk).
    """
    storage = params.tune.storage
    if storage.startswith("journal:"):
        storage = f"journal:{Path(storage.removeprefix('journal:')).resolve()}"
    changes = overlay(plan["changes"], {"dataset": {"processed_dir": str(Path(params.dataset.processed_dir).resolve())},
                                        "tune": {"storage": portable_uri(storage) if storage.startswith("sqlite")
                                                 else storage}})
    return {**plan, "params_path": str(Path(plan["params_path"]).resolve()), "changes": changes,
            "tracking_uri": portable_uri(mlflow.get_tracking_uri())}


def dask_work(job: tuple[dict, int]) -> int:
    """One tune worker as a Dask task: recover this host's dead workers' trials (a rerun follows a death), then work."""
    plan, k = job
    work(plan, k, recover=True)
    return k


def run_dask_workers(plan: dict, n: int, storage, params: Params) -> None:
    """n workers as Dask tasks on params.runner's cluster (a LocalCluster of n processes without an address;
    in a Prefect flow, the flow's task runner).

    A task whose worker process dies is run again by Dask on another worker (up to
    distributed.scheduler.allowed-failures); the rerun first fails the dead attempt's trial and
    enqueues it again when both ran on one host (the pid is checked). A dead worker on another
    host is not visible that way: with an RDB storage Optuna's heartbeat fails its trial once it
    is silent for 3 x tune.heartbeat_s (any live worker does it at its next trial) and retries it;
    with a journal or SQLite file it stays RUNNING until a `ferops tune` on that host resumes the study.
    """
    portable = portable_plan(plan, params)
    mapper_for(dataclasses.replace(params.runner, workers=n))(dask_work, [(portable, k) for k in range(n)])
    recover_dead_trials(storage, plan, params, retry=False)  # this host's leftovers; the studies are complete


def _plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Optimisation history, parameter importances, parallel coordinates: PNG (matplotlib) and HTML (plotly)."""
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    kinds = {"history": "plot_optimization_history", "parallel": "plot_parallel_coordinate"}
    if len(complete) >= 2 and len({json.dumps(t.params, sort_keys=True) for t in complete}) >= 2:
        kinds["importance"] = "plot_param_importances"
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, fn in kinds.items():
            ax = getattr(vis_mpl, fn)(study)
            fig = (ax.flat[0] if isinstance(ax, np.ndarray) else ax).figure
            fig.set_size_inches(9, 5)
            fig.tight_layout()
            written.append(save_figure(fig, out_dir / f"{name}.png"))
            html = out_dir / f"{name}.html"
            getattr(vis, fn)(study).write_html(str(html), include_plotlyjs="cdn")
            written.append(html)
    return written


def _finish_study(study: optuna.Study, entry: dict, out_dir: Path) -> dict:
    client = MlflowClient()
    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    if not counts["complete"]:
        raise FeropsError(f"tune: study {entry['name']} has no complete trial ({counts}); widen tune.space or "
                          f"relax tune.pruner")
    best = study.best_trial
    fold_dir = out_dir / f"fold{entry['fold']}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    for path in _plots(study, fold_dir):
        client.log_artifact(entry["run_id"], str(path), artifact_path="plots")
    for key, value in best.params.items():
        client.log_param(entry["run_id"], f"best.{key}", value)
    for key, value in {"best_value": best.value, "best_trial": best.number, **{f"trials_{k}": v for k, v in counts.items()}}.items():
        client.log_metric(entry["run_id"], key, value)
    client.set_terminated(entry["run_id"], "FINISHED")
    return {"fold": entry["fold"], "study": entry["name"], "best_value": float(best.value),
            "best_trial": best.number, "params": {k: _plain(v) for k, v in best.params.items()}, **counts}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _disabled(out_dir: Path) -> dict:
    write_overlay({"enabled": False, "note": "tune.enabled is false: cv and refit use params.yaml as is"},
                  out_dir / BEST_PARAMS.name)
    write_json({"enabled": 0}, out_dir / "metrics.json")
    return {"enabled": False}


def run_tune(params: Params, out_dir: Path = OUT_DIR, workers: int | None = None,
             params_path: str | Path = "params.yaml", changes: dict | None = None) -> dict:
    """Tune the emotion recipe per outer fold; write best_params.yaml (the cv/refit overlay) and the study tables."""
    out_dir = Path(out_dir)
    if not params.tune.enabled:
        return _disabled(out_dir)
    workers = workers or params.tune.workers
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    experiment_id = configure(params.tracking)
    dataset, y, folds = emotion_folds(Dataset.load(params.dataset.processed_dir), params)
    lineage = lineage_tags({"data": params.dataset.processed_dir})
    key = settings_hash(params, lineage["dvc.data"])
    storage = open_storage(params.tune.storage, params.tune.heartbeat_s)
    client = MlflowClient()
    started = time.time()
    top = client.create_run(experiment_id, run_name=f"tune-{dataset.name}", tags={
        **lineage, **process_tags(), "ferops.kind": "tune",
        "ferops.precision": resolve_precision(params.train.precision), "ferops.dataset": dataset.name,
        "optuna.storage": params.tune.storage.split("@")[-1], "tune.settings_hash": key})
    for name, value in flatten(params).items():
        if name.split(".")[0] in ("seed", "model", "train", "cv", "tune"):
            client.log_param(top.info.run_id, name, str(value)[:500])
    plan = {"params_path": str(params_path), "changes": changes or {}, "studies": []}
    for fold in range(params.cv.folds):
        name = f"{params.tune.study}-{dataset.name}-{key}-fold{fold}"
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        if not study.trials:  # params.yaml's own recipe first, then the settings asked for
            study.enqueue_trial(baseline(params), user_attrs={"ferops.baseline": True})
            for settings in params.tune.enqueue:
                study.enqueue_trial(dict(settings))
        run = client.create_run(experiment_id, run_name=f"study-fold{fold}", tags={
            "mlflow.parentRunId": top.info.run_id, "ferops.kind": "tune-study", "optuna.study": name,
            "cv.outer_fold": str(fold), "ferops.dataset": dataset.name, **process_tags()})
        client.log_param(run.info.run_id, "n_train_subjects", int(len(np.unique(dataset.subjects[folds != fold]))))
        plan["studies"].append({"fold": fold, "name": name, "run_id": run.info.run_id})
    try:
        recover_dead_trials(storage, plan, params)  # a resumed study: trials of workers that died last time
        if workers == 1:
            work(plan, 0)
        elif params.runner.kind == "dask":
            run_dask_workers(plan, workers, storage, params)
        else:
            with tempfile.TemporaryDirectory(prefix="ferops-tune-") as tmp:
                plan_path = Path(tmp, "plan.json")
                plan_path.write_text(json.dumps(plan))
                run_workers(plan, plan_path, workers, storage, params)
        results = [_finish_study(optuna.load_study(study_name=e["name"], storage=storage), e, out_dir)
                   for e in plan["studies"]]
    except BaseException:
        for entry in plan["studies"]:
            client.set_terminated(entry["run_id"], "FAILED")
        client.set_terminated(top.info.run_id, "FAILED")
        raise
    trials = pd.concat([
        optuna.load_study(study_name=e["name"], storage=storage)
        .trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
        .assign(outer_fold=e["fold"]) for e in plan["studies"]], ignore_index=True)
    trials["duration"] = trials["duration"].dt.total_seconds()
    write_csv(trials, out_dir / "trials.csv")
    refit_from = max(results, key=lambda r: r["best_value"])  # highest inner-validation score, no test data involved
    write_overlay({"enabled": True, "settings_hash": key,
                   "studies": {r["fold"]: r["study"] for r in results},
                   "folds": {r["fold"]: r["params"] for r in results},
                   "refit": refit_from["params"], "refit_from_fold": refit_from["fold"]}, out_dir / BEST_PARAMS.name)
    metrics = {"enabled": 1, "inner_val_accuracy_mean": float(np.mean([r["best_value"] for r in results])),
               "trials_complete": sum(r["complete"] for r in results), "trials_pruned": sum(r["pruned"] for r in results),
               "trials_failed": sum(r["fail"] for r in results), "wall_s": round(time.time() - started, 1)}
    write_json(metrics, out_dir / "metrics.json")
    write_json({"run_id": top.info.run_id, "storage": params.tune.storage.split("@")[-1], "studies": results,
                "definitions": {"inner_val_accuracy_mean": "mean over outer folds of the best trial's mean "
                                "final-epoch validation accuracy on inner subject splits of that fold's training "
                                "subjects (a selection score, optimistic; the nested CV of `ferops cv` is the "
                                "estimate)"}}, out_dir / "run.json")
    for key_, value in metrics.items():
        client.log_metric(top.info.run_id, key_, value)
    client.log_artifact(top.info.run_id, str(out_dir / BEST_PARAMS.name))
    client.log_artifact(top.info.run_id, str(out_dir / "trials.csv"))
    client.set_terminated(top.info.run_id, "FINISHED")
    return {"enabled": True, "run_id": top.info.run_id, "metrics": metrics, "studies": results}

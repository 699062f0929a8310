"""LOSO subjects, transfer cells, AU folds and tuning workers as runner jobs: the same results in this process and in others.

A job's result must not depend on where it ran nor on what its process ran before it (a worker trains
several subjects, cells or trials): each test runs the experiment here and on other processes and
compares what was written, byte for byte, and the nested runs the parent ended with.
"""

from __future__ import annotations

import os

import mlflow
import numpy as np
import pytest

from conftest import make_params, make_toy_dataset


def _runner(kind: str, workers: int = 2) -> dict:
    return {"runner": {"kind": kind, "workers": workers, "address": None}}


def _children(parent_run_id: str) -> list:
    return mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", output_format="list")


def _files(out, names) -> dict[str, str]:
    return {name: (out / name).read_text() for name in names}


@pytest.mark.slow
def test_micro_loso_subjects_are_jobs_with_the_same_metrics_on_every_runner(tiny_micro, mlflow_store, tmp_path,
                                                                             monkeypatch):
    from ferops.experiments.micro import stage as micro_stage
    from ferops.runners import mapper_for

    emotion = make_toy_dataset(60, 5, 6)  # the pre-trained CNN's weights travel to the workers in the jobs
    results, scores = {}, {}

    def recording(runner):  # the real runner, its per-subject results kept for a closer look than the tables
        def run(fn, jobs):
            scores[runner.kind] = mapper_for(runner)(fn, jobs)
            return scores[runner.kind]
        return run

    monkeypatch.setattr(micro_stage, "mapper_for", recording)
    for kind in ("local", "processes"):
        params = make_params({**_runner(kind), "micro": {"register": False},
                              "tracking": {"artifact_root": str(tmp_path / "artifacts")}})
        results[kind] = micro_stage.micro(params, tmp_path / kind, data=tiny_micro, emotion=emotion)

    names = ("metrics.json", "predictions.csv", "table.csv", "per_class_recall.csv")
    assert _files(tmp_path / "processes", names) == _files(tmp_path / "local", names)
    for here, there in zip(scores["local"], scores["processes"], strict=True):  # CNN+LSTM probabilities, SVM scores
        assert np.array_equal(here.proba, there.proba) and np.array_equal(here.svm_scores, there.svm_scores)
    for kind, result in results.items():
        children = _children(result["run_id"])
        assert sorted(r.info.run_name for r in children) == sorted(
            f"loso-{s}" for s in np.unique(tiny_micro.clips.subjects)), kind
        assert all(r.info.status == "FINISHED" and r.data.tags["ferops.kind"] == "micro-fold" for r in children)
        pids = {int(r.data.tags["ferops.pid"]) for r in children}
        assert (pids == {os.getpid()}) == (kind == "local"), (kind, pids)  # processes: trained elsewhere


def _domain(path, seed: int, name: str, invert: bool) -> str:
    from ferops.data.dataset import Dataset

    toy = make_toy_dataset(n=36, n_classes=3, n_subjects=6, seed=seed)
    images = 255 - toy.images if invert else toy.images
    Dataset(images, toy.manifest, toy.classes, name, {"subjects_known": True}).save(path)
    return str(path)


@pytest.mark.slow
def test_transfer_jobs_give_the_same_models_and_cells_in_other_processes(mlflow_store, tmp_path, monkeypatch):
    """The stage runs here (recording its jobs); then a source model, a diagonal and an off-diagonal cell run
    again on 2 worker processes. A whole second stage on processes would cost two pools and every training again."""
    import keras

    from ferops.experiments.transfer import stage as transfer
    from ferops.experiments.transfer.jobs import load_model_bytes, run_job
    from ferops.runners import local_map, process_map
    from ferops.tracking.store import configure

    monkeypatch.setattr(transfer, "MODES", ("fine_tuned",))  # a new head on the source model, trained on B's folds
    jobs, results = [], []

    def recording(fn, batch):
        out = local_map(fn, batch)
        jobs.extend(batch)
        results.extend(out)
        return out

    monkeypatch.setattr(transfer, "mapper_for", lambda runner: recording)
    paths = [_domain(tmp_path / "a", 0, "upright", False), _domain(tmp_path / "b", 1, "inverted", True)]
    params = make_params({"transfer": {"datasets": paths, "folds": 2, "epochs": 1}})
    configure(params.tracking)
    result = transfer.run_transfer(params, out_dir=tmp_path / "out")

    # Wave 1: both source models and both diagonal cells; wave 2: the off-diagonal cells. One nested run each.
    assert [type(j).__name__ for j in jobs] == ["SourceJob"] * 2 + ["CellJob"] * 4
    children = _children(result["run_id"])
    assert sorted(r.info.run_name for r in children) == sorted(
        ["source-upright", "source-inverted", "upright->upright within", "inverted->inverted within",
         "upright->inverted fine_tuned", "inverted->upright fine_tuned"])
    assert all(r.info.status == "FINISHED" for r in children)
    assert {c["run_id"] for c in result["cells"]} == {r.info.run_id for r in children
                                                      if r.data.tags["ferops.kind"] == "transfer-cell"}

    pick = [0, 3, 4]  # source model of A, the diagonal cell of B, A -> B fine-tuned (given this run's source bytes)
    again = process_map(2)(run_job, [jobs[i] for i in pick])
    weights = [load_model_bytes(r.model).get_weights() for r in (results[0], again[0])]
    keras.backend.clear_session()
    assert all(np.array_equal(x, y) for x, y in zip(*weights)) and len(weights[0]) > 0
    for i, r in zip(pick[1:], again[1:]):
        assert r.metrics == results[i].metrics, jobs[i].run_name
    pids = {int(mlflow.get_run(r.run_id).data.tags["ferops.pid"]) for r in again}
    assert os.getpid() not in pids  # trained elsewhere, logged under the same parent


@pytest.mark.slow
def test_au_folds_are_jobs_with_the_same_tables_on_every_runner(mlflow_store, tmp_path):
    from ferops.data.dataset import Dataset
    from ferops.experiments.au.stage import run_au
    from ferops.tracking.store import configure

    toy = make_toy_dataset(n=60, n_classes=3, n_subjects=6)
    m = toy.manifest.copy()
    for code, band in ((1, 1), (2, 2)):  # the bar in band k "is" AU k
        m[f"AU{code}"] = (toy.labels == band).astype(float)
        m[f"AU{code}_int"] = m[f"AU{code}"] * 3
    Dataset(toy.images, m, toy.classes, "toy_au", {"subjects_known": True}).save(tmp_path / "toy")
    tables = {}
    for kind in ("local", "processes"):
        params = make_params({**_runner(kind), "au": {"data": str(tmp_path / "toy"), "modes": ["all_at_once"],
                                                      "folds": 2, "epochs": 1, "width": 0.125, "refit": False}})
        configure(params.tracking)  # as `ferops au` does: this store's experiment, not an earlier test's
        result = run_au(params, out_dir=tmp_path / kind)
        tables[kind] = _files(tmp_path / kind, ("presence.csv", "intensity.csv", "metrics.json"))
        mode_runs = _children(result["run_id"])
        assert len(mode_runs) == 2  # all-at-once and intensity, each with its folds below it
        for mode_run in mode_runs:
            folds = _children(mode_run.info.run_id)
            assert sorted((r.info.run_name.split("-fold-")[1], r.info.status) for r in folds) == [
                ("00", "FINISHED"), ("01", "FINISHED")], kind
            pids = {int(r.data.tags["ferops.pid"]) for r in folds}
            assert (pids == {os.getpid()}) == (kind == "local"), (kind, pids)  # processes: trained elsewhere
    assert tables["local"] == tables["processes"]


@pytest.mark.slow
def test_tune_workers_as_dask_tasks_share_a_journal_study_and_survive_a_killed_worker(tmp_path, mlflow_store):
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from test_tune import _setup, tune_killing_one_trial

    from ferops.tuning.storage import open_storage

    journal = f"journal:{tmp_path / 'optuna.journal'}"
    params, changes = _setup(tmp_path, {**_runner("dask"), "train": {"epochs": 1},
                                        "tune": {"storage": journal, "trials": 2, "workers": 2, "inner_folds": 2}})
    result, killed = tune_killing_one_trial(params, changes, journal, tmp_path / "tune")
    study = optuna.load_study(study_name=killed["study"], storage=open_storage(journal, 10))
    assert study.trials[killed["trial"]].state == optuna.trial.TrialState.FAIL
    retried = [t.number for t in study.trials
               if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed["trial"]]
    assert retried, "the rerun task did not enqueue the dead worker's trial again"
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    for entry in result["studies"]:
        assert entry["complete"] + entry["pruned"] >= params.tune.trials  # Dask reran the dead worker's task
    client = mlflow.MlflowClient()
    assert client.get_run(killed["run"]).info.status == "FAILED"
    trial_runs = client.search_runs([client.get_run(result["run_id"]).info.experiment_id],
                                    "tags.`ferops.kind` = 'tune-trial'")
    workers = {r.data.tags["ferops.worker"] for r in trial_runs}
    assert len(workers) >= 2 and all(int(w.split(":")[1]) != os.getpid() for w in workers)  # Dask worker processes

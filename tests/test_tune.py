"""ferops tune: nested (no trial sees an outer test subject), N worker processes, pruning, a killed worker."""

from __future__ import annotations

import os
import signal
import threading
import time

import mlflow
import numpy as np
import optuna
import pytest
import yaml

from ferops.config import ParamsError, load_params, overlay
from ferops.train.folds import emotion_folds
from ferops.tuning import objective
from ferops.tuning.overlay import fold_params, read_overlay, refit_params
from ferops.tuning.storage import open_storage
from ferops.tuning.study import run_tune

from conftest import ROOT, TINY, make_toy_dataset


def _setup(tmp_path, changes):
    """A toy processed dataset on disk and the settings a worker process can rebuild (params.yaml + changes)."""
    data = tmp_path / "toy"
    make_toy_dataset(n=96, n_subjects=12).save(data)
    changes = overlay(TINY, overlay({"dataset": {"processed_dir": str(data), "name": "toy"},
                                     "cv": {"folds": 2}, "tune": {"enabled": True}}, changes))
    return load_params(ROOT / "params.yaml", changes), changes


def test_search_space_errors_name_the_key():
    with pytest.raises(ParamsError, match=r"tune.space.train.learning_rat: .*unknown key"):
        load_params(ROOT / "params.yaml", {"tune": {"space": {"train.learning_rat": ["float", 0.1, 0.2]}}})
    with pytest.raises(ParamsError, match=r"tune.space.model.conv_dropout: 1.2 .*must be < 1.0"):
        load_params(ROOT / "params.yaml", {"tune": {"space": {"model.conv_dropout": ["float", 0.1, 1.2]}}})
    with pytest.raises(ParamsError, match=r"tune.space.train.epochs: need low < high"):
        load_params(ROOT / "params.yaml", {"tune": {"space": {"train.epochs": ["int", 5, 2]}}})
    with pytest.raises(ParamsError, match=r"tune.enqueue\[0\].train.batch_size: 7 is not in tune.space"):
        load_params(ROOT / "params.yaml", {"tune": {"enqueue": [{"train.batch_size": 7}]}})


def test_disabled_writes_an_empty_overlay(tmp_path, tiny_params):
    run_tune(tiny_params, out_dir=tmp_path)
    assert read_overlay(tmp_path / "best_params.yaml") == {}
    assert fold_params(tiny_params, {}, 0) is tiny_params


@pytest.mark.slow
def test_no_trial_sees_an_outer_test_subject(tmp_path, mlflow_store, monkeypatch):
    params, changes = _setup(tmp_path, {"tune": {"storage": f"sqlite:///{tmp_path / 'optuna.db'}"}})
    dataset, y, folds = emotion_folds(make_toy_dataset(n=96, n_subjects=12), params)
    subject_of = {img.tobytes(): s for img, s in zip(dataset.images, dataset.subjects)}
    seen: list[tuple[np.ndarray, set]] = []
    real_splits, real_fit = objective.inner_splits, objective.fit_module.fit

    def spy_splits(y_, subjects, train_rows, p):
        seen.append((train_rows, set()))
        return real_splits(y_, subjects, train_rows, p)

    def spy_fit(p, task, x_train, y_train, x_val=None, y_val=None, **kw):
        for x in (x_train, x_val):
            seen[-1][1].update(subject_of[img.tobytes()] for img in np.asarray(x))
        return real_fit(p, task, x_train, y_train, x_val, y_val, **kw)

    monkeypatch.setattr(objective, "inner_splits", spy_splits)
    monkeypatch.setattr(objective.fit_module, "fit", spy_fit)
    result = run_tune(params, out_dir=tmp_path / "tune", workers=1, params_path=ROOT / "params.yaml", changes=changes)

    assert len(seen) == params.cv.folds * params.tune.trials
    for train_rows, subjects_seen in seen:
        (fold,) = [f for f in range(params.cv.folds) if np.array_equal(train_rows, np.flatnonzero(folds != f))]
        assert subjects_seen and not subjects_seen & set(dataset.subjects[folds == fold])
    best = read_overlay(tmp_path / "tune" / "best_params.yaml")
    assert sorted(best["folds"]) == [0, 1] and set(best["refit"]) == set(params.tune.space)
    tuned = fold_params(params, best, 1)
    assert tuned.train.learning_rate == best["folds"][1]["train.learning_rate"]
    assert refit_params(params, best).model.width == best["refit"]["model.width"]
    assert result["metrics"]["trials_complete"] + result["metrics"]["trials_pruned"] == 4


def _kill_one_running_trial(storage_url, killed: dict):
    """Wait for a trial with a worker and an MLflow run, then SIGKILL that worker process."""
    storage = open_storage(storage_url, 10)
    deadline = time.time() + 120
    while time.time() < deadline and "trial" not in killed:
        time.sleep(0.3)
        try:
            summaries = optuna.get_all_study_summaries(storage)
        except Exception:  # the journal is still being created
            continue
        for summary in summaries:
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                if "mlflow_run_id" in t.user_attrs and t.number >= 1:
                    os.kill(int(t.user_attrs["worker"].split(":")[1]), signal.SIGKILL)
                    killed.update(study=summary.study_name, trial=t.number, run=t.user_attrs["mlflow_run_id"])
                    return


def tune_killing_one_trial(params, changes, storage_url: str, out_dir) -> tuple[dict, dict]:
    """`run_tune` while a watcher SIGKILLs the first worker it finds holding a RUNNING trial: (result, killed)."""
    killed: dict = {}
    killer = threading.Thread(target=_kill_one_running_trial, args=(storage_url, killed), daemon=True)
    killer.start()
    result = run_tune(params, out_dir=out_dir, params_path=ROOT / "params.yaml", changes=changes)
    killer.join(timeout=1)
    assert killed, "no running trial was found to kill"
    return result, killed


@pytest.mark.slow
def test_two_workers_share_a_study_prune_and_survive_a_killed_worker(tmp_path, mlflow_store):
    journal = f"journal:{tmp_path / 'optuna.journal'}"
    # params.yaml's recipe (lr 0.01) learns the toy bars; the enqueued lr 1e-9 trials cannot, so the
    # median pruner (1 startup trial) stops them once a good trial has finished.
    params, changes = _setup(tmp_path, {
        "train": {"learning_rate": 0.01, "epochs": 2},
        "tune": {"storage": journal, "trials": 4, "workers": 2,
                 "space": {"train.learning_rate": ["choice", 0.01, 0.000000001]},
                 "enqueue": [{"train.learning_rate": 0.000000001}] * 3}})
    result, killed = tune_killing_one_trial(params, changes, journal, tmp_path / "tune")
    storage = open_storage(journal, 10)
    study = optuna.load_study(study_name=killed["study"], storage=storage)
    assert study.trials[killed["trial"]].state == optuna.trial.TrialState.FAIL
    for entry in result["studies"]:
        assert entry["complete"] + entry["pruned"] >= params.tune.trials  # the study finished despite the kill
    assert result["metrics"]["trials_pruned"] >= 1
    assert result["metrics"]["trials_failed"] >= 1

    client = mlflow.MlflowClient()
    top = client.get_run(result["run_id"])
    study_runs = client.search_runs([top.info.experiment_id], f"tags.mlflow.parentRunId = '{result['run_id']}'")
    assert len(study_runs) == params.cv.folds
    trial_runs = client.search_runs([top.info.experiment_id], "tags.`ferops.kind` = 'tune-trial'")
    assert {r.data.tags["mlflow.parentRunId"] for r in trial_runs} == {r.info.run_id for r in study_runs}
    assert len({r.data.tags["ferops.worker"] for r in trial_runs}) >= 2  # both workers (and the replacement) ran trials
    assert client.get_run(killed["run"]).info.status == "FAILED"
    assert {"PRUNED", "COMPLETE", "FAIL"} <= {r.data.tags.get("optuna.state") for r in trial_runs}
    best = yaml.safe_load((tmp_path / "tune" / "best_params.yaml").read_text())
    assert best["enabled"] and all(v["train.learning_rate"] == 0.01 for v in best["folds"].values())
    assert (tmp_path / "tune" / "fold0" / "history.png").exists()

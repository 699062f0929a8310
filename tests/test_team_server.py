"""The team setup end to end: infra/team_server.sh (real PostgreSQL + `mlflow server`), ferops unchanged against it.

Skipped only where PostgreSQL itself is absent; everything else (initdb, pg_ctl,
the server, Dask workers) is real.
"""

import os

import numpy as np
import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient

from ferops import pipeline
from ferops.predict import load_model
from infra.team_server import postgres_missing, running_team_server

from conftest import make_params

pytestmark = pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))


@pytest.fixture(scope="module")
def team_server():
    with running_team_server() as server:
        yield server


@pytest.mark.slow
def test_dask_cv_logs_folds_under_one_parent_and_the_model_is_pulled_by_alias(team_server, dask_cli, toy_dataset,
                                                                              tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.tracking_uri)  # ferops unchanged, pointed at the server
    params = make_params({"cv": {"folds": 2}, "runner": {"kind": "dask", "workers": 2, "address": dask_cli},
                          "dataset": {"processed_dir": str(tmp_path / "processed")}})
    toy_dataset.save(params.dataset.processed_dir)

    cv = pipeline.cross_validate(params, out_dir=tmp_path / "cv")  # 2 folds on `dask worker` processes
    pipeline.refit(params, cv_dir=tmp_path / "cv", out_dir=tmp_path / "model")
    record = pipeline.register(params, cv_dir=tmp_path / "cv", model_dir=tmp_path / "model",
                               out_path=tmp_path / "registry.json")

    client = MlflowClient(team_server.tracking_uri)
    parent = client.get_run(cv.parent_run_id)
    folds = client.search_runs([parent.info.experiment_id],
                               f"tags.mlflow.parentRunId = '{cv.parent_run_id}' and tags.`ferops.kind` = 'cv-fold'")
    assert sorted((r.info.run_name, r.info.status) for r in folds) == [("fold-00", "FINISHED"),
                                                                       ("fold-01", "FINISHED")]
    assert all(int(r.data.tags["ferops.pid"]) != os.getpid() for r in folds)  # trained and logged by workers
    assert [m.step for m in client.get_metric_history(folds[0].info.run_id, "loss")] == [0]
    assert parent.data.metrics["cv_accuracy_mean"] == pytest.approx(cv.metrics["cv_accuracy_mean"])

    # The runs live in PostgreSQL, the artifacts in the server's artifact destination.
    with sqlalchemy.create_engine(team_server.mlflow_db).connect() as db:
        stored = db.execute(sqlalchemy.text("select count(*) from runs where run_uuid in :ids").bindparams(
            sqlalchemy.bindparam("ids", expanding=True)), {"ids": [cv.parent_run_id, *(r.info.run_id for r in folds)]})
        assert stored.scalar() == 3
    assert any((team_server.directory / "artifacts").rglob("model.keras")) or \
        any((team_server.directory / "artifacts").rglob("MLmodel"))

    assert record["registered"] and record["champion"]
    model, classes = load_model(f"models:/{params.tracking.model_name}@champion")
    assert classes == toy_dataset.classes
    assert model.predict(toy_dataset.images[:4].astype(np.float32), verbose=0).shape == (4, 3)


@pytest.mark.slow
def test_two_tune_workers_share_one_study_in_the_same_postgres(team_server, tmp_path, monkeypatch):
    import optuna

    from ferops.config import load_params, overlay
    from ferops.tuning.storage import open_storage
    from ferops.tuning.study import run_tune

    from conftest import ROOT, TINY, make_toy_dataset

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.tracking_uri)
    make_toy_dataset(n=96, n_subjects=12).save(tmp_path / "toy")
    changes = overlay(TINY, {"dataset": {"processed_dir": str(tmp_path / "toy"), "name": "toy"}, "cv": {"folds": 2},
                             "tune": {"enabled": True, "storage": team_server.optuna_storage, "trials": 3,
                                      "workers": 2}})
    result = run_tune(load_params(ROOT / "params.yaml", changes), out_dir=tmp_path / "tune",
                      params_path=ROOT / "params.yaml", changes=changes)

    storage = open_storage(team_server.optuna_storage, 10)  # the studies are rows in PostgreSQL
    trials = [t for entry in result["studies"]
              for t in optuna.load_study(study_name=entry["study"], storage=storage).trials]
    assert len(trials) >= 6 and len({t.user_attrs["worker"] for t in trials}) == 2  # both processes worked
    with sqlalchemy.create_engine(team_server.optuna_storage).connect() as db:
        assert db.execute(sqlalchemy.text("select count(*) from trials")).scalar() >= 6
    runs = MlflowClient(team_server.tracking_uri).search_runs(
        [MlflowClient(team_server.tracking_uri).get_run(result["run_id"]).info.experiment_id],
        "tags.`ferops.kind` = 'tune-trial'")
    assert len(runs) >= 6  # one nested run per trial, on the team's tracking server

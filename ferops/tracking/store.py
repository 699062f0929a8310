"""Where runs go: a SQLite file in the project unless MLFLOW_TRACKING_URI says otherwise.

A file store needs no server, survives `git clean` (it is ignored, not
deleted) and opens in `mlflow ui` with one command; artifacts sit beside it in
mlartifacts/ so the UI shows images and models without extra setup.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow

from ferops.config import TrackingParams


def tracking_uri(params: TrackingParams) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or params.tracking_uri


def configure(params: TrackingParams) -> str:
    """Point MLflow at the store and select (creating if needed) the experiment; return its id."""
    uri = tracking_uri(params)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.get_experiment_by_name(params.experiment)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    elif uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        # A local store gets a local artifact root; a server decides its own.
        root = Path(params.artifact_root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(params.experiment, artifact_location=root.as_uri())
    else:
        experiment_id = mlflow.create_experiment(params.experiment)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def ui_hint(params: TrackingParams) -> str:
    """The command a researcher runs to look at what was just logged."""
    uri = tracking_uri(params)
    if uri.startswith(("http://", "https://")):
        return f"Open {uri} in a browser to compare runs."
    return f"Open the MLflow UI:  .venv/bin/mlflow ui --backend-store-uri {uri} --port 5000   then browse http://127.0.0.1:5000"

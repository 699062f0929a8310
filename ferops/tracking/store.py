"""Where runs go: a SQLite file in the project unless MLFLOW_TRACKING_URI says otherwise.

A file store needs no server, survives `git clean` (it is ignored, not
deleted) and opens in `mlflow ui` with one command; artifacts sit beside it in
mlartifacts/ so the UI shows images and models without extra setup.

`configure()` is the one call every tracked step makes, so it also keeps the
store honest and readable: runs orphaned by a dead process on this host are
marked FAILED (ferops.tracking.run_safety), every new run is tagged with its
process, and the experiment is marked as model training, not GenAI.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import ferops.tracking.offline  # noqa: F401  (Prefect offline defaults, before any flow starts a server)
from ferops.config import TrackingParams
from ferops.tracking.reachability import check_store
from ferops.tracking.run_safety import fail_orphaned_runs, register_process_tags

_log = logging.getLogger(__name__)

# What the experiment is, for the MLflow UI: its header shows it, MLflow 3 releases before the
# workflow toggle land on Runs (not Traces) because of it, and later ones sync the toggle to it.
# 3.17 itself needs the link from ui_url() as well (see there). Values the UI inferred are replaced.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
DATA_SUFFIX = "-data"  # the experiment of data-making runs: ferops-data beside ferops
_GUESSED_KINDS = {None, "", "no_inferred_type", "genai_development_inferred", "custom_model_development_inferred"}


def data_runs(params: TrackingParams) -> TrackingParams:
    """Where data-making runs (generate, validate) go: `<experiment>-data`, so the results' runs table is results."""
    return dataclasses.replace(params, experiment=f"{params.experiment}{DATA_SUFFIX}")


def tracking_uri(params: TrackingParams) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or params.tracking_uri


def artifacts_elsewhere(uri: str, artifact_location: str) -> str | None:
    """The artifact folder, when a store inside this project keeps writing artifacts outside it.

    MLflow records absolute artifact paths, so a copied or moved project keeps writing into the old
    project's mlartifacts/ with no sign of it.
    """
    from ferops.tracking.sqlite_check import sqlite_path

    store, project = sqlite_path(uri), Path.cwd().resolve()
    if store is None or not artifact_location.startswith("file:") or not store.resolve().is_relative_to(project):
        return None
    folder = Path(urlsplit(artifact_location).path)
    return None if folder.resolve().is_relative_to(project) else str(folder)


def warn_moved_artifacts(uri: str, artifact_location: str) -> None:
    folder = artifacts_elsewhere(uri, artifact_location)
    if folder is not None:
        _log.warning("ferops: the store %s writes artifacts to %s, outside this project (copied or moved?); "
                     "start a fresh store here, or move it back", uri, folder)


def configure(params: TrackingParams) -> str:
    """Point MLflow at the store and select (creating if needed) the experiment; return its id.

    Also: tag new runs with this process, mark orphans of dead processes FAILED,
    and mark the experiment as model training for the UI (see the module docstring).
    """
    uri = tracking_uri(params)
    check_store(uri)  # a dead server is one line now, not minutes of retries
    mlflow.set_tracking_uri(uri)  # the registry follows it (no set_registry_uri: that would stick process-wide)
    register_process_tags()
    kind = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
    experiment = mlflow.get_experiment_by_name(params.experiment)
    if experiment is not None:
        experiment_id = experiment.experiment_id
        warn_moved_artifacts(uri, experiment.artifact_location)
        if experiment.tags.get(EXPERIMENT_KIND_TAG) in _GUESSED_KINDS:  # a kind someone chose is kept
            MlflowClient().set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    elif is_local_store(uri):
        # A local store gets a local artifact root; a server decides its own.
        root = Path(params.artifact_root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(params.experiment, artifact_location=root.as_uri(), tags=kind)
    else:
        experiment_id = mlflow.create_experiment(params.experiment, tags=kind)
    mlflow.set_experiment(experiment_id=experiment_id)
    MlflowClient().set_experiment_tag(experiment_id, f"{SHARED_VIEW_TAG}{RESULTS_VIEW}", json.dumps(results_view()))
    try:
        fail_orphaned_runs([experiment_id])
    except MlflowException as exc:  # housekeeping must not stop a training step; say why it was skipped
        _log.warning("ferops: could not check %s for orphaned runs: %s", uri, str(exc).splitlines()[0])
    return experiment_id


ML_VIEW = "workflowType=machine_learning"
# A saved runs-table view (what the UI's Share button stores): the headline metrics as columns.
# MLflow's table shows no metric column until someone picks one; the link ui_url() prints opens this view.
SHARED_VIEW_TAG = "mlflow.sharedViewState."
RESULTS_VIEW = "ferops-results"
# Metric columns only: MLflow 3.17 draws attribute columns (Dataset, Models) first, and with them and its
# Assistant panel open a 1600-px screen has room for one metric (tests/test_ui.py checks what is visible).
HEADLINE_METRICS = ("cv_accuracy_mean", "all_at_once_f1_mean", "within_mean", "cnn_lstm_5class_uf1")


def results_view() -> dict:
    """The runs-table state of RESULTS_VIEW: search facets plus the UI state's selected columns."""
    # newest first: ordering by a metric would list nested fold runs flat among the headline runs
    return {"searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False, "startTime": "ALL",
            "lifecycleFilter": "Active", "modelVersionFilter": "All Runs", "datasetsFilter": [],
            "selectedColumns": [f"metrics.`{m}`" for m in HEADLINE_METRICS],
            "runsExpanded": {}, "runsPinned": [], "runsHidden": [], "runListHidden": False}
DEFAULT_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store (make ui)


def ui_url(base_url: str, experiment_id: str | None) -> str:
    """The experiment's runs table in the MLflow UI at `base_url`.

    MLflow 3.17's UI takes its GenAI-or-model-training mode from the URL's
    `workflowType`, else from the browser's last choice, which is GenAI in a
    fresh browser: `#/experiments/<id>` alone opens the Traces overview there,
    whatever the experiment's kind tag says. The parameter opens the runs;
    `viewStateShareKey` opens RESULTS_VIEW, which configure() stores on the experiment.
    """
    base = base_url.rstrip("/")
    return base if experiment_id is None else \
        f"{base}/#/experiments/{experiment_id}/runs?{ML_VIEW}&viewStateShareKey={RESULTS_VIEW}"


def run_url(base_url: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the model-training view (deep links too open in GenAI mode without `workflowType`)."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{ML_VIEW}"


def model_version_url(base_url: str, name: str, version: str | int) -> str:
    return f"{base_url.rstrip('/')}/#/models/{name}/versions/{version}?{ML_VIEW}"


def is_local_store(uri: str) -> bool:
    """A store in a file on this machine (SQLite, a file store): no server shows it until someone runs `mlflow ui`."""
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def ui_address(params: TrackingParams) -> tuple[str, str | None]:
    """(the MLflow UI's base address for this store, a note when nothing serves it yet).

    A tracking server's UI is the server's own address; `tracking.ui_url` overrides it (a
    proxy, a team hostname). A local file has no UI until `mlflow ui` runs over it, so its
    links point where `make ui` serves it, and the note says so.
    """
    uri = tracking_uri(params)
    if params.ui_url:
        base = params.ui_url.rstrip("/")
    elif uri.startswith(("http://", "https://")):
        base = uri.rstrip("/")
    else:
        base = DEFAULT_UI
    if is_local_store(uri):
        port = urlsplit(base).port or 5000
        return base, (f"The tracking store is a local file ({uri}), served by no one until "
                      f"`.venv/bin/mlflow ui --backend-store-uri {uri} --port {port}` runs: these links open there.")
    if not uri.startswith(("http://", "https://")) and not params.ui_url:
        return base, (f"The tracking store is a database ({uri.split('@')[-1]}) and params.yaml names no "
                      f"tracking.ui_url: these links assume an `mlflow server` over it on {base}.")
    return base, None


def ui_hint(params: TrackingParams) -> str:
    """The command a researcher runs, and the link they open, to look at what was just logged."""
    uri = tracking_uri(params)
    try:
        experiment = mlflow.get_experiment_by_name(params.experiment) if mlflow.get_tracking_uri() == uri else None
    except MlflowException:  # store unreachable: the plain address still helps
        experiment = None
    experiment_id = experiment.experiment_id if experiment is not None else None
    base, local_note = ui_address(params)
    if local_note is None:
        return f"Open {ui_url(base, experiment_id)} in a browser to compare runs."
    return (f"Open the MLflow UI:  .venv/bin/mlflow ui --backend-store-uri {uri} --port 5000   then browse "
            f"{ui_url(base, experiment_id)}")

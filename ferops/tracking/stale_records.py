"""Stage records that point at runs the tracking store no longer has are removed before `dvc repro`.

DVC decides what to rerun from files; MLflow holds what those files describe.
When the two part ways (a deleted or swapped mlflow.db, another
MLFLOW_TRACKING_URI, a workspace restored from the DVC cache), DVC would skip
stages whose runs and registered models do not exist here, and a newcomer
would pull nothing. Deleting exactly the stale records, and whatever was built
on them, makes `dvc repro` redo those stages honestly; nothing else changes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ferops.config import Params
from ferops.stages import STAGES  # the stage outputs, named in one place
from ferops.tracking.registration import Registration, read_registration
from ferops.tracking.store import configure

# The emotion chain: a lost CV run invalidates the refit model and its registration too.
EMOTION_CHAIN = ("cv", "refit", "register")
CV_RECORD, MODEL_DIR, REGISTRY_RECORD = STAGES["cv"].record, STAGES["refit"].out, STAGES["register"].record
# Every other stage with an uncached run record ({"run_id": ...}) and maybe a registration (registry.json):
# removing the record is enough for `dvc repro` to rerun the stage.
EXPERIMENTS = tuple(s for s in STAGES.values() if s.record is not None and s.command not in EMOTION_CHAIN)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _run_exists(client: MlflowClient, run_id: str | None) -> bool:
    if not run_id:
        return False
    try:
        client.get_run(run_id)
        return True
    except MlflowException:
        return False


def _version_matches(client: MlflowClient, registration: Registration) -> bool:
    try:
        version = client.get_model_version(registration.model, registration.version)
    except MlflowException:
        return False
    return version.run_id == registration.run_id


def _remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def clear_stale_records(params: Params) -> list[str]:
    """Remove records whose runs/versions the store lacks; return one line per removal."""
    configure(params.tracking)
    uri = mlflow.get_tracking_uri()
    client = MlflowClient()
    lines = []
    cv = _read(CV_RECORD)
    if cv is not None and not _run_exists(client, cv.get("run_id")):
        _remove(CV_RECORD, MODEL_DIR, REGISTRY_RECORD)
        lines.append(f"{CV_RECORD}: CV run {cv.get('run_id')} is not in {uri}; the cv, refit and register stages will rerun")
    model = _read(MODEL_DIR / "run.json")
    if model is not None and model.get("refit") and not _run_exists(client, model.get("run_id")):
        _remove(MODEL_DIR, REGISTRY_RECORD)
        lines.append(f"{MODEL_DIR}: refit run {model.get('run_id')} is not in {uri}; refit and register will rerun")
    registration = read_registration(REGISTRY_RECORD)
    if registration is not None and registration.registered and not _version_matches(client, registration):
        _remove(REGISTRY_RECORD)
        lines.append(f"{REGISTRY_RECORD}: {registration.model} v{registration.version} is not in {uri}; "
                     f"register will rerun")
    for stage in EXPERIMENTS:
        record = _read(stage.record)
        if record is None:
            continue
        registration = read_registration(stage.registration) if stage.registration else None
        if not _run_exists(client, record.get("run_id")):
            _remove(stage.record)
            lines.append(f"{stage.record}: run {record.get('run_id')} is not in {uri}; its stage will rerun")
        elif registration is not None and registration.registered and not _version_matches(client, registration):
            _remove(stage.record, stage.registration)
            lines.append(f"{stage.record}: {registration.model} v{registration.version} is not in {uri}; "
                         f"its stage will rerun")
    return lines

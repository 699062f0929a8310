"""Build fer-pipeline from the current champions and register it: `ferops package` (the DVC `package` stage).

fer-pipeline@champion is, by definition, the bundle of the champions at the
last `ferops package`: a new bundle always takes the alias, because its
evidence is its components' (which were promoted on comparable scores by
ferops.tracking.registry), not a score of its own. Each version carries:

- lineage tags naming the exact component versions and their runs
  (`bundle.emotion` = fer-emotion/3, `bundle.emotion.run_id`, `bundle.au`, ...);
- the emotion champion's comparability key, score and CV run as its evidence,
  so `ferops registry list --name fer-pipeline` shows it complete;
- a champion-history entry, so `ferops registry rollback --name fer-pipeline` works.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ferops.config import Params, flatten
from ferops.errors import FeropsError
from ferops.evaluation import write_json
from ferops.serving.analyzer import Settings
from ferops.serving.pipeline_model import log_pipeline
from ferops.tracking import registry
from ferops.tracking.lineage import git_commit
from ferops.tracking.registration import register_model, write_registration
from ferops.tracking.store import configure

OUT = Path("outputs/package/run.json")

def champion(client: MlflowClient, name: str):
    """The champion ModelVersion of `name`, or None when the model or its alias does not exist."""
    try:
        return client.get_model_version_by_alias(name, registry.CHAMPION)
    except MlflowException:
        return None


def _component(client: MlflowClient, version, workdir: Path, labels_key: str) -> tuple[str, tuple[str, ...], dict]:
    """Download a champion's .keras file; returns (path, output labels, lineage)."""
    uri = f"models:/{version.name}/{version.version}"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(workdir / version.name)))
    files = sorted(local.rglob("*.keras"))
    if not files:
        raise FeropsError(f"{uri}: no .keras file in the logged model; re-register it with this ferops version")
    labels = (mlflow.models.get_model_info(uri).metadata or {}).get(labels_key)
    if not labels:
        raise FeropsError(f"{uri}: its metadata lacks `{labels_key}`, so its outputs cannot be named; "
                          f"re-register it with this ferops version")
    lineage = {"model": version.name, "version": str(version.version), "run_id": version.run_id, "uri": uri}
    return str(files[0]), tuple(labels), lineage


def package(params: Params, out_path: Path = OUT) -> dict:
    """Bundle the emotion champion (required) and the AU champion (when registered), log, register, record."""
    configure(params.tracking)
    client = MlflowClient()
    name, settings = params.serving.model_name, Settings.from_params(params.serving)
    emotion = champion(client, params.tracking.model_name)
    if emotion is None:
        raise FeropsError(f"models:/{params.tracking.model_name}@champion: no emotion champion in "
                          f"{mlflow.get_tracking_uri()}; run the pipeline first (`make run`, or `dvc repro register`)")
    tags = emotion.tags or {}  # the bundle is registered on its emotion champion's evidence
    evidence_key = registry.ComparabilityKey.from_tags(tags)
    if evidence_key is None or not all(k in tags for k in (registry.SCORE, registry.METRIC, registry.CV_RUN_ID)):
        raise FeropsError(f"models:/{params.tracking.model_name}/{emotion.version}: the champion has no evidence "
                          f"tags (score, metric, key, cv_run_id); re-register it with this ferops version")
    au = champion(client, params.au.model_name)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        files, labels, parts = {}, {}, {}
        for key, version, labels_key in (("emotion", emotion, "classes"), ("au", au, "labels")):
            if version is not None:
                files[key], labels[key], parts[key] = _component(client, version, workdir, labels_key)
        lineage = {f"bundle.{k}": f"{p['model']}/{p['version']}" for k, p in parts.items()}
        lineage |= {f"bundle.{k}.run_id": p["run_id"] for k, p in parts.items()}
        lineage.setdefault("bundle.au", "none")
        with mlflow.start_run(run_name=f"package-{name}") as run:
            mlflow.set_tags({"ferops.kind": "package", **lineage, **git_commit()})
            mlflow.log_params(flatten(params.serving, "serving."))
            info = log_pipeline(name, files, labels, settings, workdir, metadata={"components": parts})
    what = " + ".join(f"{p['model']} v{p['version']}" for p in parts.values())
    reason = (f"bundles the current champions {what} ({settings.detector} detection, eye-aligned crops); "
              f"fer-pipeline@champion follows the champions at each `ferops package`")
    if au is None:
        reason += f"; no {params.au.model_name} champion yet, so no AU columns"
    registration = register_model(info.model_uri, name, float(tags[registry.SCORE]), tags[registry.METRIC],
                                  evidence_key, run.info.run_id, tags[registry.CV_RUN_ID], tags=lineage, rule=reason)
    write_registration(registration, out_path.parent / "registry.json")
    record = {"run_id": run.info.run_id, "model_uri": info.model_uri, "components": parts,
              "registry": registration.as_dict()}
    write_json(record, out_path)
    return record

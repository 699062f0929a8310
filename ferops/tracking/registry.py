"""Registry policy: every new model is `candidate`; it becomes `champion` only on evidence.

Downstream users pull `models:/<name>@champion`, so the alias must move only
when a model's cross-validated score beats the champion's - never because it
is newer. The decision and the two scores are written onto the version as
tags, so the UI shows why each version was or was not promoted.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CANDIDATE = "candidate"
CHAMPION = "champion"


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    score: float
    champion_score: float | None
    promoted: bool

    @property
    def reason(self) -> str:
        if self.champion_score is None:
            return f"first model: no champion yet, {self.score:.4f} becomes champion"
        verb = "beats" if self.promoted else "does not beat"
        return f"{self.score:.4f} {verb} champion {self.champion_score:.4f}"


def champion_score(client: MlflowClient, name: str, metric: str) -> float | None:
    """The champion's score from the run that measured it (`cv_run_id` tag), else from its version tag."""
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    for run_id in (version.tags.get("cv_run_id"), version.run_id):
        if run_id:
            value = client.get_run(run_id).data.metrics.get(metric)
            if value is not None:
                return float(value)
    value = version.tags.get(metric)
    return None if value is None else float(value)


def register_and_promote(model_uri: str, name: str, metric: str, score: float, tags: dict | None = None) -> Promotion:
    """Register `model_uri` under `name`, alias it candidate, and champion if `score` is better."""
    client = MlflowClient()
    version = mlflow.register_model(model_uri, name).version
    best = champion_score(client, name, metric)
    promoted = best is None or score > best
    promotion = Promotion(name, str(version), score, best, promoted)
    # repr keeps every digit: a rounded tag would let an equal score "beat" the champion next time.
    for key, value in {**(tags or {}), metric: repr(float(score)), "promotion": promotion.reason}.items():
        client.set_model_version_tag(name, version, key, str(value))
    client.set_registered_model_alias(name, CANDIDATE, version)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    return promotion

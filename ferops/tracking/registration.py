"""What a stage's registration did, in one shape: built here, written to its registry.json, read back.

The emotion `register` stage, AU, micro and the serving bundle each register a model. Their records
used to be four dict literals with different keys (AU's had no score or metric), and reconcile and
`ferops results` read each its own way. Every stage now builds a Registration with `register_model`
(or `not_registered`), writes it with `write_registration`, and readers get it from `read_registration`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ferops.io import atomic_file
from ferops.tracking.registry import ComparabilityKey, register


@dataclass(frozen=True)
class Registration:
    registered: bool
    reason: str  # why it became champion or not (the version's `promotion` tag), or why nothing was registered
    model: str | None = None  # registered model name
    version: str | None = None
    champion: bool = False  # holds @champion now
    score: float | None = None  # the evidence: `metric` as measured by run `cv_run_id` on `key`
    metric: str | None = None
    key: dict[str, str] | None = None  # the comparability key, as its tags
    model_uri: str | None = None  # what was registered
    run_id: str | None = None  # the run that logged the model
    cv_run_id: str | None = None  # the run that measured the score

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def register_model(model_uri: str, name: str, score: float, metric: str, key: ComparabilityKey, run_id: str,
                   cv_run_id: str, *, tags: dict | None = None, rule: str | None = None) -> Registration:
    """Register `model_uri` under `name` on its evidence (registry.register decides champion, or `rule` does)."""
    promotion = register(model_uri, name, score, metric, key, {"refit_run_id": run_id, **(tags or {})},
                         cv_run_id=cv_run_id, rule=rule)
    return Registration(True, promotion.reason, promotion.name, promotion.version, promotion.promoted,
                        float(score), metric, key.as_tags(), model_uri, run_id, cv_run_id)


def not_registered(reason: str) -> Registration:
    return Registration(False, reason)


def write_registration(registration: Registration, path: Path) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(registration.as_dict(), indent=2))


def read_registration(path: Path) -> Registration | None:
    """The registration recorded at `path`, or None when there is none (or it is unreadable: rerun its stage)."""
    try:
        data = json.loads(Path(path).read_text())
        fields = {f.name for f in dataclasses.fields(Registration)}
        return Registration(**{k: v for k, v in data.items() if k in fields})
    except (OSError, ValueError, TypeError):
        return None

"""`ferops registry list | promote | rollback`: each points MLflow at the params' store, then applies the policy.

Like every stage, a registry command chooses its own store (ferops.tracking.store.configure), so the CLI only
parses arguments and a caller in Python gets the same store the command would use.
"""

from __future__ import annotations

from ferops.config import Params
from ferops.tracking import registry
from ferops.tracking.store import configure


def _model(params: Params, name: str | None) -> str:
    configure(params.tracking)
    return name or params.tracking.model_name


def list_versions(params: Params, name: str | None = None) -> str:
    """The versions of `name` (default: tracking.model_name) as a table: aliases, scores, comparability keys."""
    return registry.format_versions(registry.list_versions(_model(params, name)))


def promote(params: Params, version: str, why: str, name: str | None = None) -> str:
    """Make `version` champion by hand; returns the reason recorded on it."""
    return registry.promote(_model(params, name), version, why=why).reason


def rollback(params: Params, why: str, name: str | None = None) -> str:
    """Give champion back to the previous champion; returns the reason recorded."""
    return registry.rollback(_model(params, name), why=why).reason

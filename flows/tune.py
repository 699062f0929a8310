"""Optuna tuning nested in the CV as a flow: one study per outer fold, then the nested CV and the registry.

    prefect deployment run 'tune/default' -p trials=20 -p workers=2 --watch
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.stages import run_stages


@flow(name="tune", log_prints=True)
def tune(trials: int | None = None, workers: int | None = None, storage: str | None = None,
         overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """tune (tune.enabled on) -> cv with each fold's best settings -> refit -> register.

    trials: per outer fold; workers: processes per study; storage: an Optuna storage URL.
    """
    return run_stages(["register"], {"tune.enabled": True, "tune.trials": trials, "tune.workers": workers,
                                     "tune.storage": storage} | (overrides or {}), force)

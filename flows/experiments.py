"""One flow per experiment family; each runs its DVC stage and whatever it depends on.

    prefect deployment run 'au/default' --watch
    prefect deployment run 'transfer/default' -p overrides='{"transfer.epochs": 4}' --watch
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.stages import run_stages


@flow(name="au", log_prints=True)
def au(epochs: int | None = None, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """AU detection (all-at-once / one-vs-all heads, intensities) and fer-au in the registry."""
    return run_stages(["au"], {"au.epochs": epochs} | (overrides or {}), force)


@flow(name="transfer", log_prints=True)
def transfer(epochs: int | None = None, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Train-on-A / test-on-B matrices: zero-shot, frozen features + new head, fine-tuned."""
    return run_stages(["transfer"], {"transfer.epochs": epochs} | (overrides or {}), force)


@flow(name="analyze", log_prints=True)
def analyze(overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Filter <-> AU analysis of the emotion model (deconvnet / guided-backprop images), and the cross-task curve."""
    return run_stages(["analyze", "cross_task"], overrides, force)


@flow(name="micro", log_prints=True)
def micro(overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Micro-expressions: CNN+LSTM vs LBP-TOP, leave-one-subject-out, and fer-micro in the registry."""
    return run_stages(["micro"], overrides, force)

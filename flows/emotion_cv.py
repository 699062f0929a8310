"""The emotion pipeline as a flow: generate -> preprocess -> validate -> tune -> cv -> refit -> register.

    prefect deployment run 'emotion-cv/default' -p epochs=2 --watch
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.stages import run_stages


@flow(name="emotion-cv", log_prints=True)
def emotion_cv(epochs: int | None = None, folds: int | None = None, overrides: dict[str, Any] | None = None,
               force: bool = False) -> dict:
    """k-fold CV of the emotion recipe, its final model, and the registry decision.

    epochs / folds: shortcuts for train.epochs / cv.folds; overrides: any dotted params.yaml keys.
    force: rerun stages DVC reports up to date.
    """
    return run_stages(["register"], {"train.epochs": epochs, "cv.folds": folds} | (overrides or {}), force)

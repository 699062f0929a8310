"""params.yaml `tune.space` -> the settings of one trial, as dotted-key overrides of Params."""

from __future__ import annotations

import optuna

from ferops.config import Params, SearchDim, replace


def suggest(trial: optuna.Trial, key: str, dim: SearchDim):
    if dim.kind == "choice":
        return trial.suggest_categorical(key, list(dim.choices))
    if dim.kind == "int":
        return trial.suggest_int(key, int(dim.low), int(dim.high), log=dim.log)
    return trial.suggest_float(key, dim.low, dim.high, log=dim.log)


def trial_overrides(trial: optuna.Trial, params: Params) -> dict:
    """One value per tuned key, drawn by the study's sampler."""
    return {key: suggest(trial, key, dim) for key, dim in params.tune.space.items()}


def apply(params: Params, overrides: dict) -> Params:
    """The recipe with a trial's (or a study's best) values in place; the ranges were checked at load time."""
    return replace(params, **overrides) if overrides else params


def max_epochs(params: Params) -> int:
    """Epoch count at the top of the range: intermediate-value steps are numbered on this grid for every trial."""
    dim = params.tune.space.get("train.epochs")
    return int(dim.high if dim.kind == "int" else max(dim.choices)) if dim else params.train.epochs


def baseline(params: Params) -> dict:
    """params.yaml's own values of the tuned keys: every study's first trial, so the recipe is always a candidate."""
    from ferops.config import flatten

    flat = flatten(params)
    out = {}
    for key, dim in params.tune.space.items():
        value = flat[key]
        if dim.kind == "choice" and value not in dim.choices:
            continue  # outside the choices: the sampler decides
        if dim.kind != "choice" and not dim.low <= value <= dim.high:
            continue
        out[key] = value
    return out

"""Prefect flow for the emotion pipeline: the same ferops.pipeline steps DVC runs, orchestrated.

Prefect adds what a scheduler is for - retries on the I/O-bound steps, run
history, deployments on a schedule or on demand - and nothing else: each task
is one call into ferops.pipeline, so a flow run and `dvc repro` compute the
same thing from the same params.

    python -m flows.training                      # run once, locally (an ephemeral Prefect server)
    python -m flows.training --serve              # a deployment that `prefect deployment run` triggers
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ferops import pipeline
from ferops.config import Params, load_params, nest


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def generate(params: Params) -> str:
    return str(pipeline.generate(params.synthfacs, params.seed, track=True, tracking=params.tracking))


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def preprocess(params: Params) -> str:
    return str(pipeline.preprocess(params))


@task(cache_policy=NO_CACHE)  # a failed expectation is a verdict on the data, not a flake: no retries
def validate(params: Params, report_path: str) -> bool:
    return pipeline.validate(params, report_path=Path(report_path)).success


@task(cache_policy=NO_CACHE)
def cross_validate(params: Params, out_dir: str) -> dict:
    return pipeline.cross_validate(params, out_dir=Path(out_dir)).metrics


@task(cache_policy=NO_CACHE)
def refit(params: Params, cv_dir: str, out_dir: str) -> dict:
    return pipeline.refit(params, cv_dir=Path(cv_dir), out_dir=Path(out_dir))


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)  # a registry call may meet a busy server
def register(params: Params, cv_dir: str, model_dir: str, out_path: str) -> dict:
    return pipeline.register(params, cv_dir=Path(cv_dir), model_dir=Path(model_dir), out_path=Path(out_path))


@flow(name="ferops-emotion-cv", log_prints=True)
def emotion_cv_flow(
    params_path: str = "params.yaml",
    overrides: dict | None = None,
    synthesize: bool = True,
    outputs: str = "outputs",
) -> dict:
    """generate (SynthFACS default) -> preprocess -> validate -> k-fold CV -> refit -> register.

    `overrides` takes dotted keys ({"train.epochs": 2}) on top of params.yaml, for sweeps and tests.
    """
    params = load_params(params_path, nest(overrides or {}))  # overrides are checked like params.yaml itself
    if synthesize:
        generate(params)
    preprocess(params)
    validate(params, f"{outputs}/validation.json")
    metrics = cross_validate(params, f"{outputs}/cv")
    print(f"CV accuracy {metrics['cv_accuracy_mean']:.4f} ± {metrics['cv_accuracy_std']:.4f} ({metrics['protocol']})")
    refit(params, f"{outputs}/cv", f"{outputs}/model")
    record = register(params, f"{outputs}/cv", f"{outputs}/model", f"{outputs}/registry.json")
    print(record.get("reason", ""))
    return metrics | {"registry": record}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--serve", action="store_true", help="serve as a deployment instead of running once")
    args = parser.parse_args()
    if args.serve:
        emotion_cv_flow.serve(name="emotion-cv", parameters={"params_path": args.params})
    else:
        emotion_cv_flow(params_path=args.params)


if __name__ == "__main__":
    main()

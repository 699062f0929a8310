"""Scale-out costs and gains, in one process: CV on 1 vs 2 Dask workers; MLflow logging per epoch, SQLite vs server.

1. The same k-fold CV (same data on disk, same folds, same seeds) on a Dask
   LocalCluster with 1 worker and with 2, run after each other here: wall time
   and speed-up, plus a check that both gave the same metrics. Each worker is
   one process running one fold at a time; on a 2-core machine the two workers
   share the cores TensorFlow would otherwise spread one fold over.
2. What one epoch's metrics cost the training loop: one `log_batch` of the
   metrics a fold logs per epoch, to a local SQLite store and to the team
   server (infra/team_server.sh: PostgreSQL with fsync on, `mlflow server`),
   synchronously and as EpochLogger sends them (asynchronously: the loop only
   queues; the wait happens once at the end of training).

    .venv/bin/python benchmarks/scale.py [--images 1200] [--folds 4] [--epochs 2] [--width 0.25] [--epochs-logged 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.entities import Metric  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # infra.team_server

from ferops.config import RunnerParams, load_params  # noqa: E402
from ferops.data.dataset import Dataset  # noqa: E402
from ferops.runners import mapper_for  # noqa: E402
from ferops.tracking.store import configure  # noqa: E402
from ferops.train.cross_validation import cross_validate  # noqa: E402
from infra.team_server import postgres_missing, running_team_server  # noqa: E402

CLASSES = ("neutral", "happiness", "surprise", "anger")
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")  # what EpochLogger sends


def bar_dataset(n: int, subjects: int) -> Dataset:
    """Learnable images (class k: a bright bar in band k), `subjects` people: real folds, real training."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % len(CLASSES)
    images = rng.integers(30, 100, (n, 48, 48, 1), dtype=np.uint8)
    for k in range(len(CLASSES)):
        images[labels == k, 6 + 10 * k: 12 + 10 * k, 6:42] = 220
    manifest = pd.DataFrame({
        "path": [f"bench/{i:05d}.png" for i in range(n)], "label": labels,
        "label_name": [CLASSES[k] for k in labels], "subject": [f"S{i * subjects // n:03d}" for i in range(n)],
        "sequence": [f"q{i:05d}" for i in range(n)], "frame": 1, "split": "train",
    })
    return Dataset(images, manifest, CLASSES, "bench")


def cv_walls(args, work: Path) -> None:
    params = load_params(ROOT / "params.yaml", {
        "model": {"width": args.width}, "train": {"epochs": args.epochs, "batch_size": 32},
        "cv": {"folds": args.folds}, "tracking": {"artifact_root": str(work / "mlartifacts")}})
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    configure(params.tracking)
    data = bar_dataset(args.images, subjects=4 * args.folds)
    data.save(work / "data")
    walls, metrics = {}, {}
    for workers in (1, 2):
        start = time.perf_counter()
        result = cross_validate(data, params, work / f"cv{workers}", data_path=work / "data",
                                mapper=mapper_for(RunnerParams("dask", workers, None)))
        walls[workers] = time.perf_counter() - start
        metrics[workers] = json.loads((work / f"cv{workers}" / "metrics.json").read_text())
        print(f"  CV on {workers} Dask worker{'s' if workers > 1 else ' '}: {walls[workers]:6.1f} s   "
              f"accuracy {result.metrics['cv_accuracy_mean']:.4f}", flush=True)
    print(f"  speed-up 2 vs 1 worker: {walls[1] / walls[2]:.2f}x   "
          f"(same metrics: {'yes' if metrics[1] == metrics[2] else 'NO'}; "
          f"{args.folds} folds x {args.epochs} epochs, {args.images} images, width {args.width}, "
          f"{os.cpu_count()} CPU cores)")


def logging_cost(uri: str, epochs: int) -> dict[str, float]:
    """Milliseconds per epoch the training loop spends logging: synchronous, and asynchronous (EpochLogger)."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("logging-bench") or client.get_experiment(
        client.create_experiment("logging-bench"))
    out = {}
    for mode in ("sync", "async"):
        run = client.create_run(experiment.experiment_id)
        pending, start = [], time.perf_counter()
        for epoch in range(epochs):
            now = int(time.time() * 1000)
            batch = [Metric(key, 0.5 + epoch * 1e-3, now, epoch) for key in EPOCH_METRICS]
            op = client.log_batch(run.info.run_id, metrics=batch, synchronous=mode == "sync")
            if op is not None:
                pending.append(op)
        in_loop = time.perf_counter() - start
        for op in pending:
            op.wait()
        total = time.perf_counter() - start
        client.set_terminated(run.info.run_id)
        stored = len(client.get_metric_history(run.info.run_id, "loss"))
        assert stored == epochs, f"{uri}: {stored} of {epochs} epochs stored"
        out[f"{mode} in loop"], out[f"{mode} until stored"] = 1000 * in_loop / epochs, 1000 * total / epochs
    return out


def print_logging(name: str, cost: dict[str, float]) -> None:
    print(f"  {name:<38} sync {cost['sync in loop']:6.2f} ms/epoch   "
          f"async: {cost['async in loop']:5.2f} ms/epoch in the loop, {cost['async until stored']:6.2f} until stored")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1200)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--epochs-logged", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferops-scale-") as tmp:
        work = Path(tmp)
        print("1. CV wall time, the same folds on a Dask LocalCluster")
        cv_walls(args, work)
        print(f"2. MLflow logging per epoch ({len(EPOCH_METRICS)} metrics in one log_batch, "
              f"{args.epochs_logged} epochs)")
        print_logging("local SQLite file", logging_cost(f"sqlite:///{work / 'logging.db'}", args.epochs_logged))
        if (reason := postgres_missing()) is not None:
            print(f"  team server: skipped, {reason}")
            return
        with running_team_server(durable=True, workers=2) as server:
            print_logging("team server (PostgreSQL, HTTP)", logging_cost(server.tracking_uri, args.epochs_logged))


if __name__ == "__main__":
    main()

"""What a training run logs while it trains: per-epoch metrics (the UI's learning curves) and system metrics.

An epoch's metrics go in one `log_batch` call. Against a remote tracking server
each call is a network round trip, so there it is asynchronous: training does not
wait for the server, and `on_train_end` waits for every pending batch, so a run
never closes with its last epochs missing and a failed write still raises. A local
store (SQLite, files) is written directly: a write takes milliseconds, while closing
a run that used MLflow's async queue waits up to a second for its thread (the queue
polls once a second), which every fold, subject and cell paid.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import keras
import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from ferops.tracking.store import is_local_store


class EpochLogger(keras.callbacks.Callback):
    """Logs every Keras epoch metric (loss, accuracy, val_*) plus learning rate to `run_id`, one batch per epoch."""

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self.client = MlflowClient()
        self.asynchronous = not is_local_store(mlflow.get_tracking_uri())  # a server, or a database over the network
        self.pending = []

    def on_epoch_end(self, epoch, logs=None):
        now = int(time.time() * 1000)
        logs = dict(logs or {})
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        metrics = [Metric(key, float(value), now, epoch) for key, value in logs.items()]
        if self.asynchronous:
            self.pending.append(self.client.log_batch(self.run_id, metrics=metrics, synchronous=False))
        else:
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_train_end(self, logs=None):
        pending, self.pending = self.pending, []
        for operation in pending:
            operation.wait()


@contextlib.contextmanager
def system_metrics(enabled: bool) -> Iterator[None]:
    """Sample CPU, memory, disk, network and GPU use (nvidia-ml-py) into the active run while the block runs.

    MLflow's own monitor (the one `start_run(log_system_metrics=True)` starts),
    attached around training in `fit`, so every training run gets it from one
    switch (train.system_metrics) whoever started the run. Sampling interval:
    MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL (MLflow's default: 10 s).
    """
    run = mlflow.active_run()
    if not enabled or run is None:
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run.info.run_id, resume_logging=True)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()

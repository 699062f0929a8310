"""Per-epoch metrics into an MLflow run, so the UI draws learning curves per fold."""

from __future__ import annotations

import time

import keras
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient


class EpochLogger(keras.callbacks.Callback):
    """Logs every Keras epoch metric (loss, accuracy, val_*) plus learning rate to `run_id`.

    One batched call per epoch keeps tracking overhead negligible next to training.
    """

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self.client = MlflowClient()

    def on_epoch_end(self, epoch, logs=None):
        now = int(time.time() * 1000)
        logs = dict(logs or {})
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        metrics = [Metric(key, float(value), now, epoch) for key, value in logs.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

"""Shared fixtures: tiny params, a toy dataset, a throwaway MLflow store, a real `mlflow server`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from ferops.config import load_params  # noqa: E402
from ferops.data.dataset import Dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "model": {"width": 0.125},
    "train": {"epochs": 1, "batch_size": 16},
    "cv": {"folds": 3},
    "validate": {"min_per_class": 1},
}


def make_params(changes: dict | None = None):
    """The project's params.yaml with TINY and then `changes` merged in: what every test trains with."""
    from ferops.config import overlay

    return load_params(ROOT / "params.yaml", overlay(TINY, changes or {}))


@pytest.fixture
def tiny_params():
    return make_params()


def make_toy_dataset(n: int = 60, n_classes: int = 3, n_subjects: int = 6, seed: int = 0) -> Dataset:
    """Learnable toy images: class k has a bright bar in row band k."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    images = rng.integers(40, 90, (n, 48, 48, 1), dtype=np.uint8)
    for i, k in enumerate(labels):
        images[i, 8 + 12 * k: 14 + 12 * k, 6:42] = 230
    classes = ("neutral", "happiness", "surprise", "anger", "fear")[:n_classes]
    manifest = pd.DataFrame({
        "path": [f"toy/{i:04d}.png" for i in range(n)],
        "label": labels,
        "label_name": [classes[k] for k in labels],
        "subject": [f"S{i * n_subjects // n:03d}" for i in range(n)],
        "sequence": [f"S{i * n_subjects // n:03d}_{i:03d}" for i in range(n)],
        "frame": 1,
        "split": "train",
    })
    return Dataset(images, manifest, classes, "toy")


@pytest.fixture
def toy_dataset() -> Dataset:
    return make_toy_dataset()


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A fresh SQLite tracking store in tmp_path, selected through MLFLOW_TRACKING_URI."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` (HTTP API + model registry) on loopback, for the whole session."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("mlflow server did not become healthy in 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()

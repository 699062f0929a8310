"""Shared fixtures: tiny params, a toy dataset, a throwaway MLflow store, a real `mlflow server`."""

from __future__ import annotations

import os
import shutil
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
    # float32 whatever the machine: byte-identical comparisons hold on every CI host (tests/test_precision.py
    # runs each stage in mixed_bfloat16 and checks bf16 reruns are identical too)
    "train": {"epochs": 1, "batch_size": 16, "precision": "float32"},
    "cv": {"folds": 3},
    "runner": {"kind": "local", "workers": 2, "address": None},  # tests that fan out choose their runner
    "validate": {"min_per_class": 1},
    "domains": {"au": {"n": 100}, "posed": {"n": 30}, "wild": {"n": 60}, "webcam": {"n": 60}},
    "au": {"folds": 2, "epochs": 1, "width": 0.125},
    "transfer": {"datasets": ["data/domains/posed", "data/domains/wild"], "epochs": 1, "width": 0.125,
                 "fractions": []},  # the learning curve: tests/test_transfer.py
    "cross_task": {"fractions": [0.5, 1.0], "epochs": 1},
    "analysis": {"top_n": 5, "permutations": 5, "energy_images": 2, "top_k": 2, "max_filters": 4, "batch_size": 64},
    "micro": {"data": {"synthfacs": {"n": 30}}, "cnn": {"width": 0.125, "pretrain_epochs": 1, "epochs": 1},
              "lstm": {"units": 8, "epochs": 1}},
    "serving": {"window": 4, "queue": 4},  # several forward passes even on a short test video
    "tune": {"trials": 2, "pruner": {"startup_trials": 1, "warmup_steps": 0},
             "space": {"train.learning_rate": ["float", 0.0005, 0.005, "log"], "train.decay": ["float", 0.0, 0.0001],
                       "model.conv_dropout": ["float", 0.1, 0.4], "model.dense_dropout": ["float", 0.3, 0.6],
                       "model.width": ["choice", 0.125, 0.25], "train.batch_size": ["choice", 16, 32],
                       "train.augment.rotation_deg": ["float", 0.0, 20.0], "train.augment.translation": ["float", 0.0, 0.15],
                       "train.epochs": ["int", 1, 2]}},
}


def make_params(changes: dict | None = None):
    """The project's params.yaml with TINY and then `changes` merged in: what every test trains with."""
    from ferops.config import overlay

    return load_params(ROOT / "params.yaml", overlay(TINY, changes or {}))


def run_checked(cmd, cwd, env, check=True):
    """A command in a temp project; on failure the assertion shows the end of its output."""
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def make_dvc_project(repo: Path, changes: dict | None = None, message: str = "tiny project") -> dict:
    """A git + DVC repo holding this project's code, dvc.yaml and params.yaml (TINY + `changes`), committed.

    Returns the environment to run `dvc`/`ferops` in: the venv's bin on PATH and a store inside the repo.
    Files a test needs in the repo (raw data) can be written before the commit by passing them in
    `changes["_files"]` as {relative path: callable(Path)}.
    """
    import yaml

    from ferops.config import overlay

    changes = dict(changes or {})
    files = changes.pop("_files", {})
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "data.dvc", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    for package in ("ferops", "flows"):
        shutil.copytree(ROOT / package, repo / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "prefect.toml", repo / "prefect.toml")
    params = overlay(yaml.safe_load((ROOT / "params.yaml").read_text()), overlay(TINY, changes))
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    for rel, write in files.items():
        write(repo / rel)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], ["git", "commit", "-qm", message]):
        run_checked(cmd, repo, env)
    return env


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
def dask_cli(tmp_path_factory):
    """A Dask cluster as a team starts one (`dask scheduler` + `dask worker`, 2 workers) on loopback: its address.

    Session-wide, so the runner and team-server tests share warm workers.
    """
    from runner_helpers import dask_cli_cluster

    with dask_cli_cluster(tmp_path_factory.mktemp("dask")) as address:
        yield address


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


@pytest.fixture(scope="module")
def tiny_micro():
    """Every SynthFACS micro clip of three subjects, both views (what load_micro gives, cut to a three-fold LOSO)."""
    from ferops.experiments.micro.data import MicroData, load_micro

    data = load_micro(make_params())
    keep = np.flatnonzero(np.isin(data.clips.subjects, np.unique(data.clips.subjects)[:3]))
    return MicroData(data.clips.subset(keep), data.lbp_clips.subset(keep), "micro_tiny", data.data_hash, data.source)

"""`ferops predict` answers on Keras over JAX where JAX is installed: same model file, same answers, no TensorFlow.

The in-process tests elsewhere run on TensorFlow (Keras is imported by then); these run
the real command in a fresh process, as a user does, and compare it with TensorFlow here.
"""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ferops.cli import main
from ferops.models import build_cnn
from ferops.serving.synthetic import still

from conftest import ROOT, make_params

pytest.importorskip("jax")

NO_TF_CHECK = ("import sys; from ferops.cli import main\n"
               "try:\n    main(sys.argv[1:])\nfinally:\n"
               "    import keras; print('BACKEND', keras.backend.backend(), 'tensorflow' in sys.modules, "
               "file=sys.stderr)\n")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "JAX_PLATFORMS")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture(scope="module")
def photo_and_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("backend")
    model = build_cnn(dataclasses.replace(make_params().model, width=0.125), (48, 48, 1), 8)
    model.save(root / "model.keras")
    for seed in range(3):
        cv2.imwrite(str(root / f"face{seed}.png"), cv2.cvtColor(still(seed=seed), cv2.COLOR_RGB2BGR))
    return root


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_predict_on_jax_matches_tensorflow_and_never_imports_it(photo_and_model, tmp_path):
    root = photo_and_model
    args = ["predict", "--model", str(root / "model.keras"), "--params", str(ROOT / "params.yaml"), "--no-progress", "--runtime", "keras",
            *map(str, sorted(root.glob("*.png")))]
    main([*args, "--out", str(tmp_path / "tf.csv")])  # in this process: TensorFlow
    done = subprocess.run([sys.executable, "-c", NO_TF_CHECK, *args, "--out", str(tmp_path / "jax.csv")],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BACKEND jax False" in done.stderr, done.stderr[-2000:]  # on JAX, and TensorFlow never imported
    tf_rows, jax_rows = _rows(tmp_path / "tf.csv"), _rows(tmp_path / "jax.csv")
    assert len(tf_rows) == len(jax_rows) == 3
    for a, b in zip(tf_rows, jax_rows):
        assert a["prediction"] == b["prediction"]
        probs = [k for k in a if k.startswith("p_")]
        assert probs and np.allclose([float(a[k]) for k in probs], [float(b[k]) for k in probs], atol=2e-2)


@pytest.mark.slow
def test_keras_backend_set_by_the_user_wins(photo_and_model, tmp_path):
    root = photo_and_model
    done = subprocess.run([sys.executable, "-c", NO_TF_CHECK, "predict", "--model", str(root / "model.keras"),
                           "--params", str(ROOT / "params.yaml"), "--no-progress", "--runtime", "keras",
                           str(root / "face0.png")],
                          cwd=tmp_path, env=_env(KERAS_BACKEND="tensorflow"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BACKEND tensorflow True" in done.stderr
    (record,) = json.loads(done.stdout)
    assert record["prediction"] in record["probabilities"]

"""benchmarks/au_budget.py scores a recipe on inner validation subjects only: a spy sees every prediction."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ferops.data.synthfacs_dataset import synthfacs_dataset
from ferops.train import fit as fit_module
from ferops.train.folds import make_folds

from conftest import make_params

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("au_budget", ROOT / "benchmarks" / "au_budget.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_first_folds_validation_subjects_are_predicted(monkeypatch):
    params = make_params({"seed": 7})
    n = 120
    seen: list[np.ndarray] = []
    real = fit_module.predict_proba
    monkeypatch.setattr(fit_module, "predict_proba", lambda model, images, **kw: seen.append(images) or real(
        model, images, **kw))
    out = _script().probe(params, n, epochs=1, width=0.0625, batch_size=32, folds=2, augment=False,
                            tasks=("presence", "intensity"))

    data = synthfacs_dataset("au", n, seed=7, size=48, channels=1, masks=False)  # the script's own render
    test = make_folds(np.zeros(n, int), data.subjects, 2, "subject", 7) == 0
    test_faces = {row.tobytes() for row in data.images[test]}
    assert len(seen) == 2 and all(len(images) == out["n_validation"] for images in seen)  # presence, intensity
    assert not any(face.tobytes() in test_faces for images in seen for face in images)  # no test-fold face
    assert out["n_fit"] + out["n_validation"] == n - test.sum()
    assert 0.0 <= out["val_auroc_mean"] <= 1.0 and -1.0 <= out["val_icc_mean"] <= 1.0

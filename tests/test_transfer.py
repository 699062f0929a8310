"""Transfer: the zero-shot class mapping, a two-domain case with a known answer (an inverted copy of a
domain: zero-shot collapses, fine-tuning recovers), and the cross-task learning curve."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest

from ferops.data.dataset import Dataset
from ferops.errors import FeropsError
from ferops.experiments.transfer.stage import zero_shot_predictions

from conftest import make_params, make_toy_dataset


def test_zero_shot_maps_classes_by_name_and_excludes_what_the_source_lacks():
    source = ("neutral", "contempt", "happiness", "surprise")
    target = ("happiness", "sadness", "neutral")
    probs = np.array([[0.1, 0.6, 0.2, 0.1],    # contempt is best, but the target has no contempt: happiness
                      [0.7, 0.1, 0.1, 0.1],    # neutral
                      [0.2, 0.2, 0.1, 0.5]])   # surprise is best; of the shared classes neutral wins
    y = np.array([0, 1, 0])
    scorable, pred, excluded = zero_shot_predictions(probs, source, target, y)
    assert excluded == ["sadness"]
    np.testing.assert_array_equal(scorable, [True, False, True])
    np.testing.assert_array_equal(pred, [0, 2, 2])
    with pytest.raises(FeropsError, match="no emotion class in common"):
        zero_shot_predictions(probs, source, ("fear",), np.array([0, 0, 0]))


def _domain(path, seed: int, name: str, invert: bool) -> str:
    toy = make_toy_dataset(n=90, n_classes=3, n_subjects=9, seed=seed)
    images = 255 - toy.images if invert else toy.images
    Dataset(images, toy.manifest, toy.classes, name, {"subjects_known": True}).save(path)
    return str(path)


@pytest.mark.slow
def test_inverted_domain_breaks_zero_shot_and_fine_tuning_recovers(mlflow_store, tmp_path):
    from ferops.experiments.transfer.stage import run_transfer
    from ferops.tracking.store import configure

    a = _domain(tmp_path / "a", 0, "upright", invert=False)
    b = _domain(tmp_path / "b", 1, "inverted", invert=True)
    params = make_params({"transfer": {"datasets": [a, b], "folds": 2, "epochs": 4, "width": 0.125,
                                       "finetune_lr_scale": 1.0}})
    configure(params.tracking)
    result = run_transfer(params, out_dir=tmp_path / "out")
    m = result["metrics"]

    for src, dst in (("upright", "inverted"), ("inverted", "upright")):
        within = m["zero_shot"][f"{dst}->{dst}"]
        zero_shot, tuned = m["zero_shot"][f"{src}->{dst}"], m["fine_tuned"][f"{src}->{dst}"]
        assert within >= 0.9, m
        assert zero_shot <= 0.5, m  # bright bars on dark become dark bars on bright: the source model is lost
        assert tuned >= zero_shot + 0.4, m  # a few epochs on the target's training folds bring it back
    for mode in ("zero_shot", "frozen", "fine_tuned"):
        assert (tmp_path / "out" / f"{mode}.csv").exists() and (tmp_path / "out" / f"{mode}.png").exists()
        assert m[mode]["upright->upright"] == m["zero_shot"]["upright->upright"]  # one diagonal for all tables

    # Every cell is its own nested run carrying both datasets' content hashes.
    cells = mlflow.search_runs(filter_string="tags.`ferops.kind` = 'transfer-cell'", output_format="list")
    assert len(cells) == 2 + 2 * 3
    assert all(c.data.tags["mlflow.parentRunId"] == result["run_id"] for c in cells)
    assert all(c.data.tags["dvc.source"] != c.data.tags["dvc.target"] for c in cells
               if c.data.tags["transfer.source"] != c.data.tags["transfer.target"])
    parent = mlflow.get_run(result["run_id"])
    assert {k.split(".")[0] for k in parent.data.params} == {"seed", "transfer", "preprocess", "model", "train"}
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith(f"**within-dataset accuracy {m['within_mean']:.4g}; across datasets zero shot ")
    assert parent.data.tags["dvc.data.upright"] in note and parent.data.tags["dvc.data.inverted"] in note
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["run_id"] == result["run_id"] and not (tmp_path / "out" / ".models").exists()


def test_transfer_needs_two_datasets(mlflow_store, tmp_path):
    from ferops.experiments.transfer.stage import run_transfer

    a = _domain(tmp_path / "a", 0, "upright", invert=False)
    with pytest.raises(FeropsError, match="at least 2 datasets"):
        run_transfer(make_params({"transfer": {"datasets": [a]}}), out_dir=tmp_path / "out")


def test_subject_subsets_are_nested_and_grouped():
    from ferops.experiments.cross_task.stage import subject_subsets

    subjects = np.repeat([f"S{i:02d}" for i in range(20)], 3)
    rows = np.arange(60)
    subsets = subject_subsets(subjects, rows, (0.1, 0.5, 1.0), seed=0)
    people = {f: set(subjects[r]) for f, r in subsets.items()}
    assert len(people[0.1]) == 2 and len(people[0.5]) == 10 and len(people[1.0]) == 20
    assert people[0.1] <= people[0.5] <= people[1.0]
    assert all(len(r) == 3 * len(people[f]) for f, r in subsets.items())  # whole subjects only


@pytest.mark.slow
def test_cross_task_learning_curve_from_an_emotion_model(mlflow_store, tmp_path):
    from ferops.data.domains import render_domain
    from ferops.experiments.cross_task.stage import MODES, run_cross_task
    from ferops.models import build_model
    from ferops.models.heads import Head
    from ferops.tracking.store import configure

    params = make_params({"domains": {"au": {"n": 120, "out": str(tmp_path / "au")}},
                          "au": {"data": str(tmp_path / "au")},
                          "cross_task": {"fractions": [0.5, 1.0], "epochs": 1}})
    render_domain(params.domains["au"], params.seed, "au")
    emotion = build_model(params.model, Head(8, "softmax"), (48, 48, 1))
    emotion.save(tmp_path / "emotion.keras")
    configure(params.tracking)
    result = run_cross_task(params, tmp_path / "emotion.keras", out_dir=tmp_path / "out")
    curve = result["curve"]
    assert len(curve) == 2 * len(MODES) and set(curve["mode"]) == set(MODES)
    assert (curve.groupby("fraction")["n_subjects"].nunique() == 1).all()  # all modes see the same subjects
    assert curve["n_subjects"].is_monotonic_increasing
    assert (tmp_path / "out" / "learning_curve.png").exists()
    assert set(json.loads((tmp_path / "out" / "metrics.json").read_text())) == {
        f"{m}_f1@{f:g}" for m in MODES for f in (0.5, 1.0)}

    from ferops.errors import FeropsError
    with pytest.raises(FeropsError, match="no emotion model"):
        run_cross_task(params, tmp_path / "missing.keras", out_dir=tmp_path / "out2")

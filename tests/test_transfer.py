"""Transfer: the zero-shot class mapping, a two-domain case with a known answer (an inverted copy of a
domain: zero-shot collapses, fine-tuning recovers) with its learning curve, and the cross-task learning curve."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
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


def test_fine_tuning_starts_from_the_source_head_for_the_classes_both_have():
    import keras

    from ferops.experiments.transfer.jobs import carry_head

    source_classes, target_classes = ("neutral", "anger", "happiness"), ("happiness", "contempt", "neutral")
    source = keras.layers.Dense(3)
    source.build((None, 4))
    new = keras.layers.Dense(3)
    new.build((None, 4))
    fresh_contempt = np.array(new.get_weights()[0][:, 1])
    carry_head(new, source, target_classes, source_classes)
    (kernel, bias), (source_kernel, source_bias) = new.get_weights(), source.get_weights()
    np.testing.assert_array_equal(kernel[:, 0], source_kernel[:, 2])  # happiness, by name not position
    np.testing.assert_array_equal(kernel[:, 2], source_kernel[:, 0])  # neutral
    np.testing.assert_array_equal(kernel[:, 1], fresh_contempt)  # the source has no contempt: the new unit stays
    assert bias[0] == source_bias[2] and bias[2] == source_bias[0]


def _domain(path, seed: int, name: str, invert: bool) -> str:
    toy = make_toy_dataset(n=90, n_classes=3, n_subjects=9, seed=seed)
    images = 255 - toy.images if invert else toy.images
    Dataset(images, toy.manifest, toy.classes, name, {"subjects_known": True}).save(path)
    return str(path)


@pytest.mark.slow
def test_inverted_domain_breaks_zero_shot_and_fine_tuning_recovers(mlflow_store, tmp_path, monkeypatch):
    from ferops.experiments.transfer import jobs
    from ferops.experiments.transfer.stage import run_transfer
    from ferops.tracking.store import configure

    # What every fold of every job really trained on: (job, fold, rows) and each inner split (rows, fit, validation).
    trained, splits = [], []
    fold_model, inner_split = jobs._fold_model, jobs.inner_split

    def recording_fold_model(job, train, fold, source):
        trained.append((job, fold, np.array(train)))
        return fold_model(job, train, fold, source)

    def recording_inner_split(rows, subjects, fraction, seed):
        fit_rows, val_rows = inner_split(rows, subjects, fraction, seed)
        splits.append((np.array(rows), fit_rows, val_rows))
        return fit_rows, val_rows

    monkeypatch.setattr(jobs, "_fold_model", recording_fold_model)
    monkeypatch.setattr(jobs, "inner_split", recording_inner_split)
    a = _domain(tmp_path / "a", 0, "upright", invert=False)
    b = _domain(tmp_path / "b", 1, "inverted", invert=True)
    fractions = [0.4, 0.8]  # of ~4-5 training subjects per fold: 2 and 3-4 people (10% and 25% would both be 2)
    params = make_params({"transfer": {"datasets": [a, b], "folds": 2, "epochs": 4, "finetune_epochs": 4, "width": 0.125,
                                       "finetune_lr_scale": 1.0, "fractions": fractions}})
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
    assert m["within"] == {name: m["zero_shot"][f"{name}->{name}"] for name in ("upright", "inverted")}

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

    # The learning curve: per target and share, scratch and the other domain fine-tuned, pooled over the folds.
    curve = pd.read_csv(tmp_path / "out" / "learning_curve.csv")
    assert len(curve) == 2 * len(fractions) * 2
    assert list(curve[["target", "source", "fraction"]].itertuples(index=False, name=None)) == [
        (dst, src, f) for dst, other in (("upright", "inverted"), ("inverted", "upright"))  # in transfer.datasets order
        for f in fractions for src in ("scratch", other)]
    assert set(curve["mode"]) == {"scratch", "fine_tuned"} and curve["accuracy"].between(0, 1).all()
    assert (curve.groupby(["target", "fraction"])["n_subjects"].nunique() == 1).all()  # same people, every source
    data = {name: Dataset.load(path) for name, path in (("upright", a), ("inverted", b))}
    people: dict = {}
    for job, fold, rows in trained:
        if job.fraction is None:
            continue
        subjects, test = data[job.data.name].subjects, job.data.folds == fold  # the fold this job scores
        assert not set(subjects[rows]) & set(subjects[test]), job.run_name  # no scored person is trained on
        assert not test[rows].any() and len(set(subjects[rows])) >= 2
        fit_rows, val_rows = next((f, v) for r, f, v in splits if np.array_equal(r, rows))  # fit saw these rows
        assert set(fit_rows) | set(val_rows) == set(rows) and len(val_rows) > 0
        chosen = frozenset(subjects[rows])
        assert people.setdefault((job.data.name, fold, job.fraction), chosen) == chosen  # scratch = fine-tuned
    assert len(people) == 2 * 2 * len(fractions)
    for name in data:
        for fold in (0, 1):
            small, large = people[(name, fold, fractions[0])], people[(name, fold, fractions[1])]
            assert small < large  # nested, and the larger share has more people
    for row in curve.itertuples():
        counts = [len(people[(row.target, f, row.fraction)]) for f in (0, 1)]
        assert row.n_subjects == np.mean(counts) and row.fold_subjects == " ".join(map(str, counts))

    assert set(m["curve"]) == {f"{mode}@{f:g}" for mode in ("scratch", "fine_tuned") for f in fractions}
    assert m["curve"]["scratch@0.4"] == pytest.approx(curve.query("mode == 'scratch' and fraction == 0.4")[
        "accuracy"].mean())
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["curve"] == m["curve"]
    assert parent.data.metrics["curve_fine_tuned_at_0.8"] == pytest.approx(m["curve"]["fine_tuned@0.8"])
    artifacts = {f.path for f in mlflow.MlflowClient().list_artifacts(result["run_id"], "transfer")}
    assert {"transfer/learning_curve.json", "transfer/learning_curve.png"} <= artifacts
    assert (tmp_path / "out" / "learning_curve.png").stat().st_size > 0
    points = mlflow.search_runs(filter_string="tags.`ferops.kind` = 'transfer-curve'", output_format="list")
    assert sorted(r.data.tags["transfer.fraction"] for r in points) == sorted(["0.4", "0.8"] * 4)
    assert all(r.data.tags["mlflow.parentRunId"] == result["run_id"] and r.info.status == "FINISHED" for r in points)


def test_transfer_needs_two_datasets(mlflow_store, tmp_path):
    from ferops.experiments.transfer.stage import run_transfer

    a = _domain(tmp_path / "a", 0, "upright", invert=False)
    with pytest.raises(FeropsError, match="at least 2 datasets"):
        run_transfer(make_params({"transfer": {"datasets": [a]}}), out_dir=tmp_path / "out")


def test_transfer_curve_shares_are_each_given_once(mlflow_store, tmp_path):
    from ferops.experiments.transfer.stage import run_transfer

    paths = [_domain(tmp_path / "a", 0, "upright", invert=False), _domain(tmp_path / "b", 1, "inverted", invert=True)]
    with pytest.raises(FeropsError, match="transfer.fractions: each share once"):
        run_transfer(make_params({"transfer": {"datasets": paths, "fractions": [0.5, 0.5]}}), out_dir=tmp_path / "out")


def test_transfer_curve_subsets_are_nested_whole_subjects_of_the_training_rows():
    from ferops.train.folds import subject_subset

    subjects = np.repeat([f"S{i:02d}" for i in range(30)], 2)
    rows = np.flatnonzero(np.arange(60) % 3 != 0)  # a fold's training rows: not every row
    small, large = (subject_subset(subjects, rows, f, (42, 1)) for f in (0.1, 0.25))
    people = [set(subjects[r]) for r in (small, large)]
    assert set(small) <= set(rows) and set(large) <= set(rows)
    assert len(people[0]) == 3 and len(people[1]) == 8 and people[0] < people[1]  # 10% of 30, 25% of 30
    assert all(set(r) == set(rows[np.isin(subjects[rows], list(p))]) for r, p in zip((small, large), people))
    assert len(set(subjects[subject_subset(subjects, rows, 0.01, 0)])) == 2  # at least 2 people
    np.testing.assert_array_equal(small, subject_subset(subjects, rows, 0.1, (42, 1)))  # seeded


def test_the_curve_figure_draws_a_panel_per_target_and_says_when_it_is_off(tmp_path):
    from ferops.experiments.transfer.stage import CURVE_COLUMNS, plot_curve

    curve = pd.DataFrame([{"target": t, "source": s, "mode": "scratch" if s == "scratch" else "fine_tuned",
                           "fraction": f, "accuracy": 0.5} for t in ("a", "b") for f in (0.1, 0.25)
                          for s in ("scratch", "b" if t == "a" else "a")])
    full = pd.DataFrame([{"train": "b", "test": "a", "mode": "fine_tuned", "accuracy": 0.7}])
    assert plot_curve(curve, full, tmp_path / "curve.png").stat().st_size > 0
    assert plot_curve(pd.DataFrame(columns=CURVE_COLUMNS), full, tmp_path / "off.png").stat().st_size > 0


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

"""AU detection: metrics checked against scikit-learn and a published ICC case, AU choice, the AU-balanced
SynthFACS preset, and a tiny tracked `au` run that registers a pullable fer-au."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from ferops.data.domains import render_domain
from ferops.data.synthfacs_dataset import synthfacs_dataset
from ferops.experiments.au.metrics import choose_thresholds, icc_3_1, intensity_table, presence_table

from conftest import make_params


def test_presence_table_matches_sklearn_and_masks_unknown_labels():
    rng = np.random.default_rng(0)
    truth = (rng.random((200, 3)) < [0.1, 0.4, 0.7]).astype(np.float32)
    prob = np.clip(truth * 0.6 + rng.random((200, 3)) * 0.5, 0, 1)
    truth[::7, 1] = np.nan  # unknown: must be left out, not counted as absent
    table = presence_table(truth, prob, ["AU1", "AU2", "AU4"])
    for k in range(3):
        known = ~np.isnan(truth[:, k])
        t, s = truth[known, k].astype(int), prob[known, k]
        row = table.iloc[k]
        assert row["n_known"] == known.sum() and row["positives"] == t.sum()
        assert row["f1"] == pytest.approx(f1_score(t, s >= 0.5))
        assert row["precision"] == pytest.approx(precision_score(t, s >= 0.5))
        assert row["recall"] == pytest.approx(recall_score(t, s >= 0.5))
        assert row["auroc"] == pytest.approx(roc_auc_score(t, s))
        assert row["always_absent_accuracy"] == pytest.approx(1 - t.mean())
    assert table.iloc[1]["n_known"] == 200 - len(range(0, 200, 7))


def test_thresholds_are_the_validation_f1_optimum_and_apply_per_row():
    rng = np.random.default_rng(1)
    truth = (rng.random((300, 2)) < 0.3).astype(np.float32)
    prob = np.clip(0.2 * truth + 0.25 * rng.random((300, 2)), 0, 1)  # ranks well, all below 0.5
    cut = choose_thresholds(truth, prob)
    for k in range(2):
        best = max(f1_score(truth[:, k], prob[:, k] >= c) for c in np.unique(prob[:, k]))
        assert f1_score(truth[:, k], prob[:, k] >= cut[k]) == pytest.approx(best)
        assert cut[k] < 0.5
    table = presence_table(truth, prob, ["AU1", "AU2"], cut)
    assert (table["f1"] > 0.8).all() and (table["f1_at_half"] == 0).all()
    assert list(choose_thresholds(np.zeros((5, 1)), np.ones((5, 1)))) == [0.5]  # no positive: keep 0.5
    per_row = np.where(np.arange(300)[:, None] < 150, cut, 0.99)  # two folds, two thresholds
    halves = presence_table(truth, prob, ["AU1", "AU2"], per_row)
    assert halves["f1"].iloc[0] == pytest.approx(f1_score(truth[:, 0], np.where(np.arange(300) < 150,
                                                                                  prob[:, 0] >= cut[0], False)))


def test_icc_3_1_reproduces_shrout_and_fleiss():
    # Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges; ICC(3,1) = 0.71 (and not ICC(1,1) 0.17 / (2,1) 0.29).
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert icc_3_1(ratings) == pytest.approx(0.715, abs=0.001)
    perfect = np.array([[0, 0], [2, 2], [5, 5], [3, 3]])
    assert icc_3_1(perfect) == pytest.approx(1.0)
    shifted = perfect + np.array([0, 1])  # consistency ICC ignores a constant rater offset
    assert icc_3_1(shifted) == pytest.approx(1.0)


def test_intensity_table_mse_and_rounded_accuracy():
    truth = np.array([[0, 1], [2, np.nan], [4, 3], [5, 0]], np.float32)
    pred = np.array([[0.4, 1.2], [2.6, 3.0], [4.0, 2.4], [4.6, 0.0]], np.float32)
    table = intensity_table(truth, pred, ["AU6", "AU12"])
    assert table.iloc[0]["mse"] == pytest.approx(np.mean([0.16, 0.36, 0.0, 0.16]))
    assert table.iloc[0]["rounded_accuracy"] == pytest.approx(0.75)  # 2.6 rounds to 3, not 2
    assert table.iloc[1]["n_known"] == 3 and table.iloc[1]["mse"] == pytest.approx(np.mean([0.04, 0.36, 0.0]))


def test_au_preset_draws_aus_independently_of_each_other_and_of_emotion():
    ds = synthfacs_dataset("au", 400, seed=3, masks=False)
    assert (ds.labels == -1).all() and ds.manifest["label_name"].isna().all()
    presence = ds.au_presence(["AU1", "AU2", "AU6", "AU12"])
    assert np.allclose(presence.mean(axis=0), 0.3, atol=0.08)
    corr = np.corrcoef(presence.T)
    assert abs(corr[0, 1]) < 0.15 and abs(corr[2, 3]) < 0.15  # prototypes tie 1+2 and 6+12; this preset must not
    assert ds.subjects_known


def test_choose_aus_keeps_sides_in_pairs_and_lists_rare_ones(tmp_path):
    from ferops.experiments.au.stage import choose_aus

    ds = synthfacs_dataset("au", 200, seed=1, masks=False)
    labels, skipped = choose_aus(ds, 0.05)
    assert "AU12" in labels and ("L12" in labels) == ("R12" in labels)
    assert not skipped
    labels, skipped = choose_aus(ds, 0.2)  # one side of 12 is present in about 0.2 of faces
    assert all((lab in labels) == (lab.replace("L", "R") in labels) for lab in labels if lab.startswith("L"))
    assert set(skipped) and not set(skipped) & set(labels)


@pytest.mark.slow
def test_au_stage_tracks_tables_and_registers_a_pullable_fer_au(mlflow_store, tmp_path):
    from ferops.experiments.au.stage import run_au
    from ferops.tracking.store import configure

    params = make_params({"domains": {"au": {"n": 120, "out": str(tmp_path / "au")}},
                          "au": {"data": str(tmp_path / "au"), "folds": 2, "epochs": 1, "width": 0.125}})
    render_domain(params.domains["au"], params.seed, "au")
    configure(params.tracking)
    result = run_au(params, out_dir=tmp_path / "out")

    out = tmp_path / "out"
    for name in ("presence.csv", "presence.png", "intensity.csv", "metrics.json", "run.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"all_at_once", "intensity"}
    assert 0 <= metrics["all_at_once"]["f1_mean"] <= 1 and metrics["all_at_once"]["always_absent_f1_mean"] == 0
    run = mlflow.get_run(result["run_id"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "au")}
    assert {"au/presence.json", "au/intensity.json", "au/presence.png"} <= artifacts
    assert run.data.metrics["all_at_once_f1_mean"] == pytest.approx(metrics["all_at_once"]["f1_mean"])
    assert {k.split(".")[0] for k in run.data.params} == {"seed", "au", "model", "train"}  # the au stage's sections
    description = run.data.tags["mlflow.note.content"]
    assert description.startswith(f"**all-at-once presence F1 = {metrics['all_at_once']['f1_mean']:.4g}")
    assert run.data.tags["dvc.data"] in description and "fer-au v1](#/models/fer-au/versions/1" in description
    shown = mlflow.load_table("au/presence.json", run_ids=[run.info.run_id])
    assert list(shown.columns[:3]) == ["mode", "au", "f1"]
    assert all(len(f"{v:.10g}".replace("0.", "").lstrip("0")) <= 4 for v in shown["f1"])  # 4 significant digits

    registry = result["registry"]
    assert registry["registered"] and registry["champion"]
    model = mlflow.keras.load_model("models:/fer-au@champion")
    assert model.output_shape[-1] == len(result["labels"])
    import subprocess
    import sys
    pulled = subprocess.run([sys.executable, "-c", "import mlflow; print(mlflow.keras.load_model("
                             "'models:/fer-au@champion').output_shape[-1])"],  # a process that never imported ferops
                            capture_output=True, text=True, env={**__import__("os").environ, "MLFLOW_TRACKING_URI": mlflow_store})
    assert pulled.returncode == 0 and pulled.stdout.split()[-1] == str(len(result["labels"])), pulled.stderr[-2000:]
    version = mlflow.MlflowClient().get_model_version_by_alias("fer-au", "champion")
    assert version.tags["key.task"] == "au_presence" and version.tags["score.metric"] == "cv_au_f1_mean"


@pytest.mark.slow
def test_one_vs_all_gives_each_au_its_own_nested_run_and_masks_unknowns(mlflow_store, tmp_path):
    from ferops.data.dataset import Dataset
    from ferops.experiments.au.stage import run_au
    from ferops.tracking.store import configure

    from conftest import make_toy_dataset

    toy = make_toy_dataset(n=60, n_classes=3, n_subjects=6)
    m = toy.manifest.copy()
    m["AU1"] = (toy.labels == 1).astype(float)  # the bar in band 1 "is" AU1, band 2 AU2
    m["AU2"] = (toy.labels == 2).astype(float)
    m.loc[::10, "AU2"] = np.nan  # nobody coded AU2 on these: masked, never counted as absent
    for code in (1, 2):
        m[f"AU{code}_int"] = m[f"AU{code}"] * 3
    Dataset(toy.images, m, toy.classes, "toy_au", {"subjects_known": True}).save(tmp_path / "toy")
    params = make_params({"au": {"data": str(tmp_path / "toy"), "modes": ["one_vs_all"], "folds": 2,
                                 "epochs": 1, "width": 0.125, "refit": True}})
    configure(params.tracking)
    result = run_au(params, out_dir=tmp_path / "out")

    assert result["labels"] == ["AU1", "AU2"] and "one_vs_all" in result and "all_at_once" not in result
    assert not result["registry"]["registered"] and "all_at_once" in result["registry"]["reason"]
    runs = mlflow.search_runs(filter_string="tags.`au.mode` = 'one_vs_all'", output_format="list")
    assert sorted(r.data.tags["au.label"] for r in runs) == ["AU1", "AU2"]
    assert all(r.data.tags["mlflow.parentRunId"] == result["run_id"] for r in runs)
    table = __import__("pandas").read_csv(tmp_path / "out" / "presence.csv")
    assert table.set_index("au").loc["AU2", "n_known"] == 60 - 6


@pytest.mark.slow
def test_au_thresholds_are_chosen_on_training_subjects_only(mlflow_store, tmp_path, monkeypatch):
    """A spy on the threshold choice: every row it sees is a validation row of a fold's training subjects."""
    from ferops.experiments.au import stage
    from ferops.tracking.store import configure

    params = make_params({"domains": {"au": {"n": 120, "out": str(tmp_path / "au")}},
                          "au": {"data": str(tmp_path / "au"), "folds": 2, "epochs": 1, "width": 0.125,
                                 "refit": False, "intensity_dense_dropout": 0.125}})
    render_domain(params.domains["au"], params.seed, "au")
    configure(params.tracking)
    seen, jobs = [], []
    real_fold, real_thresholds = stage.run_au_fold, stage.decision_thresholds

    def spy_fold(job):
        jobs.append(job)
        return real_fold(job)

    def spy_thresholds(model, images, targets, rows):
        seen.append((jobs[-1], np.asarray(rows)))
        return real_thresholds(model, images, targets, rows)

    monkeypatch.setattr(stage, "run_au_fold", spy_fold)
    monkeypatch.setattr(stage, "decision_thresholds", spy_thresholds)
    result = stage.run_au(params, out_dir=tmp_path / "out")
    subjects = stage.Dataset.load(params.au.data).subjects
    assert len(seen) == params.au.folds  # once per presence fold; intensity has no threshold
    for job, rows in seen:
        assert set(rows) == set(job.val_rows) and not set(rows) & set(job.test_rows)
        assert not set(subjects[rows]) & set(subjects[job.test_rows])
    table = json.loads((tmp_path / "out" / "run.json").read_text())["thresholds"]
    assert set(table) == set(result["labels"])
    dropout = {job.task.name: job.params.model.dense_dropout for job in jobs}  # each model's own recipe
    assert dropout == {"au_presence": params.model.dense_dropout, "au_intensity": 0.125}


@pytest.mark.slow
def test_one_vs_all_trains_the_commonest_aus_and_is_compared_on_them(mlflow_store, tmp_path):
    """au.one_vs_all_aus picks the commonest bilateral AUs; the joint head is summarised on those same AUs too."""
    from ferops.data.dataset import Dataset
    from ferops.experiments.au.stage import SAME_AUS, one_vs_all_labels, run_au
    from ferops.tracking.store import configure

    from conftest import make_toy_dataset

    toy = make_toy_dataset(n=60, n_classes=3, n_subjects=6)
    m = toy.manifest.copy()
    rows = np.arange(60)
    m["AU1"] = (toy.labels == 1).astype(float)          # a third of the faces
    m["AU2"] = ((toy.labels == 2) & (rows % 2 == 0)).astype(float)  # a sixth
    m["AU4"] = (toy.labels >= 1).astype(float)          # two thirds: the commonest
    m["AU12"] = ((toy.labels == 0) & (rows % 4 == 0)).astype(float)  # rarest, one side a face: L12 and R12 too
    for code in ("AU1", "AU2", "AU4"):
        m[f"{code}_int"] = m[code] * 3
    m["L12_int"], m["R12_int"] = m["AU12"] * 2 * (rows % 8 == 0), m["AU12"] * 2 * (rows % 8 == 4)
    Dataset(toy.images, m, toy.classes, "toy_au", {"subjects_known": True}).save(tmp_path / "toy")
    dataset = Dataset.load(tmp_path / "toy")
    labels = ("AU1", "AU2", "AU4", "AU12", "L12", "R12")  # a side-specific AU never gets a one-vs-all model
    assert one_vs_all_labels(labels, dataset, 2) == ["AU4", "AU1"]
    assert one_vs_all_labels(labels, dataset, 0) == ["AU4", "AU1", "AU2", "AU12"]

    params = make_params({"au": {"data": str(tmp_path / "toy"), "modes": ["all_at_once", "one_vs_all"],
                                 "one_vs_all_aus": 2, "min_prevalence": 0.01, "folds": 2, "epochs": 1,
                                 "width": 0.125, "refit": False}})
    configure(params.tracking)
    result = run_au(params, out_dir=tmp_path / "out")
    assert result["one_vs_all"]["n_aus"] == result[SAME_AUS]["n_aus"] == 2
    assert result["all_at_once"]["n_aus"] == len(result["labels"]) == 6
    runs = mlflow.search_runs(filter_string="tags.`au.mode` = 'one_vs_all'", output_format="list")
    assert sorted(r.data.tags["au.label"] for r in runs) == ["AU1", "AU4"]
    table = __import__("pandas").read_csv(tmp_path / "out" / "presence.csv")
    assert sorted(table["mode"].unique()) == ["all_at_once", "one_vs_all"]  # the subset is a summary, not rows

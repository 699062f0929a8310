"""The micro stage end to end on a few SynthFACS subjects, its leakage stop, and the CASME II clip route."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, recall_score

from ferops.data.clips import clips_from_frames, crop_clip, pick_frames
from ferops.data.formats import casme2
from ferops.data.synthfacs_dataset import synthfacs_dataset
from ferops.errors import FeropsError
from ferops.experiments.micro import stage as micro_stage
from ferops.experiments.micro.data import load_micro
from ferops.experiments.micro.leakage import LeakageError

from conftest import make_params, make_toy_dataset

N_SUBJECTS = 3  # the tiny_micro fixture's (conftest.py)

@pytest.mark.slow
def test_micro_end_to_end(tiny_micro, mlflow_store, tmp_path):
    params = make_params({"tracking": {"artifact_root": str(tmp_path / "artifacts")}})
    emotion = make_toy_dataset(60, 5, 6)  # pre-training data: 48x48x1 like the clips
    out = tmp_path / "micro"
    result = micro_stage.micro(params, out, data=tiny_micro, emotion=emotion)

    for name in ("metrics.json", "run.json", "table.csv", "per_class_recall.csv", "predictions.csv",
                 *(f"confusion_{m}_{k}.png" for m in ("cnn_lstm", "lbp_top") for k in ("5class", "3class"))):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    record = json.loads((out / "run.json").read_text())
    assert set(metrics) == {"cnn_lstm", "lbp_top", "chance", "majority"}
    assert set(metrics["cnn_lstm"]) == {"5class", "3class"}

    # UF1/UAR are pooled over folds: recompute them from the written predictions.
    pred = pd.read_csv(out / "predictions.csv")
    classes = record["classes"]
    for model in ("cnn_lstm", "lbp_top"):
        uf1 = f1_score(pred["actual"], pred[model], labels=classes, average="macro", zero_division=0)
        uar = recall_score(pred["actual"], pred[model], labels=classes, average="macro", zero_division=0)
        assert metrics[model]["5class"]["uf1"] == pytest.approx(uf1)
        assert metrics[model]["5class"]["uar"] == pytest.approx(uar)
    assert len(pred) == len(tiny_micro.clips) and set(pred["subject"]) == set(tiny_micro.clips.subjects)
    table = pd.read_csv(out / "table.csv")
    assert {"CNN+LSTM", "LBP-TOP + SVM", "chance", "majority"} <= set(table["model"])

    # One parent, a nested run per left-out subject, plus the refit; the refit is registered.
    assert record["run_id"] == result["run_id"] and record["n_folds"] == N_SUBJECTS
    children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{record['run_id']}'",
                                  output_format="list")
    kinds = sorted(r.data.tags["ferops.kind"] for r in children)
    assert kinds == ["micro-fold"] * N_SUBJECTS + ["micro-refit"]
    registry = json.loads((out / "registry.json").read_text())  # the one record of it; run.json has no copy
    assert "registry" not in record and registry == result["registry"]
    assert registry["model"] == "fer-micro" and registry["version"] == "1" and registry["champion"]
    version = mlflow.MlflowClient().get_model_version("fer-micro", registry["version"])
    assert version.tags["key.protocol"] == "loso" and version.tags["key.task"] == "micro_emotion"
    assert version.tags["score.metric"] == "uf1" and float(version.tags["score"]) == pytest.approx(registry["score"])
    assert registry["run_id"] in {r.info.run_id for r in children}
    note = mlflow.get_run(record["run_id"]).data.tags["mlflow.note.content"]
    assert note.startswith(f"**CNN+LSTM UF1 {metrics['cnn_lstm']['5class']['uf1']:.4g}, ") and "loso" in note
    assert tiny_micro.data_hash in note and "fer-micro v1](#/models/fer-micro/versions/1" in note
    model = mlflow.keras.load_model("models:/fer-micro/1")
    probs = model.predict(tiny_micro.clips.images[:2].astype(np.float32), verbose=0)
    assert probs.shape == (2, 5) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)


class _LeakyLOSO:
    """Leave-one-subject-out that 'forgets' to drop the test subject from training."""

    def split(self, x, y=None, groups=None):
        first = np.unique(groups)[0]
        yield np.arange(len(groups)), np.flatnonzero(groups == first)


@pytest.mark.slow
def test_micro_stops_on_a_leaky_split(tiny_micro, mlflow_store, tmp_path, monkeypatch):
    monkeypatch.setattr(micro_stage, "LeaveOneGroupOut", _LeakyLOSO)
    params = make_params({"micro": {"cnn": {"pretrain_epochs": 0}, "register": False},
                          "tracking": {"artifact_root": str(tmp_path / "artifacts")}})
    with pytest.raises(LeakageError, match="also in the training data"):
        micro_stage.micro(params, tmp_path / "micro", data=tiny_micro)
    assert not (tmp_path / "micro" / "metrics.json").exists()
    parent = mlflow.search_runs(filter_string="tags.`ferops.kind` = 'micro'", output_format="list")
    assert [r.info.status for r in parent] == ["FAILED"]


def test_key_frames_need_length_five():
    with pytest.raises(FeropsError, match="length: 5"):
        load_micro(make_params({"micro": {"clip": {"frames": "key", "length": 4}}}))


def test_casme2_clips_read_only_the_frames_asked_for(tmp_path, monkeypatch):
    frames = synthfacs_dataset("micro", 6, seed=3, size=64, channels=3, masks=False)
    casme2.write_casme2(frames, tmp_path / "casme")
    decoded = []
    real_read = casme2.read_image
    monkeypatch.setattr(casme2, "read_image", lambda p, root: decoded.append(p) or real_read(p, root))

    def pick(available, onset, apex, offset):
        return pick_frames(available, onset, apex, offset, "key", 5)

    def crop(images, reference):
        return crop_clip(images, reference, 48, 1, detect_faces=False)

    clips = casme2.read_casme2_clips(tmp_path / "casme", pick, crop, classes=casme2.CLASSES_ALL)
    assert clips.images.shape == (6, 5, 48, 48, 1) and clips.images.dtype == np.uint8
    assert len(decoded) == 6 * 5  # five frames per clip, not the whole folder
    assert clips.extras["dropped"] == {"class_not_kept": 0, "apex_unknown": 0, "frame_snapped": 0}
    direct = clips_from_frames(frames, "key", 5, 48, 1)
    np.testing.assert_array_equal(clips.extras["clip_frames"], direct.extras["clip_frames"])
    assert clips.manifest["label_name"].tolist() == direct.manifest["label_name"].tolist()
    assert len(set(clips.subjects)) == len(set(direct.subjects))
    assert np.abs(clips.images.astype(int) - direct.images.astype(int)).mean() < 3  # JPEG q95 round trip


@pytest.mark.slow
def test_a_reused_cnn_lstm_trains_a_fold_as_a_fresh_one_would(tiny_micro):
    """Every LOSO fold trains the kept, compiled CNN+LSTM through fit (reuse): what trained before leaves no trace."""
    from ferops.experiments.micro.train import CnnLstm

    params = make_params({"micro": {"cnn": {"epochs": 1}, "lstm": {"epochs": 1}}})
    clips = tiny_micro.clips
    subjects = np.unique(clips.subjects)
    train = np.flatnonzero(clips.subjects != subjects[0])
    test = np.flatnonzero(clips.subjects == subjects[0])
    other = np.flatnonzero(clips.subjects != subjects[1])

    reused = CnnLstm(params, clips, pretrained=None)
    reused.train(other, seed=params.seed + 1)  # another fold first
    reused.train(train, seed=params.seed)
    fresh = CnnLstm(params, clips, pretrained=None)
    fresh.train(train, seed=params.seed)
    np.testing.assert_array_equal(reused.predict(test), fresh.predict(test))

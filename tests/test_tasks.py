"""Tasks: targets from a Dataset, masked losses and metrics, the flip rule, one fit for all three."""

import keras
import numpy as np
import pytest

from ferops.config import replace
from ferops.data.synthfacs_dataset import synthfacs_dataset
from ferops.train.fit import fit, predict_proba
from ferops.train.masked import MaskedBinaryAccuracy, MaskedMeanAbsoluteError
from ferops.train.streams import eval_stream
from ferops.train.tasks import au_intensity_task, au_presence_task, emotion_task

from conftest import make_params

AUS = ("AU1", "AU4", "AU6", "AU12", "AU25", "L12", "R12")


@pytest.fixture(scope="module")
def synth():
    """~30 frames of CK+-like sequences with exact AU truth, straight from the renderer."""
    return synthfacs_dataset("posed", 6, seed=0, size=32, frames=(4, 6))


@pytest.fixture
def params():
    return make_params({"model": {"width": 0.0625}, "train": {"epochs": 2, "batch_size": 64}})


def _hide_aus(ds, rows, codes):
    """The same frames with some AUs uncoded, as a partly FACS-coded dataset has them."""
    m = ds.manifest.copy()
    for code in codes:
        m.loc[rows, f"AU{code}"] = np.nan
        m.loc[rows, f"AU{code}_int"] = np.nan
    out = ds.subset(np.arange(len(ds)))
    out.manifest = m
    return out


def _bce(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _evaluate(model, x, y):
    """Keras' loss and metric over one batch holding every sample (no batch averaging in between)."""
    return model.evaluate(eval_stream(x, y, len(x)), verbose=0, return_dict=True)


@pytest.mark.slow
def test_au_presence_trains_and_its_loss_ignores_unknown_entries(synth, params):
    rows = np.arange(0, len(synth), 3)
    ds = _hide_aus(synth, rows, (6, 12))  # L12/R12 stay known: they come from the per-side grades
    task = au_presence_task(AUS)
    y = task.targets(ds)
    assert np.isnan(y[rows][:, [2, 3]]).all() and not np.isnan(y[:, [0, 1, 4]]).any()
    result = fit(params, task, ds.images, y, verbose=0)
    assert np.isfinite(result.history["loss"]).all()
    p = predict_proba(result.model, ds.images)
    known = ~np.isnan(y)
    scores = _evaluate(result.model, ds.images, y)
    assert scores["loss"] == pytest.approx(_bce(y[known], p[known]).mean(), rel=1e-4)
    assert scores["accuracy"] == pytest.approx(((p[known] > 0.5) == (y[known] > 0.5)).mean(), rel=1e-6)
    # the unknown entries are really skipped: coding them (either way) changes the loss
    for value in (0.0, 1.0):
        coded = np.where(known, y, value).astype(np.float32)
        assert _evaluate(result.model, ds.images, coded)["loss"] != pytest.approx(scores["loss"], rel=1e-4)


def test_au_intensity_trains_and_its_loss_ignores_unknown_entries(synth, params):
    rows = np.arange(1, len(synth), 4)
    ds = _hide_aus(synth, rows, (1, 25))
    task = au_intensity_task(AUS)
    y = task.targets(ds)
    assert np.isnan(y[rows][:, [0, 4]]).all()
    assert np.nanmax(y) <= 5 and np.nanmin(y) >= 0 and np.nanmax(y) >= 1
    result = fit(params, task, ds.images, y, verbose=0)
    assert np.isfinite(result.history["loss"]).all() and "mae" in result.history
    p = predict_proba(result.model, ds.images)
    assert (p >= 0).all() and (p <= 5).all()
    known = ~np.isnan(y)
    scores = _evaluate(result.model, ds.images, y)
    assert scores["loss"] == pytest.approx(((p[known] - y[known]) ** 2).mean(), rel=1e-4)
    assert scores["mae"] == pytest.approx(np.abs(p[known] - y[known]).mean(), rel=1e-4)


@pytest.mark.slow
def test_emotion_with_unknown_labels_trains_exactly_as_on_the_labelled_rows(synth, params):
    task = emotion_task(synth.classes)
    y = task.targets(synth)
    unknown = np.arange(len(synth)) % 5 == 2
    y_partial = np.where(unknown, -1, y)
    a = fit(params, task, synth.images, y_partial, verbose=0)
    b = fit(params, task, synth.images[~unknown], y[~unknown], verbose=0)
    assert a.history == b.history  # unknown rows take no part: same batches, same steps, same numbers
    # and the loss itself ignores a -1 label, whatever the prediction for it
    p = predict_proba(a.model, synth.images)
    loss = task.loss()
    expected = -np.log(p[~unknown, y[~unknown]]).mean()
    assert float(loss(y_partial, p)) == pytest.approx(expected, rel=1e-5)


def test_masked_loss_and_metrics_by_hand():
    y = np.array([[1, np.nan, 0], [np.nan, np.nan, 1]], np.float32)
    p = np.array([[0.9, 0.2, 0.6], [0.3, 0.99, 0.4]], np.float32)
    known = ~np.isnan(y)
    bce = au_presence_task([1, 2, 4]).loss()
    assert float(bce(y, p)) == pytest.approx(_bce(y[known], p[known]).mean(), rel=1e-5)
    p_other = p.copy()
    p_other[~known] = 0.01  # predictions for unknown entries do not matter
    assert float(bce(y, p_other)) == pytest.approx(float(bce(y, p)), rel=1e-6)
    acc = MaskedBinaryAccuracy()
    acc.update_state(y[:1], p[:1])
    acc.update_state(y[1:], p[1:])
    assert float(acc.result()) == pytest.approx(1 / 3)  # 3 known entries over two batches, one right
    mae = MaskedMeanAbsoluteError()
    mae.update_state(y, p)
    assert float(mae.result()) == pytest.approx(np.abs(p[known] - y[known]).mean(), rel=1e-6)
    assert float(bce(np.full((2, 3), np.nan, np.float32), p)) == 0.0  # nothing known, nothing to learn


def test_flip_rule_pairs_left_and_right():
    task = au_presence_task(["AU6", "L12", "R12", 25])
    assert task.labels == ("AU6", "L12", "R12", "AU25")
    np.testing.assert_array_equal(task.flip_permutation, [0, 2, 1, 3])
    assert au_presence_task([6, 12]).flip_permutation is None  # bilateral labels survive a flip
    assert emotion_task(("neutral", "happiness")).flip_permutation is None
    with pytest.raises(ValueError, match="R12"):
        au_intensity_task(["L12", 6])


def test_emotion_targets_follow_the_task_classes(synth):
    task = emotion_task(tuple(reversed(synth.classes)))
    y = task.targets(synth)
    assert [task.labels[i] for i in y] == list(synth.manifest["label_name"])
    with pytest.raises(ValueError, match="not classes of this task"):
        emotion_task(("happiness",)).targets(synth)


def test_tasks_give_fresh_losses_and_metrics():
    task = au_presence_task([1, 2])
    assert task.loss() is not task.loss() and task.metrics()[0] is not task.metrics()[0]


@pytest.mark.slow
def test_au_model_saves_and_loads_with_its_masked_loss(synth, params, tmp_path):
    task = au_presence_task(AUS)
    y = task.targets(synth)
    result = fit(replace(params, **{"train.epochs": 1}), task, synth.images, y, verbose=0)
    result.model.save(tmp_path / "au.keras")
    back = keras.models.load_model(tmp_path / "au.keras")
    np.testing.assert_allclose(predict_proba(back, synth.images), predict_proba(result.model, synth.images), atol=1e-6)
    assert back.loss.name == "masked_binary_crossentropy"

import numpy as np
import pytest

from ferops.config import AugmentParams, replace
from ferops.train.augment import training_stream
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import holdout_split, make_folds

NO_AFFINE = AugmentParams(flip=True, rotation_deg=0.0, translation=0.0, scale=0.0, shear=0.0)


def _bar_images(n=8):
    x = np.zeros((n, 48, 48, 1), np.uint8)
    x[:, 10:38, 4:12] = 255  # a bar on the left: a flip moves it to the right
    return x


def _epoch(ds):
    return np.concatenate([b[0].numpy() for b in ds])


def test_augmentation_is_on_the_fly_and_reproducible():
    x, y = _bar_images(), np.arange(8)
    ds = training_stream(x, y, 4, AugmentParams(), seed=3)
    first, second = _epoch(ds), _epoch(ds)
    assert first.shape == (8, 48, 48, 1) and first.dtype == np.float32
    assert not np.array_equal(first, second)  # a new draw every epoch, not precomputed copies
    again = _epoch(training_stream(x, y, 4, AugmentParams(), seed=3))
    np.testing.assert_array_equal(first, again)  # same seed, same stream


def test_flip_mirrors_exactly_and_none_means_identity():
    x, y = _bar_images(64), np.zeros(64, int)
    out = _epoch(training_stream(x, y, 64, NO_AFFINE, seed=0))
    left = out[:, 10:38, 4:12].mean(axis=(1, 2, 3)) > 200
    right = out[:, 10:38, 36:44].mean(axis=(1, 2, 3)) > 200
    assert np.all(left ^ right) and 10 < left.sum() < 54
    plain = np.sort(_epoch(training_stream(x, y, 64, None, seed=0)).reshape(64, -1), axis=0)
    np.testing.assert_array_equal(plain, np.sort(x.reshape(64, -1).astype(np.float32), axis=0))


def test_affine_moves_pixels_within_limits():
    x, y = _bar_images(32), np.zeros(32, int)
    aug = AugmentParams(flip=False, rotation_deg=15.0, translation=0.1, scale=0.1, shear=0.1)
    out = _epoch(training_stream(x, y, 32, aug, seed=1))
    changed = np.abs(out - x).reshape(32, -1).max(axis=1) > 0
    assert changed.all()
    # the bar's centre of mass stays within translation + rotation/scale reach of where it was
    cols = (out[..., 0] > 127).mean(axis=1).argmax(axis=1)
    assert np.all(np.abs(cols - 8) <= 12)


def test_inverse_time_decay(tiny_params, toy_dataset):
    result = fit(tiny_params, toy_dataset.images, toy_dataset.labels, 3, verbose=0)
    optimizer = result.model.optimizer
    steps = int(optimizer.iterations.numpy())
    expected = 1e-3 / (1 + 1e-5 * steps)
    assert steps == int(np.ceil(len(toy_dataset) / 16))
    assert float(optimizer.learning_rate) == pytest.approx(expected, rel=1e-6)


def test_same_params_same_metrics_on_cpu(tiny_params, toy_dataset):
    params = replace(tiny_params, **{"train.epochs": 2})
    a = fit(params, toy_dataset.images, toy_dataset.labels, 3, verbose=0)
    b = fit(params, toy_dataset.images, toy_dataset.labels, 3, verbose=0)
    assert a.history == b.history
    np.testing.assert_array_equal(predict_proba(a.model, toy_dataset.images), predict_proba(b.model, toy_dataset.images))
    c = fit(replace(params, seed=params.seed + 1), toy_dataset.images, toy_dataset.labels, 3, verbose=0)
    assert c.history != a.history


def test_training_learns_an_easy_task(tiny_params, toy_dataset):
    params = replace(tiny_params, **{"train.epochs": 8, "model.width": 0.25, "train.augment.rotation_deg": 0.0})
    result = fit(params, toy_dataset.images, toy_dataset.labels, 3, verbose=0)
    accuracy = (predict_proba(result.model, toy_dataset.images).argmax(1) == toy_dataset.labels).mean()
    assert accuracy > 0.9


def test_subject_folds_never_split_a_person():
    rng = np.random.default_rng(0)
    subjects = np.repeat([f"S{i:03d}" for i in range(30)], 8)
    labels = rng.integers(0, 4, len(subjects))
    folds = make_folds(labels, subjects, 10, "subject", seed=1)
    assert set(folds) == set(range(10))
    for s in np.unique(subjects):
        assert len(set(folds[subjects == s])) == 1
    np.testing.assert_array_equal(folds, make_folds(labels, subjects, 10, "subject", seed=1))


def test_paper_protocol_mixes_subjects_and_stratifies():
    subjects = np.repeat([f"S{i:03d}" for i in range(10)], 20)
    labels = np.tile(np.arange(4), 50)
    folds = make_folds(labels, subjects, 10, "paper", seed=1)
    assert any(len(set(folds[subjects == s])) > 1 for s in np.unique(subjects))
    for f in range(10):
        assert np.bincount(labels[folds == f], minlength=4).tolist() == [5, 5, 5, 5]


def test_too_few_subjects_is_a_clear_error():
    with pytest.raises(ValueError, match="need at least 10 subjects, the data has 3"):
        make_folds(np.zeros(30, int), np.repeat(["a", "b", "c"], 10), 10, "subject", 0)


def test_holdout_is_subject_grouped():
    subjects = np.repeat([f"S{i}" for i in range(20)], 5)
    train, val = holdout_split(subjects, 0.2, seed=0)
    assert not set(subjects[train]) & set(subjects[val])
    assert len(train) + len(val) == 100

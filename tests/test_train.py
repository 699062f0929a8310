import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from ferops.config import replace
from ferops.errors import FeropsError
from ferops.models import Head, build_model
from ferops.train.augment import augment
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import holdout_split, make_folds
from ferops.train.streams import Rows, eval_stream, training_stream
from ferops.train.tasks import emotion_task

from conftest import make_params

AUG = make_params().train.augment
NO_AFFINE = dataclasses.replace(AUG, flip=True, rotation_deg=0.0, translation=0.0, scale=0.0, shear=0.0)
TOY = emotion_task(("neutral", "happiness", "surprise"))


def _bar_images(n=8):
    x = np.zeros((n, 48, 48, 1), np.uint8)
    x[:, 10:38, 4:12] = 255  # a bar on the left: a flip moves it to the right
    return x


def _epoch(ds):
    return np.concatenate([b[0].numpy() for b in ds])


def test_augmentation_is_on_the_fly_and_reproducible():
    x, y = _bar_images(), np.arange(8)
    ds = training_stream(x, y, 4, AUG, seed=3)
    first, second = _epoch(ds), _epoch(ds)
    assert first.shape == (8, 48, 48, 1) and first.dtype == np.float32
    assert not np.array_equal(first, second)  # a new draw every epoch, not precomputed copies
    again = _epoch(training_stream(x, y, 4, AUG, seed=3))
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
    aug = dataclasses.replace(AUG, flip=False, rotation_deg=15.0, translation=0.1, scale=0.1, shear=0.1)
    out = _epoch(training_stream(x, y, 32, aug, seed=1))
    changed = np.abs(out - x).reshape(32, -1).max(axis=1) > 0
    assert changed.all()
    # the bar's centre of mass stays within translation + rotation/scale reach of where it was
    cols = (out[..., 0] > 127).mean(axis=1).argmax(axis=1)
    assert np.all(np.abs(cols - 8) <= 12)


def test_flip_swaps_left_and_right_au_targets_of_exactly_the_flipped_images():
    x = tf.constant(_bar_images(64), tf.float32)
    # columns: AU6, L12, R12 ; every image has a left-sided AU12 (and NaN = unknown AU6 on odd rows)
    y = np.tile(np.array([[1.0, 1.0, 0.0]], np.float32), (64, 1))
    y[1::2, 0] = np.nan
    images, targets = augment(x, tf.constant(y), tf.constant([5, 7], tf.int64), NO_AFFINE, np.array([0, 2, 1]))
    images, targets = images.numpy(), targets.numpy()
    flipped = images[:, 10:38, 36:44].mean(axis=(1, 2, 3)) > 200
    assert 10 < flipped.sum() < 54
    np.testing.assert_array_equal(targets[flipped, 1:], np.tile([0.0, 1.0], (flipped.sum(), 1)))
    np.testing.assert_array_equal(targets[~flipped, 1:], np.tile([1.0, 0.0], ((~flipped).sum(), 1)))
    np.testing.assert_array_equal(targets[:, 0], y[:, 0])  # bilateral and unknown entries untouched


def test_one_transform_per_clip():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1, 32, 32, 1), dtype=np.uint8)
    clips = np.repeat(np.repeat(frame[None], 6, axis=1), 8, axis=0)  # 8 clips x 6 identical frames
    aug = dataclasses.replace(AUG, rotation_deg=20.0, translation=0.1)
    out = _epoch(training_stream(clips, np.zeros(8, np.int64), 8, aug, seed=2))
    assert out.shape == (8, 6, 32, 32, 1)
    for clip in out:
        for f in clip[1:]:
            np.testing.assert_array_equal(f, clip[0])  # every frame of a clip gets the same warp
    assert len({o[0].tobytes() for o in out}) == 8  # and every clip its own


def test_memmap_stream_gives_the_same_batches(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (37, 24, 24, 1), dtype=np.uint8)
    y = rng.integers(0, 3, 37)
    np.save(tmp_path / "x.npy", x)
    disk = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(disk, np.memmap)
    for a, b in zip(training_stream(x, y, 8, AUG, seed=4), training_stream(disk, y, 8, AUG, seed=4)):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    plain = [b for b in eval_stream(disk, y, 8)]
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in plain]), x.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in plain]), y)


def test_rows_view_reads_like_fancy_indexing(tmp_path):
    x = np.arange(20 * 4, dtype=np.uint8).reshape(20, 2, 2, 1)
    np.save(tmp_path / "x.npy", x)
    disk = np.load(tmp_path / "x.npy", mmap_mode="r")
    fold = Rows(disk, np.arange(20) % 3 != 0)
    assert fold.shape == (13, 2, 2, 1) and len(fold) == 13
    np.testing.assert_array_equal(fold[np.array([5, 0, 12])], x[np.arange(20) % 3 != 0][[5, 0, 12]])
    inner = Rows(fold, [2, 1])  # fold rows 2 and 1 are original rows 4 and 2
    np.testing.assert_array_equal(inner[np.array([1, 0])], x[[2, 4]])
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in eval_stream(fold, None, 4)]),
                                  x[np.arange(20) % 3 != 0].astype(np.float32))


def test_inverse_time_decay(tiny_params, toy_dataset):
    result = fit(tiny_params, TOY, toy_dataset.images, toy_dataset.labels, verbose=0)
    optimizer = result.model.optimizer
    steps = int(optimizer.iterations.numpy())
    expected = 1e-3 / (1 + 1e-5 * steps)
    assert steps == int(np.ceil(len(toy_dataset) / 16))
    assert float(optimizer.learning_rate) == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_same_params_same_metrics_on_cpu(tiny_params, toy_dataset):
    params = replace(tiny_params, **{"train.epochs": 2})
    a = fit(params, TOY, toy_dataset.images, toy_dataset.labels, verbose=0)
    b = fit(params, TOY, toy_dataset.images, toy_dataset.labels, verbose=0)
    assert a.history == b.history
    np.testing.assert_array_equal(predict_proba(a.model, toy_dataset.images), predict_proba(b.model, toy_dataset.images))
    c = fit(replace(params, seed=params.seed + 1), TOY, toy_dataset.images, toy_dataset.labels, verbose=0)
    assert c.history != a.history


@pytest.mark.slow
def test_a_reused_compiled_model_trains_exactly_as_a_fresh_one(tiny_params, toy_dataset):
    """Reset (weights, dropout seed states, Adam's moments and step count) then train == build then train."""
    from ferops.train.fit import COMPILED

    params = replace(tiny_params, **{"train.epochs": 2})
    x, y = toy_dataset.images, toy_dataset.labels
    COMPILED.kept.clear()
    first = fit(params, TOY, x[:40], y[:40], x[40:], y[40:], verbose=0, reuse=True, seed_offset=3)  # other data
    kept = first.model
    fresh = fit(params, TOY, x, y, verbose=0, seed_offset=1)
    reused = fit(params, TOY, x, y, verbose=0, seed_offset=1, reuse=True)
    assert reused.model is kept and fresh.model is not kept  # the compiled model was reused, not rebuilt
    assert reused.history == fresh.history
    for a, b in zip(reused.model.variables, fresh.model.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(reused.model.optimizer.iterations.numpy()) == int(fresh.model.optimizer.iterations.numpy())
    other = fit(replace(params, **{"model.width": 0.0625}), TOY, x, y, verbose=0, reuse=True)
    assert other.model is not kept  # another architecture gets its own compiled model


@pytest.mark.slow
def test_class_weights_change_the_loss(tiny_params, toy_dataset):
    x, y = toy_dataset.images, toy_dataset.labels
    plain = fit(tiny_params, TOY, x, y, verbose=0)
    weighted = fit(tiny_params, TOY, x, y, verbose=0, class_weight={0: 5.0, 1: 1.0, 2: 1.0})
    assert weighted.history["loss"] != plain.history["loss"]


@pytest.mark.slow
def test_training_learns_an_easy_task(tiny_params, toy_dataset):
    params = replace(tiny_params, **{"train.epochs": 8, "model.width": 0.25, "train.augment.rotation_deg": 0.0})
    result = fit(params, TOY, toy_dataset.images, toy_dataset.labels, verbose=0)
    accuracy = (predict_proba(result.model, toy_dataset.images).argmax(1) == toy_dataset.labels).mean()
    assert accuracy > 0.9


def test_fit_trains_a_given_model_and_keeps_frozen_layers_frozen(tiny_params, toy_dataset):
    params = replace(tiny_params, **{"model.width": 0.0625})
    model = build_model(params.model, TOY.head, (48, 48, 1))
    model.get_layer("conv1").trainable = False
    before = [w.copy() for w in model.get_layer("conv1").get_weights()]
    dense_before = model.get_layer("dense").get_weights()[0].copy()
    result = fit(params, TOY, toy_dataset.images, toy_dataset.labels, model=model, verbose=0)
    assert result.model is model
    for w, b in zip(model.get_layer("conv1").get_weights(), before):
        np.testing.assert_array_equal(w, b)
    assert not np.array_equal(model.get_layer("dense").get_weights()[0], dense_before)


@pytest.mark.slow
def test_fit_calls_a_builder_after_seeding(tiny_params, toy_dataset):
    params = replace(tiny_params, **{"model.width": 0.0625})
    built = fit(params, TOY, toy_dataset.images, toy_dataset.labels, verbose=0)
    via_builder = fit(params, TOY, toy_dataset.images, toy_dataset.labels, verbose=0,
                      model=lambda: build_model(params.model, TOY.head, (48, 48, 1)))
    assert via_builder.history == built.history  # built inside fit's seeding: same weights, same run
    with pytest.raises(ValueError, match="outputs"):
        fit(params, TOY, toy_dataset.images, toy_dataset.labels, verbose=0,
            model=build_model(params.model, Head(5, "softmax"), (48, 48, 1)))


def test_fit_needs_a_sequence_model_for_clips(tiny_params):
    clips = np.zeros((4, 3, 32, 32, 1), np.uint8)
    with pytest.raises(ValueError, match="clips"):
        fit(tiny_params, TOY, clips, np.zeros(4, np.int64), verbose=0)


def test_fit_trains_a_cnn_lstm_on_clips(tiny_params):
    from ferops.models import feature_extractor

    params = replace(tiny_params, **{"model.width": 0.0625, "train.batch_size": 4})
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (8, 3, 32, 32, 1), dtype=np.uint8)

    def cnn_lstm():
        frames = feature_extractor(build_model(params.model, TOY.head, (32, 32, 1)))
        inputs = keras.Input((3, 32, 32, 1))
        x = keras.layers.LSTM(4)(keras.layers.TimeDistributed(frames)(inputs))
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))

    result = fit(params, TOY, clips, np.arange(8) % 3, model=cnn_lstm, verbose=0)
    assert np.isfinite(result.history["loss"]).all()
    assert predict_proba(result.model, clips).shape == (8, 3)


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
    with pytest.raises(FeropsError, match="need at least 10 subjects, the data has 3"):
        make_folds(np.zeros(30, int), np.repeat(["a", "b", "c"], 10), 10, "subject", 0)


def test_holdout_is_subject_grouped():
    subjects = np.repeat([f"S{i}" for i in range(20)], 5)
    train, val = holdout_split(subjects, 0.2, seed=0)
    assert not set(subjects[train]) & set(subjects[val])
    assert len(train) + len(val) == 100

"""Micro-expression pieces: LBP-TOP against a per-voxel reference, UF1/UAR against scikit-learn,
the leakage guard, and one crop per clip."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.feature import local_binary_pattern
from sklearn.metrics import f1_score, recall_score

from ferops.data.clips import crop_clip, pick_frames
from ferops.experiments.micro import metrics as mm
from ferops.experiments.micro.leakage import LeakageError, SubjectScaler, check_fold
from ferops.features.lbp_top import lbp_top, n_bins, plane_codes

# ---------------------------------------------------------------------------- LBP-TOP

def _reference_bins(points: int) -> dict[int, int]:
    """Uniform (<= 2 circular 0/1 changes) codes numbered in ascending order; every other code -> last bin."""
    table, nxt = {}, 0
    for code in range(2 ** points):
        bits = [(code >> i) & 1 for i in range(points)]
        changes = sum(bits[i] != bits[i - 1] for i in range(points))
        if changes <= 2:
            table[code] = nxt
            nxt += 1
    return {code: table.get(code, points * (points - 1) + 2) for code in range(2 ** points)}


def _bilinear(vol, centre, offset):
    """Value at centre + offset (per axis t, y, x); grid points with zero weight are not read."""
    base = [c + math.floor(o) for c, o in zip(centre, offset)]
    frac = [o - math.floor(o) for o in offset]
    moving = [k for k in range(3) if frac[k] != 0.0]  # at most the two axes of the plane
    value = 0.0
    for steps in ((0, 0), (0, 1), (1, 0), (1, 1)):  # lower axis first, as the implementation sums
        if any(steps[i] for i in range(len(moving), 2)):
            continue  # a step along an axis without a fractional part has weight 0
        weight, idx = 1.0, list(base)
        for k, step in zip(moving, steps):
            weight *= frac[k] if step else 1 - frac[k]
            idx[k] += step
        if weight != 0.0:
            value += weight * vol[tuple(idx)]
    return value


def reference_lbp_top(clip: np.ndarray, points: int, radius: int, time_radius: int, blocks: int) -> np.ndarray:
    """LBP-TOP the slow way: every interior voxel, every plane, every neighbour, one at a time."""
    vol = clip.astype(np.float64)
    t_len, h, w = vol.shape
    bins = _reference_bins(points)
    n = points * (points - 1) + 3
    hist = np.zeros((blocks * blocks, 3, n))
    for t in range(time_radius, t_len - time_radius):
        for y in range(radius, h - radius):
            for x in range(radius, w - radius):
                cell = ((y - radius) * blocks // (h - 2 * radius)) * blocks + (x - radius) * blocks // (w - 2 * radius)
                for plane in range(3):
                    code = 0
                    for p in range(points):
                        angle = 2 * math.pi * p / points
                        s, c = round(-math.sin(angle), 9) + 0.0, round(math.cos(angle), 9) + 0.0
                        if plane == 0:    # XY: the circle in (y, x)
                            offset = (0.0, radius * s, radius * c)
                        elif plane == 1:  # XT: in (t, x)
                            offset = (time_radius * s, 0.0, radius * c)
                        else:             # YT: in (t, y)
                            offset = (time_radius * s, radius * c, 0.0)
                        code |= int(_bilinear(vol, (t, y, x), offset) >= vol[t, y, x]) << p
                    hist[cell, plane, bins[code]] += 1
    hist /= np.maximum(hist.sum(axis=2, keepdims=True), 1)
    return hist.reshape(-1)


@pytest.mark.parametrize("radius,time_radius,blocks", [(1, 1, 2), (2, 1, 3)])
def test_lbp_top_matches_per_voxel_reference(radius, time_radius, blocks):
    clip = np.random.default_rng(radius).integers(0, 6, (5, 13, 11), dtype=np.uint8)  # few levels: many ties
    fast = lbp_top(clip, 8, radius, time_radius, blocks)
    assert fast.shape == (blocks * blocks * 3 * n_bins(8),)
    np.testing.assert_allclose(fast, reference_lbp_top(clip, 8, radius, time_radius, blocks), atol=1e-6)


@pytest.mark.filterwarnings("ignore:Applying .local_binary_pattern. to floating-point")
def test_lbp_planes_agree_with_scikit_image():
    """Raw codes of XY (per frame) and XT (per row) against skimage's LBP on the same 2-D planes."""
    vol = np.random.default_rng(3).random((6, 12, 14)) * 255  # real-valued: no ties to round differently
    xy = plane_codes(vol, "xy", 8, 1, 1)
    for t in range(1, 5):
        sk = local_binary_pattern(vol[t], 8, 1, method="default")[1:-1, 1:-1]
        np.testing.assert_array_equal(xy[t - 1], sk)
    xt = plane_codes(vol, "xt", 8, 1, 1)
    for y in range(1, 11):
        sk = local_binary_pattern(vol[:, y, :], 8, 1, method="default")[1:-1, 1:-1]
        np.testing.assert_array_equal(xt[:, y - 1, :], sk)


def test_lbp_top_refuses_too_short_clips():
    with pytest.raises(ValueError, match="too small"):
        lbp_top(np.zeros((2, 20, 20), np.uint8), time_radius=1)


# ---------------------------------------------------------------------------- UF1 / UAR

def test_uf1_uar_match_scikit_learn():
    rng = np.random.default_rng(0)
    for k in (3, 5):
        y = rng.integers(0, k, 200)
        pred = np.where(rng.random(200) < 0.4, y, rng.integers(0, k - 1, 200))  # class k-1 rarely predicted
        s = mm.scores(y, pred, k)
        assert s["uf1"] == pytest.approx(f1_score(y, pred, average="macro"))
        assert s["uar"] == pytest.approx(recall_score(y, pred, average="macro"))
        assert mm.uf1(y, pred, k) == pytest.approx(s["uf1"])  # MEGC's TP/FP/FN formula
        assert mm.uar(y, pred, k) == pytest.approx(s["uar"])


def test_uf1_counts_a_class_never_predicted_as_zero():
    y, pred = np.array([0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 1])
    assert mm.scores(y, pred, 3)["uf1"] == pytest.approx(f1_score(y, pred, labels=[0, 1, 2], average="macro",
                                                                  zero_division=0))
    assert mm.uf1(y, pred, 3) == pytest.approx((1 + 0.8 + 0) / 3)


def test_chance_and_majority_baselines():
    y = np.array([0] * 6 + [1] * 3 + [2] * 1)
    b = mm.baselines(y, 3)
    assert b["majority"]["accuracy"] == pytest.approx(0.6)
    assert b["majority"]["uar"] == pytest.approx(1 / 3)
    assert b["majority"]["uf1"] == pytest.approx(f1_score(y, np.zeros_like(y), labels=[0, 1, 2], average="macro"))
    expected = np.mean([2 * p / (3 * p + 1) for p in (0.6, 0.3, 0.1)])
    assert b["chance"] == {"accuracy": pytest.approx(1 / 3), "uf1": pytest.approx(expected), "uar": pytest.approx(1 / 3)}


def test_composite_drops_others_and_maps_groups():
    classes = ("happiness", "disgust", "repression", "surprise", "others")
    y = np.array([0, 1, 2, 3, 4])
    scores = np.array([[0.1, 0.5, 0.0, 0.0, 0.4],   # happiness scored as disgust -> negative
                       [0.0, 0.1, 0.2, 0.0, 0.7],   # disgust, best non-others repression -> negative
                       [0.9, 0.0, 0.1, 0.0, 0.0],
                       [0.0, 0.0, 0.0, 1.0, 0.0],
                       [1.0, 0.0, 0.0, 0.0, 0.0]])  # others: dropped
    keep, truth, pred = mm.composite(scores, y, classes)
    names = mm.COMPOSITE_CLASSES
    assert keep.tolist() == [0, 1, 2, 3]
    assert [names[k] for k in truth] == ["positive", "negative", "negative", "surprise"]
    assert [names[k] for k in pred] == ["negative", "negative", "positive", "surprise"]


# ---------------------------------------------------------------------------- leakage guard

def test_leakage_guard_fires_on_a_leaky_split():
    subjects = np.array(["s1", "s1", "s2", "s2", "s3"])
    test = np.array([4])
    leaky_train = np.array([0, 1, 2, 3, 4])  # the left-out subject's clip kept in training
    with pytest.raises(LeakageError, match=r"\['s3'\].*training data"):
        check_fold("fold 2", subjects[leaky_train], subjects[test])


def test_leakage_guard_fires_on_a_scaler_fitted_on_the_test_subject():
    subjects = np.array(["s1", "s2", "s3"])
    x = np.arange(6.0).reshape(3, 2)
    scaler = SubjectScaler().fit(x, subjects=subjects)  # all subjects: the classic ME-paper mistake
    with pytest.raises(LeakageError, match="LBP-TOP scaler"):
        check_fold("fold 0", subjects[:2], subjects[2:], {"LBP-TOP scaler": scaler.subjects_})
    clean = SubjectScaler().fit(x[:2], subjects=subjects[:2])
    check_fold("fold 0", subjects[:2], subjects[2:], {"LBP-TOP scaler": clean.subjects_})
    with pytest.raises(LeakageError, match="subjects="):
        SubjectScaler().fit(x)


# ---------------------------------------------------------------------------- clips

class _BrightnessDetector:
    """Puts the face box where the frame's brightness says: per-frame detection would move the crop."""

    def __init__(self):
        self.calls = 0

    def detect(self, gray):
        self.calls += 1
        shift = int(gray.mean()) % 20
        return [(10 + shift, 10 + shift, 60, 60)]


def test_clip_crop_is_identical_across_frames():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 200, (100, 120, 3), dtype=np.uint8)
    frames = [base + np.uint8(5 * t) for t in range(5)]  # same face, brightness steps
    detector = _BrightnessDetector()
    clip, info = crop_clip(frames, reference=1, size=32, channels=1, detect_faces=True, detector=detector)
    assert clip.shape == (5, 32, 32, 1) and clip.dtype == np.uint8
    assert detector.calls == 1  # found once, on the reference (onset) frame
    assert info["face_x"] == 10 + int(frames[1].mean()) % 20  # the RGB mean is close to the gray one
    diff = clip.astype(int) - clip[0].astype(int)
    for t in range(5):  # same geometry: every pixel differs by the brightness step only
        assert np.abs(diff[t] - 5 * t).max() <= 1


def test_pick_frames_key_and_span():
    available = list(range(10, 31))
    assert pick_frames(available, 12, 20, 28, "key", 5) == [10, 12, 20, 28, 30]
    assert pick_frames(available, 12, 20, 28, "span", 5) == [12, 14, 16, 18, 20, 22, 24, 26, 28][::2]
    assert pick_frames(available, 5, 20, 40, "key", 5) == [10, 10, 20, 30, 30]  # marks off the folder snap

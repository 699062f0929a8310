"""SynthFACS framing and capture: the real datasets' eye-aligned crops, wild nuisance, and what validation accepts.

The crop is ferops's own eye-aligned crop (the one `preprocess` uses on real frames),
so the eyes land where its eye_distance / eye_height put them; masks follow the
same transform. Wild nuisance (JPEG, low resolution, occluders, light colour) must
change pixels and stay deterministic, and every preset's renders must pass the
pixel checks params.yaml sets for the validate stage.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ferops.config import load_params
from ferops.data.synthfacs import Identity, Nuisance, generate, render_face
from ferops.data.synthfacs.expression import sided_intensities
from ferops.data.synthfacs.face_model import build_face
from ferops.data.synthfacs.framing import FRAMINGS, _frame, frame
from ferops.data.synthfacs.presets import PRESETS

ROOT_PARAMS = "params.yaml"


@pytest.mark.parametrize("framing", ["ck+", "fer2013"])
def test_crop_puts_the_eyes_where_the_framing_says(framing):
    spec, identity = FRAMINGS[framing], Identity()
    fr = frame(identity, Nuisance(rotation=12.0), framing, 48)
    eyes = fr.out(np.array([[-identity.eye_spacing, 0.0], [identity.eye_spacing, 0.0]]))
    if spec.level_eyes:  # CK+48: aligned, the roll is gone
        np.testing.assert_allclose(eyes[:, 1], spec.eye_height * 48, atol=0.6)
        np.testing.assert_allclose(eyes[1, 0] - eyes[0, 0], spec.eye_distance * 48, atol=0.6)
    else:  # FER2013: an upright box around the eyes, the roll stays in the picture
        assert abs(eyes[0, 1] - eyes[1, 1]) > 0.15 * (eyes[1, 0] - eyes[0, 0])
        np.testing.assert_allclose(eyes.mean(axis=0), (24.0, spec.eye_height * 48), atol=0.6)


def test_crop_is_a_face_crop_not_a_scene():
    """No shoulders in the crop (the scene has them); the brows sit near the top, the mouth in the lower third."""
    identity = Identity()
    crop, masks = render_face(identity, {1: 4, 2: 4, 26: 4}, Nuisance(), size=48, framing="ck+")
    scene, _ = render_face(identity, {}, Nuisance(), size=48, framing="scene")
    model = build_face(identity, sided_intensities({}))
    assert FRAMINGS["scene"] is None
    brows = frame(identity, Nuisance(), "ck+", 48).out(model.landmarks["brow_L"])
    mouth = frame(identity, Nuisance(), "ck+", 48).out(model.landmarks["mouth_line"])
    assert 2 < brows[:, 1].min() < 16 and 30 < mouth[:, 1].mean() < 44
    shoulders = frame(identity, Nuisance(), "scene", 48).out(np.array([[0.0, 1.5]]))
    assert shoulders[0, 1] < 48  # the scene reaches below the chin
    assert masks[1][:10].any() and masks[26][-8:].any()
    assert crop.std() > 15 and scene.shape == crop.shape


def test_wild_capture_faults_change_pixels_and_stay_deterministic():
    identity = Identity()
    clean = Nuisance(noise=0.0)
    base, _ = render_face(identity, {12: 4}, clean, size=48, channels=3, framing="fer2013")
    for change in ({"jpeg": 40}, {"lowres": 2.0}, {"occlusions": 2, "seed": 3}, {"light_tint": 1.0},
                   {"yaw": 0.5}, {"pitch": 0.4}, {"clutter": 4, "seed": 3}):
        faulty = replace(clean, **change)
        a, _ = render_face(identity, {12: 4}, faulty, size=48, channels=3, framing="fer2013")
        b, _ = render_face(identity, {12: 4}, faulty, size=48, channels=3, framing="fer2013")
        assert a.tobytes() == b.tobytes(), change
        assert np.abs(a.astype(int) - base.astype(int)).mean() > 0.5, change
    warm, _ = render_face(identity, {}, replace(clean, light_tint=1.0), size=48, channels=3, framing="fer2013")
    cool, _ = render_face(identity, {}, replace(clean, light_tint=-1.0), size=48, channels=3, framing="fer2013")
    assert warm[..., 0].mean() - warm[..., 2].mean() > cool[..., 0].mean() - cool[..., 2].mean() + 10


def test_light_direction_moves_the_shading():
    identity = Identity()
    left, _ = render_face(identity, {}, Nuisance(light_angle=180.0, light_elevation=60.0, light_strength=0.8), size=64,
                          framing="ck+")
    right, _ = render_face(identity, {}, Nuisance(light_angle=0.0, light_elevation=60.0, light_strength=0.8), size=64,
                           framing="ck+")
    left, right = left[..., 0].astype(float), right[..., 0].astype(float)
    # light from the image's left lights the left cheek; from the right, the right cheek
    assert left[30:45, 6:18].mean() > right[30:45, 6:18].mean() + 8
    assert right[30:45, 46:58].mean() > left[30:45, 46:58].mean() + 8


def test_identities_differ_in_sex_typical_shape_and_hair():
    rng = np.random.default_rng(0)
    people = [Identity.sample(rng) for _ in range(300)]
    masculine = np.array([p.masculinity > 0.5 for p in people])
    jaw = np.array([p.jaw_width for p in people])
    brows = np.array([p.brow_thickness for p in people])
    assert 0.25 < masculine.mean() < 0.55
    assert jaw[masculine].mean() > jaw[~masculine].mean() + 0.05
    assert brows[masculine].mean() > brows[~masculine].mean() + 0.01
    assert len({p.hair_style for p in people}) >= 5


@pytest.mark.parametrize("preset,size", [("posed", 48), ("wild", 48), ("webcam", 48), ("au", 48), ("micro", 48)])
def test_renders_pass_the_validate_pixel_checks(preset, size):
    v = load_params(ROOT_PARAMS).validate
    ds = generate(preset, 12, seed=4, size=size, progress=False, frames=(3, 3) if PRESETS[preset].frames else None)
    pixels = ds.images.reshape(len(ds), -1).astype(float)
    means, stds = pixels.mean(axis=1), pixels.std(axis=1)
    assert (means >= v.pixel_mean_range[0]).all() and (means <= v.pixel_mean_range[1]).all(), means
    assert (stds >= v.pixel_std_range[0]).all() and (stds <= v.pixel_std_range[1]).all(), stds


def test_per_pose_caches_do_not_change_pixels():
    """A sequence reuses its pose, crop, backdrop and static relief; frames must not depend on render order."""
    rng = np.random.default_rng(8)
    identity, nuisance = Identity.sample(rng), Nuisance.sample(rng, "studio")
    frames = [({}, 1), ({12: 2, 6: 1}, 2), ({12: 4, 6: 3, 25: 2}, 3)]
    forward = [render_face(identity, aus, replace(nuisance, seed=k), 48, framing="ck+")[0] for aus, k in frames]
    _frame.cache_clear()
    backward = [render_face(identity, aus, replace(nuisance, seed=k), 48, framing="ck+")[0] for aus, k in frames[::-1]]
    assert [a.tobytes() for a in forward] == [b.tobytes() for b in backward[::-1]]

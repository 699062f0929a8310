"""SynthFACS: determinism, label/AU/mask truth, preset shapes, and a realism check by an outside detector.

Mask exactness per AU: tests/test_synthfacs_masks.py; framing and capture nuisance: tests/test_synthfacs_framing.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ferops.data.dataset import Dataset
from ferops.data.synthfacs import Identity, Nuisance, contact_sheet, generate, render_face, sample_aus
from ferops.data.synthfacs.presets import FER2013_TRAIN_COUNTS, PRESETS, _dealt
from ferops.data.vocab import AU_CODES, EMOTIONS

QUIET = Nuisance(noise=0.0, blur=0.0)  # isolates the AU's own pixels from sensor noise


@pytest.fixture(scope="module")
def posed() -> Dataset:
    return generate("posed", 14, seed=7, masks=True, progress=False)


def test_same_seed_gives_identical_bytes_and_other_seed_differs():
    a = generate("posed", 3, seed=11, progress=False)
    b = generate("posed", 3, seed=11, progress=False)
    c = generate("posed", 3, seed=12, progress=False)
    assert a.images.tobytes() == b.images.tobytes()
    assert a.manifest.equals(b.manifest)
    assert a.images.shape != c.images.shape or a.images.tobytes() != c.images.tobytes()


def test_sample_does_not_depend_on_batch_size():
    small = generate("wild", 5, seed=3, progress=False)
    large = generate("wild", 12, seed=3, progress=False)
    assert np.array_equal(small.images, large.images[:5])
    assert small.manifest["label_name"].tolist() == large.manifest["label_name"].tolist()[:5]


@pytest.mark.parametrize("size,channels", [(48, 1), (64, 3), (128, 1), (256, 3)])
def test_render_sizes_and_channels(size, channels):
    image, masks = render_face(Identity(), {12: 3, 6: 2}, Nuisance(), size=size, channels=channels)
    assert image.shape == (size, size, channels) and image.dtype == np.uint8
    assert set(masks) == {6, 12} and all(m.shape == (size, size) for m in masks.values())


def test_rgb_is_in_rgb_order():
    image, _ = render_face(Identity(skin_tone=0.7), {}, QUIET, size=64, channels=3)
    cheek = image[30:36, 18:24].reshape(-1, 3).mean(axis=0)
    assert cheek[0] > cheek[2] + 15  # skin: red above blue


def test_grey_matches_luminance_of_rgb():
    grey, _ = render_face(Identity(), {4: 3}, QUIET, size=48, channels=1)
    rgb, _ = render_face(Identity(), {4: 3}, QUIET, size=48, channels=3)
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert np.abs(luma.astype(int) - grey[..., 0].astype(int)).mean() < 3


def test_unilateral_au_moves_one_side_only():
    neutral, _ = render_face(Identity(), {}, QUIET, size=96)
    left, masks = render_face(Identity(), {"L12": 4, "L14": 3}, QUIET, size=96)
    change = np.abs(left.astype(float) - neutral.astype(float))[..., 0]
    # the subject's left is the image's right
    assert change[:, 48:].sum() > 4 * change[:, :48].sum()
    assert masks[12][:, :44].sum() == 0 and masks[12][:, 52:].sum() > 0


def test_unknown_au_is_rejected():
    with pytest.raises(ValueError, match="AU3"):
        render_face(Identity(), {3: 2})
    with pytest.raises(ValueError, match="left/right"):
        render_face(Identity(), {"L4": 2})


def test_posed_sequences_ramp_from_neutral_to_apex(posed):
    m = posed.manifest
    assert posed.classes == EMOTIONS and posed.name == "synthfacs_posed"
    for _, seq in m.groupby("sequence"):
        seq = seq.sort_values("frame")
        assert seq["frame"].tolist() == list(range(1, len(seq) + 1)) and 6 <= len(seq) <= 12
        assert seq["label_name"].nunique() == 1 and seq["label_name"].iloc[0] != "neutral"
        first, last = seq.iloc[0], seq.iloc[-1]
        assert first["intensity_scale"] == 0 and all(first[f"AU{c}"] == 0 for c in AU_CODES)
        assert last["is_apex"] and last["intensity_scale"] == 1.0 and seq["is_apex"].sum() == 1
        assert sum(last[f"AU{c}"] for c in AU_CODES) >= 1
    assert (m["label"] == m["label_name"].map(posed.classes.index)).all()
    assert m["subject"].str.fullmatch(r"S\d{3}").all()


def test_au_columns_and_masks_agree(posed):
    m = posed.manifest
    masks = posed.extras["masks"]
    assert masks.shape == (len(posed), len(AU_CODES), 48, 48) and masks.dtype == np.uint8
    assert posed.extras["mask_aus"] == list(AU_CODES)
    assert set(np.unique(masks)) <= {0, 255}
    for k, code in enumerate(AU_CODES):
        grade = m[f"AU{code}_int"].to_numpy()
        assert grade.min() >= 0 and grade.max() <= 5
        assert np.array_equal(m[f"AU{code}"].to_numpy(), (grade > 0).astype(int))
        assert np.array_equal(masks[:, k].reshape(len(m), -1).max(axis=1) > 0, grade > 0)
    contempt = m[(m["label_name"] == "contempt") & m["is_apex"]]
    for _, row in contempt.iterrows():  # contempt is unilateral (a jittered sample may drop 12 or 14)
        assert row["AU12_side"] in ("L", "R") or row["AU14_side"] in ("L", "R")
    for col in ("nuis_rotation", "nuis_yaw", "nuis_noise", "nuis_occlusions", "L12_int", "R14_int"):
        assert col in m.columns


def test_wild_preset_proportions_and_splits():
    wild = PRESETS["wild"]
    block = sum(c for _, c in FER2013_TRAIN_COUNTS)
    dealt = [_dealt(wild.deal, i, 0, wild, 2) for i in range(block)]
    assert {name: dealt.count(name) for name, _ in FER2013_TRAIN_COUNTS} == dict(FER2013_TRAIN_COUNTS)
    splits = [_dealt(wild.splits, i, 0, wild, 3) for i in range(1000)]
    assert splits.count("Training") == 800 and splits.count("PublicTest") == 100
    ds = generate("wild", 40, seed=1, progress=False)
    assert ds.classes == tuple(e for e in EMOTIONS if e != "contempt")
    assert ds.manifest["frame"].eq(0).all() and ds.manifest["sequence"].is_unique
    assert set(ds.manifest["split"]) <= {"Training", "PublicTest", "PrivateTest"}


def test_micro_preset_has_onset_apex_offset_and_low_intensity():
    ds = generate("micro", 5, seed=2, progress=False, frames=(9, 13))
    assert ds.classes == ("happiness", "disgust", "repression", "surprise", "others")
    assert ds.extras["fps"] == 200
    for _, seq in ds.manifest.groupby("sequence"):
        onset, apex, offset = seq[["onset", "apex", "offset"]].iloc[0]
        assert seq["frame"].tolist() == list(range(onset, offset + 1)) and onset < apex < offset
        assert seq.loc[seq["is_apex"], "frame"].tolist() == [apex]
        assert seq["path"].iloc[0].endswith(f"img{onset}.jpg")
    grades = ds.manifest[[f"AU{c}_int" for c in AU_CODES]].to_numpy()
    assert grades.max() <= 2 and grades.max() >= 1


def test_prototypes_jitter_and_keep_emotion_core():
    rng = np.random.default_rng(0)
    draws = [sample_aus("happiness", rng)[0] for _ in range(200)]
    assert sum("12" in d for d in draws) > 150
    assert len({tuple(sorted(d)) for d in draws}) > 3  # AUs dropped and added
    for _ in range(300):  # contempt is unilateral: one side's 12/14, never both sides of one AU
        contempt = set(sample_aus("contempt", rng)[0])
        assert contempt & {"L12", "R12", "L14", "R14"}, contempt
        assert not {"L12", "R12"} <= contempt and not {"L14", "R14"} <= contempt, contempt


def test_haar_cascade_finds_one_face_in_neutral_scene_renders():
    """Before the crop, a 128 px scene (head, hair, shoulders) is what a detector sees: one face in >= 95%."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    rng = np.random.default_rng(5)
    found = []
    for _ in range(100):
        identity, nuisance = Identity.sample(rng), Nuisance.sample(rng, "studio")
        image, _ = render_face(identity, {}, nuisance, size=128, masks=False, framing="scene")
        found.append(len(cascade.detectMultiScale(image[..., 0], scaleFactor=1.1, minNeighbors=5)))
    assert np.mean(np.array(found) == 1) >= 0.95, found


def test_contact_sheet_and_save_roundtrip(posed, tmp_path):
    path = contact_sheet(posed, tmp_path / "sheet.png", n_subjects=4)
    sheet = cv2.imread(str(path))
    assert sheet is not None and sheet.shape[0] > 8 * 96
    loaded = Dataset.load(posed.save(tmp_path / "ds"))
    assert np.array_equal(loaded.extras["masks"], posed.extras["masks"])
    assert loaded.extras["mask_aus"] == list(AU_CODES)


def test_au1_2_raise_and_arch_the_brows_and_au5_bares_sclera_above_the_iris():
    """Surprise as FACS describes it: brows up and curved (more lift mid-brow than at the ends), upper lids up
    far enough that white shows between the lid and the top of the iris."""
    from ferops.data.synthfacs.expression import sided_intensities
    from ferops.data.synthfacs.face_model import build_face

    idt = Identity()
    rest = build_face(idt, sided_intensities({}))
    up = build_face(idt, sided_intensities({1: 5, 2: 5}))
    lift = rest.landmarks["brow_L"][:, 1] - up.landmarks["brow_L"][:, 1]  # y points down: lift > 0
    assert lift.min() > 0.1
    assert lift[4] > lift[0] and lift[4] > lift[-1]  # an arch, not a flat raise
    wide = build_face(idt, sided_intensities({5: 4}))
    iris_top = -0.47 * idt.eye_width
    assert rest.landmarks["eye_L"][:, 1].min() > iris_top - 0.01  # at rest the lid covers the top of the iris
    assert wide.landmarks["eye_L"][:, 1].min() < iris_top - 0.03  # AU5 bares the sclera above it


def test_texture_bank_is_deterministic_and_varies_between_people():
    from ferops.data.synthfacs.shading import textures

    a, b, c = textures(5, 48), textures(5, 48), textures(6, 48)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    mirrored = textures(5 + 64, 48)[0]
    assert np.array_equal(mirrored, a[0][:, ::-1])

"""Face detection, eye alignment and crop: right size, level eyes, rejects with reasons, nothing dropped silently."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ferops.data.faces import HaarFaceDetector, eye_geometry, preprocess, to_channels

from format_fixtures import dataset_of, face_on_canvas


@pytest.fixture(scope="module")
def haar():
    return HaarFaceDetector()


def test_haar_detects_aligns_and_rejects_blank(haar):
    face = face_on_canvas(200, 480)
    blank = np.full_like(face, 90)
    ds = dataset_of([face, blank])
    out, rejects = preprocess(ds, size=64, channels=1, detect_faces=True, detector=haar)
    assert out.images.shape == (1, 64, 64, 1) and out.images.dtype == np.uint8
    assert list(rejects.columns) == ["path", "reason"]
    assert rejects.to_dict("records") == [{"path": "img1.png", "reason": "no face detected"}]
    row = out.manifest.iloc[0]
    assert row["path"] == "img0.png" and bool(row["aligned"]) and row["faces_found"] >= 1
    assert 120 <= row["face_w"] <= 320 and abs(row["face_x"] + row["face_w"] / 2 - 240) < 40
    assert out.images[0].std() > 10  # a face, not the flat background


def test_alignment_levels_rolled_eyes(haar):
    ds = dataset_of([face_on_canvas(200, 480, angle=12)])
    out, rejects = preprocess(ds, size=128, channels=1, detect_faces=True, detector=haar)
    assert rejects.empty and bool(out.manifest["aligned"].iloc[0])
    img = out.images[0, :, :, 0]
    eyes = haar.eyes.detectMultiScale(img[: 80], 1.1, 3, minSize=(10, 10))
    centres = sorted((x + w / 2, y + h / 2) for x, y, w, h in eyes)
    assert len(centres) >= 2
    (lx, ly), (rx, ry) = centres[0], centres[-1]
    assert abs(ly - ry) < 6, "eyes should be level after alignment"
    assert abs((lx + rx) / 2 - 64) < 10


def test_eye_geometry_places_eyes():
    left, right, out_hw = (100.0, 220.0), (180.0, 200.0), (96, 96)
    matrix, (cw, ch) = eye_geometry(left, right, eye_distance=0.4, eye_height=0.35, out_hw=out_hw)
    pts = cv2.transform(np.array([[left, right]], np.float64), matrix)[0] * (96 / cw)
    np.testing.assert_allclose(pts[:, 1], [0.35 * 96] * 2, atol=0.05)
    np.testing.assert_allclose(pts[:, 0], [(0.5 - 0.2) * 96, (0.5 + 0.2) * 96], atol=0.05)  # crop rounded to whole px
    assert cw == ch


class BoxOnly:
    """A detector with no eye finder: alignment must fall back to the face box."""

    def detect(self, gray):
        return [(10, 20, 40, 40)]


class NoEyes(BoxOnly):
    def detect_eyes(self, gray, face):
        return []


@pytest.mark.parametrize("detector", [BoxOnly(), NoEyes()])
def test_no_eyes_falls_back_to_face_box(detector):
    img = np.zeros((100, 100, 1), np.uint8)
    img[20:60, 10:50] = 200
    out, rejects = preprocess(dataset_of([img]), size=20, channels=3, detect_faces=True, detector=detector)
    assert rejects.empty and not out.manifest["aligned"].iloc[0]
    assert out.images.shape == (1, 20, 20, 3) and (out.images == 200).all()
    assert tuple(out.manifest[["face_x", "face_y", "face_w", "face_h"]].iloc[0]) == (10, 20, 40, 40)


def test_resize_only_and_channels():
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0] = 255  # pure red, RGB
    ds = dataset_of([rgb, rgb])
    out, rejects = preprocess(ds, size=(20, 30), channels=1, detect_faces=False)
    assert out.images.shape == (2, 20, 30, 1) and rejects.empty and not out.manifest["aligned"].any()
    assert out.images[0, 0, 0, 0] == 76  # ITU-R 601 luma of pure red: RGB was treated as RGB
    out, _ = preprocess(ds, size=16, channels=3, detect_faces=False, input_order="BGR")
    assert tuple(out.images[0, 0, 0]) == (0, 0, 255)  # the same bytes read as BGR are blue


def test_to_channels_gray_to_rgb():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rgb = to_channels(gray, 3)
    assert rgb.shape == (2, 3, 3) and (rgb[..., 0] == gray).all() and (rgb[..., 2] == gray).all()


def test_masks_follow_the_crop(haar):
    face = face_on_canvas(200, 480, channels=3)
    ds = dataset_of([face])
    masks = np.zeros((1, 2, 480, 480), np.uint8)
    masks[0, 0, 200:260, 180:300] = 255
    ds.extras["masks"] = masks
    out, _ = preprocess(ds, size=48, channels=3, detect_faces=True, detector=haar)
    assert out.extras["masks"].shape == (1, 2, 48, 48) and out.images.shape == (1, 48, 48, 3)
    assert out.extras["masks"][0, 0].max() > 0 and out.extras["masks"][0, 1].max() == 0


def test_all_rejected_gives_empty_dataset(haar):
    out, rejects = preprocess(dataset_of([np.zeros((120, 120, 1), np.uint8)]), size=32, channels=1,
                              detect_faces=True, detector=haar)
    assert len(out) == 0 and out.images.shape == (0, 32, 32, 1) and len(rejects) == 1

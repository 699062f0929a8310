"""Face detection, eye alignment and cropping: the preprocessing Breuer & Kimmel apply.

CK+ and CASME II frames are 640x490/640x480 with the face in the middle;
networks see 48-96 px crops. Aligning on the eyes (eyes level, fixed
inter-ocular distance) removes head roll and scale so the network learns the
expression, not the pose. Detection is behind a tiny protocol so a better
detector can replace OpenCV's Haar cascades without touching the pipeline.

Nothing is dropped silently: images without a face come back in a rejects
table with a reason, and images whose eyes are not found are cropped by the
face box instead, flagged `aligned = False` in the manifest. Dataset images
are RGB when they have 3 channels; pass input_order="BGR" for arrays that came
straight from cv2.imread.
"""

from __future__ import annotations

import math
from typing import Protocol

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ferops.data.dataset import Dataset
from ferops.data.formats._images import convert_channels, parse_size

Box = tuple[int, int, int, int]  # x, y, width, height in pixels
Point = tuple[float, float]
INFO_COLUMNS = ("aligned", "faces_found", "face_x", "face_y", "face_w", "face_h")


class FaceDetector(Protocol):
    def detect(self, gray: np.ndarray) -> list[Box]:
        """Face boxes in a 2-D uint8 image, largest first."""


class HaarFaceDetector:
    """OpenCV's frontal-face and eye Haar cascades (ship with opencv-python)."""

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_face_fraction: float = 0.1):
        self.faces = self._load("haarcascade_frontalface_default.xml")
        self.eyes = self._load("haarcascade_eye.xml")
        self.scale_factor, self.min_neighbors, self.min_face_fraction = scale_factor, min_neighbors, min_face_fraction

    @staticmethod
    def _load(name: str) -> cv2.CascadeClassifier:
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        if cascade.empty():
            raise RuntimeError(f"OpenCV Haar cascade {name} not found under {cv2.data.haarcascades}")
        return cascade

    def detect(self, gray: np.ndarray) -> list[Box]:
        side = max(int(min(gray.shape[:2]) * self.min_face_fraction), 20)
        boxes = self.faces.detectMultiScale(gray, self.scale_factor, self.min_neighbors, minSize=(side, side))
        return sorted((tuple(int(v) for v in b) for b in boxes), key=lambda b: -b[2] * b[3])

    def detect_eyes(self, gray: np.ndarray, face: Box) -> list[Box]:
        """Eye boxes (image coordinates) searched in the upper 60% of the face."""
        x, y, w, h = face
        roi = gray[y : y + int(h * 0.6), x : x + w]
        side = max(w // 10, 8)
        boxes = self.eyes.detectMultiScale(roi, 1.1, 3, minSize=(side, side))
        return [(int(ex) + x, int(ey) + y, int(ew), int(eh)) for ex, ey, ew, eh in boxes]


def eye_pair(eyes: list[Box], face: Box) -> tuple[Point, Point] | None:
    """Image-left and image-right eye centres, or None if no plausible pair."""
    x, y, w, h = face
    mid = x + w / 2
    centres = [(ex + ew / 2, ey + eh / 2, ew * eh) for ex, ey, ew, eh in eyes]
    left = [c for c in centres if c[0] < mid]
    right = [c for c in centres if c[0] >= mid]
    if not left or not right:
        return None
    (lx, ly, _), (rx, ry, _) = max(left, key=lambda c: c[2]), max(right, key=lambda c: c[2])
    distance = math.hypot(rx - lx, ry - ly)
    if not 0.2 * w <= distance <= 0.75 * w or abs(ry - ly) > 0.25 * h:
        return None
    return (lx, ly), (rx, ry)


def eye_geometry(left: Point, right: Point, eye_distance: float, eye_height: float,
                 out_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Affine map (at native scale) that levels the eyes, and the crop size it fills.

    The crop is chosen so that after resizing to out_hw the eyes are
    eye_distance * width apart, centred horizontally, at eye_height * height.
    """
    (lx, ly), (rx, ry) = left, right
    angle = math.degrees(math.atan2(ry - ly, rx - lx))
    span = math.hypot(rx - lx, ry - ly) / eye_distance  # crop width at native scale
    crop_w, crop_h = max(int(round(span)), 1), max(int(round(span * out_hw[0] / out_hw[1])), 1)
    centre = ((lx + rx) / 2, (ly + ry) / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    matrix[0, 2] += crop_w * 0.5 - centre[0]
    matrix[1, 2] += crop_h * eye_height - centre[1]
    return matrix, (crop_w, crop_h)


def box_geometry(box: Box) -> tuple[np.ndarray, tuple[int, int]]:
    x, y, w, h = box
    return np.array([[1.0, 0.0, -x], [0.0, 1.0, -y]]), (w, h)


def face_geometry(gray: np.ndarray, box: Box, detector: FaceDetector, out_hw: tuple[int, int],
                  eye_distance: float = 0.36, eye_height: float = 0.38) -> tuple[np.ndarray, tuple[int, int], bool]:
    """(affine map, crop size, aligned) for one detected face: eye-aligned when an eye pair is found, else the box.

    The one crop rule: `preprocess` (training data) and ferops.serving (photos, video, REST) both call it, so a
    served model sees faces framed exactly as it was trained on.
    """
    pair = eye_pair(detector.detect_eyes(gray, box), box) if hasattr(detector, "detect_eyes") else None
    if pair:
        return (*eye_geometry(*pair, eye_distance, eye_height, out_hw), True)
    return (*box_geometry(box), False)


def apply_geometry(image: np.ndarray, matrix: np.ndarray, crop: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Warp at native scale, then shrink with INTER_AREA (warping straight to 48 px would alias)."""
    warped = cv2.warpAffine(image, matrix, crop, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    resized = cv2.resize(warped, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_AREA)
    return resized.reshape(out_hw[0], out_hw[1], -1) if image.ndim == 3 else resized


def to_channels(image: np.ndarray, channels: int, input_order: str = "RGB") -> np.ndarray:
    """H x W x C (RGB or BGR) or H x W -> H x W x channels, always RGB for 3."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 3 and input_order.upper() == "BGR":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return convert_channels(image, channels)


def preprocess(dataset: Dataset, size, channels: int, detect_faces: bool, detector: FaceDetector | None = None,
               eye_distance: float = 0.36, eye_height: float = 0.38,
               input_order: str = "RGB") -> tuple[Dataset, pd.DataFrame]:
    """Crop/align (or just resize) every image; returns (kept dataset, rejects[path, reason]).

    Adds manifest columns aligned (eyes used), faces_found and face_x/y/w/h
    (-1 without detection). Array extras shaped N x K x H x W (e.g. SynthFACS
    AU masks) get the same crop so they stay registered with the images.
    """
    out_hw = parse_size(size)
    if detect_faces and detector is None:
        detector = HaarFaceDetector()
    n, height, width = dataset.images.shape[:3]
    spatial = {k: v for k, v in dataset.extras.items()
               if isinstance(v, np.ndarray) and v.ndim == 4 and v.shape[0] == n and v.shape[2:] == (height, width)}
    kept, images, info, rejects = [], [], [], []
    new_spatial = {k: [] for k in spatial}
    progress = tqdm(dataset.images, desc="detect + align" if detect_faces else "resize", unit="img",
                    disable=n < 500)
    for i, image in enumerate(progress):
        image = to_channels(image, image.shape[2], input_order)
        box, faces, aligned = (-1, -1, -1, -1), 0, False
        matrix, crop = box_geometry((0, 0, width, height))
        if detect_faces:
            gray = to_channels(image, 1)[:, :, 0]
            found = detector.detect(gray)
            if not found:
                rejects.append({"path": dataset.manifest["path"].iloc[i], "reason": "no face detected"})
                continue
            box, faces = found[0], len(found)
            matrix, crop, aligned = face_geometry(gray, box, detector, out_hw, eye_distance, eye_height)
        images.append(to_channels(apply_geometry(image, matrix, crop, out_hw), channels))
        for key, value in spatial.items():
            new_spatial[key].append(np.stack([apply_geometry(np.ascontiguousarray(m), matrix, crop, out_hw)
                                              for m in value[i]]))
        kept.append(i)
        info.append({"aligned": aligned, "faces_found": faces, "face_x": box[0], "face_y": box[1],
                     "face_w": box[2], "face_h": box[3]})
    kept_idx = np.array(kept, dtype=np.int64)
    sub = dataset.subset(kept_idx)
    manifest = pd.concat([sub.manifest.drop(columns=[c for c in INFO_COLUMNS if c in sub.manifest.columns]),
                          pd.DataFrame(info, columns=list(INFO_COLUMNS))], axis=1)
    extras = dict(sub.extras)
    extras.update({k: np.stack(v) if v else np.zeros((0, spatial[k].shape[1], *out_hw), spatial[k].dtype)
                   for k, v in new_spatial.items()})
    array = np.stack(images) if images else np.zeros((0, *out_hw, channels), np.uint8)
    result = Dataset(array.astype(np.uint8), manifest, dataset.classes, dataset.name, extras)
    return result, pd.DataFrame(rejects, columns=["path", "reason"])


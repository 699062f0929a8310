"""Faces in an image -> one row per face with emotion (and AU) probabilities: the one scoring path.

`ferops predict` (files, folders, video), the fer-pipeline pyfunc and the REST
server all find faces with `Analyzer.find` and score them with
`Analyzer.score`, so the three give the same numbers for the same image.

Finding: detection runs on a copy shrunk to `detect_width` (a 640 px frame at
320 px costs a quarter of the pixels) and the boxes are mapped back; eyes are
then searched at full size inside each box and the face is aligned and cropped
by ferops.data.faces.face_geometry, the rule `ferops preprocess` trained on.
Scoring: the crops of many images or frames go through each model in one
forward pass (`predict_on_batch`, no per-call pipeline set-up), which is where
per-face `model.predict` tools spend most of their time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ferops.data.faces import (
    Box,
    FaceDetector,
    HaarFaceDetector,
    apply_geometry,
    box_geometry,
    face_geometry,
    to_channels,
)

# Face detectors by params.yaml serving.detector name: a class taking no arguments with FaceDetector's `detect`
# (and optionally `detect_eyes`, for alignment). Add one here to plug in another detector.
DETECTORS: dict[str, type] = {"haar": HaarFaceDetector}
ID_COLUMNS = ("image", "frame", "face", "x", "y", "w", "h", "aligned", "prediction")


@dataclass(frozen=True)
class Settings:
    """How faces are found, batched and streamed: params.yaml `serving` (the fer-pipeline bundle carries a copy,
    so `ferops predict` with a bundle needs no params.yaml)."""
    detector: str
    detect_faces: bool
    detect_width: int
    max_faces: int
    batch_size: int
    window: int
    queue: int
    stride: int
    max_pixels: int = 40_000_000  # (bundles packaged before this setting get the params.yaml default)

    @classmethod
    def from_params(cls, serving) -> Settings:
        return cls(**{f.name: getattr(serving, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Head:
    """One model of the bundle and the names of its outputs (emotion classes, or AU labels)."""
    model: Any  # a keras.Model, or a ferops.serving.numpy_model.NumpyModel: input_shape and predict_on_batch
    labels: tuple[str, ...]
    prefix: str  # output column prefix: "p_" emotion probabilities, "au_" AU presence probabilities

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.model.input_shape[1:])


@dataclass
class Faces:
    """The faces found in one image or video frame, cropped for every model input shape (largest face first)."""
    source: str
    frame: int
    boxes: list[Box]
    aligned: list[bool]
    crops: dict[tuple[int, int, int], np.ndarray]
    found: int  # faces the detector saw, before max_faces
    image: np.ndarray | None = field(default=None, repr=False)  # kept only for annotation


def output_columns(heads: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """Row keys for heads given as (prefix, labels): the id columns, then one column per output."""
    return [*ID_COLUMNS, *(f"{prefix}{label}" for prefix, labels in heads for label in labels)]


def _scaled(box: Box, factor: float, width: int, height: int) -> Box:
    x, y, w, h = (int(round(v * factor)) for v in box)
    x, y = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
    return x, y, max(1, min(w, width - x)), max(1, min(h, height - y))


class Analyzer:
    """A detector, the crop rule and the bundle's models: raw images in, per-face rows out."""

    def __init__(self, emotion: Head, au: Head | None, settings: Settings, detector: FaceDetector | None = None):
        self.heads = [h for h in (emotion, au) if h is not None]
        self.settings = settings
        self.detector = detector or DETECTORS[settings.detector]()

    def columns(self) -> list[str]:
        return output_columns([(h.prefix, h.labels) for h in self.heads])

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Face boxes (full-size coordinates, largest first) found on a copy at most detect_width wide."""
        height, width = gray.shape
        target = self.settings.detect_width
        if not 0 < target < width:
            return list(self.detector.detect(gray))
        small = cv2.resize(gray, (target, max(1, round(height * target / width))), interpolation=cv2.INTER_AREA)
        return [_scaled(b, width / target, width, height) for b in self.detector.detect(small)]

    def find(self, image: np.ndarray, source: str, frame: int, detect: bool, max_faces: int,
             keep_image: bool = False) -> Faces:
        """Faces of one uint8 RGB (H x W x 3) or gray (H x W x 1) image; detect False: the image is one face."""
        height, width = image.shape[:2]
        gray = to_channels(image, 1)[:, :, 0] if detect else None
        boxes = self.detect(gray) if detect else [(0, 0, width, height)]
        found, boxes = len(boxes), list(boxes[:max_faces])
        crops, aligned = {}, [False] * len(boxes)
        for shape in dict.fromkeys(h.input_shape for h in self.heads):
            out_hw, channels = shape[:2], shape[2]
            faces = []
            for i, box in enumerate(boxes):
                if detect:
                    matrix, crop, aligned[i] = face_geometry(gray, box, self.detector, out_hw)
                else:
                    matrix, crop = box_geometry(box)
                faces.append(to_channels(apply_geometry(image, matrix, crop, out_hw), channels))
            crops[shape] = np.stack(faces) if faces else np.zeros((0, *shape), np.uint8)
        return Faces(source, frame, boxes, aligned, crops, found, image if keep_image else None)

    def _forward(self, head: Head, faces: list[Faces]) -> np.ndarray:
        x = np.concatenate([f.crops[head.input_shape] for f in faces]).astype(np.float32)
        step = self.settings.batch_size
        return np.concatenate([np.asarray(head.model.predict_on_batch(x[i:i + step]))
                               for i in range(0, len(x), step)])

    def score(self, batch: list[Faces]) -> list[list[dict]]:
        """Rows (one dict per face, `columns()` keys) for each Faces of `batch`, from one pass per model."""
        if not any(f.boxes for f in batch):
            return [[] for _ in batch]
        outputs = [self._forward(h, batch) for h in self.heads]
        emotion = self.heads[0]
        result, at = [], 0
        for faces in batch:
            rows = []
            for i, (x, y, w, h) in enumerate(faces.boxes):
                row = {"image": faces.source, "frame": faces.frame, "face": i, "x": x, "y": y, "w": w, "h": h,
                       "aligned": faces.aligned[i],
                       "prediction": emotion.labels[int(np.argmax(outputs[0][at + i]))]}
                for head, out in zip(self.heads, outputs):
                    row.update({f"{head.prefix}{label}": float(p) for label, p in zip(head.labels, out[at + i])})
                rows.append(row)
            at += len(faces.boxes)
            result.append(rows)
        return result

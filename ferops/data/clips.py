"""Micro-expression clips: which frames a model sees, and one face crop shared by all of them.

Breuer & Kimmel feed the CNN+LSTM five frames per clip: first, onset, apex,
offset, last ("key"). Alternatively `length` frames spread evenly from onset
to offset ("span"), what LBP-TOP and most later ME models read.

A micro-expression is a few pixels of motion over ~0.2 s. Cropping each frame
on its own would add detector jitter of the same size as the signal, so the
face is found once per clip, on the onset frame, and that one geometry crops
every frame (faces.py does the detection and eye alignment).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.faces import (
    FaceDetector,
    HaarFaceDetector,
    apply_geometry,
    box_geometry,
    eye_geometry,
    eye_pair,
    to_channels,
)
from ferops.data.formats._images import parse_size

KEY_ROLES = ("first", "onset", "apex", "offset", "last")
MODES = ("key", "span")


def pick_frames(available: Sequence[int], onset: int, apex: int, offset: int, mode: str, length: int) -> list[int]:
    """Frame numbers to read, in time order; marks missing from `available` snap to the nearest frame there."""
    frames = np.sort(np.asarray(list(available), np.int64))
    if not len(frames):
        raise ValueError("a clip without frames")

    def nearest(number: float) -> int:
        return int(frames[np.abs(frames - number).argmin()])

    if mode == "key":
        return [int(frames[0]), nearest(onset), nearest(apex), nearest(offset), int(frames[-1])]
    if mode == "span":
        start, end = nearest(onset), nearest(offset)
        return [nearest(v) for v in np.linspace(start, max(start, end), length)]
    raise ValueError(f"clip frames mode {mode!r}: expected one of {MODES}")


def clip_geometry(reference: np.ndarray, size, detect_faces: bool, detector: FaceDetector | None,
                  eye_distance: float = 0.36, eye_height: float = 0.38):
    """(matrix, crop, info) for one frame: eye-aligned face, face box, or the whole frame without detection."""
    height, width = reference.shape[:2]
    info = {"aligned": False, "faces_found": 0, "face_x": -1, "face_y": -1, "face_w": -1, "face_h": -1}
    if not detect_faces:
        return (*box_geometry((0, 0, width, height)), info)
    detector = detector or HaarFaceDetector()
    gray = to_channels(reference, 1)[:, :, 0]
    found = detector.detect(gray)
    if not found:
        return (*box_geometry((0, 0, width, height)), info)  # counted by the caller through faces_found == 0
    box = found[0]
    info.update(faces_found=len(found), face_x=box[0], face_y=box[1], face_w=box[2], face_h=box[3])
    pair = eye_pair(detector.detect_eyes(gray, box), box) if hasattr(detector, "detect_eyes") else None
    if pair:
        info["aligned"] = True
        return (*eye_geometry(*pair, eye_distance, eye_height, parse_size(size)), info)
    return (*box_geometry(box), info)


def crop_clip(frames: Sequence[np.ndarray], reference: int, size, channels: int, detect_faces: bool,
              detector: FaceDetector | None = None) -> tuple[np.ndarray, dict]:
    """T frames (H x W x C, RGB or gray) -> T x h x w x channels uint8, all cut with the geometry of frames[reference]."""
    out_hw = parse_size(size)
    matrix, crop, info = clip_geometry(frames[reference], out_hw, detect_faces, detector)
    out = np.stack([to_channels(apply_geometry(np.ascontiguousarray(f), matrix, crop, out_hw), channels)
                    for f in frames])
    return out.astype(np.uint8), info


def clips_from_frames(dataset: Dataset, mode: str, length: int, size, channels: int, detect_faces: bool = False,
                      detector: FaceDetector | None = None) -> Dataset:
    """A frame-level dataset with onset/apex/offset columns (SynthFACS micro) -> one clip per sequence.

    The clip's manifest row is its apex frame's row plus `clip_frames` (the frame numbers read).
    """
    missing = [c for c in ("onset", "apex", "offset") if c not in dataset.manifest.columns]
    if missing:
        raise ValueError(f"{dataset.name}: manifest lacks {missing}; micro-expression clips need them")
    m = dataset.manifest.assign(_row=np.arange(len(dataset)))
    clips, rows, picked, infos = [], [], [], []
    for _, group in m.groupby("sequence", sort=False):
        first = group.iloc[0]
        by_frame = dict(zip(group["frame"].astype(int), group["_row"]))
        numbers = pick_frames(list(by_frame), first["onset"], first["apex"], first["offset"], mode, length)
        reference = numbers.index(min(numbers, key=lambda f: abs(f - first["onset"])))
        clip, info = crop_clip([dataset.images[by_frame[f]] for f in numbers], reference, size, channels,
                               detect_faces, detector)
        apex_frame = min(by_frame, key=lambda f: abs(f - first["apex"]))
        clips.append(clip)
        rows.append(by_frame[apex_frame])
        picked.append(numbers)
        infos.append(info)
    head = dataset.manifest.iloc[rows].reset_index(drop=True)
    head = head.drop(columns=[c for c in infos[0] if c in head.columns])
    manifest = pd.concat([head, pd.DataFrame(infos)], axis=1)
    extras = {k: v for k, v in dataset.extras.items() if not isinstance(v, np.ndarray)}
    extras["clip_frames"] = np.asarray(picked, np.int64)
    extras["clip_mode"] = mode
    return Dataset(np.stack(clips), manifest, dataset.classes, f"{dataset.name}_{mode}{length}", extras)

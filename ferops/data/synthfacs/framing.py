"""Where the camera frame sits: the real datasets' eye-aligned crops, or the whole scene.

CK+48 and FER2013 are face crops, brow-to-chin and forehead-to-chin: no ears,
neck or shoulders. SynthFACS poses the head in a scene and then cuts the crop
with ferops's own eye-aligned crop (ferops.data.faces.eye_geometry and
apply_geometry, what `preprocess` does to real frames), so synthetic and real
faces share one framing. The canvas is sized to just hold that crop, so the
crop costs no extra drawing. Masks, landmarks and the shading map go through
the same pose and crop (`Frame.out`), so they stay registered with the pixels.

Nuisance scale and shift are the crop's residual misframing (the face appears
that much larger and that far off-centre). `ck+` levels the eyes, so head roll is
aligned away as in CK+48; `fer2013` crops upright, as FER2013's face boxes did,
so the roll stays in the image. `scene` is the uncropped view (head, hair, ears,
neck, shoulders), the input a face detector sees before any crop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import cv2
import numpy as np

from ferops.data.faces import apply_geometry, eye_geometry
from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.nuisance import Nuisance
from ferops.data.synthfacs.pose import Pose

SCENE_FACE_SCALE = 0.31   # scene view: one face unit as a fraction of the image side
SCENE_CENTRE_Y = 0.0      # scene view: face-unit height at the image centre


@dataclass(frozen=True)
class CropSpec:
    eye_distance: float   # inter-ocular distance as a fraction of the crop width
    eye_height: float     # eye line as a fraction of the crop height from the top
    level_eyes: bool      # rotate so the eyes are level (aligned crop) or keep the roll (upright box)


FRAMINGS: dict[str, CropSpec | None] = {
    "ck+": CropSpec(eye_distance=0.43, eye_height=0.3, level_eyes=True),     # CK+48: brow to chin
    "fer2013": CropSpec(eye_distance=0.36, eye_height=0.38, level_eyes=False),  # FER2013: forehead to chin
    "scene": None,
}


def supersampling(size: int) -> int:
    """Drawing scale: 3x up to 48 px output (the default datasets; anti-aliased edges need no more and it is
    about a tenth cheaper), 4x up to 128 px, 2x beyond. At 64 px, 3x thickened hairline strokes visibly."""
    return 3 if size <= 48 else 4 if size <= 128 else 2


@dataclass
class Frame:
    pose: Pose                 # face units -> canvas pixels
    canvas_hw: tuple[int, int]
    out: Pose                  # face units -> output pixels
    size: int
    matrix: np.ndarray | None = None  # the eye-aligned crop (None: scene, a plain resize)
    crop: tuple[int, int] | None = None
    cache: dict = field(default_factory=dict)  # what later stages derive from this pose once (shading's static relief)

    def to_output(self, canvas: np.ndarray) -> np.ndarray:
        if self.matrix is None:
            return cv2.resize(canvas, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return apply_geometry(canvas, self.matrix, self.crop, (self.size, self.size))


def _eye_centres(identity: Identity) -> np.ndarray:
    """Image-left then image-right eye centre (the subject's right eye is on the image's left)."""
    return np.array([[-identity.eye_spacing, 0.0], [identity.eye_spacing, 0.0]])


def frame(identity: Identity, nuisance: Nuisance, framing: str, size: int) -> Frame:
    """Pose the head on a canvas and cut the framing's crop from it."""
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}; choose one of {sorted(FRAMINGS)}")
    return _frame(identity, replace(nuisance, seed=0), framing, size)


@lru_cache(maxsize=64)
def _frame(identity: Identity, nuisance: Nuisance, framing: str, size: int) -> Frame:
    """Built once per sequence: its frames differ only in expression and noise seed, never in pose or crop."""
    spec, side = FRAMINGS[framing], size * supersampling(size)
    yaw, pitch = nuisance.yaw, nuisance.pitch
    if spec is None:
        unit = SCENE_FACE_SCALE * nuisance.scale * side
        offset = side * (0.5 + np.array([nuisance.shift_x, nuisance.shift_y]))
        pose = Pose(yaw, pitch, nuisance.rotation, unit, offset, identity.face_width, SCENE_CENTRE_Y)
        return Frame(pose, (side, side), pose.then(np.eye(2, 3), size / side), size)

    unit_pose = Pose(yaw, pitch, nuisance.rotation, 1.0, (0.0, 0.0), identity.face_width)
    eyes = unit_pose(_eye_centres(identity))
    unit = spec.eye_distance * side * nuisance.scale / float(np.linalg.norm(eyes[1] - eyes[0]))
    eyes = eyes * unit
    half = (eyes[1] - eyes[0]) / (2 * nuisance.scale)
    if not spec.level_eyes:
        half = np.array([np.linalg.norm(half), 0.0])
    mid = eyes.mean(axis=0) - side * np.array([nuisance.shift_x, nuisance.shift_y])
    matrix, crop = eye_geometry(tuple(mid - half), tuple(mid + half), spec.eye_distance, spec.eye_height, (size, size))
    # the crop's corners on the canvas decide the canvas: just big enough, shifted to start at 0
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [crop[0], 0, 1], [0, crop[1], 1], [crop[0], crop[1], 1]], float) @ inverse.T
    low = np.floor(corners.min(axis=0)) - 1
    hw = tuple(int(v) for v in (np.ceil(corners.max(axis=0)) - low + 1)[::-1])
    matrix = matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ low  # the same crop, with canvas coordinates shifted by -low
    pose = Pose(yaw, pitch, nuisance.rotation, unit, -low, identity.face_width)
    return Frame(pose, hw, pose.then(matrix, size / crop[0]), size, matrix, crop)

"""Turn identity + AU intensities + nuisance into pixels (and AU region masks).

Faces are drawn with OpenCV's anti-aliased polygons on a canvas several times
the output size, softened where skin shading should be soft, then
area-downsampled: the same route a camera takes from a continuous scene to
a small sensor, which is why 48 px renders look like small photos rather than
aliased clip art. Pose is applied to the points before drawing (cheaper and
sharper than warping pixels); light, blur and noise are applied at output size,
where they are cheap. Grey output is drawn on a one-channel canvas, so the
common 48x48x1 case never pays for colour.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache
from typing import Mapping

import cv2
import numpy as np

from ferops.data.synthfacs.expression import active_codes, sided_intensities
from ferops.data.synthfacs.face_model import Item, build_face
from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.masks import au_regions
from ferops.data.synthfacs.nuisance import Nuisance

FACE_SCALE = 0.38      # one face unit as a fraction of the image side (brow to chin ~half the frame)
FACE_CENTRE_Y = 0.15   # face-unit height placed at the image centre
DEPTH = 0.55           # how far the face front stands out of the silhouette plane (yaw parallax)
SHIFT = 3              # fixed-point bits for sub-pixel polygon vertices
_LUMA = np.array([0.299, 0.587, 0.114])


def supersampling(size: int) -> int:
    """Render scale: 4x up to 128 px output (192..512 px canvas), 2x beyond."""
    return 4 if size <= 128 else 2


def _mix(a, b, t: float) -> np.ndarray:
    return (1 - t) * np.asarray(a, float) + t * np.asarray(b, float)


def palette(identity: Identity) -> dict[str, np.ndarray]:
    """RGB colours (0..255) for every paint a face model uses."""
    skin = _mix((92, 58, 42), (240, 204, 182), identity.skin_tone)
    skin = skin + _mix((-6, 6, -8), (10, -6, -2), identity.skin_warmth)
    h = identity.hair_tone
    hair = _mix((26, 21, 19), (110, 72, 44), h / 0.6) if h < 0.6 else _mix((110, 72, 44), (205, 175, 120), (h - 0.6) / 0.4)
    if identity.age > 0.7:
        hair = _mix(hair, (175, 172, 168), (identity.age - 0.7) / 0.3)
    brow = np.minimum(hair * 0.85, skin * 0.42)
    lip = _mix(skin * 0.78, (170, 70, 80), 0.45)
    iris = _mix((72, 46, 30), (86, 118, 146), identity.iris_tone)
    cloth = np.array(colorsys.hsv_to_rgb(identity.clothing, 0.45, 0.35 + 0.4 * ((identity.clothing * 7) % 1))) * 255
    return {
        "skin": skin, "hair": hair, "brow": brow, "lash": np.array([32.0, 26, 26]), "lip": lip,
        "sclera": np.array([212.0, 208, 202]), "iris": iris, "pupil": np.array([14.0, 12, 12]),
        "teeth": np.array([222.0, 216, 200]), "mouth": np.array([48.0, 20, 24]), "cloth": cloth,
    }


class Pose:
    """Face units -> canvas pixels: yaw parallax, roll, scale and shift in one vectorised map."""

    def __init__(self, nuisance: Nuisance, side: int, face_width: float):
        self.cos_yaw, self.sin_yaw = np.cos(nuisance.yaw), np.sin(nuisance.yaw)
        roll = np.deg2rad(nuisance.rotation)
        k = FACE_SCALE * nuisance.scale * side
        self.matrix = k * np.array([[np.cos(roll), np.sin(roll)], [-np.sin(roll), np.cos(roll)]])
        self.offset = np.array([side * (0.5 + nuisance.shift_x), side * (0.5 + nuisance.shift_y)])
        self.face_width = face_width
        self.unit_px = k

    def __call__(self, points: np.ndarray, depth: np.ndarray | float = 0.0) -> np.ndarray:
        x = points[:, 0]
        z = DEPTH * np.sqrt(np.clip(1 - (x / self.face_width) ** 2, 0, 1)) + depth
        turned = np.stack([x * self.cos_yaw + z * self.sin_yaw, points[:, 1] - FACE_CENTRE_Y], axis=1)
        return turned @ self.matrix.T + self.offset


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * (1 << SHIFT)).astype(np.int32)


def _paint_items(canvas: np.ndarray, items: list[Item], pose: Pose, colours: dict, grey: bool) -> None:
    if not items:
        return
    lengths = [len(it.points) for it in items]
    points = np.concatenate([it.points for it in items])
    depth = np.repeat([it.depth for it in items], lengths)
    pixels = _fixed(pose(points, depth))
    ends = np.cumsum(lengths).tolist()
    start = 0
    for it, end in zip(items, ends):
        pts = pixels[start:end]
        start = end
        base = colours[it.paint]
        colour = (min(255.0, base * it.tone),) if grey else tuple(min(255.0, c * it.tone) for c in base)
        if it.op == "fill":
            cv2.fillPoly(canvas, [pts], colour, cv2.LINE_AA, SHIFT)
        else:
            width = max(1, int(round(it.width * pose.unit_px)))
            cv2.polylines(canvas, [pts], False, colour, width, cv2.LINE_AA, SHIFT)


def _paint_scene(canvas: np.ndarray, nuisance: Nuisance, rng: np.random.Generator, grey: bool, layer: str) -> None:
    """Background clutter (layer 'back') or occluders (layer 'front'), drawn from the nuisance seed."""
    side = canvas.shape[0]
    count = nuisance.clutter if layer == "back" else nuisance.occlusions
    for _ in range(count):
        if layer == "back":
            centre = rng.uniform(0, side, 2)
            axes = rng.uniform(0.1, 0.5, 2) * side
            rgb = rng.uniform(0, 255, 3)
        else:
            centre = rng.uniform(0.15, 0.85, 2) * side
            axes = rng.uniform(0.05, 0.18, 2) * side
            rgb = rng.choice([rng.uniform(20, 60), rng.uniform(100, 230)]) * rng.uniform(0.7, 1.0, 3)
        angle = rng.uniform(0, 180)
        colour = (float(rgb @ _LUMA),) if grey else tuple(float(c) for c in rgb)
        if rng.random() < 0.5:
            poly = cv2.ellipse2Poly((int(centre[0]), int(centre[1])), (int(axes[0]), int(axes[1])), int(angle), 0, 360, 20)
        else:
            rect = ((float(centre[0]), float(centre[1])), (float(axes[0] * 2), float(axes[1] * 0.7)), float(angle))
            poly = cv2.boxPoints(rect).astype(np.int32)
        cv2.fillPoly(canvas, [poly], colour, cv2.LINE_AA)


@lru_cache(maxsize=16)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(-1, 1, size, dtype=np.float32)
    return np.meshgrid(axis, axis)


def _photograph(image: np.ndarray, nuisance: Nuisance, rng: np.random.Generator) -> np.ndarray:
    """Output-size camera effects: light gradient, exposure, optical blur, sensor noise."""
    out = image.astype(np.float32)
    xx, yy = _grid(image.shape[0])
    angle = np.deg2rad(nuisance.light_angle)
    gain = nuisance.brightness * (1 + nuisance.light_strength * (np.cos(angle) * xx + np.sin(angle) * yy))
    out *= gain if out.ndim == 2 else gain[..., None]
    if nuisance.blur > 0.15:
        out = cv2.GaussianBlur(out, (0, 0), nuisance.blur)
    if nuisance.noise > 0:
        out += rng.normal(0.0, nuisance.noise, out.shape).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_face(identity: Identity, aus: Mapping, nuisance: Nuisance | None = None, size: int = 48,
                channels: int = 1, masks: bool = True) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Render one face: (uint8 size x size x channels image, {AU code: uint8 0/255 region mask}).

    `aus` maps AU codes to 0..5 intensities ({12: 3}, {"L12": 2, "L14": 2} for one side).
    Masks cover the AUs scored present (intensity >= 0.5), at output size.
    The result depends only on the arguments (noise and occluders come from nuisance.seed).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if not 16 <= size <= 512:
        raise ValueError(f"size must be in 16..512 pixels, got {size}")
    nuisance = nuisance or Nuisance()
    levels = sided_intensities(aus)
    model = build_face(identity, levels)
    grey = channels == 1
    side = size * supersampling(size)
    rng = np.random.default_rng(nuisance.seed)
    colours = {k: float(v @ _LUMA) if grey else tuple(float(c) for c in v) for k, v in palette(identity).items()}

    bg = np.clip(nuisance.background * 255 * np.array([1.0, 0.97, 0.93]), 0, 255)
    canvas = np.full((side, side) if grey else (side, side, 3), float(bg @ _LUMA) if grey else bg, np.uint8)
    _paint_scene(canvas, nuisance, rng, grey, "back")
    pose = Pose(nuisance, side, identity.face_width)
    _paint_items(canvas, model.base, pose, colours, grey)
    sigma = side / 110
    canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    _paint_items(canvas, model.detail, pose, colours, grey)
    _paint_scene(canvas, nuisance, rng, grey, "front")

    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    image = _photograph(small, nuisance, rng)
    image = image[..., None] if grey else image

    au_masks: dict[int, np.ndarray] = {}
    if masks:
        small_pose = Pose(nuisance, size, identity.face_width)
        for code, shapes in au_regions(identity, levels, model, active_codes(levels)).items():
            mask = np.zeros((size, size), np.uint8)
            cv2.fillPoly(mask, [_fixed(small_pose(shape)) for shape in shapes], 255, cv2.LINE_8, SHIFT)
            au_masks[code] = mask
    return image, au_masks



"""The drawing vocabulary of the face model: items in face units, the model that holds them, shape helpers.

Kept apart from the face layout so the layout can live in short modules (face,
mouth) and the renderer, shading, masks and occluders share one definition of
an item. Face units: origin between the eyes, x to image right, y down, the
chin about 1.3 below the eye line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

BROAD, MEDIUM = 0.07, 0.035  # relief fills: blur (face units) of broad tissue (cheeks, chin) and of parts (nose, lips)
T9 = np.linspace(-1.0, 1.0, 9)
T13 = np.linspace(-1.0, 1.0, 13)
_ANGLES = np.linspace(0, 2 * np.pi, 20, endpoint=False)
_CIRCLE = np.stack([np.cos(_ANGLES), np.sin(_ANGLES), np.ones(20)], axis=1)  # homogeneous: one matmul per ellipse


@lru_cache(maxsize=None)
def lin(start: float, stop: float, num: int) -> np.ndarray:
    """Constant parameter grids, built once (the renderer's budget is ~2 ms per face)."""
    grid = np.linspace(start, stop, num)
    grid.flags.writeable = False
    return grid


def ellipse(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    return _CIRCLE @ np.array(((ax, 0.0), (0.0, ay), (cx, cy)))


def curve(xs, ys) -> np.ndarray:
    """(n, 2) points from x and y arrays (either may be a scalar)."""
    n = len(xs) if isinstance(xs, np.ndarray) else len(ys) if isinstance(ys, np.ndarray) else 1
    out = np.empty((n, 2))
    out[:, 0] = xs
    out[:, 1] = ys
    return out


def band(xs, top, bottom) -> np.ndarray:
    """Closed polygon between two curves (arrays) over the same xs."""
    n = len(xs)
    out = np.empty((2 * n, 2))
    out[:n, 0] = xs
    out[:n, 1] = top
    out[n:, 0] = xs[::-1]
    out[n:, 1] = bottom[::-1]
    return out


@dataclass(slots=True)
class Item:
    """One drawing primitive in face units; `tone` scales a palette colour (relief: a height offset)."""

    op: str            # "fill" (polygon) or "line" (open polyline)
    points: np.ndarray
    paint: str         # palette key: skin, hair, brow, lip, sclera, iris, pupil, teeth, mouth, lash, blush...
    tone: float = 1.0
    width: float = 0.0  # line width in face units; for a relief fill, its blur
    depth: float = 0.0  # relief over the head surface (yaw and pitch parallax)


@dataclass
class FaceModel:
    base: list[Item] = field(default_factory=list)
    detail: list[Item] = field(default_factory=list)
    relief: list[Item] = field(default_factory=list)
    head: np.ndarray | None = None          # face + skull silhouette (the shading's head dome)
    hair: list[np.ndarray] = field(default_factory=list)  # hair polygons, back ones first (hair texture)
    n_back_hair: int = 0
    n_static_relief: int = 0  # the first relief items depend on the person only (shading caches them per pose)
    n_static_base: int = 0    # likewise the first base items (the renderer caches them per pose)
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)

    def groove(self, points: np.ndarray, depth: float, width: float, z: float = 0.0, paint_tone: float | None = None):
        """A skin furrow: a relief groove (the shading lights one wall, darkens the other) and, optionally, a
        darker line in the albedo."""
        self.relief.append(Item("line", points, "relief", -depth, width=width, depth=z))
        if paint_tone is not None:
            self.detail.append(Item("line", points, "skin", paint_tone, width=width * 0.45, depth=z))

"""LBP-TOP (Zhao & Pietikäinen 2007): the hand-crafted baseline micro-expression papers compare against.

Uniform LBP (P neighbours on a circle, `u2` mapping: 58 uniform codes + one bin
for the rest, 59 bins for P = 8) is computed on three orthogonal planes of a
gray clip volume T x H x W: XY (appearance, per frame), XT and YT (motion,
per row and per column). Histograms are taken per cell of an n x n spatial
grid and per plane, each normalised to sum 1, and concatenated:
n * n * 3 * 59 features.

No maintained LBP-TOP package exists (see /work/shared/README.md), so this is
vectorised NumPy: every neighbour of every interior voxel is one bilinear
interpolation of four shifted views of the volume. Only voxels whose whole
circle lies inside the volume are coded (no zero padding biasing the borders).
tests/test_micro_lbp_top.py checks it voxel by voxel against a direct loop.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

PLANES = ("xy", "xt", "yt")
# Volume axes (t, y, x) each plane's circle spans: (first axis, second axis) of the 2-D pattern.
_PLANE_AXES = {"xy": (1, 2), "xt": (0, 2), "yt": (0, 1)}


def n_bins(points: int) -> int:
    """Uniform (u2) bins: P * (P - 1) + 2 uniform codes plus one for all non-uniform ones."""
    return points * (points - 1) + 3


@lru_cache(maxsize=8)
def uniform_lookup(points: int) -> np.ndarray:
    """Code (0 .. 2^P - 1) -> bin: uniform codes (<= 2 circular bit changes) in ascending order, then the rest."""
    codes = np.arange(2 ** points)
    bits = (codes[:, None] >> np.arange(points)) & 1
    changes = (bits != np.roll(bits, 1, axis=1)).sum(axis=1)
    uniform = changes <= 2
    lookup = np.full(2 ** points, n_bins(points) - 1, np.int64)
    lookup[uniform] = np.arange(uniform.sum())
    return lookup


def circle(points: int, radius: float, radius_b: float | None = None) -> list[tuple[float, float]]:
    """Offsets (along the plane's first axis, along its second) of the P neighbours, counter-clockwise from +second."""
    radius_b = radius if radius_b is None else radius_b
    out = []
    for p in range(points):
        angle = 2 * math.pi * p / points
        a, b = -radius * math.sin(angle), radius_b * math.cos(angle)
        out.append((round(a, 9) + 0.0, round(b, 9) + 0.0))  # exact 0 / +-R where the circle meets an axis
    return out


def _sample(volume: np.ndarray, axes: tuple[int, int], offset: tuple[float, float], margin: tuple[int, int, int]):
    """Bilinear value at (centre + offset) for every interior voxel, as an array the shape of the interior."""
    da, db = offset
    a0, b0 = math.floor(da), math.floor(db)
    fa, fb = da - a0, db - b0

    def view(sa: int, sb: int) -> np.ndarray:
        shift = [0, 0, 0]
        shift[axes[0]], shift[axes[1]] = sa, sb
        index = tuple(slice(m + s, volume.shape[i] - m + s) for i, (m, s) in enumerate(zip(margin, shift)))
        return volume[index]

    value = np.zeros(volume[tuple(slice(m, n - m) for m, n in zip(margin, volume.shape))].shape)
    for sa, sb, weight in bilinear_corners(a0, b0, fa, fb):
        value += weight * view(sa, sb)
    return value


def bilinear_corners(a0: int, b0: int, fa: float, fb: float) -> list[tuple[int, int, float]]:
    """(row shift, column shift, weight) of the grid points a sample mixes; zero weights left out."""
    corners = [(a0, b0, (1 - fa) * (1 - fb)), (a0, b0 + 1, (1 - fa) * fb),
               (a0 + 1, b0, fa * (1 - fb)), (a0 + 1, b0 + 1, fa * fb)]
    return [c for c in corners if c[2] != 0.0]


def plane_codes(volume: np.ndarray, plane: str, points: int, radius: int, time_radius: int) -> np.ndarray:
    """Raw LBP codes of `plane` for the interior voxels (margin radius in x/y, time_radius in t)."""
    axes = _PLANE_AXES[plane]
    radii = (time_radius, radius, radius)
    margin = (time_radius, radius, radius)
    centre = volume[tuple(slice(m, n - m) for m, n in zip(margin, volume.shape))]
    codes = np.zeros(centre.shape, np.int64)
    for p, offset in enumerate(circle(points, radii[axes[0]], radii[axes[1]])):
        codes |= (_sample(volume, axes, offset, margin) >= centre).astype(np.int64) << p
    return codes


def lbp_top(clip: np.ndarray, points: int = 8, radius: int = 1, time_radius: int = 1, blocks: int = 5) -> np.ndarray:
    """Feature vector of one clip (T x H x W or T x H x W x 1 uint8/float): blocks^2 * 3 * n_bins(P), float32."""
    volume = np.asarray(clip, np.float64)
    if volume.ndim == 4:
        if volume.shape[-1] != 1:
            raise ValueError(f"LBP-TOP needs gray clips, got {volume.shape[-1]} channels")
        volume = volume[..., 0]
    t, h, w = volume.shape
    if t <= 2 * time_radius or h <= 2 * radius + blocks or w <= 2 * radius + blocks:
        raise ValueError(f"clip {volume.shape} too small for radius {radius}, time radius {time_radius}, "
                         f"{blocks}x{blocks} blocks")
    lookup, bins = uniform_lookup(points), n_bins(points)
    # Cell of each interior pixel: the grid is laid over the interior region, so every cell gets pixels.
    ys = np.arange(h - 2 * radius) * blocks // (h - 2 * radius)
    xs = np.arange(w - 2 * radius) * blocks // (w - 2 * radius)
    cell = (ys[:, None] * blocks + xs[None, :])[None]  # 1 x H' x W', broadcast over time
    feats = []
    for plane in PLANES:
        binned = lookup[plane_codes(volume, plane, points, radius, time_radius)]
        hist = np.bincount((np.broadcast_to(cell, binned.shape) * bins + binned).ravel(),
                           minlength=blocks * blocks * bins).reshape(blocks * blocks, bins).astype(np.float64)
        feats.append(hist / np.maximum(hist.sum(axis=1, keepdims=True), 1))
    # Order: cell-major, then plane, then bin.
    return np.stack(feats, axis=1).reshape(-1).astype(np.float32)


def lbp_top_features(clips: np.ndarray, points: int = 8, radius: int = 1, time_radius: int = 1,
                     blocks: int = 5) -> np.ndarray:
    """N x T x H x W x 1 clips -> N x D features (per clip: nothing is fitted, so no fold can leak here)."""
    return np.stack([lbp_top(c, points, radius, time_radius, blocks) for c in clips])

"""Head pose: face units (a 3-D head surface) -> image pixels, in one vectorised map.

Every point of the face model lies on a head surface: an ellipsoid-like depth
z(x, y) (face units, towards the camera) plus the point's own relief (nose,
lips). Yaw and pitch rotate that surface, so features shift and foreshorten
the way they do on a turned head; roll, scale and shift are a 2-D similarity
after projection. The same depth function gives the shading its normals
(ferops.data.synthfacs.shading), so light and geometry agree.
"""

from __future__ import annotations

import numpy as np

DEPTH = 0.62          # depth of the face front over the silhouette plane, face units
DOME_CENTRE_Y = 0.25  # the head ellipsoid's centre below the eye line
DOME_HALF_Y = 1.65    # its vertical semi-axis


def head_depth(points: np.ndarray, face_width: float) -> np.ndarray:
    """Depth of the head surface under each (x, y) point, before the point's own relief."""
    x = points[:, 0] * (1.0 / (face_width * 1.08))
    y = (points[:, 1] - DOME_CENTRE_Y) * (1.0 / DOME_HALF_Y)
    return DEPTH * np.sqrt(np.minimum(np.maximum(1 - x * x - y * y, 0.0), 1.0))


def rotation(yaw: float, pitch: float) -> np.ndarray:
    """3x3 rotation (x right, y down, z to the camera): turn by yaw about y, then nod by pitch about x."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    turn = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    nod = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    return nod @ turn


class Pose:
    """Face units -> pixels: 3-D rotation of the head surface, orthographic projection, roll, scale, offset.

    `centre_y` is the face-unit height that lands on `offset`; `unit_px` is pixels per face unit.
    """

    def __init__(self, yaw: float, pitch: float, roll_deg: float, unit_px: float, offset, face_width: float,
                 centre_y: float = 0.0):
        self.rot = rotation(yaw, pitch)
        roll = np.deg2rad(roll_deg)
        self.matrix = unit_px * np.array([[np.cos(roll), np.sin(roll)], [-np.sin(roll), np.cos(roll)]])
        self.offset = np.asarray(offset, float)
        self.face_width, self.unit_px, self.centre_y = face_width, unit_px, centre_y
        self.full = self.matrix @ self.rot[:2]  # rotation, projection, roll and scale in one 2x3 map

    def project(self, points: np.ndarray, depth: np.ndarray | float = 0.0) -> np.ndarray:
        """Rotated, projected face units (before roll/scale/offset)."""
        xyz = np.empty((len(points), 3))
        xyz[:, 0] = points[:, 0]
        xyz[:, 1] = points[:, 1] - self.centre_y
        xyz[:, 2] = head_depth(points, self.face_width) + depth
        return xyz @ self.rot[:2].T

    def __call__(self, points: np.ndarray, depth: np.ndarray | float = 0.0) -> np.ndarray:
        xyz = np.empty((len(points), 3))
        xyz[:, 0] = points[:, 0]
        xyz[:, 1] = points[:, 1] - self.centre_y
        xyz[:, 2] = head_depth(points, self.face_width) + depth
        out = xyz @ self.full.T
        out += self.offset
        return out

    def then(self, affine: np.ndarray, scale: float = 1.0) -> "Pose":
        """This pose followed by a 2x3 pixel affine and a uniform rescale (a crop, then a resize)."""
        out = object.__new__(Pose)
        out.rot, out.face_width, out.centre_y = self.rot, self.face_width, self.centre_y
        out.matrix = scale * affine[:, :2] @ self.matrix
        out.full = out.matrix @ out.rot[:2]
        out.offset = scale * (affine[:, :2] @ self.offset + affine[:, 2])
        out.unit_px = self.unit_px * scale * float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
        return out

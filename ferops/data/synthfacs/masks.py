"""Where each Action Unit moves the face: the ground truth for filter-AU correlation.

The paper's analysis asks whether a network's filters respond where an AU acts.
With real data that location is guessed from landmarks; here it is known, because
the regions below are built from the same landmarks the AU displaced (after the
displacement, so a dropped jaw's region reaches the dropped chin). Regions are
generous ellipses in face units; the renderer poses and rasterises them.
"""

from __future__ import annotations

import numpy as np

from ferops.data.synthfacs.face_model import FaceModel, ellipse
from ferops.data.synthfacs.identity import Identity


def _box(points: np.ndarray, margin_x: float, margin_y: float) -> np.ndarray:
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    return ellipse(centre[0], centre[1], half[0] + margin_x, half[1] + margin_y)


def au_regions(identity: Identity, levels: dict[str, float], model: FaceModel,
               codes: list[int]) -> dict[int, list[np.ndarray]]:
    """Polygons (face units) per requested AU code; sided AUs cover only their active side."""
    lm = model.landmarks
    es, ew = identity.eye_spacing, identity.eye_width
    brow_y = 0.5 * (lm["brow_L"][:, 1].mean() + lm["brow_R"][:, 1].mean())
    corners = {"R": lm["mouth_corners"][0], "L": lm["mouth_corners"][1]}
    lips = np.concatenate([lm["mouth_upper"], lm["mouth_lower"]])
    chin_y = float(lm["chin"][0, 1])
    mouth_top = float(lm["mouth_upper"][:, 1].min())
    sides = lambda code: [s for s in ("R", "L") if levels[f"{s}{code}"] >= 0.5] or ["R", "L"]
    sign = {"R": -1.0, "L": 1.0}
    folds = lambda which: [_box(lm[f"fold_{s}"], 0.05, 0.04) for s in which]

    regions: dict[int, list[np.ndarray]] = {}
    for code in codes:
        if code == 1:
            shapes = [ellipse(0.0, brow_y - 0.07, 0.34, 0.2)]
        elif code == 2:
            shapes = [ellipse(sx * (es + 0.08), brow_y - 0.05, 0.2, 0.16) for sx in (-1, 1)]
        elif code == 4:
            shapes = [ellipse(0.0, brow_y + 0.02, es + ew + 0.04, 0.1)]
        elif code == 5:
            shapes = [ellipse(sx * es, -0.035, ew * 1.25, 0.075) for sx in (-1, 1)]
        elif code == 6:
            shapes = [ellipse(sx * (es + 0.05), 0.13, 0.24, 0.2) for sx in (-1, 1)]
        elif code == 7:
            shapes = [ellipse(sx * es, 0.0, ew * 1.3, 0.08) for sx in (-1, 1)]
        elif code == 9:
            nose_y = identity.nose_length
            shapes = [ellipse(0.0, 0.5 * (brow_y + nose_y), 0.2, 0.5 * (nose_y - brow_y) + 0.08),
                      ellipse(0.0, nose_y, identity.nose_width + 0.09, 0.09),
                      ellipse(0.0, brow_y + 0.01, es, 0.09)] + folds("RL")
        elif code == 10:
            nose_y = identity.nose_length
            shapes = [ellipse(0.0, 0.5 * (nose_y + mouth_top) - 0.01, identity.mouth_width + 0.06,
                              0.5 * (mouth_top - nose_y) + 0.08)] + folds("RL")
        elif code == 12:
            shapes = [_box(np.concatenate([lm[f"fold_{s}"], lips[lips[:, 0] * sign[s] >= 0],
                                           [[sign[s] * (es + 0.03), 0.22]]]), 0.07, 0.06) for s in sides(12)]
        elif code == 14:
            shapes = [ellipse(corners[s][0] + sign[s] * 0.03, corners[s][1], 0.09, 0.08) for s in sides(14)]
        elif code == 15:
            shapes = [_box(lips, 0.06, 0.05)] + [ellipse(corners[s][0], corners[s][1] + 0.03, 0.1, 0.1) for s in "RL"]
        elif code == 16:
            shapes = [_box(lm["mouth_lower"], 0.0, 0.05)]
        elif code == 17:
            top = float(lm["mouth_line"][:, 1].mean())
            shapes = [ellipse(0.0, 0.5 * (top + chin_y), 0.3, 0.5 * (chin_y - top) + 0.03), _box(lips, 0.03, 0.03)]
        elif code == 20:
            shapes = [_box(lips, 0.1, 0.04)]
        elif code in (23, 24):
            shapes = [_box(lips, 0.03, 0.03)]
        elif code == 25:
            shapes = [_box(lips, 0.02, 0.02)]
        elif code == 26:
            top = float(lm["mouth_line"][:, 1].mean())
            shapes = [ellipse(0.0, 0.5 * (top + chin_y), identity.face_width * 0.62, 0.5 * (chin_y - top) + 0.06)]
        elif code == 43:
            shapes = [ellipse(sx * es, -0.01, ew * 1.25, 0.08) for sx in (-1, 1)]
        else:
            raise ValueError(f"no region defined for AU{code}")
        regions[code] = shapes
    return regions

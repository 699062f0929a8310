"""Where each Action Unit changes the face: the ground truth for filter-AU correlation.

The paper's analysis asks whether a network's filters respond where an AU acts.
With real data that location is guessed from landmarks; here it is known,
because each region below covers everything face_model.py lets that AU touch:
the parts it moves (before and after the move: a dropped jaw's region reaches
the dropped chin; an AU that moves the lip corners moves the nasolabial
furrows that end there), the furrows and bulges it adds, and the reach of the shading
those changes cause (relief blur and cast shadows). tests/test_synthfacs_masks.py
renders every AU alone at full intensity and checks that at least 95% of the
pixels it changes fall inside its region. Regions are in face units; the
renderer poses, crops and rasterises them like the face itself.
"""

from __future__ import annotations

import numpy as np

from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.primitives import FaceModel, ellipse

_T = np.linspace(0, 2 * np.pi, 28, endpoint=False)
_C, _S = np.cos(_T), np.sin(_T)
_RX, _RY = np.sign(_C) * np.abs(_C) ** 0.5, np.sign(_S) * np.abs(_S) ** 0.5


def rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """A rounded rectangle (superellipse) spanning x0..x1, y0..y1."""
    return np.stack([(x0 + x1) / 2 + (x1 - x0) / 2 * _RX, (y0 + y1) / 2 + (y1 - y0) / 2 * _RY], axis=1)


def _around(points: np.ndarray, margin_x: float, margin_y: float) -> np.ndarray:
    lo, hi = points.min(axis=0), points.max(axis=0)
    return rect(lo[0] - margin_x, hi[0] + margin_x, lo[1] - margin_y, hi[1] + margin_y)


def au_regions(identity: Identity, levels: dict[str, float], model: FaceModel,
               codes: list[int]) -> dict[int, list[np.ndarray]]:
    """Polygons (face units) per requested AU code; sided AUs (12, 14) cover only their active side."""
    lm, idt = model.landmarks, identity
    es, ew, eh, fw = idt.eye_spacing, idt.eye_width, idt.eye_height, idt.face_width
    brow_y, nose_y = -idt.brow_height, idt.nose_length
    mouth_y = nose_y + idt.mouth_gap
    chin_y = float(lm["chin"][0, 1])
    lips = np.concatenate([lm["mouth_upper"], lm["mouth_lower"]])
    lip_lo, lip_hi = lips.min(axis=0), lips.max(axis=0)
    mouth_half = max(abs(lip_lo[0]), abs(lip_hi[0]), idt.mouth_width)
    def sides(code):
        return [s for s in ("R", "L") if levels[f"{s}{code}"] >= 0.5] or ["R", "L"]
    sign = {"R": -1.0, "L": 1.0}
    def folds(which):
        return [_around(lm[f"fold_{s}"], 0.09, 0.09) for s in which]
    def eyes(up, down, wide):
        return [rect(sx * es - ew - wide, sx * es + ew + wide, -eh - up, down) for sx in (-1, 1)]
    brow_band = rect(-(es + ew + 0.14), es + ew + 0.14, brow_y - 0.5, 0.0)
    def mouth(grow_x, up, down):
        return rect(-mouth_half - grow_x, mouth_half + grow_x, min(lip_lo[1], mouth_y) - up,
                                              max(lip_hi[1], mouth_y) + down)

    regions: dict[int, list[np.ndarray]] = {}
    for code in codes:
        if code in (1, 2):  # brows up, forehead folds, the lid fold's inner end
            shapes = [brow_band]
        elif code == 4:     # brows down and together, glabella furrows and bulge, lids
            shapes = [rect(-(es + ew + 0.14), es + ew + 0.14, brow_y - 0.2, eh + 0.08)]
        elif code == 5:     # upper lids raised (up to 2.4x their height) with their creases
            shapes = eyes(0.1 + 1.4 * eh, 0.1, 0.06)
        elif code == 43:
            shapes = eyes(0.12, 0.1, 0.06)
        elif code == 7:     # lids tighten, lower-lid bulge and furrow
            shapes = eyes(0.08, 0.25, 0.07)
        elif code == 6:     # cheeks up, lower lids narrowed, crow's feet, infraorbital furrow
            shapes = [rect(-es - ew - 0.26, -es + ew + 0.12, -eh - 0.12, 0.62),
                      rect(es - ew - 0.12, es + ew + 0.26, -eh - 0.12, 0.62)]
        elif code == 9:     # nose wrinkles and wings, brows' inner ends, glabella, lower lids, upper folds
            shapes = [rect(-(es + 0.1), es + 0.1, brow_y - 0.14, nose_y + 0.14),
                      rect(-(es + ew + 0.14), es + ew + 0.14, brow_y - 0.14, brow_y + 0.14)] + eyes(0.0, 0.25, 0.07) + folds("RL")
        elif code == 10:    # upper lip up, nose wings up, folds deepen
            shapes = [rect(-(mouth_half + 0.18), mouth_half + 0.18, nose_y - 0.25, mouth_y + 0.2)] + folds("RL")
        elif code == 12:    # lip corners up and out, cheek up, fold deepens and bows, lips thin
            reach = mouth_half * 1.45 + 0.2
            shapes = [rect(*sorted((-0.08 * sign[s], reach * sign[s])), 0.0, mouth_y + 0.3) for s in sides(12)]
        elif code == 14:
            shapes = [ellipse(lm["mouth_corners"][0 if s == "R" else 1][0] + sign[s] * 0.04,
                              lm["mouth_corners"][0 if s == "R" else 1][1], 0.2, 0.16) for s in sides(14)]
            shapes += [mouth(0.08, 0.12, 0.16)] + folds(sides(14))
        elif code == 15:
            shapes = [mouth(0.14, 0.1, 0.3)] + folds("RL")
        elif code == 16:
            shapes = [mouth(0.08, 0.12, 0.25)]
        elif code == 17:    # chin boss up and dimpled, lower lip pushed up, mentolabial furrow
            shapes = [rect(-(mouth_half + 0.16), mouth_half + 0.16, mouth_y - 0.2, chin_y + 0.16)] + folds("RL")
        elif code == 20:    # lips stretched back, folds beyond the corners, nasolabial folds follow
            shapes = [mouth(0.2, 0.1, 0.2)] + folds("RL")
        elif code in (23, 24):  # lips tightened or pressed, bulges above and below
            shapes = [mouth(0.1, 0.12, 0.16)] + folds("RL")
        elif code == 25:
            shapes = [mouth(0.08, 0.12, 0.16)]
        elif code == 26:    # the jaw drops: the lower face and chin move down, the mouth opens
            shapes = [rect(-(fw + 0.1), fw + 0.1, nose_y - 0.12, chin_y + 0.24)]
        else:
            raise ValueError(f"no region defined for AU{code}")
        regions[code] = shapes
    return regions

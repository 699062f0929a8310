"""The mouth: lips, their parting (AU25), the jaw drop (AU26), teeth and cavity, and the AUs that pull and press them.

The mouth carries most of what tells expressions apart at 48 px (a smile's
crescent of teeth, surprise's dark oval, anger's pressed line, sadness's
downturned corners), so its states get their own module. Lip corners come from
face_model (they also end the nasolabial furrows); everything drawn here lies
inside the mouth and chin regions of masks.py.
"""

from __future__ import annotations

import numpy as np

from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.primitives import BROAD, MEDIUM, T13, FaceModel, Item, band, curve, ellipse, lin

# profiles along the mouth (T13: -1 at the subject's right corner .. 1 at the left), built once
_LEFT = T13 < 0
_ABS = np.abs(T13)
_ABS18 = _ABS ** 1.8
_ARC = 1 - T13 ** 2                       # 1 at the centre, 0 at the corners
_HUMP = np.sqrt(_ARC)
_ARC08 = _ARC ** 0.8
_FLAT = 1 - T13 ** 4
_CUPID = _ARC ** 0.55 * (1 - 0.22 * np.exp(-(T13 / 0.13) ** 2))


def build_mouth(idt: Identity, u: dict, model: FaceModel, geo: dict) -> None:
    """Lips, their parting (AU25), jaw drop (AU26), teeth and cavity, and the AUs that pull and press them."""
    mouth_y, chin_y, jaw_drop, jf = geo["mouth_y"], geo["chin_y"], geo["jaw_drop"], geo["jaw_field"]
    corners = geo["corners"]
    mw, age = idt.mouth_width, idt.age ** 2  # permanent lines deepen late in life
    corner_x = np.where(_LEFT, -abs(corners["R"][0]), abs(corners["L"][0]))
    corner_y = np.where(_LEFT, corners["R"][1], corners["L"][1])
    xs = _ABS * corner_x
    centre_y = mouth_y + 0.015 * u["15"] - 0.02 * u["17"]
    line = centre_y + (corner_y - centre_y) * _ABS18
    u12 = np.where(_LEFT, u["R12"], u["L12"])  # per point: a one-sided smile changes one side of the mouth
    thin = 1 - 0.5 * u["23"] - 0.55 * u["24"] - 0.3 * u["20"] - 0.12 * u12
    ul = np.maximum(idt.upper_lip * thin, 0.01)
    ll = np.maximum(idt.lower_lip * (thin + 0.15 * u["17"]), 0.012)
    hump = _HUMP
    part = (0.025 + 0.08 * u["25"]) * (u["25"] > 0.02) * (1 - u["24"]) * (1 - 0.6 * u["23"])
    raise10 = 0.1 * u["10"] * _ARC08  # the centre of the upper lip rises most: an inverted U
    upper_inner = line - raise10 - 0.3 * part * hump - 0.02 * u12 * hump
    lower_inner = (line + (0.7 * part + 0.85 * jaw_drop) * hump + 0.1 * u["16"] * _ARC08
                   + 0.05 * u["20"] * (part > 0) * _FLAT  # AU20 pulls the parted lower lip down and flat
                   - 0.025 * u["17"] * _ARC)
    lower_inner = np.maximum(lower_inner, upper_inner)
    upper_outer = upper_inner - ul * _CUPID - 0.012 * u["10"] * _ARC
    lower_outer = lower_inner + ll * _HUMP
    model.landmarks.update(mouth_upper=curve(xs, upper_outer), mouth_lower=curve(xs, lower_outer),
                           mouth_line=curve(xs, line))
    gap = lower_inner - upper_inner
    d = model.detail
    if gap.max() > 0.006:
        cavity = band(xs, upper_inner, lower_inner)
        d.append(Item("fill", cavity, "mouth", 1.0, depth=0.05))
        model.relief.append(Item("fill", cavity, "relief", -0.12, width=MEDIUM, depth=0.05))
        k = slice(2, -2)
        # how much upper tooth the upper lip uncovers: little in a plain jaw drop, a lot in a smile or sneer
        tooth = 0.02 + 0.04 * np.maximum(u12[k], max(u["10"], 0.8 * u["20"]))
        teeth_bottom = np.minimum(upper_inner[k] + tooth * hump[k] ** 0.3, lower_inner[k])
        d.append(Item("fill", band(xs[k], upper_inner[k], teeth_bottom), "teeth", 1.0, depth=0.08))
        if gap.max() > 0.03:
            for tx in (-0.14, -0.07, 0.0, 0.07, 0.14):  # gaps between the upper teeth
                ty = np.interp(tx, xs, upper_inner)
                d.append(Item("line", np.array([[tx, ty], [tx, ty + tooth.max() * 0.8]]), "teeth", 0.7, width=0.006, depth=0.08))
        if gap.max() > 0.09 or u["16"] > 0.2 or u["20"] > 0.4:
            low_top = np.maximum(lower_inner[k] - 0.035, teeth_bottom)
            d.append(Item("fill", band(xs[k], low_top, lower_inner[k]), "teeth", 0.82, depth=0.08))
    d.append(Item("fill", band(xs, upper_outer, upper_inner), "lip", 0.85, depth=0.06))
    d.append(Item("fill", band(xs, lower_inner, lower_outer), "lip", 1.06, depth=0.07))
    d.append(Item("line", curve(xs, upper_inner), "mouth", 1.0, width=0.014, depth=0.06))
    model.relief.append(Item("fill", band(xs, upper_outer - 0.01, upper_inner), "relief", 0.03, width=MEDIUM, depth=0.04))
    model.relief.append(Item("fill", band(xs, lower_inner, lower_outer + 0.01), "relief", 0.045 + 0.03 * u["17"], width=MEDIUM, depth=0.04))

    # mentolabial furrow (AU17 deepens it, AU17 raises and dimples the chin boss)
    ment = 0.1 + 0.9 * u["17"] + 0.3 * age + 0.3 * u["15"]
    mx = lin(-0.5, 0.5, 7) * mw
    lower_mid = lower_outer[6]
    model.groove(curve(mx, lower_mid + 0.05 + 0.025 * (mx / mw) ** 2), 0.03 * min(ment, 1.3) + 0.03 * u["17"], 0.035,
                 paint_tone=1.0 - 0.14 * min(ment, 1.3) - 0.2 * u["17"])
    if u["17"] > 0.1:
        model.relief.append(Item("fill", jf(ellipse(0.0, chin_y - 0.14 - 0.03 * u["17"], 0.16, 0.09)), "relief",
                                 0.12 * u["17"], width=BROAD))
        for dx, dy in ((-0.05, -0.13), (0.045, -0.12), (0.0, -0.08), (-0.02, -0.17), (0.03, -0.165), (0.07, -0.09)):
            d.append(Item("fill", jf(ellipse(dx, chin_y + dy, 0.022, 0.016)), "skin", 1.0 - 0.4 * u["17"]))
    for side in ("R", "L"):
        cx, cy = corners[side]
        sx = 1 if side == "L" else -1
        if u[f"{side}14"] > 0.05:  # AU14: a dimple crease beside the tightened corner, the skin bulging past it
            s14 = u[f"{side}14"] ** 0.6  # a dimple is a pit: it shows early, then deepens little
            dimple = curve(cx + sx * (0.05 + 0.015 * np.cos(lin(-1.2, 1.2, 5))), cy + lin(-0.06, 0.06, 5))
            model.groove(dimple, 0.08 * s14, 0.045, paint_tone=1.0 - 0.6 * s14)
            model.relief.append(Item("fill", ellipse(cx + sx * 0.085, cy, 0.035, 0.06), "relief", 0.06 * s14,
                                     width=MEDIUM))
        if u["15"] > 0.1:  # AU15: corners pulled down, the skin below them folds
            fold = np.array([[cx + sx * 0.02, cy + 0.03], [cx + sx * 0.05, cy + 0.13]])
            model.groove(fold, 0.03 * u["15"], 0.03, paint_tone=1.0 - 0.2 * u["15"])
        if u["20"] > 0.1:  # AU20: lips stretched back, a short vertical fold beyond the corner
            fold = np.array([[cx + sx * 0.05, cy - 0.04], [cx + sx * 0.065, cy + 0.08]])
            model.groove(fold, 0.03 * u["20"], 0.03, paint_tone=1.0 - 0.22 * u["20"])
    if u["24"] > 0.1 or u["23"] > 0.3:  # pressed lips bulge the skin above and below them
        press = max(u["24"], 0.6 * u["23"])
        model.relief.append(Item("line", curve(xs[3:-3], upper_outer[3:-3] - 0.035), "relief", 0.06 * press, width=0.05))
        model.relief.append(Item("line", curve(xs[3:-3], lower_outer[3:-3] + 0.035), "relief", 0.06 * press, width=0.05))
        d.append(Item("line", curve(xs[3:-3], lower_outer[3:-3] + 0.02), "skin", 1.0 - 0.35 * press, width=0.016))
        d.append(Item("line", curve(xs[3:-3], upper_outer[3:-3] - 0.015), "skin", 1.0 - 0.25 * press, width=0.012))
        d.append(Item("line", curve(xs[1:-1], line[1:-1]), "mouth", 1.0, width=0.01 + 0.012 * press, depth=0.065))

"""Face geometry: where every part of a face sits for one identity and one expression.

This is the FACS knowledge of the generator. Each Action Unit moves the parts
the FACS manual describes (AU1 the inner brow, AU12 the lip corners and the
nasolabial furrow, ...) and adds the appearance changes it causes (furrows,
bulges, a dark open mouth), by an amount that grows with its 0..5 intensity.
Every change an AU makes lies inside the region masks.py gives it.

A face model is three layers of draw items in face units (origin between the
eyes, x to image right, y down): `base` albedo (softened by the renderer),
`detail` albedo (sharp: eyes, brows, lips, lines), and `relief`, height offsets
over the head surface that the shading turns into light and shadow. Posing and
drawing are the renderer's job; items are returned so it can transform all
points in one vectorised step.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ferops.data.synthfacs.hair import SKULL_TOP, hair_shapes
from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.mouth import build_mouth
from ferops.data.synthfacs.primitives import BROAD, MEDIUM, T9, FaceModel, Item, band, curve, ellipse, lin

_CROW = [(np.cos(a), np.sin(a)) for a in (-0.5, -0.1, 0.3, 0.65)]  # crow's feet directions
# eye profiles along T9 (-1..1 across the eye), built once: lid bulge, its powers, per-side tilt and inner end
_BUMP = 1 - T9 ** 2
_BUMP08, _BUMP065 = _BUMP ** 0.8, _BUMP ** 0.65
_TILT = {sx: -0.012 * sx * T9 for sx in (-1, 1)}
_INNER = {sx: np.clip(-sx * T9, 0, 1) for sx in (-1, 1)}
_UNDER_T = T9[1:-1] * 0.85
# brow profiles along s (0 at the head of the brow .. 1 at its tail)
_S = np.linspace(0.0, 1.0, 9)
_S_ARCH, _S_SIN = np.sin(np.pi * _S / 1.3), np.sin(np.pi * _S)
_S_TAIL15, _S_TAIL12, _S_HEAD12 = (1 - _S) ** 1.5, (1 - _S) ** 1.2, _S ** 1.2
# forehead line segments (right, centre, left): x, the bow of a line over the forehead, AU1's lift of the centre
_FOREHEAD = [(xs, 0.05 * (xs / 0.44) ** 2, np.exp(-(xs / 0.15) ** 2))
             for xs in (np.linspace(-0.44, -0.12, 6), np.linspace(-0.16, 0.16, 6), np.linspace(0.12, 0.44, 6))]


def _smoothstep(x):
    x = np.minimum(np.maximum(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def build_face(identity: Identity, levels: dict[str, float]) -> FaceModel:
    """Lay out one face; `levels` are per-side AU intensities from expression.sided_intensities."""
    idt = identity
    u = {k: v / 5.0 for k, v in levels.items()}  # intensities 0..5 as fractions of the maximum
    base, relief, hair, neck = _static_parts(idt)
    model = FaceModel(base=list(base), relief=list(relief), n_static_relief=len(relief), n_static_base=len(base))
    geo = _outline(idt, u, model)
    model.base.append(Item("fill", geo["outline"], "skin", 1.0))
    for sx in (-1, 1):
        model.base.append(Item("fill", ellipse(sx * (idt.eye_spacing + 0.02), 0.36, 0.14, 0.1), "blush", 1.0))
    model.landmarks["neck"] = neck
    _cheeks_and_folds(idt, u, model, geo)
    _forehead_and_brows(idt, u, model)
    _eyes(idt, u, model)
    _nose(idt, u, model)
    build_mouth(idt, u, model, geo)
    model.detail += hair
    back, front, _ = hair_shapes(idt)
    model.hair, model.n_back_hair = back + front, len(back)
    return model


def _outline(idt: Identity, u: dict, model: FaceModel) -> dict:
    """Head silhouette; the lower face follows the jaw (AU26 drops it and lengthens the face).

    The AU vocabulary (ferops.data.vocab) has no AU27, so AU26 at high intensity (D-E) carries the
    mouth-stretch look of a posed surprise: a long face and a tall dark oral cavity (mouth.py).
    """
    nose_y = idt.nose_length
    jaw_drop = 0.36 * u["26"]
    chin_y = idt.chin_y

    def jaw_field(pts: np.ndarray) -> np.ndarray:
        out = pts.copy()
        out[:, 1] += jaw_drop * _smoothstep((pts[:, 1] - nose_y) / (chin_y - nose_y))
        return out

    fw = idt.face_width
    theta_up = lin(np.pi, 2 * np.pi, 15)
    upper = curve(fw * np.cos(theta_up), SKULL_TOP * np.sin(theta_up))
    theta_lo = lin(0.0, np.pi, 19)[1:-1]
    c, s = np.cos(theta_lo), np.sin(theta_lo)
    n = idt.jaw_squareness
    ylo = chin_y * np.abs(s) ** (2 / n)
    taper = 1.0 - (1.0 - idt.jaw_width) * (ylo / chin_y) ** 2
    lower = curve(fw * np.sign(c) * np.abs(c) ** (2 / n) * taper, ylo)
    outline = np.concatenate([upper, jaw_field(lower)])
    model.head = outline
    model.landmarks["outline"] = outline
    model.landmarks["chin"] = np.array([[0.0, chin_y + jaw_drop]])
    return {"nose_y": nose_y, "mouth_y": nose_y + idt.mouth_gap, "chin_y": chin_y, "jaw_drop": jaw_drop,
            "jaw_field": jaw_field, "outline": outline}


@lru_cache(maxsize=512)
def _static_parts(idt: Identity) -> tuple[tuple[Item, ...], tuple[Item, ...], tuple[Item, ...], np.ndarray]:
    """What no AU moves, built once per person: (base under the face, relief, hair drawn last, neck polygon)."""
    fw, es, ew, eh, c = idt.face_width, idt.eye_spacing, idt.eye_width, idt.eye_height, idt.masculinity - 0.5
    back, front, strands = hair_shapes(idt)
    neck_w = 0.4 + 0.12 * idt.jaw_width + 0.06 * idt.masculinity
    neck = np.array([[-neck_w, 0.5], [neck_w, 0.5], [neck_w + 0.06, 2.0], [-neck_w - 0.06, 2.0]])
    shoulders = np.array([[-2.4, 3.0], [-1.7, 1.9], [-neck_w, 1.7], [0, 1.84], [neck_w, 1.7], [1.7, 1.9], [2.4, 3.0]])
    base = [Item("fill", poly, "hair", 0.8) for poly in back]
    base += [Item("fill", neck, "skin", 0.95), Item("fill", shoulders, "cloth", 1.0)]
    relief = []
    for sx in (-1, 1):
        ear = ellipse(sx * (fw - 0.01), 0.17, 0.1, 0.3)
        base.append(Item("fill", ear, "skin", 0.97))
        relief += [
            Item("fill", ear, "relief", -0.1, width=MEDIUM),
            Item("fill", ellipse(sx * (fw - 0.12), -0.42, 0.12, 0.16), "relief", -0.05, width=BROAD),  # temple
            Item("fill", ellipse(sx * (es + 0.1), 0.26, 0.19, 0.1), "relief", 0.035 + 0.025 * c, width=BROAD),  # cheekbone
            Item("fill", ellipse(sx * (es + 0.02), -idt.brow_height - 0.02, ew + 0.12, 0.07), "relief", 0.05 + 0.06 * c,
                 width=BROAD),  # brow ridge
            Item("fill", ellipse(sx * es + sx * 0.01, -0.05, ew * 1.5, 0.15), "relief", -0.06, width=BROAD),  # socket
            Item("fill", ellipse(sx * es - sx * 0.07, -0.09, ew * 0.75, 0.08), "relief", -0.03, width=BROAD),
            Item("fill", ellipse(sx * es, 0.0, ew * 1.05, eh * 1.4), "relief", 0.03, width=MEDIUM),  # eyeball
        ]
    nose_y = idt.nose_length
    relief.append(Item("fill", np.array([[-0.04, -0.02], [0.04, -0.02], [0.1, nose_y - 0.06], [-0.1, nose_y - 0.06]]),
                       "relief", 0.08, width=BROAD))  # nose bridge
    hair = [Item("fill", poly, "hair", 1.0) for poly in front]
    tones = [0.7 if k % 3 else 1.35 for k in range(len(strands))]  # grouped by tone: one OpenCV call per tone
    hair += [Item("line", strands[k], "hair", tones[k], width=0.012) for k in np.argsort(tones, kind="stable")]
    return tuple(base), tuple(relief), tuple(hair), neck


def _cheeks_and_folds(idt: Identity, u: dict, model: FaceModel, geo: dict) -> None:
    """Cheekbones, cheek apples (AU6, AU12 raise them), nasolabial furrows, temples, chin and muzzle relief."""
    es, age, c = idt.eye_spacing, idt.age ** 2, idt.masculinity - 0.5  # permanent lines deepen late in life
    nose_y, mouth_y, chin_y, jf = geo["nose_y"], geo["mouth_y"], geo["chin_y"], geo["jaw_field"]
    rel = model.relief
    rel.append(Item("fill", jf(ellipse(0.0, mouth_y - 0.02, idt.mouth_width * 1.25, 0.2)), "relief", 0.06, width=BROAD))  # muzzle
    rel.append(Item("fill", jf(ellipse(0.0, chin_y - 0.13, 0.18 + 0.04 * c, 0.1)), "relief", 0.05, width=BROAD))  # chin

    mw = idt.mouth_width
    corners = {}
    for sx, side in ((-1, "R"), (1, "L")):
        u12, u14 = u[f"{side}12"], u[f"{side}14"]
        raise_amt = 0.75 * u["6"] + 0.6 * u12
        cy = 0.37 - 0.11 * raise_amt
        apple = ellipse(sx * (es + 0.02), cy, 0.16, 0.11 + 0.02 * raise_amt)
        rel.append(Item("fill", apple, "relief", 0.015 + 0.08 * raise_amt, width=BROAD))
        if raise_amt > 0.05:  # the lifted cheek catches light and casts a crease below it
            model.base.append(Item("fill", apple, "skin", 1.0 + 0.04 * raise_amt))
        cx = sx * mw * (1 + 0.36 * u12 + 0.36 * u["20"] - 0.15 * u["23"] - 0.06 * u["24"] - 0.12 * u14
                        - 0.2 * u["26"])
        rest = 0.03 * idt.age - 0.012  # at rest the corners sit a little above the lip line when young, below it when old
        cy_corner = (mouth_y + rest - 0.23 * u12 - 0.035 * u14 + 0.12 * u["15"] + 0.025 * u["20"] - 0.015 * u["17"]
                     + 0.25 * geo["jaw_drop"])
        corners[side] = (cx, cy_corner)
        fold_depth = 0.04 + 0.3 * age + 1.0 * u12 + 0.6 * u["10"] + 0.45 * u["9"]
        top = np.array([sx * (idt.nose_width + 0.03), nose_y - 0.03 - 0.03 * u["10"] - 0.02 * u["9"]])
        bottom = np.array([cx + sx * (0.05 + 0.035 * u12), cy_corner + 0.07 - 0.025 * u12])
        t = lin(0, 1, 7)[:, None]
        fold = (1 - t) * top + t * bottom + 4 * t * (1 - t) * np.array([sx * (0.05 + 0.06 * u12), 0.0])
        model.landmarks[f"fold_{side}"] = fold
        d = min(fold_depth, 1.4)
        if d > 0.08:
            rel.append(Item("line", fold + (sx * 0.035, -0.01), "relief", 0.025 * d, width=BROAD))  # cheek over it
            model.groove(fold, 0.03 * d, 0.035, paint_tone=1.0 - 0.12 * d)
    model.landmarks["mouth_corners"] = np.array([corners["R"], corners["L"]])
    geo["corners"] = corners


def _forehead_and_brows(idt: Identity, u: dict, model: FaceModel) -> None:
    """AU1/AU2 raise brows and fold the forehead; AU4 lowers and knits them with vertical furrows."""
    age = idt.age ** 2  # permanent lines deepen late in life
    brow_y = -idt.brow_height
    es, ew = idt.eye_spacing, idt.eye_width
    # forehead lines: AU1 in the centre, AU2 at the sides, age faintly everywhere
    centre = 0.15 * age + u["1"] + 0.35 * u["2"]
    sides = 0.15 * age + u["2"] + 0.35 * u["1"]
    for k in range(4):
        ly = brow_y - 0.1 - 0.065 * k - 0.13 * max(u["1"], u["2"])
        if ly < idt.hairline + 0.06:
            break
        for (xs, bow, lift), d in zip(_FOREHEAD, (sides, centre, sides)):
            d = d * (1 - 0.2 * k)
            if d > 0.1:
                model.groove(curve(xs, (ly + bow) - (0.025 * u["1"]) * lift), 0.02 * min(d, 1.2), 0.02,
                             paint_tone=1.0 - 0.14 * min(d, 1.2))
    # glabella: AU4 bunches skin between the brows into vertical furrows and a bulge
    knit = u["4"] + 0.12 * u["9"] + 0.25 * max(age - 0.36, 0.0)
    if knit > 0.08:
        model.relief.append(Item("fill", ellipse(0.0, brow_y + 0.03, 0.1, 0.07), "relief", 0.04 * min(knit, 1), width=MEDIUM))
        for sx in (-1, 1):
            line = curve(sx * np.array([0.035, 0.045, 0.05]), brow_y + np.array([-0.05, 0.03, 0.1]))
            model.groove(line, 0.03 * min(knit, 1), 0.025, paint_tone=1.0 - 0.25 * min(knit, 1))

    bt = idt.brow_thickness
    s = _S
    span = es + ew + 0.04 - 0.08
    arch = min(u["1"], u["2"]) * max(0.0, 1 - 1.6 * u["4"])  # 1+2: the brow goes up and curves; 1+2+4 (fear): flat
    # the brows mirror each other: one profile (y, thickness), x flipped per side
    x_profile = 0.08 + s * span - 0.045 * u["4"] * _S_TAIL15
    ys = (brow_y - idt.brow_arch * _S_ARCH - 0.012 * s
          - 0.16 * u["1"] * _S_TAIL15 - 0.12 * u["2"] * _S_HEAD12 * (1 - 0.45 * u["4"])  # 1+2+4: flat, knit
          - arch * (0.03 + 0.055 * _S_SIN)
          + 0.11 * u["4"] * _S_TAIL12 * (1 - 0.85 * max(u["1"], 0.7 * u["2"])) + 0.025 * u["4"] + 0.035 * u["9"] * (1 - s))
    th = bt * (1.15 - 0.6 * s) * (1 + 0.2 * u["4"])
    brow_top, brow_bottom, tissue_top, tissue_bottom = ys - th / 2, ys + th / 2, ys - th, ys + 2 * th
    # hairs: short strokes slanting out and up, thicker at the head of the brow
    hy, h = ys[1::2], bt * (1.1 - 0.5 * s[1::2])
    for sx, name in ((-1, "R"), (1, "L")):
        xs = sx * x_profile
        brow = band(xs, brow_top, brow_bottom)
        model.relief.append(Item("fill", band(xs, tissue_top, tissue_bottom), "relief", 0.02, width=MEDIUM))  # brow tissue
        model.detail.append(Item("fill", brow, "brow", 1.0))
        hx = xs[1::2]
        strokes = np.empty((len(hx), 2, 2))
        strokes[:, 0, 0], strokes[:, 0, 1] = hx - sx * 0.02, hy + h * 0.5
        strokes[:, 1, 0], strokes[:, 1, 1] = hx + sx * 0.02, hy - h * 0.55
        model.detail += [Item("line", stroke, "brow", 1.2, width=0.011) for stroke in strokes[0::2]]
        model.detail += [Item("line", stroke, "brow", 0.75, width=0.011) for stroke in strokes[1::2]]
        model.landmarks[f"brow_{name}"] = curve(xs, ys)


def _eyes(idt: Identity, u: dict, model: FaceModel) -> None:
    """Sockets, lids, lashes, irises; AU5 widens, AU6/AU7 narrow from below, AU43 closes, AU6 adds crow's feet."""
    ew, eh, age = idt.eye_width, idt.eye_height, idt.age ** 2  # permanent lines deepen late in life
    bump = _BUMP
    up_h = eh * (1 + 1.4 * u["5"]) * (1 - 0.2 * u["6"]) * (1 - 0.25 * u["7"]) * (1 - 0.15 * u["4"]) * (1 - 0.15 * u["9"])
    lo_h = 0.55 * eh * (1 - 0.5 * u["6"]) * (1 - 0.6 * u["7"]) * (1 - 0.45 * u["9"])  # AU9 pushes the lower lids up
    for sx, name in ((-1, "R"), (1, "L")):
        cx = sx * idt.eye_spacing
        xs = cx + ew * T9
        tilt = _TILT[sx]
        lower_y = tilt + lo_h * _BUMP08 - (0.035 * u["6"] + 0.02 * u["7"]) * bump  # AU6: smiling eyes
        upper_y = tilt - up_h * _BUMP065
        upper_y = lower_y + (upper_y - lower_y) * (1 - 0.97 * u["43"])
        opening = np.concatenate([curve(xs, upper_y), curve(xs, lower_y)[::-1][1:-1]])
        model.landmarks[f"eye_{name}"] = opening
        # upper lid: the skin between crease and lashes, shaded darker towards the lashes
        lid = 0.028 + 0.012 * (1 - u["5"]) + 0.03 * u["43"]
        inner = _INNER[sx]  # AU1 lifts the inner end of the lid fold (the grief triangle)
        crease_y = np.minimum(upper_y - lid * bump - 0.012, -eh - 0.02 + 0.04 * u["4"]) - 0.035 * u["1"] * inner * bump
        model.detail.append(Item("fill", band(xs, crease_y, upper_y), "skin", 0.9))
        model.detail.append(Item("line", curve(xs[1:-1], crease_y[1:-1]), "skin", 0.72, width=0.014))
        model.detail.append(Item("fill", opening, "sclera", 1.0))
        # the upper lid shades the eyeball below it; a raised lid (AU5) bares the white above the iris
        shadow_y = upper_y + 0.2 * (1 - u["5"]) * np.maximum(lower_y - upper_y, 0.0)
        model.detail.append(Item("fill", band(xs, upper_y, shadow_y), "sclera", 0.72))
        if u["43"] < 0.9:
            r = 0.47 * ew  # iris with a darker limbal ring, and the pupil; the lids clip all three
            rings = np.concatenate([ellipse(cx + 0.004 * sx, 0.004, radius, radius) for radius in (r, r * 0.82, r * 0.42)])
            top = np.interp(rings[:, 0], xs, upper_y)
            rings[:, 1] = np.clip(rings[:, 1], top, np.maximum(np.interp(rings[:, 0], xs, lower_y), top))
            model.detail += [Item("fill", rings[k * 20:(k + 1) * 20], paint, tone)
                             for k, (paint, tone) in enumerate((("iris", 0.7), ("iris", 1.0), ("pupil", 1.0)))]
            glint = ellipse(cx + 0.3 * r, -0.3 * r, 0.16 * r, 0.16 * r)
            if glint[:, 1].min() > np.interp(cx + 0.3 * r, xs, upper_y):
                model.detail.append(Item("fill", glint, "sclera", 1.25))
        model.detail.append(Item("line", curve(xs, upper_y - 0.006), "lash", 1.0, width=0.028))
        model.detail.append(Item("line", curve(xs[1:-1], lower_y[1:-1] + 0.004), "lash", 1.6, width=0.01))
        model.relief.append(Item("line", curve(xs[1:-1], lower_y[1:-1] + 0.04 - 0.03 * u["6"]), "relief",
                                 0.01 + 0.03 * u["6"] + 0.02 * u["7"], width=0.05))  # lower-lid bulge
        crow = u["6"] + 0.3 * age
        if crow > 0.12:  # AU6: crow's feet fanning out from the outer corner
            ox, length = cx + sx * (ew + 0.035), 0.045 + 0.05 * u["6"]
            for cos, sin in _CROW:
                model.groove(np.array([[ox, 0.01], [ox + sx * length * cos, 0.01 + length * sin]]), 0.015 * min(crow, 1),
                             0.018, paint_tone=1.0 - 0.22 * min(crow, 1))
        under = 0.7 * u["6"] + 0.25 * u["7"] + 0.35 * age + 0.3 * u["9"]
        if under > 0.1:  # infraorbital furrow under the raised lower lid
            t = _UNDER_T
            line = curve(cx + ew * t + sx * 0.015, lo_h + 0.055 - 0.025 * u["6"] + 0.025 * (1 - t ** 2))
            model.groove(line, 0.025 * min(under, 1), 0.025, paint_tone=1.0 - 0.2 * min(under, 1))


def _nose(idt: Identity, u: dict, model: FaceModel) -> None:
    """Bridge, tip and wings in relief; AU9 wrinkles the bridge and lifts the wings, AU10 lifts them a little."""
    nose_y = idt.nose_length
    nw = idt.nose_width * (1 + 0.15 * u["9"] + 0.06 * u["10"])
    lift = 0.035 * u["9"] + 0.025 * u["10"]
    rel = model.relief
    rel.append(Item("fill", ellipse(0.0, nose_y - 0.03 - lift, 0.075, 0.065), "relief", 0.18, width=MEDIUM, depth=0.1))
    for sx in (-1, 1):
        wing = ellipse(sx * nw * 0.72, nose_y - 0.01 - lift, 0.06, 0.05)
        rel.append(Item("fill", wing, "relief", 0.1, width=MEDIUM, depth=0.08))
        model.detail.append(Item("line", curve(sx * (nw * 0.72 + 0.055 * np.cos(lin(-2.0, 0.9, 7))),
                                                nose_y - lift - 0.01 + 0.055 * np.sin(lin(-2.0, 0.9, 7))),
                                 "skin", 0.78, width=0.014, depth=0.12))
        model.detail.append(Item("fill", ellipse(sx * nw * 0.4, nose_y - lift + 0.035, 0.04, 0.018), "mouth", 1.0,
                                 depth=0.15))
    if u["9"] > 0.05:  # wrinkles fanning over the sides of the nose root, one crease across it
        for sx in (-1, 1):
            for k in range(2):
                line = np.array([[sx * 0.05, 0.04 + 0.07 * k], [sx * 0.13, 0.0 + 0.07 * k]])
                model.groove(line, 0.03 * u["9"], 0.022, z=0.05, paint_tone=1.0 - 0.25 * u["9"])
        model.groove(curve(lin(-0.07, 0.07, 5), np.full(5, -0.06)), 0.025 * u["9"], 0.02, z=0.05,
                     paint_tone=1.0 - 0.2 * u["9"])

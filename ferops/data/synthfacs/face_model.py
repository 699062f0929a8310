"""Face geometry: where every part of a face sits for one identity and one expression.

This is the FACS knowledge of the generator. Each Action Unit moves the parts
the FACS manual describes (AU1 the inner brow, AU12 the lip corners and the
nasolabial furrow, ...) by an amount proportional to its 0..5 intensity, so the
pixels an AU changes are exactly the pixels its region mask marks. Everything is
in face units (origin between the eyes, x to image right, y down); posing and
drawing are the renderer's job. Shapes are returned as draw items so the
renderer can transform all points in one vectorised step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ferops.data.synthfacs.identity import Identity

SKULL_TOP = 1.22  # crown height above the eye line, face units
_T9 = np.linspace(-1.0, 1.0, 9)
_T13 = np.linspace(-1.0, 1.0, 13)
_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 20, endpoint=False))], axis=1)


@lru_cache(maxsize=None)
def _lin(start: float, stop: float, num: int) -> np.ndarray:
    """Constant parameter grids, built once (the renderer's budget is ~1 ms per face)."""
    grid = np.linspace(start, stop, num)
    grid.flags.writeable = False
    return grid


@lru_cache(maxsize=None)
def _cos_lin(start: float, stop: float, num: int) -> np.ndarray:
    grid = np.cos(np.linspace(start, stop, num))
    grid.flags.writeable = False
    return grid


def ellipse(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    out = _CIRCLE * (ax, ay)
    out += (cx, cy)
    return out


def curve(xs, ys) -> np.ndarray:
    out = np.empty((max(np.size(xs), np.size(ys)), 2))
    out[:, 0] = xs
    out[:, 1] = ys
    return out


@dataclass
class Item:
    """One drawing primitive in face units; `tone` scales a named palette colour."""

    op: str            # "fill" (polygon) or "line" (open polyline)
    points: np.ndarray
    paint: str         # palette key: skin, hair, brow, lip, sclera, iris, pupil, teeth, mouth, ink...
    tone: float = 1.0  # multiplier on the palette colour (shading, wrinkle depth)
    width: float = 0.0  # line width in face units
    depth: float = 0.0  # extra z (nose and lips stand out of the face plane under yaw)


@dataclass
class FaceModel:
    """Draw items in painter's order, split where the renderer softens (blurs) the base."""

    base: list[Item] = field(default_factory=list)
    detail: list[Item] = field(default_factory=list)
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)


def _u(levels: dict, key: str) -> float:
    return levels.get(key, 0.0) / 5.0


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def build_face(identity: Identity, levels: dict[str, float]) -> FaceModel:
    """Lay out one face; `levels` are per-side AU intensities from expression.sided_intensities."""
    idt = identity
    u = {k: _u(levels, k) for k in levels}
    model = FaceModel()
    base, detail = model.base, model.detail
    age = idt.age

    nose_y = idt.nose_length
    mouth_y = idt.nose_length + idt.mouth_gap
    jaw_drop = 0.27 * u["26"]
    chin_y = idt.chin_y - 0.025 * u["17"]

    def jaw_field(pts: np.ndarray) -> np.ndarray:
        """Lower face follows the jaw (AU26): full drop at the chin, none above the nose."""
        out = pts.copy()
        out[:, 1] += jaw_drop * _smoothstep((pts[:, 1] - nose_y) / (chin_y - nose_y))
        return out

    # ---- head silhouette ------------------------------------------------------
    fw = idt.face_width
    theta_up = _lin(np.pi, 2 * np.pi, 15)
    upper = curve(fw * np.cos(theta_up), SKULL_TOP * np.sin(theta_up))
    theta_lo = _lin(0.0, np.pi, 17)[1:-1]
    c, s = np.cos(theta_lo), np.sin(theta_lo)
    n = idt.jaw_squareness
    ylo = chin_y * np.abs(s) ** (2 / n)
    taper = 1.0 - (1.0 - idt.jaw_width) * (ylo / chin_y) ** 2
    lower = curve(fw * np.sign(c) * np.abs(c) ** (2 / n) * taper, ylo)
    # upper runs left -> crown -> right, lower right -> chin -> left: one closed loop
    outline = np.concatenate([upper, jaw_field(lower)])
    model.landmarks["outline"] = outline

    # back hair and neck sit behind the face
    hv, hl = idt.hair_volume, idt.hair_length
    back = np.concatenate([
        curve((fw + hv) * np.cos(theta_up), -0.2 + (SKULL_TOP - 0.2 + hv) * np.sin(theta_up)),
        np.array([[fw + hv * 0.8, -0.2 + 1.3 * hl], [fw * 0.75, 1.3 * hl], [fw * 0.3, 1.3 * hl - 0.25],
                  [-fw * 0.3, 1.3 * hl - 0.25], [-fw * 0.75, 1.3 * hl], [-(fw + hv * 0.8), -0.2 + 1.3 * hl]]),
    ])
    neck_w = 0.42 + 0.1 * idt.jaw_width
    neck = np.array([[-neck_w, 0.5], [neck_w, 0.5], [neck_w + 0.05, 1.55], [-neck_w - 0.05, 1.55]])
    shoulders = np.array([[-2.2, 2.6], [-1.6, 1.55 + jaw_drop], [-neck_w, 1.35 + jaw_drop], [0, 1.5 + jaw_drop],
                          [neck_w, 1.35 + jaw_drop], [1.6, 1.55 + jaw_drop], [2.2, 2.6]])
    base.append(Item("fill", back, "hair", 0.85))
    base.append(Item("fill", neck, "skin", 0.72))
    base.append(Item("fill", shoulders, "cloth", 1.0))
    for sx in (-1, 1):
        base.append(Item("fill", ellipse(sx * (fw - 0.01), 0.16, 0.09, 0.2), "skin", 0.8))

    # skin with fall-off towards the silhouette: nested, shrinking copies of the outline
    centre = np.array([0.0, 0.15])
    for shrink, tone in ((1.0, 0.76), (0.94, 0.86), (0.86, 0.95), (0.74, 1.02)):
        base.append(Item("fill", centre + (outline - centre) * shrink, "skin", tone))

    # ---- eyes: sockets (shading) -------------------------------------------------
    ew, eh = idt.eye_width, idt.eye_height
    for sx in (-1, 1):
        cx = sx * idt.eye_spacing
        base.append(Item("fill", ellipse(cx, -0.06, ew * 1.6, 0.13), "skin", 0.8))
        base.append(Item("fill", ellipse(cx + sx * 0.02, -0.035, ew * 1.25, 0.085), "skin", 0.74))
    # cheek apples rise with AU6/AU12 and catch the light
    for sx, side in ((-1, "R"), (1, "L")):
        raise_amt = 0.6 * u["6"] + 0.4 * u[f"{side}12"]
        cy = 0.33 - 0.08 * raise_amt
        base.append(Item("fill", ellipse(sx * (idt.eye_spacing + 0.03), cy, 0.15, 0.1 + 0.02 * raise_amt),
                         "skin", 1.04 + 0.06 * raise_amt))
        if raise_amt > 0.05:  # shadow under the lifted cheek
            base.append(Item("line", curve(sx * (idt.eye_spacing + _lin(-0.12, 0.12, 7)),
                                           cy + 0.1 + 0.02 * _cos_lin(-1.5, 1.5, 7)),
                             "skin", 1.0 - 0.12 * raise_amt, width=0.05))
    # nose shading: darker flanks, bright bridge (the cue Haar-like features look for)
    for sx in (-1, 1):
        base.append(Item("line", curve(sx * np.array([0.075, 0.085, 0.11]), np.array([0.0, nose_y * 0.6, nose_y - 0.02])),
                         "skin", 0.9, width=0.045))
    base.append(Item("line", curve(np.zeros(3), np.array([-0.05, nose_y * 0.5, nose_y - 0.02])),
                     "skin", 1.1, width=0.05, depth=0.15))
    base.append(Item("fill", ellipse(0, nose_y + 0.035, idt.nose_width * 0.8, 0.04), "skin", 0.8, depth=0.2))
    # mouth region shading below the lower lip and the chin highlight
    base.append(Item("fill", jaw_field(ellipse(0, mouth_y + 0.15, idt.mouth_width * 0.7, 0.05)), "skin", 0.9))
    base.append(Item("fill", jaw_field(ellipse(0, chin_y - 0.13, 0.16, 0.07)), "skin", 1.05))

    # ---- nasolabial furrows (soft shadow; deepened by AU12, AU10, AU9, AU6) ------
    mw = idt.mouth_width
    corners = {}
    for sx, side in ((-1, "R"), (1, "L")):
        u12, u14 = u[f"{side}12"], u[f"{side}14"]
        cx = sx * mw * (1 + 0.3 * u12 + 0.32 * u["20"] - 0.16 * u["23"] - 0.06 * u["24"] - 0.05 * u14
                        - 0.12 * u["26"])
        cy = mouth_y - 0.14 * u12 - 0.02 * u14 + 0.075 * u["15"] + 0.02 * u["20"] - 0.015 * u["17"] + 0.25 * jaw_drop
        corners[side] = (cx, cy)
        fold_depth = 0.12 + 0.3 * age + 0.9 * u12 + 0.5 * u["10"] + 0.4 * u["9"] + 0.2 * u["6"]
        top = np.array([sx * (idt.nose_width + 0.03), nose_y - 0.03 - 0.03 * u["10"]])
        bottom = np.array([cx + sx * (0.05 + 0.03 * u12), cy + 0.07 - 0.02 * u12])
        t = _lin(0, 1, 7)[:, None]
        bow = np.array([sx * (0.05 + 0.05 * u12), 0.0])
        fold = (1 - t) * top + t * bottom + 4 * t * (1 - t) * bow
        model.landmarks[f"fold_{side}"] = fold
        if fold_depth > 0.1:
            base.append(Item("line", fold + (sx * 0.025, 0), "skin", 1.0 + 0.08 * min(fold_depth, 1.2), width=0.04))
            detail.append(Item("line", fold, "skin", 1.0 - 0.22 * min(fold_depth, 1.3), width=0.012 + 0.012 * min(fold_depth, 1)))

    # ---- forehead lines (AU1 centre, AU2 sides, age) -------------------------------
    brow_y = -idt.brow_height
    centre_depth = 0.2 * age + u["1"] + 0.3 * u["2"]
    side_depth = 0.2 * age + u["2"] + 0.3 * u["1"]
    for k in range(3):
        ly = brow_y - 0.11 - 0.07 * k - 0.06 * max(u["1"], u["2"])
        if ly < idt.hairline + 0.06:
            break
        for x0, x1, d in ((-0.42, -0.13, side_depth), (-0.15, 0.15, centre_depth), (0.13, 0.42, side_depth)):
            d = d * (1 - 0.25 * k)
            if d > 0.1:
                xs = _lin(x0, x1, 5)
                ys = ly + 0.05 * (xs / 0.42) ** 2 - 0.02 * u["1"] * np.exp(-(xs / 0.15) ** 2)
                detail.append(Item("line", curve(xs, ys), "skin", 1.0 - 0.2 * min(d, 1.2), width=0.012))

    # ---- glabella (AU4 vertical lines) and nose root (AU9) -------------------------
    glabella = u["4"] + 0.15 * age
    if glabella > 0.1:
        for sx in (-1, 1):
            detail.append(Item("line", curve(sx * np.array([0.03, 0.04, 0.045]), np.array([-0.22, -0.15, -0.08])),
                               "skin", 1.0 - 0.3 * min(glabella, 1), width=0.014))
    if u["9"] > 0.05:
        for k, y in enumerate((-0.02, 0.03, 0.08)):
            xs = _lin(-0.075, 0.075, 5)
            detail.append(Item("line", curve(xs, y + 0.015 * (xs / 0.075) ** 2 * (1 if k % 2 else -1)),
                               "skin", 1.0 - 0.3 * u["9"], width=0.013, depth=0.1))

    # ---- brows ----------------------------------------------------------------
    bt = idt.brow_thickness
    s = _lin(0.0, 1.0, 8)
    for sx in (-1, 1):
        span = idt.eye_spacing + ew + 0.06 - 0.09
        xs = sx * (0.09 + s * span - 0.055 * u["4"] * (1 - s) ** 1.5)
        ys = (brow_y - idt.brow_arch * np.sin(np.pi * s * 0.9) + 0.025 * s
              - 0.11 * u["1"] * (1 - s) ** 1.5 - 0.10 * u["2"] * s ** 1.3
              + 0.07 * u["4"] * (1 - 0.6 * s) + 0.035 * u["9"] * (1 - s))
        th = bt * (1.15 - 0.6 * s) * (1 + 0.15 * u["4"])
        brow = np.concatenate([curve(xs, ys - th / 2), curve(xs, ys + th / 2)[::-1]])
        detail.append(Item("fill", brow, "brow", 1.0))
        model.landmarks[f"brow_{'L' if sx > 0 else 'R'}"] = curve(xs, ys)

    # ---- eyes -----------------------------------------------------------------
    for sx in (-1, 1):
        cx = sx * idt.eye_spacing
        xs = cx + ew * _T9
        bump = 1 - _T9 ** 2
        up_h = eh * (1 + 0.65 * u["5"]) * (1 - 0.15 * u["6"]) * (1 - 0.25 * u["7"]) * (1 - 0.12 * u["4"])
        lo_h = 0.55 * eh * (1 - 0.45 * u["6"]) * (1 - 0.6 * u["7"])
        tilt = -0.012 * sx * _T9
        lower_y = tilt + lo_h * bump ** 0.8 - 0.015 * (u["6"] + u["7"]) * bump
        upper_y = tilt - up_h * bump ** 0.65
        upper_y = lower_y + (upper_y - lower_y) * (1 - 0.97 * u["43"])
        opening = np.concatenate([curve(xs, upper_y), curve(xs, lower_y)[::-1][1:-1]])
        model.landmarks[f"eye_{'L' if sx > 0 else 'R'}"] = opening
        crease_y = upper_y - 0.03 - 0.012 * bump - 0.01 * u["5"]
        detail.append(Item("line", curve(xs[1:-1], crease_y[1:-1]), "skin", 0.72, width=0.012))
        detail.append(Item("fill", opening, "sclera", 1.0))
        if u["43"] < 0.9:
            r = 0.46 * ew
            iy = 0.006
            for paint, radius in (("iris", r), ("pupil", r * 0.45)):
                ring = ellipse(cx, iy, radius, radius)
                top = np.interp(ring[:, 0], xs, upper_y)
                bottom = np.interp(ring[:, 0], xs, lower_y)
                inside = np.clip(ring[:, 1], top, np.maximum(bottom, top))
                detail.append(Item("fill", np.stack([ring[:, 0], inside], axis=1), paint, 1.0))
        detail.append(Item("line", curve(xs, upper_y), "lash", 1.0, width=0.022))
        detail.append(Item("line", curve(xs[1:-1], lower_y[1:-1]), "skin", 0.65, width=0.01))
        # AU6: crow's feet and the infraorbital furrow; age adds both faintly
        crow = u["6"] + 0.3 * age
        if crow > 0.12:
            ox = cx + sx * (ew + 0.03)
            for angle in (-0.45, 0.0, 0.45):
                length = 0.04 + 0.035 * u["6"]
                end = (ox + sx * length * np.cos(angle), 0.01 + length * np.sin(angle))
                detail.append(Item("line", np.array([[ox, 0.01], end]), "skin", 1.0 - 0.25 * min(crow, 1), width=0.011))
        under = 0.6 * u["6"] + 0.2 * u["7"] + 0.35 * age
        if under > 0.1:
            t = _T9[1:-1] * 0.85
            detail.append(Item("line", curve(cx + ew * t + sx * 0.015, lo_h + 0.05 - 0.02 * u["6"] + 0.025 * (1 - t ** 2)),
                               "skin", 1.0 - 0.25 * min(under, 1), width=0.014))

    # ---- nose -----------------------------------------------------------------
    nw = idt.nose_width * (1 + 0.15 * u["9"] + 0.05 * u["10"])
    lift = 0.03 * u["9"] + 0.025 * u["10"]
    for sx in (-1, 1):
        ang = _lin(-2.2, 0.9, 7)
        wing = curve(sx * (nw * 0.78 + 0.05 * np.cos(ang)), nose_y - lift + 0.05 * np.sin(ang))
        detail.append(Item("line", wing, "skin", 0.68, width=0.016, depth=0.15))
        nostril = ellipse(sx * nw * 0.45, nose_y - lift + 0.03, 0.038, 0.018)
        detail.append(Item("fill", nostril, "mouth", 1.0, depth=0.2))
    detail.append(Item("line", curve(_lin(-0.05, 0.05, 5), nose_y - lift + 0.045 + 0.006 * _cos_lin(-1.5, 1.5, 5)),
                       "skin", 0.75, width=0.015, depth=0.25))

    # ---- mouth ------------------------------------------------------------------
    ts = _T13
    a = np.abs(ts)
    corner_x = np.where(ts < 0, -abs(corners["R"][0]), abs(corners["L"][0]))
    corner_y = np.where(ts < 0, corners["R"][1], corners["L"][1])
    xs = a * corner_x
    centre_y = mouth_y + 0.01 * u["15"] - 0.01 * u["17"]
    line = centre_y + (corner_y - centre_y) * a ** 1.8
    u12 = 0.5 * (u["L12"] + u["R12"])
    thin = 1 - 0.45 * u["23"] - 0.5 * u["24"] - 0.3 * u["20"] - 0.2 * u12
    ul = max(idt.upper_lip * thin, 0.012)
    ll = max(idt.lower_lip * (thin + 0.1 * u["17"]), 0.014)
    hump = np.sqrt(np.clip(1 - ts ** 2, 0, 1))
    opening = (0.02 + 0.06 * u["25"]) * (u["25"] > 0.02) * (1 - u["24"])
    raise10 = 0.07 * u["10"] * (1 - ts ** 2)
    upper_inner = line - raise10 - 0.35 * opening * hump
    lower_inner = (line + (0.65 * opening + 0.85 * jaw_drop) * hump + 0.065 * u["16"] * (1 - ts ** 2) ** 0.8
                   - 0.02 * u["17"] * (1 - ts ** 2))
    lower_inner = np.maximum(lower_inner, upper_inner)
    cupid = (1 - ts ** 2) ** 0.55 * (1 - 0.22 * np.exp(-(ts / 0.13) ** 2))
    upper_outer = upper_inner - ul * cupid - 0.01 * u["10"] * (1 - ts ** 2)
    lower_outer = lower_inner + ll * (1 - ts ** 2) ** 0.5
    model.landmarks.update(mouth_upper=curve(xs, upper_outer), mouth_lower=curve(xs, lower_outer),
                           mouth_line=curve(xs, line))
    gap = lower_inner - upper_inner
    if gap.max() > 0.004:
        cavity = np.concatenate([curve(xs, upper_inner), curve(xs, lower_inner)[::-1][1:-1]])
        detail.append(Item("fill", cavity, "mouth", 1.0, depth=0.1))
        k = slice(2, -2)
        teeth_top = upper_inner[k]
        teeth_bottom = np.minimum(teeth_top + 0.05, lower_inner[k])
        detail.append(Item("fill", np.concatenate([curve(xs[k], teeth_top), curve(xs[k], teeth_bottom)[::-1]]),
                           "teeth", 1.0, depth=0.1))
        if gap.max() > 0.07 or u["16"] > 0.2:
            low_top = np.maximum(lower_inner[k] - 0.03, teeth_bottom)
            detail.append(Item("fill", np.concatenate([curve(xs[k], low_top), curve(xs[k], lower_inner[k])[::-1]]),
                               "teeth", 0.85, depth=0.1))
    detail.append(Item("fill", np.concatenate([curve(xs, upper_outer), curve(xs, upper_inner)[::-1]]), "lip", 0.92, depth=0.1))
    detail.append(Item("fill", np.concatenate([curve(xs, lower_inner), curve(xs, lower_outer)[::-1]]), "lip", 1.05, depth=0.1))
    detail.append(Item("line", curve(xs, upper_inner), "mouth", 1.0, width=0.012, depth=0.1))
    # mentolabial furrow (AU17 deepens it) and chin boss dimpling
    ment = 0.2 + 0.8 * u["17"] + 0.2 * age
    mx = _lin(-0.45, 0.45, 5) * mw
    detail.append(Item("line", curve(mx, lower_outer[6] + 0.045 + 0.02 * (mx / mw) ** 2),
                       "skin", 1.0 - 0.18 * min(ment, 1), width=0.02))
    if u["17"] > 0.1:
        for dx, dy in ((-0.05, -0.13), (0.045, -0.12), (0.0, -0.08), (-0.02, -0.17), (0.03, -0.165)):
            dot = jaw_field(ellipse(dx, chin_y + dy, 0.014, 0.01))
            detail.append(Item("fill", dot, "skin", 1.0 - 0.22 * u["17"]))
    # AU14 dimples, AU20 stretch marks and AU24 press bulges beside the lips
    for side in ("R", "L"):
        cx, cy = corners[side]
        sx = 1 if side == "L" else -1
        if u[f"{side}14"] > 0.05:
            d = u[f"{side}14"]
            dimple = curve(cx + sx * (0.04 + 0.01 * _cos_lin(-1.2, 1.2, 5)), cy + _lin(-0.035, 0.035, 5))
            detail.append(Item("line", dimple, "skin", 1.0 - 0.35 * d, width=0.016 + 0.01 * d))
        if u["20"] > 0.1:
            detail.append(Item("line", np.array([[cx + sx * 0.015, cy + 0.01], [cx + sx * (0.05 + 0.05 * u["20"]), cy + 0.03]]),
                               "skin", 1.0 - 0.25 * u["20"], width=0.012))
    if u["24"] > 0.1 or u["23"] > 0.3:
        press = max(u["24"], 0.5 * u["23"])
        for y_line, sign in ((upper_outer, -1), (lower_outer, 1)):
            detail.append(Item("line", curve(xs[3:-3], y_line[3:-3] + sign * 0.02), "skin", 1.0 - 0.2 * press, width=0.012))

    # ---- hair cap in front of the forehead --------------------------------------
    temple_y = idt.hairline + 0.3
    theta = _lin(np.pi + 0.25, 2 * np.pi - 0.25, 13)
    cap_top = curve((fw + hv) * np.cos(theta), -0.15 + (SKULL_TOP - 0.15 + hv) * np.sin(theta))
    hx = fw * _lin(0.98, -0.98, 9)
    hairline = curve(hx, idt.hairline + (temple_y - idt.hairline) * (hx / fw) ** 2)
    cap = np.concatenate([curve(np.array([-(fw + hv * 0.5)]), np.array([temple_y + 0.05])), cap_top,
                          curve(np.array([fw + hv * 0.5]), np.array([temple_y + 0.05])), hairline])
    base.append(Item("fill", cap, "hair", 1.0))
    model.landmarks["mouth_corners"] = np.array([corners["R"], corners["L"]])
    model.landmarks["chin"] = np.array([[0.0, chin_y + jaw_drop]])
    return model

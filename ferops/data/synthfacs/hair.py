"""Hair: a style per person (short, side part, long, tied back, curly, receding), with strands.

One helmet-shaped cap on every head made SynthFACS faces read as clip art;
real datasets show every style, and hair frames the face at the crop edges.
A style is a back shape (behind the head), a front shape (the hairline and
fringe over the forehead) and strand strokes that give it texture. Nothing
here moves with an expression, so the shapes are built once per identity.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.primitives import curve, lin

STYLES = ("short", "side_part", "long", "tied_back", "curly", "receding")
SKULL_TOP = 1.45  # crown height above the eye line, face units


def _arc(rx: float, ry: float, cy: float, start: float, stop: float, num: int) -> np.ndarray:
    t = lin(start, stop, num)
    return curve(rx * np.cos(t), cy + ry * np.sin(t))


def _hairline(idt: Identity, fw: float, num: int = 11, part: float | None = None, wave: float = 0.0) -> np.ndarray:
    """Right-to-left (image) hairline across the forehead down to the temples, from the hairline height."""
    x = (fw * 0.98) * lin(1.0, -1.0, num)
    temple = idt.hairline + 0.32
    y = idt.hairline + (temple - idt.hairline) * (np.abs(x) / fw) ** 2.2
    if part is not None:  # a side part dips the hairline and lifts it on the parting side
        y = y - 0.06 * np.exp(-((x - part) / 0.12) ** 2)
    if wave:
        y = y + wave * np.sin(x * 23.0)
    return curve(x, y)


@lru_cache(maxsize=512)
def hair_shapes(idt: Identity) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(back polygons, front polygons, strand polylines) in face units for this person's style."""
    fw, hv, hl = idt.face_width, idt.hair_volume, idt.hair_length
    rng = np.random.default_rng(idt.texture_seed)
    style = STYLES[idt.hair_style % len(STYLES)]
    crown = _arc(fw + hv, SKULL_TOP - 0.2 + hv, -0.2, np.pi, 2 * np.pi, 17)
    back, front, strands = [], [], []
    side_bottom = {"short": 0.1, "side_part": 0.35, "long": 1.5 + 0.6 * hl, "tied_back": 0.05,
                   "curly": 0.7 + 0.5 * hl, "receding": 0.2}[style]
    if style == "curly":
        crown = _arc(fw + hv + 0.05, SKULL_TOP - 0.1 + hv, -0.25, np.pi, 2 * np.pi, 25)
        crown[:, :] += rng.normal(0, 0.018, crown.shape)
    sides = np.array([[fw + hv * 0.9, side_bottom], [fw * 0.9, side_bottom + 0.04],
                      [-fw * 0.9, side_bottom + 0.04], [-(fw + hv * 0.9), side_bottom]])
    if style == "receding":  # hair only at the sides and back, skin on the crown
        for sx in (-1, 1):
            back.append(np.array([[sx * (fw + 0.05), -0.45], [sx * (fw + 0.1), -0.1], [sx * (fw + 0.06), 0.15],
                                  [sx * (fw - 0.12), 0.1], [sx * (fw - 0.1), -0.4]]))
    else:
        back.append(np.concatenate([crown, sides]))
    if style == "tied_back":
        back.append(_arc(0.22, 0.16, -SKULL_TOP - 0.12, 0, 2 * np.pi, 13))

    # front: the hair over the forehead, from the crown down to the hairline
    cap = _arc(fw + hv * 0.6, SKULL_TOP - 0.15 + hv * 0.6, -0.15, np.pi + 0.3, 2 * np.pi - 0.3, 13)
    part = float(rng.choice([-0.22, 0.22])) if style in ("side_part", "long") else None
    wave = 0.015 if style == "curly" else 0.0
    if style != "receding":
        line = _hairline(idt, fw, part=part, wave=wave)
        front.append(np.concatenate([cap, line]))
    if style == "long":  # locks falling in front of the temples and cheeks
        for sx in (-1, 1):
            width = 0.1 + 0.08 * hl
            front.append(np.array([[sx * (fw - 0.02), -0.3], [sx * (fw + 0.06), side_bottom * 0.8],
                                   [sx * (fw - width * 0.6), 0.55 + 0.3 * hl], [sx * (fw - width), 0.1],
                                   [sx * (fw - width * 0.7), -0.35]]))
        if hl > 0.75:  # a fringe down to just above the brows
            x = (fw * 0.9) * lin(1.0, -1.0, 9)
            y = -idt.brow_height - 0.1 + 0.03 * np.sin(np.arange(9) * 1.7)
            front.append(np.concatenate([cap, curve(x, y)]))

    # strands: over the top from the parting (or crown) to the hairline, and down the sides of long styles
    origin_x = part if part is not None else 0.0
    t = lin(0.0, 1.0, 6)[None, :, None]
    if style != "receding":
        line = _hairline(idt, fw, num=41)
        end_x = np.where(np.arange(8) % 2, -1.0, 1.0) * rng.uniform(0.1, 0.95, 8) * fw
        start = curve(origin_x + rng.normal(0, 0.06, 8), -SKULL_TOP + rng.uniform(0.05, 0.2, 8))
        stop = curve(end_x, np.interp(-end_x, -line[:, 0], line[:, 1]) - 0.04)
        bend = curve(0.1 * np.sign(end_x), -0.05)
        strands += list((1 - t) * start[:, None] + t * stop[:, None] + 4 * t * (1 - t) * bend[:, None])
    if side_bottom > 0.4:
        sx = np.where(np.arange(6) % 2, -1.0, 1.0)
        x0 = sx * (fw + rng.uniform(-0.02, hv * 0.8, 6))
        start = curve(x0, -0.4)
        stop = curve(x0 + sx * rng.uniform(0.0, 0.12, 6), side_bottom - 0.05)
        bend = curve(sx * 0.05, 0.0)
        strands += list((1 - t) * start[:, None] + t * stop[:, None] + 4 * t * (1 - t) * bend[:, None])
    return back, front, strands

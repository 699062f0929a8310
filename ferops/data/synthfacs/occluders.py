"""What else is in a photo: background clutter behind the head, hands, glasses and hair in front of it.

FER2013 faces are web photos: people wear glasses, rest a chin on a hand, have
hair across an eye, and stand in rooms. Occluders are built in face units (so
they sit on the face, wherever the pose puts it) from the nuisance seed;
clutter is drawn straight on the canvas. Both are deterministic per image.
"""

from __future__ import annotations

import cv2
import numpy as np

from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.primitives import Item, curve, ellipse

_LUMA = np.array([0.299, 0.587, 0.114])


def occluder_items(identity: Identity, count: int, rng: np.random.Generator) -> list[Item]:
    """`count` occluders (glasses, a hand, a lock of hair, an object) as draw items in face units."""
    items: list[Item] = []
    es, ew = identity.eye_spacing, identity.eye_width
    for _ in range(count):
        kind = rng.choice(["glasses", "hand", "hair", "object"], p=[0.35, 0.3, 0.2, 0.15])
        if kind == "glasses":
            dark = rng.random() < 0.25
            for sx in (-1, 1):
                rim = ellipse(sx * es, 0.0, ew * 1.55, ew * 1.05)
                if dark:
                    items.append(Item("fill", rim, "shade_lens", 1.0, depth=0.12))
                items.append(Item("line", np.concatenate([rim, rim[:1]]), "frame", 1.0, width=0.03, depth=0.12))
                items.append(Item("line", np.array([[sx * (es + ew * 1.5), -0.02], [sx * (identity.face_width + 0.05), -0.05]]),
                                  "frame", 1.0, width=0.03, depth=0.05))
            items.append(Item("line", np.array([[-es + ew * 1.5, -0.03], [0.0, -0.06], [es - ew * 1.5, -0.03]]),
                              "frame", 1.0, width=0.03, depth=0.14))
        elif kind == "hand":
            sx = float(rng.choice([-1, 1]))
            cx, cy = sx * rng.uniform(0.2, 0.6), rng.uniform(0.75, 1.25)
            items.append(Item("fill", ellipse(cx, cy + 0.25, 0.26, 0.3), "skin", 0.95, depth=0.35))
            for k in range(4):
                angle = -np.pi / 2 + sx * (0.25 * k - 0.35)
                base = np.array([cx + 0.08 * (k - 1.5), cy + 0.05])
                tip = base + 0.32 * np.array([np.cos(angle), np.sin(angle)])
                items.append(Item("line", np.stack([base, tip]), "skin", 0.9 + 0.04 * k, width=0.085, depth=0.35))
        elif kind == "hair":
            sx = float(rng.choice([-1, 1]))
            x0 = sx * rng.uniform(0.0, 0.4)
            t = np.linspace(0, 1, 7)
            lock = curve(x0 + sx * 0.35 * t + 0.05 * np.sin(6 * t), -0.7 + rng.uniform(0.7, 1.2) * t)
            items.append(Item("line", lock, "hair", 1.0, width=rng.uniform(0.07, 0.14), depth=0.1))
        else:
            cx, cy = rng.uniform(-0.6, 0.6), rng.uniform(0.5, 1.3)
            items.append(Item("fill", ellipse(cx, cy, rng.uniform(0.12, 0.3), rng.uniform(0.1, 0.3)), "object",
                              rng.uniform(0.4, 1.4), depth=0.4))
    return items


def paint_clutter(canvas: np.ndarray, count: int, rng: np.random.Generator, grey: bool) -> None:
    """Background objects: soft blobs and boxes of random colour over the whole canvas."""
    h, w = canvas.shape[:2]
    for _ in range(count):
        centre = rng.uniform(0, 1, 2) * (w, h)
        axes = rng.uniform(0.1, 0.5, 2) * max(h, w)
        rgb = rng.uniform(0, 255, 3)
        colour = (float(rgb @ _LUMA),) if grey else tuple(float(c) for c in rgb)
        angle = rng.uniform(0, 180)
        if rng.random() < 0.5:
            poly = cv2.ellipse2Poly((int(centre[0]), int(centre[1])), (int(axes[0]), int(axes[1])), int(angle), 0, 360, 20)
        else:
            rect = ((float(centre[0]), float(centre[1])), (float(axes[0] * 2), float(axes[1] * 0.7)), float(angle))
            poly = cv2.boxPoints(rect).astype(np.int32)
        cv2.fillPoly(canvas, [poly], colour, cv2.LINE_8)  # the renderer blurs the backdrop: no anti-aliasing needed

"""Turn identity + AU intensities + nuisance into pixels (and AU region masks).

The route a camera takes: albedo (skin, hair, eyes, lips, furrows) is drawn
with OpenCV's anti-aliased polygons on a canvas several times the output
size, the eye-aligned crop of the framing is cut and area-downsampled, then
light is applied (shading of the 3-D head, cast shadows, skin texture, light
colour) and the camera's faults (low resolution, blur, sensor noise, JPEG).
Pose is applied to points before drawing (cheaper and sharper than warping
pixels). Grey output is drawn on a one-channel canvas, so the common 48x48x1
case never pays for colour.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache
from typing import Mapping

import cv2
import numpy as np

from ferops.data.synthfacs.expression import active_codes, sided_intensities
from ferops.data.synthfacs.face_model import build_face
from ferops.data.synthfacs.framing import Frame, frame
from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.masks import au_regions
from ferops.data.synthfacs.nuisance import Nuisance
from ferops.data.synthfacs.occluders import occluder_items, paint_clutter
from ferops.data.synthfacs.primitives import Item
from ferops.data.synthfacs.shading import (
    SHIFT,
    height_map,
    project_items,
    shade,
    shade_scale,
    static_relief,
    textures,
    to_fixed,
)

_LUMA = np.array([0.299, 0.587, 0.114])


def _mix(a, b, t: float) -> np.ndarray:
    return (1 - t) * np.asarray(a, float) + t * np.asarray(b, float)


def palette(identity: Identity) -> dict[str, np.ndarray]:
    """RGB albedo (0..255) for every paint a face model uses."""
    skin = _mix((88, 56, 40), (236, 200, 178), identity.skin_tone)
    skin = skin + _mix((-6, 6, -8), (10, -6, -2), identity.skin_warmth)
    h = identity.hair_tone
    hair = _mix((24, 20, 18), (105, 70, 44), h / 0.6) if h < 0.6 else _mix((105, 70, 44), (200, 170, 118), (h - 0.6) / 0.4)
    if identity.age > 0.7:
        hair = _mix(hair, (170, 168, 164), (identity.age - 0.7) / 0.3)
    brow = np.minimum(hair * 0.9, skin * 0.45)
    lip = _mix(skin * 0.72, (150, 62, 72), 0.45)
    iris = _mix((62, 40, 28), (80, 112, 140), identity.iris_tone)
    cloth = np.array(colorsys.hsv_to_rgb(identity.clothing, 0.45, 0.3 + 0.45 * ((identity.clothing * 7) % 1))) * 255
    return {
        "skin": skin, "blush": skin * np.array([1.0, 0.93, 0.93]), "hair": hair, "brow": brow,
        "lash": np.array([28.0, 22, 22]), "lip": lip, "sclera": np.array([184.0, 178, 172]), "iris": iris,
        "pupil": np.array([12.0, 10, 10]), "teeth": np.array([215.0, 208, 190]), "mouth": np.array([40.0, 16, 20]),
        "cloth": cloth, "frame": np.array([30.0, 28, 28]), "shade_lens": np.array([45.0, 45, 50]),
        "object": np.array([120.0, 110, 100]),
    }


@lru_cache(maxsize=256)
def _colours(identity: Identity, grey: bool) -> dict:
    """Drawing colours per paint: luma for grey canvases, RGB tuples otherwise (built once per person)."""
    paints = palette(identity)
    rgb = np.array(list(paints.values()), float)
    values = (rgb @ _LUMA).tolist() if grey else [tuple(c) for c in rgb.tolist()]
    return dict(zip(paints, values))


def _paint_items(canvas: np.ndarray, items: list[Item], pose, colours: dict, grey: bool, line_type: int = cv2.LINE_AA) -> None:
    """Draw items in order; consecutive lines of one colour and thickness go to OpenCV in one call.

    Layers the renderer blurs afterwards (the base) need no anti-aliasing: LINE_8 fills are twice as fast.
    """
    if not items:
        return
    unit = pose.unit_px
    run: list[np.ndarray] = []
    run_key = None
    for it, pts in zip(items, project_items(items, pose)):
        base = colours[it.paint]
        colour = (min(255.0, base * it.tone),) if grey else tuple(min(255.0, c * it.tone) for c in base)
        if it.op == "fill":
            if run:
                cv2.polylines(canvas, run, False, run_key[0], run_key[1], line_type, SHIFT)
                run, run_key = [], None
            cv2.fillPoly(canvas, [pts], colour, line_type, SHIFT)
            continue
        key = (colour, max(1, int(round(it.width * unit))))
        if key != run_key and run:
            cv2.polylines(canvas, run, False, run_key[0], run_key[1], line_type, SHIFT)
            run = []
        run_key = key
        run.append(pts)
    if run:
        cv2.polylines(canvas, run, False, run_key[0], run_key[1], line_type, SHIFT)


def _backdrop(model, fr: Frame, nuisance: Nuisance, rng: np.random.Generator, colours: dict, grey: bool) -> np.ndarray:
    """Background, clutter and what no AU moves (hair behind the head, neck, ears); a clutter-free
    sequence draws it once and copies it for every frame."""
    key = ("backdrop", grey)
    if nuisance.clutter == 0 and key in fr.cache:
        return fr.cache[key].copy()
    bg = np.clip(nuisance.background * 255 * np.array([1.0, 0.97, 0.93]), 0, 255)
    hw = fr.canvas_hw
    canvas = np.full(hw if grey else (*hw, 3), float(bg @ _LUMA) if grey else bg, np.uint8)
    paint_clutter(canvas, nuisance.clutter, rng, grey)
    _paint_items(canvas, model.base[:model.n_static_base], fr.pose, colours, grey, cv2.LINE_8)
    if nuisance.clutter == 0:
        fr.cache[key] = canvas.copy()
    return canvas


def _light(identity: Identity, model, fr: Frame, nuisance: Nuisance, occluders: list[Item], channels: int) -> np.ndarray:
    """Output-size gain: shading x skin and hair texture x light colour x exposure.

    What depends only on the pose and the head outline (the shading canvas, the static relief, the texture
    over skin and hair) is kept in the frame's cache, so the frames of a sequence share it.
    """
    size = fr.size
    if "light_pose" not in fr.cache:
        scale = shade_scale(size)
        side = int(round(size * scale))
        margin = max(4, side // 8)  # context for blurs and cast shadows at the crop edge
        pose = fr.out.then(np.array([[1.0, 0, margin / scale], [0, 1.0, margin / scale]]), scale)
        hw = (side + 2 * margin, side + 2 * margin)
        fr.cache["light_pose"] = pose, hw, margin, side
        fr.cache["static_relief"] = static_relief(model, pose, hw)
    pose, hw, margin, side = fr.cache["light_pose"]
    height, head, hair = height_map(model, pose, hw, occluders, fr.cache["static_relief"], fr.cache)
    gain = shade(height, pose.unit_px, pose.rot, nuisance)[margin:margin + side, margin:margin + side]
    if side != size:
        gain = cv2.resize(gain, (size, size), interpolation=cv2.INTER_AREA)
    key = ("texture", model.head.tobytes())
    if key not in fr.cache:
        head, hair = head[margin:margin + side, margin:margin + side], hair[margin:margin + side, margin:margin + side]
        if side != size:
            head = cv2.resize(head, (size, size), interpolation=cv2.INTER_NEAREST)
            hair = cv2.resize(hair, (size, size), interpolation=cv2.INTER_NEAREST)
        skin_tex, hair_tex = textures(identity.texture_seed, size)
        amount = np.where(hair > 0, 0.16 * hair_tex, np.where(head > 0, (0.035 + 0.04 * identity.age) * skin_tex, 0.0))
        fr.cache[key] = (amount + 1.0).astype(np.float32)
    gain = gain * fr.cache[key]
    gain *= nuisance.brightness
    if channels == 1:
        return gain[..., None]
    tint = np.array([1 + 0.12 * nuisance.light_tint, 1 + 0.02 * nuisance.light_tint, 1 - 0.16 * nuisance.light_tint])
    return gain[..., None] * (tint / (tint @ _LUMA)).astype(np.float32)


def _camera(image: np.ndarray, nuisance: Nuisance, rng: np.random.Generator) -> np.ndarray:
    """Capture faults at output size: low resolution, optical blur, sensor noise, JPEG."""
    size = image.shape[0]
    if nuisance.lowres > 1.05:
        small = max(8, int(round(size / nuisance.lowres)))
        image = cv2.resize(cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                           interpolation=cv2.INTER_LINEAR).reshape(image.shape)
    if nuisance.blur > 0.15:
        image = cv2.GaussianBlur(image, (0, 0), nuisance.blur).reshape(image.shape)
    if nuisance.noise > 0:
        image = image + rng.normal(0.0, nuisance.noise, image.shape).astype(np.float32)
    out = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    if nuisance.jpeg:
        bgr = out if out.shape[2] == 1 else cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(nuisance.jpeg)])
        if ok:
            decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            out = decoded.reshape(out.shape) if out.shape[2] == 1 else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return out


def render_face(identity: Identity, aus: Mapping, nuisance: Nuisance | None = None, size: int = 48,
                channels: int = 1, masks: bool = True, framing: str = "scene") -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Render one face: (uint8 size x size x channels image, {AU code: uint8 0/255 region mask}).

    `aus` maps AU codes to 0..5 intensities ({12: 3}, {"L12": 2, "L14": 2} for one side).
    `framing` is `scene` (head and shoulders, what a detector sees) or a dataset's
    eye-aligned crop, `ck+` or `fer2013` (framing.FRAMINGS). Masks cover the AUs
    scored present (intensity >= 0.5), at output size, through the same crop.
    The result depends only on the arguments (noise and occluders come from nuisance.seed).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if not 16 <= size <= 512:
        raise ValueError(f"size must be in 16..512 pixels, got {size}")
    nuisance = nuisance or Nuisance()
    levels = sided_intensities(aus)
    model = build_face(identity, levels)
    fr = frame(identity, nuisance, framing, size)
    grey = channels == 1
    rng = np.random.default_rng(nuisance.seed)
    colours = _colours(identity, grey)

    canvas = _backdrop(model, fr, nuisance, rng, colours, grey)
    occluders = occluder_items(identity, nuisance.occlusions, rng)
    _paint_items(canvas, model.base[model.n_static_base:], fr.pose, colours, grey, cv2.LINE_8)
    canvas = cv2.GaussianBlur(canvas, (0, 0), fr.pose.unit_px * 0.012)
    _paint_items(canvas, model.detail, fr.pose, colours, grey)
    _paint_items(canvas, occluders, fr.pose, colours, grey)

    small = fr.to_output(canvas).reshape(size, size, channels).astype(np.float32)
    lit = small * _light(identity, model, fr, nuisance, occluders, channels)
    image = _camera(lit, nuisance, rng)

    au_masks: dict[int, np.ndarray] = {}
    if masks:
        for code, shapes in au_regions(identity, levels, model, active_codes(levels)).items():
            mask = np.zeros((size, size), np.uint8)
            for shape in shapes:  # one call per shape: one call for all would XOR their overlaps
                cv2.fillPoly(mask, [to_fixed(fr.out(shape))], 255, cv2.LINE_8, SHIFT)
            au_masks[code] = mask
    return image, au_masks

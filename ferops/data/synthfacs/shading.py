"""Light on a 3-D head: a height map from the face model, Lambertian shading, cast shadows, skin texture.

A flat grey face with drawn lines is what made SynthFACS read as clip art; a
camera sees form through light. The height map is the head dome (a rounded
profile over the head silhouette, steep at the edges, flat over the face
front) plus the face model's relief items (nose, brow ridge, sockets, cheeks,
lips, furrows), painted through the same pose as the pixels. Its normals,
turned by the head's yaw and pitch, meet a key light at a random direction and
strength: ambient + diffuse Lambert, plus a soft shadow wherever the height map
blocks the light (under the brows, beside and under the nose, below the chin).
Everything runs at the output size (at most 128 px), a few hundred microseconds.
Because every relief item an AU adds or moves lies inside that AU's mask (up
to the small blur), the shading keeps the masks exact.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ferops.data.synthfacs.nuisance import Nuisance
from ferops.data.synthfacs.pose import Pose
from ferops.data.synthfacs.primitives import FaceModel, Item

SHIFT = 3                 # fixed-point bits for sub-pixel polygon vertices
DOME_HEIGHT = 0.55        # face units the face front stands over its silhouette
DOME_EDGE = 0.7           # face units over which the head rounds off at its silhouette
FINE_BLUR = 0.014         # face units: blur of relief lines (furrows); relief fills carry their own
SHADOW_REACH = 0.16       # face units a cast shadow can run
SPECULAR = 0.06           # skin sheen (forehead, nose tip, lower lip)


def to_fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * (1 << SHIFT)).astype(np.int32)


def project_items(items: list[Item], pose: Pose) -> list[np.ndarray]:
    """Every item's points posed to fixed-point pixels in one vectorised call (one array per item)."""
    lengths = [len(it.points) for it in items]
    depth = np.repeat(np.array([it.depth for it in items]), lengths)
    pixels = to_fixed(pose(np.concatenate([it.points for it in items]), depth))
    out, start = [], 0
    for n in lengths:
        out.append(pixels[start:start + n])
        start += n
    return out


def shade_scale(size: int) -> float:
    """Shading resolution relative to the output: light is smooth, so the output's, up to 128 px."""
    return min(1.0, 128.0 / size)


def _paint(canvas: np.ndarray, items: list[Item], pixels: list[np.ndarray], unit_px: float) -> None:
    """Relief items, already posed, as height offsets (painter's order) on a float canvas."""
    for it, pts in zip(items, pixels):
        if it.op == "fill":
            cv2.fillPoly(canvas, [pts], it.tone, cv2.LINE_8, SHIFT)
        else:
            cv2.polylines(canvas, [pts], False, it.tone, max(1, int(round(it.width * unit_px))), cv2.LINE_8, SHIFT)


def _dome(mask: np.ndarray, edge_px: float, height: float, smooth: bool = True) -> np.ndarray:
    """Rounded profile over a silhouette: quarter-circle fall-off within edge_px of its border."""
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_5)  # 4x cheaper than PRECISE; smoothed anyway
    if smooth:  # no ripples from the pixel staircase of a curved outline
        dist = cv2.GaussianBlur(dist, (0, 0), 0.06 * edge_px) * mask
    t = np.minimum(dist * (1.0 / edge_px), 1.0)
    return height * np.sqrt(t * (2.0 - t))


def light_vector(nuisance: Nuisance) -> np.ndarray:
    """Unit vector to the key light, camera frame (x right, y down, z to the camera)."""
    az, el = np.deg2rad(nuisance.light_angle), np.deg2rad(nuisance.light_elevation)
    return np.array([np.sin(el) * np.cos(az), np.sin(el) * np.sin(az), np.cos(el)])


def _painted(items: list[Item], pixels: list[np.ndarray], hw: tuple[int, int], unit_px: float) -> dict[float, np.ndarray]:
    """Relief items painted (not yet blurred) on one canvas per blur group: {blur in face units: canvas}."""
    groups: dict[float, tuple[list, list]] = {}
    for it, px in zip(items, pixels):
        group = groups.setdefault(it.width if it.op == "fill" else FINE_BLUR, ([], []))
        group[0].append(it)
        group[1].append(px)
    out = {}
    for blur, (group_items, group_px) in groups.items():
        canvas = np.zeros(hw, np.float32)
        _paint(canvas, group_items, group_px, unit_px)
        out[blur] = canvas
    return out


def _relief(painted: dict[float, np.ndarray], static: dict[float, np.ndarray], hw: tuple[int, int],
            unit_px: float) -> np.ndarray:
    """Painted relief blurred by its extent (soft tissue, not cut paper), summed over blur groups.

    Blurring is linear, so the static canvases are added before the blur: one blur per group, not two.
    """
    out = np.zeros(hw, np.float32)
    for blur in sorted(set(painted) | set(static)):
        if blur in painted and blur in static:
            canvas = painted[blur] + static[blur]
        else:
            canvas = painted[blur] if blur in painted else static[blur]
        out += cv2.GaussianBlur(canvas, (0, 0), blur * unit_px)
    return out


def static_relief(model: FaceModel, pose: Pose, hw: tuple[int, int]) -> dict[float, np.ndarray]:
    """The relief no AU moves (bone, sockets, ears), painted once per pose: a sequence reuses it for every frame."""
    items = model.relief[:model.n_static_relief]
    return _painted(items, project_items(items, pose), hw, pose.unit_px)


def _silhouettes(model: FaceModel, pose: Pose, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head dome height, head mask, hair mask): the rounded head over its silhouette, the neck below it."""
    n_back = model.n_back_hair
    polys = [model.head, model.landmarks["neck"]] + model.hair
    lengths = [len(p) for p in polys]
    pixels = to_fixed(pose(np.concatenate(polys)))
    ends = np.cumsum(lengths).tolist()
    face, neck_px, *hair_px = [pixels[start:end] for start, end in zip([0] + ends[:-1], ends)]
    head = np.zeros(hw, np.uint8)
    for part in [face] + hair_px:  # one call per polygon: a single fillPoly call would XOR the overlaps
        cv2.fillPoly(head, [part], 1, cv2.LINE_8, SHIFT)
    hair = np.zeros(hw, np.uint8)
    for part in hair_px[:n_back]:
        cv2.fillPoly(hair, [part], 1, cv2.LINE_8, SHIFT)
    for part in (face, neck_px):  # the face and neck hide the back hair
        cv2.fillPoly(hair, [part], 0, cv2.LINE_8, SHIFT)
    for part in hair_px[n_back:]:
        cv2.fillPoly(hair, [part], 1, cv2.LINE_8, SHIFT)
    neck = np.zeros(hw, np.uint8)
    cv2.fillPoly(neck, [neck_px], 1, cv2.LINE_8, SHIFT)
    neck[head > 0] = 0
    edge = DOME_EDGE * pose.unit_px
    dome = _dome(head, edge, DOME_HEIGHT).astype(np.float32)
    if neck.any():  # the tight crops rarely reach below the jaw
        dome += _dome(neck, edge * 0.8, DOME_HEIGHT * 0.55, False)
        dome -= 0.25 * neck.astype(np.float32)
    return dome, head, hair


def height_map(model: FaceModel, pose: Pose, hw: tuple[int, int], occluders: list[Item], static: np.ndarray,
               cache: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(height in face units, head mask, hair mask) on an hw canvas through `pose`.

    `static` comes from static_relief; `cache` (one per pose) keeps silhouettes by outline, so the frames of
    a sequence share them unless the jaw drops.
    """
    key = ("silhouettes", model.head.tobytes())
    if key not in cache:
        cache[key] = _silhouettes(model, pose, hw)
    dome, head, hair = cache[key]
    items = model.relief[model.n_static_relief:] + occluders
    height = dome.copy()
    if items:
        item_px = project_items(items, pose)
        n_relief = len(items) - len(occluders)
        painted = _painted(items[:n_relief], item_px[:n_relief], hw, pose.unit_px)
        height += _relief(painted, static, hw, pose.unit_px) * head
        if occluders:
            front = np.zeros(hw, np.float32)
            for it, pts in zip(occluders, item_px[n_relief:]):  # what covers the face, as a mask
                if it.op == "fill":
                    cv2.fillPoly(front, [pts], 1.0, cv2.LINE_8, SHIFT)
                else:
                    cv2.polylines(front, [pts], False, 1.0, max(1, int(round(it.width * pose.unit_px))), cv2.LINE_8, SHIFT)
            height[front > 0] = height.max() + 0.3
    else:
        height += _relief({}, static, hw, pose.unit_px) * head
    return cv2.GaussianBlur(height, (0, 0), 0.9), head, hair  # no pixel staircase along the silhouette


def shade(height: np.ndarray, unit_px: float, rot: np.ndarray, nuisance: Nuisance) -> np.ndarray:
    """Brightness factor per pixel: 1 where a surface faces the camera like the background does.

    Scalars are Python floats and arithmetic is in place, so every array stays float32 (a NumPy float64
    scalar would promote the whole map to float64).
    """
    light = light_vector(nuisance)
    lx, ly, lz = (float(v) for v in rot.T @ light)  # the light in the head's frame (normals from head-frame heights)
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3, scale=unit_px / 8.0)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3, scale=unit_px / 8.0)
    inv = gx * gx
    inv += gy * gy
    inv += 1.0
    np.sqrt(inv, out=inv)
    np.reciprocal(inv, out=inv)
    lambert = gx * -lx
    lambert -= ly * gy
    lambert += lz
    lambert *= inv
    np.maximum(lambert, 0.0, out=lambert)
    hx, hy, hz = lx, ly, lz + 1.0
    norm = float(np.sqrt(hx * hx + hy * hy + hz * hz))
    hx, hy, hz = hx / norm, hy / norm, hz / norm
    sheen = gx * -hx
    sheen -= hy * gy
    sheen += hz
    sheen *= inv
    np.maximum(sheen, 0.0, out=sheen)
    for _ in range(3):  # sheen ** 8 by squaring, then ** 24
        np.multiply(sheen, sheen, out=sheen)
    sheen *= sheen * sheen

    # cast shadow: march towards the light; blocked where the surface rises above the ray
    flat = float(np.hypot(lx, ly))
    if flat > 0.05:
        sx, sy = lx / flat, ly / flat  # one pixel towards the light
        rise = lz / flat / unit_px     # ray height gained per pixel
        blocked = None
        reach = max(2, int(SHADOW_REACH * unit_px))
        for k in range(1, reach + 1, max(1, -(-reach // 3))):  # three samples along the ray: shadows are soft
            shift = np.array([[1.0, 0.0, k * sx], [0.0, 1.0, k * sy]], np.float32)
            ahead = cv2.warpAffine(height, shift, height.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REPLICATE)
            ahead -= height
            ahead -= k * rise
            blocked = ahead if blocked is None else np.maximum(blocked, ahead, out=blocked)
        blocked *= -25.0
        np.maximum(blocked, -0.85, out=blocked)
        np.minimum(blocked, 0.0, out=blocked)
        blocked += 1.0
        lambert *= blocked
    ambient, key = 1.0 - nuisance.light_strength, nuisance.light_strength
    reference = ambient + key * float(light[2])
    sheen *= SPECULAR
    lambert += sheen
    lambert *= key / reference
    lambert += ambient / reference
    return lambert


TEXTURE_BANK = 64  # distinct noise draws per output size; with mirroring, 128 skins


@lru_cache(maxsize=8)
def _texture_bank(size: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Unit-amplitude multiplicative noise draws at one output size: (skin: blotches to pores, hair: strands).

    Octaves of one noise draw: skin sums them isotropically; hair reuses the finer two, stretched along
    the strands' fall. Drawn once per size: a fresh draw per person cost a tenth of a `wild` face.
    """
    bank = []
    for index in range(TEXTURE_BANK):
        rng = np.random.default_rng([index, size])
        skin = np.zeros((size, size), np.float32)
        hair = np.zeros((size, size), np.float32)
        octaves = ((4, 0.9), (9, 0.7), (20, 0.45)) + (((size // 2, 0.3),) if size >= 96 else ())
        for k, (cells, weight) in enumerate(octaves):  # pores only where a face is big enough to show them
            noise = rng.standard_normal((cells, cells)).astype(np.float32)
            skin += weight * cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
            if k:
                hair += weight * cv2.resize(noise[: max(2, cells // 5)], (size, size), interpolation=cv2.INTER_CUBIC)
        bank.append((skin / 1.3, hair / 1.3))
    return tuple(bank)


@lru_cache(maxsize=256)
def textures(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(skin, hair) texture of one person: a draw from the bank, mirrored left-right by the seed's next bit."""
    skin, hair = _texture_bank(size)[seed % TEXTURE_BANK]
    if (seed // TEXTURE_BANK) % 2:
        skin, hair = skin[:, ::-1].copy(), hair[:, ::-1].copy()
    for out in (skin, hair):
        out.flags.writeable = False
    return skin, hair

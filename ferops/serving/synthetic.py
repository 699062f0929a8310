"""Deterministic test scenes: SynthFACS faces composited onto varied backgrounds, as stills or a video.

The serving path needs photos and videos with faces somewhere in them, which no
licence-free dataset ships; SynthFACS renders faces with known expressions, and
this module places them (feathered, drifting, one or two per frame) on
backgrounds that change every segment. Used by the pyfunc's input example, the
tests and benchmarks/video.py; the same seed always gives the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ferops.data.vocab import EMOTIONS

SEGMENT = 30  # frames per shot: one background, the same people and expressions


@dataclass(frozen=True)
class Sprite:
    rgb: np.ndarray  # S x S x 3 uint8
    alpha: np.ndarray  # S x S float32 in 0..1: a feathered ellipse, so no square edge gives the face away


def face_sprite(rng: np.random.Generator, size: int, emotion: str | None = None) -> Sprite:
    """A random identity showing `emotion` (random if None), rendered at `size` px, with a soft oval mask."""
    from ferops.data.synthfacs import Identity, Nuisance, render_face
    from ferops.data.synthfacs.prototypes import sample_aus

    emotion = emotion or EMOTIONS[int(rng.integers(1, len(EMOTIONS)))]
    aus, _ = sample_aus(emotion, rng)
    rgb, _ = render_face(Identity.sample(rng), aus, Nuisance(seed=int(rng.integers(0, 2**31 - 1))), size=size,
                         channels=3, masks=False)
    alpha = np.zeros((size, size), np.float32)
    cv2.ellipse(alpha, (size // 2, size // 2), (int(size * 0.47), int(size * 0.5)), 0, 0, 360, 1.0, -1)
    return Sprite(rgb, cv2.GaussianBlur(alpha, (0, 0), size / 30))


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A varied RGB backdrop: a colour gradient plus low-frequency blobs (rooms, not studio grey)."""
    base = rng.uniform(30, 200, 3)
    tilt = rng.uniform(-60, 60, 3)
    ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None] * tilt
    canvas = np.broadcast_to(base + ramp, (height, width, 3)).astype(np.float32)
    blobs = cv2.resize(rng.uniform(-40, 40, (6, 8, 3)).astype(np.float32), (width, height),
                       interpolation=cv2.INTER_CUBIC)
    return np.clip(canvas + blobs, 0, 255).astype(np.uint8)


def paste(canvas: np.ndarray, sprite: Sprite, x: int, y: int) -> None:
    """Alpha-blend `sprite` with its top-left corner at (x, y), in place (clipped to the canvas)."""
    size = sprite.rgb.shape[0]
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + size, w), min(y + size, h)
    if x0 >= x1 or y0 >= y1:
        return
    a = sprite.alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (a * sprite.rgb[y0 - y:y1 - y, x0 - x:x1 - x] + (1 - a) * region + 0.5).astype(np.uint8)


def still(seed: int, faces: int = 1, width: int = 320, height: int = 240, size: int = 150) -> np.ndarray:
    """One RGB photo with `faces` faces side by side (the first the largest), on a varied background."""
    rng = np.random.default_rng(seed)
    canvas = background(rng, width, height)
    for i in range(faces):
        side = int(size * (1 - 0.15 * i))
        paste(canvas, face_sprite(rng, side), int(width * (0.08 + 0.5 * i)), (height - side) // 2)
    return canvas


def write_video(path: str | Path, frames: int, width: int = 640, height: int = 480, fps: float = 30.0,
                seed: int = 0, size: int = 160, segment: int = SEGMENT) -> list[int]:
    """Write a video of `frames` frames: shots of `segment` frames, every third one (the first included) with two
    faces, drifting; .mp4 is written as mp4v, .avi as MJPG. Returns the faces in each frame; frames are made and
    written one at a time.
    """
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if Path(path).suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write this video format here")
    counts = []
    try:
        for shot in range(-(-frames // segment)):
            rng = np.random.default_rng([seed, shot])
            backdrop = background(rng, width, height)
            people = 2 if shot % 3 == 0 else 1
            sprites = [face_sprite(rng, int(size * (1 - 0.2 * i))) for i in range(people)]
            starts = [(int(rng.uniform(0.05, 0.2) * width) + i * width // 2, int(rng.uniform(0.1, 0.4) * height))
                      for i in range(people)]
            drift = rng.uniform(-1.5, 1.5, (people, 2))
            for t in range(min(segment, frames - shot * segment)):
                canvas = backdrop.copy()
                for sprite, (x, y), (dx, dy) in zip(sprites, starts, drift):
                    paste(canvas, sprite, int(x + dx * t), int(y + dy * t))
                writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
                counts.append(people)
    finally:
        writer.release()
    return counts

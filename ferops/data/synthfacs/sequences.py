"""How expression intensity unfolds over a clip.

Posed databases (CK+) record each emotion from a neutral first frame to the
apex in the last frame; micro-expression databases (CASME II) rise from onset to
apex and fall back by offset within a fraction of a second. A sequence is then
just the sample's apex AUs scaled per frame by one of these envelopes.
"""

from __future__ import annotations

import numpy as np


def ease(t: np.ndarray) -> np.ndarray:
    """Smooth 0->1 ramp (muscles accelerate and decelerate)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def posed_envelope(n_frames: int) -> np.ndarray:
    """Neutral (0) at the first frame rising to apex (1) at the last."""
    if n_frames < 2:
        raise ValueError(f"a posed sequence needs at least 2 frames, got {n_frames}")
    return ease(np.linspace(0.0, 1.0, n_frames))


def micro_envelope(n_frames: int, apex_index: int) -> np.ndarray:
    """0 at onset (first frame), 1 at apex_index, back to 0 at offset (last frame)."""
    if not 0 < apex_index < n_frames - 1:
        raise ValueError(f"apex index {apex_index} must lie strictly inside 0..{n_frames - 1}")
    index = np.arange(n_frames, dtype=float)
    rise = ease(index / apex_index)
    fall = ease((n_frames - 1 - index) / (n_frames - 1 - apex_index))
    return np.where(index <= apex_index, rise, fall)


def scale_aus(aus: dict[str, float], factor: float) -> dict[str, float]:
    return {key: value * factor for key, value in aus.items()}

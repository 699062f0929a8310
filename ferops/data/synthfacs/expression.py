"""One reading of an AU specification, shared by the renderer and the labeller.

Callers write expressions the way FACS coders do - {12: 3.0} for a bilateral
smile, {"L12": 2.5, "L14": 2.0} for a left-sided contempt - and both the
renderer (which needs per-side intensities) and the manifest (which needs one
presence and one A..E intensity per AU code) must agree on what that means.
"L" is the subject's left, which appears on the image's right in a frontal view.
"""

from __future__ import annotations

from typing import Mapping

from ferops.data.vocab import AU_CODES

SIDED_CODES: tuple[int, ...] = (12, 14)
PRESENCE_THRESHOLD = 0.5  # below FACS trace level an AU is not scored


def _parse_key(key) -> tuple[int, str]:
    text = str(key).strip().upper()
    if text.startswith("AU"):
        text = text[2:]
    side = ""
    if text[:1] in ("L", "R"):
        side, text = text[0], text[1:]
    try:
        code = int(text)
    except ValueError:
        raise ValueError(f"AU key {key!r}: expected a code like 12, 'AU12', 'L12' or 'R14'") from None
    if code not in AU_CODES:
        raise ValueError(f"AU key {key!r}: AU{code} is not rendered; known codes are {AU_CODES}")
    if side and code not in SIDED_CODES:
        raise ValueError(f"AU key {key!r}: only AU{SIDED_CODES} have left/right variants")
    return code, side


def sided_intensities(aus: Mapping) -> dict[str, float]:
    """Per-side intensities 0..5: keys '1'..'43' for bilateral AUs plus 'L12','R12','L14','R14'.

    A bilateral 12 counts for both sides; a side-specific value wins where larger.
    """
    levels = {str(code): 0.0 for code in AU_CODES}
    for code in SIDED_CODES:
        levels[f"L{code}"] = levels[f"R{code}"] = 0.0
    for key, value in aus.items():
        code, side = _parse_key(key)
        value = min(max(float(value), 0.0), 5.0)
        if code in SIDED_CODES:
            for s in (side,) if side else ("L", "R"):
                levels[f"{s}{code}"] = max(levels[f"{s}{code}"], value)
        else:
            levels[str(code)] = max(levels[str(code)], value)
    for code in SIDED_CODES:
        levels[str(code)] = max(levels[f"L{code}"], levels[f"R{code}"])
    return levels


def au_intensity_level(value: float) -> int:
    """FACS letter grade as 0..5 (0 = absent, A..E = 1..5)."""
    if value < PRESENCE_THRESHOLD:
        return 0
    return int(min(5, max(1, round(value))))


def side_of(levels: Mapping[str, float], code: int) -> str:
    """'both', 'L', 'R' or '' for a sided AU, from per-side intensities."""
    left = levels[f"L{code}"] >= PRESENCE_THRESHOLD
    right = levels[f"R{code}"] >= PRESENCE_THRESHOLD
    return "both" if left and right else "L" if left else "R" if right else ""


def active_codes(levels: Mapping[str, float]) -> list[int]:
    """AU codes scored present."""
    return [code for code in AU_CODES if levels[str(code)] >= PRESENCE_THRESHOLD]

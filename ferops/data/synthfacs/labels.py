"""Manifest columns for one rendered frame: exact AU truth, sides, nuisance, identity traits.

Real datasets give FACS codes for a few frames at best; here every frame has
them, plus the nuisance that was applied, so analyses can ask "does the filter
track AU12 or lighting?" without guessing.
"""

from __future__ import annotations

from ferops.data.synthfacs.expression import SIDED_CODES, au_intensity_level, side_of
from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.nuisance import Nuisance
from ferops.data.vocab import AU_CODES, au_column, au_intensity_column

NUISANCE_FIELDS: tuple[str, ...] = (
    "rotation", "yaw", "pitch", "scale", "shift_x", "shift_y", "light_angle", "light_strength",
    "light_elevation", "light_tint", "brightness", "blur", "noise", "lowres", "jpeg", "occlusions",
    "background", "clutter",
)
IDENTITY_FIELDS: tuple[str, ...] = ("skin_tone", "age", "face_width", "jaw_width", "masculinity", "hair_style")


def au_columns(levels: dict[str, float]) -> dict:
    """AU<code> (0/1), AU<code>_int (0..5), per-side L12/R12/L14/R14 _int and AU12/AU14 _side."""
    row = {}
    for code in AU_CODES:
        grade = au_intensity_level(levels[str(code)])
        row[au_column(code)] = int(grade > 0)
        row[au_intensity_column(code)] = grade
    for code in SIDED_CODES:
        for side in ("L", "R"):
            row[f"{side}{code}_int"] = au_intensity_level(levels[f"{side}{code}"])
        row[f"AU{code}_side"] = side_of(levels, code)
    return row


def nuisance_columns(nuisance: Nuisance) -> dict:
    return {f"nuis_{name}": getattr(nuisance, name) for name in NUISANCE_FIELDS}


def identity_columns(identity: Identity) -> dict:
    return {f"id_{name}": getattr(identity, name) for name in IDENTITY_FIELDS}

"""The one vocabulary every dataset is mapped onto.

Each real dataset numbers its emotions differently (CK+ 0..7 with contempt,
FER2013 0..6 without it, CASME II by name). Results are only comparable across
datasets - the point of the transfer matrix - when every loader maps onto the
same names, so the mappings live here, next to each other, where a reader can
check them against the datasets' own documentation.
"""

from __future__ import annotations

# Canonical emotions, in the order used for 8-class heads (paper: CK+ with neutral).
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
)
# Micro-expression classes (CASME II estimated emotions) beyond the 8 above.
MICRO_EXTRA: tuple[str, ...] = ("repression", "others")
CANONICAL: tuple[str, ...] = EMOTIONS + MICRO_EXTRA

# Action Units the synthetic generator renders and the AU heads predict.
# Left/right variants of unilateral AUs (contempt) are written "L12", "R14"...
AU_CODES: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26, 43)
UNILATERAL: tuple[str, ...] = ("L12", "R12", "L14", "R14")


def au_column(code: int) -> str:
    """Manifest column holding AU presence (0/1)."""
    return f"AU{code}"


def au_intensity_column(code: int) -> str:
    """Manifest column holding AU intensity 0..5 (FACS A..E = 1..5; NaN = not rated)."""
    return f"AU{code}_int"


# --- per-dataset label mappings ---------------------------------------------
# CK+ Emotion/*.txt codes (Lucey et al. 2010).
CKPLUS_CODES: dict[int, str] = {
    0: "neutral",
    1: "anger",
    2: "contempt",
    3: "disgust",
    4: "fear",
    5: "happiness",
    6: "sadness",
    7: "surprise",
}
# FER2013 csv `emotion` column (Goodfellow et al. 2013).
FER2013_CODES: dict[int, str] = {
    0: "anger",
    1: "disgust",
    2: "fear",
    3: "happiness",
    4: "sadness",
    5: "surprise",
    6: "neutral",
}
# Folder names seen in circulating copies (FER2013 image folders, CK+48) -> canonical.
FOLDER_NAMES: dict[str, str] = {
    "angry": "anger",
    "anger": "anger",
    "contempt": "contempt",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "happiness": "happiness",
    "sad": "sadness",
    "sadness": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
# CASME II "Estimated Emotion" column.
CASME2_NAMES: dict[str, str] = {
    "happiness": "happiness",
    "disgust": "disgust",
    "repression": "repression",
    "surprise": "surprise",
    "sadness": "sadness",
    "fear": "fear",
    "others": "others",
}
# FERPlus vote columns (Barsoum et al. 2016), in file order.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)


def to_canonical(name: str, mapping: dict, source: str) -> str:
    """Map a dataset's label onto the canonical vocabulary or say exactly what was wrong."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in mapping:
        raise ValueError(
            f"{source}: label {name!r} is not in the mapping; expected one of {sorted(map(str, mapping))}"
        )
    return mapping[key]

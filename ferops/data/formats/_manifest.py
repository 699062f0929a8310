"""Manifest pieces every reader builds the same way (AU columns, label indices).

Keeping the AU column layout in one place guarantees that CK+, CASME II and
the synthetic data put presence and intensity in identically named, identically
typed columns, which is what lets one AU head train on any of them.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ferops.data.vocab import AU_CODES, au_column, au_intensity_column

UNSPLIT = "unsplit"  # split value for datasets that ship without one (CK+, CASME II)


def au_columns(rows: Sequence[Mapping[int, float] | None]) -> pd.DataFrame:
    """One row per image: {code: intensity} (NaN = present, unrated); None = AUs not coded for this image.

    Columns cover vocab.AU_CODES plus every code seen, so no coded AU is lost.
    Presence is float: 1 present, 0 absent, NaN unknown. An image nobody coded
    is not an image without AUs: recording it as 0 would teach an AU head that
    the expression shows none, so unknown stays NaN and the loss skips it.
    Intensity: 0 absent, 1..5 graded, NaN unrated or unknown.
    """
    codes = sorted(set(AU_CODES).union(*(r.keys() for r in rows if r)))
    data = {}
    for code in codes:
        pres = np.zeros(len(rows), np.float64)
        inten = np.zeros(len(rows), np.float64)
        for i, r in enumerate(rows):
            if r is None:
                pres[i], inten[i] = math.nan, math.nan
            elif code in r:
                pres[i], inten[i] = 1.0, r[code]
        data[au_column(code)] = pres
        data[au_intensity_column(code)] = inten
    return pd.DataFrame(data)


def label_indices(names: Iterable[str], classes: Sequence[str]) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(classes)}
    return np.array([lookup[n] for n in names], dtype=np.int64)


def present_aus(manifest: pd.DataFrame) -> list[int]:
    """AU codes with a presence column."""
    return sorted(int(c[2:]) for c in manifest.columns if c.startswith("AU") and c[2:].isdigit())

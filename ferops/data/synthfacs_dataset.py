"""SynthFACS straight into the common Dataset form, with nothing lost on the way.

Writing SynthFACS as CK+ and reading it back reproduces the real dataset's
limits on purpose: AUs for the apex frame only, no region masks, no nuisance
values. Experiments that need the ground truth the renderer knows (AU
presence and intensity on every frame, per-side grades for the flip rule,
AU region masks, continuous AU values) take this path instead.
"""

from __future__ import annotations

import numpy as np

from ferops.data.dataset import Dataset
from ferops.data.synthfacs import generate


def synthfacs_dataset(preset: str, n: int, seed: int = 0, size: int = 48, channels: int = 1, *,
                      masks: bool = True, frames: tuple[int, int] | None = None, progress: bool = False) -> Dataset:
    """Render `n` SynthFACS samples of `preset` as a processed dataset (every frame of every sequence).

    extras: au_values (N x 19 continuous intensities, order au_value_codes) and,
    with `masks`, masks (N x 19 x H x W uint8 regions, order mask_aus).
    A frame rendered with no expression at all (a posed sequence's first frame)
    is labelled neutral when the preset has that class, as CK+ protocols label
    first frames; `sequence_label` keeps the sequence's emotion.
    """
    ds = generate(preset, n, seed=seed, size=size, channels=channels, masks=masks, progress=progress, frames=frames)
    m = ds.manifest.copy()
    for code in ds.au_codes:
        m[f"AU{code}"] = m[f"AU{code}"].astype(np.float64)  # the common form's presence dtype (NaN = unknown)
    m["sequence_label"] = m["label_name"]
    if "neutral" in ds.classes and "intensity_scale" in m.columns:
        blank = (m["intensity_scale"] == 0).to_numpy()
        m.loc[blank, "label_name"] = "neutral"
        m.loc[blank, "label"] = ds.classes.index("neutral")
    return Dataset(ds.images, m, ds.classes, ds.name, ds.extras)

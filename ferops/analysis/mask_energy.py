"""Where a filter looks: the share of its guided-backprop energy inside the AU's exact region.

A filter that encodes AU u should draw its evidence from where u moves the face.
SynthFACS knows that region exactly (extras["masks"]), so the share of gradient
energy inside it can be compared with the share of the image the region covers,
which is what a filter looking anywhere would get. The pointing game asks the
simpler question: does the single most salient pixel fall inside the region?
"""

from __future__ import annotations

import numpy as np


def energy(gradients: np.ndarray) -> np.ndarray:
    """N x H x W squared gradient summed over channels (the saliency a filter image shows)."""
    g = np.asarray(gradients, np.float64)
    return (g ** 2).sum(axis=-1)


def mask_shares(gradients: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: energy share inside the mask, the mask's area share (chance level) and a pointing-game hit.

    `masks` is N x H x W (nonzero inside). Images with no gradient energy or an empty mask get NaN / False.
    """
    e = energy(gradients)
    inside = np.asarray(masks) > 0
    total = e.reshape(len(e), -1).sum(axis=1)
    area = inside.reshape(len(e), -1).mean(axis=1)
    share = np.where(total > 0, (e * inside).reshape(len(e), -1).sum(axis=1) / np.where(total > 0, total, 1), np.nan)
    share = np.where(area > 0, share, np.nan)
    peak = e.reshape(len(e), -1).argmax(axis=1)
    hit = inside.reshape(len(e), -1)[np.arange(len(e)), peak] & (total > 0)
    return {"energy_share": share, "area_share": np.where(area > 0, area, np.nan), "pointing_hit": hit}

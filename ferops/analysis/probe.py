"""Does filter j encode AU u where AU and emotion are independent? AUROC on the AU probe set.

On prototype faces an AU-selective and an emotion-selective filter look alike.
On the probe set (SynthFACS stills with every AU drawn independently) only a
filter that responds to the AU itself ranks images showing u above those that
do not: AUROC of F_j(i) against u's presence, 0.5 = no selectivity.

AUROC is the Mann-Whitney U statistic over n_pos * n_neg (ties count half, as in
sklearn's roc_auc_score); scipy computes it for every filter in one call, which
keeps hundreds of filters x 19 AUs at a fraction of a second.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu


def probe_auroc(maxima: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """J x U AUROC of each filter's response for each AU's presence; NaN where the AU is constant or unknown."""
    maxima, presence = np.asarray(maxima, np.float64), np.asarray(presence, np.float64)
    out = np.full((maxima.shape[1], presence.shape[1]), np.nan)
    for u in range(presence.shape[1]):
        known = ~np.isnan(presence[:, u])
        y = presence[known, u] > 0
        if y.all() or not y.any() or not maxima.shape[1]:
            continue
        f = maxima[known]
        u_stat = mannwhitneyu(f[y], f[~y], axis=0, method="asymptotic").statistic
        out[:, u] = u_stat / (y.sum() * (~y).sum())
    return out

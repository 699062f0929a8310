"""The paper's P(j,u), and the match counts that chance and emotion co-occurrence alone would give.

P(j,u) is the share of filter j's top-N images that show AU u; the paper calls
a filter matched to u when P(j,u) = 1. On posed data that statistic is weak
evidence: a filter tuned to *happiness* picks happy faces, which all show AU12,
so it matches AU12 through co-occurrence. Two baselines make the count mean
something: the same statistic for a random-init network (selection with no
learning), and for AU labels shuffled among images of the same emotion (AUs
that follow only from the emotion the filter picks).
"""

from __future__ import annotations

import numpy as np


def au_share(top: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """P: J x U, the share of each filter's top images (J x N row indices) in which each AU is present."""
    return np.asarray(presence, np.float64)[np.asarray(top)].mean(axis=1)


def matched(p: np.ndarray, threshold: float) -> np.ndarray:
    """J bools: filters whose best AU reaches `threshold` (the paper: 1.0)."""
    return p.max(axis=1) >= threshold - 1e-9 if p.size else np.zeros(len(p), bool)


def best_au(p: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """J indices of each filter's best AU: highest P; among equal P, highest `tiebreak` (e.g. probe AUROC).

    A surprise-selective filter has P = 1 for AU1, AU2, AU5, AU25 and AU26 at once; naming the first
    of them would be arbitrary, the one it is most selective for on the probe set is informative.
    """
    if tiebreak is None or not p.size:
        return p.argmax(axis=1)
    top = np.isclose(p, p.max(axis=1, keepdims=True))
    return np.where(top, np.nan_to_num(np.asarray(tiebreak, np.float64), nan=-np.inf), -np.inf).argmax(axis=1)


def permuted_within(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation of row indices that moves each row only among rows of the same group (emotion)."""
    groups = np.asarray(groups)
    perm = np.arange(len(groups))
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        perm[rows] = rng.permutation(rows)
    return perm


def cooccurrence_matches(top: np.ndarray, presence: np.ndarray, groups: np.ndarray, threshold: float,
                         permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Matched-filter counts, one per shuffle of AU labels within emotion: what emotion alone explains."""
    presence = np.asarray(presence)
    return np.array([matched(au_share(top, presence[permuted_within(groups, rng)]), threshold).sum()
                     for _ in range(permutations)], np.int64)

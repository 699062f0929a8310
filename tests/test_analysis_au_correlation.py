"""P(j,u), dead filters, the co-occurrence baseline and probe AUROC on activations with a known answer."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from ferops.analysis.activations import alive_filters, top_n
from ferops.analysis.au_correlation import au_share, best_au, cooccurrence_matches, matched, permuted_within
from ferops.analysis.probe import probe_auroc


def _known_case():
    """40 images, 2 emotions; AU0 follows emotion 1 exactly, AU1 is on every other image.

    filter 0 fires on emotion-1 images (so P(0, AU0) = 1), filter 1 is dead,
    filter 2 fires on images 0..3 (AU1 on 0 and 2: P(2, AU1) = 0.5), filter 3 only
    ever reaches 1e-9 (dead at eps 1e-6, alive at eps 0).
    """
    emotion = np.repeat([0, 1], 20)
    presence = np.stack([emotion == 1, np.arange(40) % 2 == 0], axis=1).astype(float)
    f = np.zeros((40, 4))
    f[:, 0] = emotion * np.linspace(1, 2, 40)
    f[:4, 2] = [9, 8, 7, 6]
    f[5, 3] = 1e-9
    return f, presence, emotion


def test_dead_filters_and_top_n():
    f, _, _ = _known_case()
    np.testing.assert_array_equal(alive_filters(f, 1e-6), [True, False, True, False])
    np.testing.assert_array_equal(alive_filters(f, 0.0), [True, False, True, True])
    np.testing.assert_array_equal(top_n(f[:, [2]], 4), [[0, 1, 2, 3]])
    np.testing.assert_array_equal(top_n(f[:, [0]], 3), [[39, 38, 37]])


def test_p_and_matches_have_the_known_answer():
    f, presence, _ = _known_case()
    alive = alive_filters(f, 1e-6)
    p = au_share(top_n(f[:, alive], 4), presence)
    np.testing.assert_allclose(p, [[1.0, 0.5], [0.0, 0.5]])
    np.testing.assert_array_equal(matched(p, 1.0), [True, False])
    np.testing.assert_array_equal(matched(p, 0.5), [True, True])
    np.testing.assert_array_equal(best_au(p), [0, 1])
    tied = np.array([[1.0, 1.0, 0.5], [0.2, 0.9, 0.9]])
    np.testing.assert_array_equal(best_au(tied), [0, 1])
    np.testing.assert_array_equal(best_au(tied, np.array([[0.6, 0.8, 0.99], [np.nan, np.nan, 0.7]])), [1, 2])


def test_cooccurrence_baseline_keeps_emotion_driven_matches_only():
    f, presence, emotion = _known_case()
    rng = np.random.default_rng(0)
    perm = permuted_within(emotion, rng)
    assert sorted(perm[:20]) == list(range(20)) and sorted(perm[20:]) == list(range(20, 40))
    top = top_n(f[:, [0]], 4)
    # AU0 is fixed by emotion: shuffling within emotion keeps every match.
    assert (cooccurrence_matches(top, presence[:, [0]], emotion, 1.0, 20, rng) == 1).all()
    # AU1 is independent of emotion: a filter matched to it by its top images loses the match.
    matched_au1 = np.array([[0, 2, 4, 6]])
    assert au_share(matched_au1, presence[:, [1]])[0, 0] == 1.0
    assert cooccurrence_matches(matched_au1, presence[:, [1]], emotion, 1.0, 50, rng).mean() < 0.2


def test_probe_auroc():
    rng = np.random.default_rng(0)
    au = rng.random((200, 3)) < 0.3
    au[:, 2] = False  # never present: no AUROC
    f = np.stack([au[:, 0] + 0.01 * rng.random(200), rng.random(200)], axis=1)
    auroc = probe_auroc(f, np.where(np.arange(200)[:, None] == 5, np.nan, au.astype(float)))
    assert auroc.shape == (2, 3)
    assert auroc[0, 0] == 1.0 and 0.35 < auroc[1, 0] < 0.65
    assert np.isnan(auroc[:, 2]).all()
    known = np.arange(200) != 5
    for j in range(2):  # the same number sklearn gives, ties included
        f_tied = np.round(f[:, j], 1)
        np.testing.assert_allclose(probe_auroc(f_tied[:, None], au[:, [1]].astype(float))[0, 0],
                                   roc_auc_score(au[:, 1], f_tied))
        np.testing.assert_allclose(auroc[j, 1], roc_auc_score(au[known, 1], f[known, j]))

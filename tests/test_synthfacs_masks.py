"""SynthFACS AU masks stay exact: every pixel an AU changes lies in that AU's region.

The filter analysis trusts masks.py as ground truth for where each AU acts. Shading,
furrows, bulges and the crop all spread an AU's change, so this renders each AU
alone at full intensity against the same neutral face (same identity, pose, light
and texture; no sensor noise) and counts the pixels that moved by more than two
grey levels: at least 95% of them must fall inside the AU's mask.
"""

from __future__ import annotations

import numpy as np
import pytest

from ferops.data.synthfacs import Identity, Nuisance, render_face
from ferops.data.vocab import AU_CODES

QUIET = Nuisance(noise=0.0, blur=0.0)
CHANGED = 2  # grey levels: anti-aliasing noise of an unchanged edge stays below this
IDENTITIES = [Identity()] + [Identity.sample(np.random.default_rng(seed)) for seed in (1, 2)]


def inside_share(identity: Identity, aus: dict, code: int, size: int, framing: str) -> tuple[float, int]:
    neutral, _ = render_face(identity, {}, QUIET, size=size, framing=framing)
    moved, masks = render_face(identity, aus, QUIET, size=size, framing=framing)
    changed = np.abs(moved.astype(int) - neutral.astype(int)).max(axis=2) > CHANGED
    return float((changed & (masks[code] > 0)).sum() / max(changed.sum(), 1)), int(changed.sum())


@pytest.mark.parametrize("code", AU_CODES)
@pytest.mark.parametrize("size,framing", [(48, "ck+"), (96, "ck+")])
def test_each_au_alone_changes_pixels_only_inside_its_mask(code, size, framing):
    for identity in IDENTITIES:
        share, changed = inside_share(identity, {code: 5}, code, size, framing)
        assert changed > 0.01 * size * size, f"AU{code} at intensity 5 barely changes the face ({changed} px)"
        assert share >= 0.95, f"AU{code}: only {share:.1%} of {changed} changed pixels inside its mask ({size} px)"


def test_masks_hold_in_the_other_framings():
    for framing in ("fer2013", "scene"):
        for code in (4, 12, 17, 26):
            share, changed = inside_share(Identity(), {code: 5}, code, 96, framing)
            assert share >= 0.95, f"{framing} AU{code}: {share:.1%} of {changed} changed pixels inside its mask"


def test_one_sided_smile_has_a_one_sided_mask():
    _, masks = render_face(Identity(), {"L12": 4}, QUIET, size=96, framing="ck+")
    share, _ = inside_share(Identity(), {"L12": 4}, 12, 96, "ck+")
    assert share >= 0.95
    assert masks[12][:, :40].sum() == 0 and masks[12][:, 56:].sum() > 0  # the subject's left: the image's right


def test_masks_are_regions_not_the_whole_face():
    _, masks = render_face(Identity(), {code: 5 for code in AU_CODES}, QUIET, size=48, framing="ck+")
    area = {code: float((mask > 0).mean()) for code, mask in masks.items()}
    assert max(area.values()) < 0.5, area
    assert area[5] < 0.15 and area[43] < 0.15, area  # eye AUs: the eyes
    assert masks[1][:12].any() and not masks[1][-12:].any()  # brows: top of the crop, not the chin
    assert masks[17][-12:].any() and not masks[17][:12].any()

"""benchmarks/au_visibility.py: the per-AU pixel-change table measures the AU alone, on the domain's own faces."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

from ferops.data.synthfacs_dataset import synthfacs_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "au_visibility.py"


@pytest.fixture(scope="module")
def av():
    spec = importlib.util.spec_from_file_location("au_visibility", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table(av):
    return av.measure(identities=2, targets=("AU26", "AU14"), levels=(1, 5), native=None)


def test_one_row_per_au_and_intensity(table):
    assert len(table) == 4
    assert set(zip(table["au"], table["level"])) == set(itertools.product(("AU26", "AU14"), (1, 5)))
    assert list(table["grade"]) == ["A", "E", "A", "E"]
    assert (table["faces"] == 2).all()
    assert "verdict_native" not in table.columns  # native=None skips the 144 px render


def test_jaw_drop_changes_many_pixels(table, av):
    jaw = table[table["au"] == "AU26"].set_index("level")
    assert (jaw["mean_abs_delta"] > 1.0).all()  # measured ~2.8 (A) and ~9 (E) grey levels over the crop
    assert (jaw["pct_px_over"] > 5.0).all()
    assert (jaw["verdict"] == "visible").all()
    assert jaw.loc[5, "mean_abs_delta"] > jaw.loc[1, "mean_abs_delta"]  # more jaw drop, more change
    dimple = table[table["au"] == "AU14"].set_index("level")
    assert (dimple["mean_abs_delta"] < jaw["mean_abs_delta"]).all()


def test_neutral_against_neutral_is_exactly_zero(av):
    """Same face, same nuisance (sensor noise included): nothing but an AU can make the two renders differ."""
    identity, nuisance, _ = av.domain_face(0)
    assert nuisance.noise > 0  # the studio profile adds sensor noise; the shared seed holds it fixed
    first, second = av.render(identity, nuisance, {})[0], av.render(identity, nuisance, {})[0]
    assert np.abs(first - second).max() == 0
    # through the measurement itself: an AU at intensity 0 is the neutral face
    zero = av.measure(identities=2, targets=("AU26", "L14"), levels=(0,), native=None)
    assert (zero[["mean_abs_delta", "pct_px_over", "max_abs_delta", "ctx_mean_abs_delta"]] == 0).all().all()


def test_faces_are_the_domain_images(av):
    """domain_face(i) replays domains.au sample i: with the AUs drawn for it, the render is the dataset's image."""
    ds = synthfacs_dataset("au", 2, seed=42, masks=False)
    for index in range(2):
        identity, nuisance, drawn = av.domain_face(index, seed=42)
        np.testing.assert_array_equal(av.render(identity, nuisance, drawn)[0], ds.images[index][..., 0])


def test_without_drops_every_side(av):
    aus = {"L14": 2.0, "14": 1.0, "12": 3.0, "R12": 1.5}
    assert av.without(aus, "R14") == {"12": 3.0, "R12": 1.5}
    assert av.without(aus, "AU12") == {"L14": 2.0, "14": 1.0}
    assert av.activation("L14", 3) == {"L14": 3.0} and av.activation("AU26", 2) == {"26": 2.0}


def test_label_visibility_counts_each_present_label_once_on_its_own_face(av):
    faces = [av.domain_face(i) for i in range(6)]
    drawn = [key if key[0] in "LR" else f"AU{key}" for _, _, aus in faces for key in aus]
    table = av.label_visibility(identities=6).set_index("au")
    assert table["labels"].sum() == len(drawn)  # every present label, nothing else
    assert all(table.loc[t, "labels"] == drawn.count(t) for t in set(drawn))
    assert ((table["share_invisible"] >= 0) & (table["share_invisible"] + table["share_faint"] <= 1)).all()
    assert table.loc["AU26", "median_pct_px_over"] > 5  # face 0's dropped jaw moves a large part of the crop (~31%)

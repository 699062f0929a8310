"""The common Dataset form: AU truth with unknowns kept unknown, SynthFACS direct, clips, memmapped loads."""

import numpy as np
import pandas as pd
import pytest

from ferops.config import AugmentParams
from ferops.data.dataset import Dataset, au_label, mirrored
from ferops.data.formats._manifest import au_columns
from ferops.data.formats.ckplus import read_ckplus, write_ckplus
from ferops.data.synthfacs_dataset import synthfacs_dataset
from ferops.data.vocab import AU_CODES
from ferops.train.streams import eval_stream, training_stream

AUG = AugmentParams(flip=True, rotation_deg=10.0, translation=0.1, scale=0.1, shear=0.1)


@pytest.fixture(scope="module")
def posed():
    return synthfacs_dataset("posed", 5, seed=2, size=32, frames=(4, 7))


def _manifest(n, **columns):
    base = {"path": [f"{i}.png" for i in range(n)], "label": 0, "label_name": "happiness", "subject": "S1",
            "sequence": "S1_001", "frame": np.arange(n), "split": "train"}
    return pd.DataFrame(base | columns)


def test_uncoded_images_have_unknown_not_absent_aus():
    cols = au_columns([{12: 4.0, 27: float("nan")}, {}, None])
    assert cols["AU12"].tolist()[:2] == [1.0, 0.0] and np.isnan(cols["AU12"][2])
    assert cols["AU12_int"].tolist()[:2] == [4.0, 0.0] and np.isnan(cols["AU12_int"][2])
    assert cols["AU27"][0] == 1 and np.isnan(cols["AU27_int"][0])  # present, unrated
    assert set(AU_CODES) | {27} == {int(c[2:]) for c in cols if not c.endswith("_int")}
    ds = Dataset(np.zeros((3, 8, 8, 1), np.uint8), pd.concat([_manifest(3), cols], axis=1), ("happiness",))
    presence = ds.au_presence([12, "AU27", "AU99"])
    np.testing.assert_array_equal(presence[:2, :2], [[1, 1], [0, 0]])
    np.testing.assert_array_equal(ds.au_known([12, 99]), [[True, False], [True, False], [False, False]])
    assert np.isnan(presence[2, :2]).all() and np.isnan(presence[:, 2]).all()  # never coded -> unknown
    intensity = ds.au_intensity([12, 27])
    assert intensity[0, 0] == 4 and np.isnan(intensity[0, 1]) and (intensity[1] == 0).all()
    assert np.isnan(intensity[2]).all()


def test_lateral_targets_from_each_kind_of_side_information():
    # CASME II style: one AU code plus the side it was coded on ("" with the AU present = both sides)
    casme = _manifest(4, AU12=[1.0, 1.0, 0.0, np.nan], AU12_int=[np.nan, 3.0, 0.0, np.nan],
                      AU12_side=["L", "", "", ""])
    ds = Dataset(np.zeros((4, 8, 8, 1), np.uint8), casme, ("happiness",))
    np.testing.assert_array_equal(ds.au_presence(["L12", "R12"])[:3], [[1, 0], [1, 1], [0, 0]])
    assert np.isnan(ds.au_presence(["L12", "R12"])[3]).all()
    got = ds.au_intensity(["L12", "R12"])
    assert np.isnan(got[0, 0]) and got[0, 1] == 0 and list(got[1]) == [3, 3]
    # CK+ style: no side coded, so a present AU's side is unknown and an absent one is absent on both
    ck = Dataset(np.zeros((2, 8, 8, 1), np.uint8), _manifest(2, AU14=[1.0, 0.0], AU14_int=[2.0, 0.0]), ("happiness",))
    both = ck.au_presence(["L14", "R14"])
    assert np.isnan(both[0]).all() and (both[1] == 0).all()
    assert ck.au_labels == ["AU14"] and ds.au_labels == ["AU12", "L12", "R12"]


def test_synthfacs_direct_path_keeps_what_the_renderer_knows(posed):
    m = posed.manifest
    assert posed.images.shape[1:] == (32, 32, 1) and len(posed) == len(m) >= 20
    assert posed.extras["masks"].shape == (len(posed), len(AU_CODES), 32, 32)
    assert posed.extras["au_values"].shape == (len(posed), len(AU_CODES))
    assert all(m[f"AU{c}"].dtype == np.float64 for c in AU_CODES)
    assert not np.isnan(posed.au_presence(posed.au_labels)).any()  # every frame fully coded
    # per-side grades give exact L/R truth on every frame
    lr = posed.au_intensity(["L12", "R12"])
    np.testing.assert_array_equal(lr, m[["L12_int", "R12_int"]].to_numpy(np.float32))
    # a frame rendered without expression is neutral, as CK+ protocols label first frames
    first = m.groupby("sequence")["frame"].transform("min") == m["frame"]
    assert (m.loc[first, "label_name"] == "neutral").all() and (m.loc[~first, "label_name"] != "neutral").all()
    assert (m.loc[first, "sequence_label"] != "neutral").all()
    assert (posed.au_presence(posed.au_labels)[first.to_numpy()] == 0).all()
    # masks mark where present AUs act, and only those
    present = posed.au_presence([f"AU{c}" for c in AU_CODES]) == 1
    has_mask = posed.extras["masks"].reshape(len(posed), len(AU_CODES), -1).max(axis=2) > 0
    np.testing.assert_array_equal(has_mask, present)


def test_clips_round_trip_and_stream_one_warp_per_clip(posed, tmp_path):
    clips = posed.clips(4)
    n_seq = posed.manifest["sequence"].nunique()
    assert clips.is_clips and clips.images.shape == (n_seq, 4, 32, 32, 1)
    assert clips.extras["masks"].shape == (n_seq, 4, len(AU_CODES), 32, 32)
    assert clips.extras["clip_frames"].shape == (n_seq, 4)
    for i, row in clips.manifest.iterrows():
        frames = posed.manifest[posed.manifest["sequence"] == row["sequence"]].sort_values("frame")
        assert clips.extras["clip_frames"][i, 0] == frames["frame"].iloc[0]
        assert clips.extras["clip_frames"][i, -1] == frames["frame"].iloc[-1]
        assert row["is_apex"] and row["label_name"] == frames["sequence_label"].iloc[0]  # the apex row labels the clip
        idx = frames.index[frames["frame"] == clips.extras["clip_frames"][i, 1]][0]
        np.testing.assert_array_equal(clips.images[i, 1], posed.images[idx])
    back = Dataset.load(clips.save(tmp_path / "clips"))
    np.testing.assert_array_equal(back.images, clips.images)
    pd.testing.assert_frame_equal(back.manifest, clips.manifest)
    np.testing.assert_array_equal(back.extras["masks"], clips.extras["masks"])
    disk = Dataset.load(tmp_path / "clips", mmap=True)
    assert isinstance(disk.images, np.memmap) and disk.is_clips
    y = disk.labels
    for a, b in zip(training_stream(clips.images, y, 2, AUG, seed=1), training_stream(disk.images, y, 2, AUG, seed=1)):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


def test_memmapped_dataset_streams_like_the_loaded_one(posed, tmp_path):
    posed.save(tmp_path / "ds")
    ram, disk = Dataset.load(tmp_path / "ds"), Dataset.load(tmp_path / "ds", mmap=True)
    assert isinstance(disk.images, np.memmap) and not isinstance(ram.images, np.memmap)
    assert isinstance(disk.extras["masks"], np.memmap)
    y = disk.au_presence(disk.au_labels)
    np.testing.assert_array_equal(y, ram.au_presence(ram.au_labels))
    for a, b in zip(training_stream(ram.images, y, 8, AUG, seed=3), training_stream(disk.images, y, 8, AUG, seed=3)):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    batches = [b.numpy() for b in eval_stream(disk.images, None, 7)]
    np.testing.assert_array_equal(np.concatenate(batches), ram.images.astype(np.float32))


def test_ckplus_writer_codes_the_apex_only_and_keeps_uncoded_apexes_uncoded(posed, tmp_path):
    m = posed.manifest.copy()
    seqs = sorted(m["sequence"].unique())
    uncoded, coded = seqs[0], seqs[1]
    last = m.groupby("sequence")["frame"].transform("max") == m["frame"]
    for c in AU_CODES:
        m.loc[(m["sequence"] == uncoded) & last, [f"AU{c}", f"AU{c}_int"]] = np.nan
    m.loc[(m["sequence"] == coded) & ~last, "AU43"] = 1.0  # earlier frames' AUs never reach the FACS file
    ds = Dataset(posed.images, m, posed.classes, "posed")
    write_ckplus(ds, tmp_path / "ck")
    assert not any((tmp_path / "ck/FACS").rglob(f"{uncoded}_*_facs.txt"))  # CK+ ships uncoded sequences so
    assert len(list((tmp_path / "ck/FACS").rglob(f"{coded}_*_facs.txt"))) == 1
    back = read_ckplus(tmp_path / "ck", last_k=1)
    peak = back.manifest[(back.manifest["sequence"] == uncoded) & (back.manifest["role"] == "peak")]
    assert len(peak) == 1 and peak[[f"AU{c}" for c in AU_CODES]].isna().all(axis=None)
    apex = back.manifest[(back.manifest["sequence"] == coded) & (back.manifest["role"] == "peak")].iloc[0]
    src = m[(m["sequence"] == coded) & last].iloc[0]
    assert [apex[f"AU{c}"] for c in AU_CODES] == [src[f"AU{c}"] for c in AU_CODES]


def test_au_label_names():
    assert [au_label(k) for k in (12, "12", "au12", "AU012", "l12", "R14")] == ["AU12"] * 4 + ["L12", "R14"]
    assert mirrored("L12") == "R12" and mirrored("R14") == "L14" and mirrored(6) == "AU6"
    with pytest.raises(ValueError, match="AU"):
        au_label("X12")

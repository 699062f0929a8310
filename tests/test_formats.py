"""Each on-disk format: write -> read round trips exactly, and bad data fails clearly with no output."""

from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pandas as pd
import pytest

from ferops.data import formats
from ferops.data.dataset import Dataset
from ferops.data.formats import FORMATS, DatasetFormatError, read, write
from ferops.data.formats.casme2 import (
    CLASSES_ALL,
    COLUMNS as CASME2_COLUMNS,
    parse_action_units,
    read_casme2,
    write_casme2,
)
from ferops.data.formats.ckplus import format_float, read_ckplus, write_ckplus
from ferops.data.formats.fer2013_csv import read_fer2013, write_fer2013
from ferops.data.formats.image_folders import CKPLUS48_PATTERN, FEROPS_PATTERN, read_folders, write_folders
from ferops.data.formats.skipped import describe, reader_notes
from ferops.data.vocab import CKPLUS_CODES, FERPLUS_COLUMNS
from ferops.errors import FeropsError

from format_fixtures import draw_face, make, native_names


def au_frame(manifest: pd.DataFrame, codes) -> pd.DataFrame:
    return manifest[[f"AU{c}" for c in codes] + [f"AU{c}_int" for c in codes]].reset_index(drop=True)


# --- FER2013 --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wild():
    return make("wild", n=21, seed=1, size=48, channels=1)


def test_fer2013_round_trip(tmp_path, wild):
    out = write_fer2013(wild, tmp_path / "fer")
    assert out == tmp_path / "fer" / "fer2013.csv"
    assert out.read_text().splitlines()[0] == "emotion,pixels,Usage"
    back = read_fer2013(tmp_path / "fer")
    assert back.classes == ("neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise")
    assert list(back.manifest["label_name"]) == list(wild.manifest["label_name"])
    assert list(back.manifest["split"]) == list(wild.manifest["split"])
    np.testing.assert_array_equal(back.images, wild.images)
    assert back.manifest["subject"].iloc[16] == "fer2013-17" and back.manifest["path"].iloc[16] == "fer2013.csv:17"
    assert back.manifest["subject"].is_unique and "subject" in back.extras["subject_note"]
    assert [back.classes[i] for i in back.labels] == list(back.manifest["label_name"])


def test_fer2013_known_codes_and_usage(tmp_path):
    pixels = " ".join(["7"] * 2304)
    (tmp_path / "fer2013.csv").write_text(
        "emotion,pixels,Usage\n"
        f"0,{pixels},Training\n3,{pixels},PublicTest\n6,{pixels},PrivateTest\n")
    ds = read("fer2013", tmp_path / "fer2013.csv")
    assert list(ds.manifest["label_name"]) == ["anger", "happiness", "neutral"]
    assert list(ds.manifest["split"]) == ["Training", "PublicTest", "PrivateTest"]
    assert ds.images.shape == (3, 48, 48, 1) and (ds.images == 7).all()


def _fer_csv(tmp_path, rows: list[str], header: str = "emotion,pixels,Usage"):
    path = tmp_path / "fer2013.csv"
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


GOOD = "3," + " ".join(["12"] * 2304) + ",Training"


ROW17 = "fer2013.csv data row 17 (line 18): "


@pytest.mark.parametrize("bad_row, message", [
    ("3," + " ".join(["12"] * 2300) + ",Training", "pixels has 2300 values, expected 2304 values"),
    ("3," + " ".join(["12"] * 2303 + ["1.5"]) + ",Training", "pixels value '1.5' is not an integer"),
    ("3," + " ".join(["12"] * 2303 + ["abc"]) + ",Training", "pixels value 'abc' is not an integer"),
    ("3," + " ".join(["12"] * 2303 + ["256"]) + ",Training", "pixels value '256' is not an integer 0..255"),
    ("3," + " ".join(["12"] * 2303 + ["-1"]) + ",Training", "pixels value '-1'"),
    ("9," + " ".join(["12"] * 2304) + ",Training", "emotion '9' is not one of"),
    ("3," + " ".join(["12"] * 2304) + ",Validation", "Usage 'Validation' is not one of"),
    ("3,,Training", "pixels is empty, expected 2304 values"),
    ("3,Training", "2 fields ('3', 'Training'), expected 3: emotion,pixels,Usage; a field is missing"),
    ("3," + " ".join(["12"] * 2304), "2 fields ('3', '12 12 12 12 12 12 12 12 ...'), expected 3: emotion,pixels,Usage"),
])
def test_fer2013_bad_rows_name_the_row(tmp_path, bad_row, message):
    path = _fer_csv(tmp_path, [GOOD] * 16 + [bad_row] + [GOOD] * 3)
    with pytest.raises(DatasetFormatError) as err:
        read_fer2013(path)
    assert str(err.value).startswith(ROW17 + message), str(err.value)
    assert "\n" not in str(err.value)


def test_fer2013_wrong_header(tmp_path):
    path = _fer_csv(tmp_path, [GOOD], header="label,pixels,Usage")
    with pytest.raises(DatasetFormatError, match=r"header is 'label,pixels,Usage', expected exactly 'emotion,pixels,Usage'"):
        read_fer2013(path)


def test_fer2013_parses_across_chunks(tmp_path):
    rng = np.random.default_rng(0)
    pix = rng.integers(0, 256, (2100, 2304), dtype=np.uint8)  # > one parse chunk (2048 rows)
    rows = [f"{i % 7}," + " ".join(map(str, p)) + ",Training" for i, p in enumerate(pix)]
    ds = read_fer2013(_fer_csv(tmp_path, rows))
    np.testing.assert_array_equal(ds.images.reshape(2100, -1), pix)
    bad = rows[:2070] + ["1," + " ".join(["3"] * 2305) + ",Training"] + rows[2071:]
    with pytest.raises(DatasetFormatError, match=r"data row 2071 \(line 2072\): pixels has 2305 values"):
        read_fer2013(_fer_csv(tmp_path, bad))


def test_ferplus_majority_vote(tmp_path):
    pixels = " ".join(["5"] * 2304)
    _fer_csv(tmp_path, [f"{c},{pixels},Training" for c in (0, 3, 6, 1, 2)])
    votes = [  # neutral happiness surprise sadness anger disgust fear contempt unknown NF
        (0, 0, 0, 0, 0, 0, 0, 8, 2, 0),  # contempt
        (0, 9, 1, 0, 0, 0, 0, 0, 0, 0),  # happiness
        (1, 0, 0, 0, 0, 0, 0, 0, 6, 3),  # unknown -> dropped
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 10),  # NF -> dropped
        (0, 0, 5, 0, 0, 0, 5, 0, 0, 0),  # tie -> dropped
    ]
    lines = ["Usage,Image name," + ",".join(FERPLUS_COLUMNS)]
    lines += [f"Training,fer{i:07d}.png," + ",".join(map(str, v)) for i, v in enumerate(votes)]
    (tmp_path / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    ds = read_fer2013(tmp_path, ferplus=True)
    assert list(ds.manifest["label_name"]) == ["contempt", "happiness"]
    assert list(ds.manifest["fer2013_label_name"]) == ["anger", "happiness"]
    assert list(ds.manifest["row"]) == [1, 2] and "contempt" in ds.classes
    assert ds.extras["dropped"] == {"ferplus_unknown_or_nf": 2, "ferplus_tie": 1, "ferplus_no_votes": 0}


def test_fer2013_writer_refuses_contempt_and_writes_nothing(tmp_path, wild):
    m = wild.manifest.copy()
    m.loc[5, "label_name"] = "contempt"
    bad = type(wild)(wild.images, m, wild.classes, "bad")
    with pytest.raises(DatasetFormatError, match="row 6 .*'contempt' has no FER2013 code"):
        write_fer2013(bad, tmp_path / "out")
    assert not (tmp_path / "out" / "fer2013.csv").exists()
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_fer2013_writer_converts_rgb_and_size(tmp_path):
    ds = make("wild", n=7, seed=2, size=64, channels=3)
    back = read_fer2013(write_fer2013(ds, tmp_path / "x.csv"))
    assert back.images.shape == (7, 48, 48, 1)
    assert list(back.manifest["label_name"]) == list(ds.manifest["label_name"])


# --- CK+ ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def posed():
    return native_names(make("posed", n=8, seed=3, size=64, channels=1), "ck+")


def test_ckplus_round_trip(tmp_path, posed):
    write_ckplus(posed, tmp_path / "ck")
    back = read_ckplus(tmp_path / "ck", last_k=3)
    assert back.classes == ("neutral", "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
    src = posed.manifest
    codes = [c for c in posed.au_codes]
    for seq, got in back.manifest.groupby("sequence"):
        orig = src[src["sequence"] == seq].sort_values("frame")
        frames = list(orig["frame"])
        assert list(got["frame"]) == [frames[0]] + frames[-3:]
        assert list(got["label_name"]) == ["neutral"] + [orig["label_name"].iloc[-1]] * 3
        assert set(got["subject"]) == set(orig["subject"])
        apex = au_frame(orig.iloc[[-1]], codes)
        peaks = au_frame(got.iloc[1:], codes)
        pd.testing.assert_frame_equal(peaks, pd.concat([apex] * 3, ignore_index=True), check_dtype=False)
        assert (got.iloc[0][[f"AU{c}" for c in codes]] == 0).all()
        for (_, row) in got.iterrows():
            idx = orig.index[orig["frame"] == row["frame"]][0]
            np.testing.assert_array_equal(back.images[row.name], posed.images[idx])
    assert set(back.manifest["sequence"]) == set(src["sequence"])


def test_ckplus_file_formats(tmp_path, posed):
    write_ckplus(posed, tmp_path / "ck")
    seq = posed.manifest[posed.manifest["sequence"] == "S001_001"]
    last = seq.sort_values("frame").iloc[-1]
    stem = f"S001_001_{int(last['frame']):08d}"
    assert (tmp_path / "ck/cohn-kanade-images/S001/001/S001_001_00000001.png").is_file()
    emotion = (tmp_path / f"ck/Emotion/S001/001/{stem}_emotion.txt").read_text()
    code = {v: k for k, v in CKPLUS_CODES.items()}[last["label_name"]]
    assert emotion == f"   {code}.0000000e+00\n"
    facs = (tmp_path / f"ck/FACS/S001/001/{stem}_facs.txt").read_text()
    expected = "".join(f"{c:16.7e}{(0 if pd.isna(last[f'AU{c}_int']) else int(last[f'AU{c}_int'])):16.7e}\n"
                       for c in posed.au_codes if last[f"AU{c}"] == 1)
    assert facs == expected and facs
    assert all(len(line) == 32 and line.startswith("   ") for line in facs.splitlines())
    assert format_float(12) == "   1.2000000e+01" and format_float(0) == "   0.0000000e+00"
    assert not any((tmp_path / "ck/Emotion").glob("*/*/*_00000001_emotion.txt"))


def _png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def _ck_tree(root, frames=4, colour_last=False):
    """A hand-made CK+ tree: S010/002 labelled (happy, FACS with an unrated AU 27), S010/003 unlabelled."""
    for seq in ("002", "003"):
        for f in range(1, frames + 1):
            img = np.full((49, 64), 10 * f, np.uint8)
            if colour_last and seq == "002" and f == frames:
                img = np.dstack([img, img, np.full_like(img, 200)])  # BGR with red channel 200
            _png(root / f"cohn-kanade-images/S010/{seq}/S010_{seq}_{f:08d}.png", img)
    (root / "Emotion/S010/002").mkdir(parents=True)
    (root / "Emotion/S010/003").mkdir(parents=True)  # real CK+ has empty folders for unlabelled sequences
    (root / f"Emotion/S010/002/S010_002_{frames:08d}_emotion.txt").write_text("   5.0000000e+00\n")
    (root / "FACS/S010/002").mkdir(parents=True)
    (root / f"FACS/S010/002/S010_002_{frames:08d}_facs.txt").write_text(
        "   6.0000000e+00   3.0000000e+00\n   1.2000000e+01   4.0000000e+00\n   2.7000000e+01   0.0000000e+00\n\n")
    return root


def test_ckplus_reads_real_layout(tmp_path):
    ds = read("ck+", _ck_tree(tmp_path / "ck"), last_k=2)
    m = ds.manifest
    assert list(m["frame"]) == [1, 3, 4] and list(m["label_name"]) == ["neutral", "happiness", "happiness"]
    assert list(m["subject"]) == ["S010"] * 3 and list(m["sequence"]) == ["S010_002"] * 3
    assert list(m["AU12"]) == [0, 1, 1] and list(m["AU12_int"]) == [0, 4, 4] and list(m["AU6_int"]) == [0, 3, 3]
    assert list(m["AU27"]) == [0, 1, 1] and m["AU27_int"].iloc[0] == 0 and m["AU27_int"].iloc[1:].isna().all()
    assert ds.images.shape == (3, 49, 64, 1)
    assert ds.images[2, 0, 0, 0] == 40


def test_ckplus_last_k_and_no_neutral(tmp_path):
    root = _ck_tree(tmp_path / "ck")
    ds = read_ckplus(root, last_k=10, neutral_first_frame=False)
    assert list(ds.manifest["frame"]) == [1, 2, 3, 4] and set(ds.manifest["role"]) == {"peak"}
    ds = read_ckplus(root, last_k=10)
    assert list(ds.manifest["label_name"]) == ["neutral", "happiness", "happiness", "happiness"]


def test_ckplus_mixed_gray_colour_and_sizes(tmp_path):
    root = _ck_tree(tmp_path / "ck", colour_last=True)
    _png(root / "cohn-kanade-images/S010/002/S010_002_00000001.png", np.zeros((52, 60), np.uint8))
    ds = read_ckplus(root, last_k=1)
    assert ds.images.shape == (2, 52, 64, 3)
    assert list(ds.manifest["height"]) == [52, 49] and list(ds.manifest["width"]) == [60, 64]
    assert tuple(ds.images[1, 0, 0]) == (200, 40, 40)  # BGR on disk -> RGB in memory
    assert read_ckplus(root, last_k=1, channels=1, size=32).images.shape == (2, 32, 32, 1)


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(b"not an image at all"), "not a readable image"),
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated PNG"),
    (lambda p: p.write_bytes(b""), "image file is empty"),
])
def test_ckplus_corrupt_image(tmp_path, damage, message):
    root = _ck_tree(tmp_path / "ck")
    frame = root / "cohn-kanade-images/S010/002/S010_002_00000003.png"
    damage(frame)
    with pytest.raises(DatasetFormatError, match=message) as err:
        read_ckplus(root)
    assert "S010_002_00000003.png" in str(err.value)


def test_ckplus_bad_label_files(tmp_path):
    root = _ck_tree(tmp_path / "ck")
    emotion = root / "Emotion/S010/002/S010_002_00000004_emotion.txt"
    emotion.write_text("   9.0000000e+00\n")
    with pytest.raises(DatasetFormatError, match="S010_002_00000004_emotion.txt: emotion code 9 is not one of"):
        read_ckplus(root)
    emotion.write_text("   5.0000000e+00\n")
    (root / "FACS/S010/002/S010_002_00000004_facs.txt").write_text("   1.2000000e+01\n")
    with pytest.raises(DatasetFormatError, match="_facs.txt: each line must hold 2 numbers"):
        read_ckplus(root)


def test_ckplus_symlink_escaping_root(tmp_path):
    root = _ck_tree(tmp_path / "ck")
    outside = tmp_path / "elsewhere.png"
    _png(outside, np.zeros((49, 64), np.uint8))
    frame = root / "cohn-kanade-images/S010/002/S010_002_00000004.png"
    frame.unlink()
    frame.symlink_to(outside)
    with pytest.raises(DatasetFormatError, match="outside the dataset root"):
        read_ckplus(root)


def test_ckplus_writer_bad_label_leaves_nothing(tmp_path, posed):
    m = posed.manifest.copy()
    m.loc[m["sequence"] == "S002_001", "label_name"] = "repression"
    with pytest.raises(DatasetFormatError, match="'repression' has no CK\\+ code"):
        write_ckplus(type(posed)(posed.images, m, posed.classes), tmp_path / "ck")
    assert not (tmp_path / "ck").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_ckplus_writer_keeps_previous_output_on_failure(tmp_path, posed):
    write_ckplus(posed, tmp_path / "ck")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "ck").rglob("*"))
    m = posed.manifest.copy()
    m.loc[0, "frame"] = m.loc[1, "frame"]
    with pytest.raises(DatasetFormatError, match="frame numbers must be unique"):
        write_ckplus(type(posed)(posed.images, m, posed.classes), tmp_path / "ck")
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "ck").rglob("*")) == before


def test_ckplus_writer_non_native_names(tmp_path):
    ds = make("posed", n=3, seed=4, size=32)
    m = ds.manifest.copy()
    m["subject"] = m["subject"].map({s: f"person-{i}" for i, s in enumerate(m["subject"].unique())})
    m["sequence"] = m["sequence"].map({q: f"take{i}" for i, q in enumerate(m["sequence"].unique())})
    write("ck+", type(ds)(ds.images, m, ds.classes), tmp_path / "ck")
    back = read("ck+", tmp_path / "ck", last_k=1, neutral_first_frame=False)
    assert set(back.manifest["sequence"]) == {f"{s}_{q}" for s, q in zip(m["subject"], m["sequence"])}
    assert set(back.manifest["subject"]) == set(m["subject"])


# --- CASME II -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def micro():
    ds = native_names(make("micro", n=6, seed=5, size=48, channels=3), "casme2")
    ds.manifest["apex"] = ds.manifest["apex"].astype(float)
    unknown = ds.manifest["sequence"] == ds.manifest["sequence"].iloc[-1]
    ds.manifest.loc[unknown, "apex"] = math.nan  # CASME II writes "/" for an unknown apex
    return ds


def test_casme2_round_trip_all_frames(tmp_path, micro):
    write_casme2(micro, tmp_path / "casme")
    assert (tmp_path / "casme/CASME2-coding-synth.xlsx").is_file() and (tmp_path / "casme/CASME2-coding-synth.csv").is_file()
    back = read_casme2(tmp_path / "casme", classes=CLASSES_ALL)
    src = micro.manifest
    key = ["sequence", "frame"]
    got = back.manifest.sort_values(key).reset_index()
    exp = src.sort_values(key).reset_index()
    for col in ("label_name", "subject", "sequence", "frame", "onset", "offset"):
        assert list(got[col]) == list(exp[col]), col
    np.testing.assert_array_equal(got["apex"].to_numpy(), exp["apex"].to_numpy())
    codes = micro.au_codes
    for seq, rows in exp.groupby("sequence"):
        apex = rows["apex"].iloc[0]
        au_row = rows[rows["frame"] == apex].iloc[0] if not math.isnan(apex) else rows.iloc[0]
        g = got[got["sequence"] == seq]
        for c in codes:
            assert (g[f"AU{c}"] == au_row[f"AU{c}"]).all(), (seq, c)
            if au_row[f"AU{c}"] == 1:
                side = au_row.get(f"AU{c}_side", "")
                side = side if side in ("L", "R") else ""  # SynthFACS "both" = bilateral = no side
                assert (g[f"AU{c}_side"] == side).all() and g[f"AU{c}_int"].isna().all()
    diff = np.abs(back.images[got["index"]].astype(int) - micro.images[exp["index"]].astype(int))
    assert diff.mean() < 3  # JPEG q95


def test_casme2_frame_modes_and_unknown_apex(tmp_path, micro):
    write_casme2(micro, tmp_path / "casme")
    n_seq = micro.manifest["sequence"].nunique()
    unknown = micro.manifest.groupby("sequence")["apex"].first().isna().sum()
    assert unknown == 1
    apex = read_casme2(tmp_path / "casme", frames="apex", classes=CLASSES_ALL)
    assert len(apex) == n_seq - unknown and (apex.manifest["frame"] == apex.manifest["apex"]).all()
    assert apex.extras["dropped"]["apex_unknown"] == unknown
    oao = read_casme2(tmp_path / "casme", frames="onset_apex_offset", classes=CLASSES_ALL)
    assert list(oao.manifest["role"][:3]) == ["onset", "apex", "offset"] and len(oao) == 3 * (n_seq - unknown)


def _casme_tree(root, rows, sheet="coding.csv"):
    for subject, clip in {(r[0], r[1]) for r in rows}:
        folder = root / "CASME2_RAW_selected" / f"sub{int(subject):02d}" / clip
        for f in range(46, 52):
            _png(folder / f"img{f}.jpg", np.full((30, 40, 3), f, np.uint8))
    table = pd.DataFrame(rows, columns=["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                                        "Action Units", "Estimated Emotion"])
    if sheet.endswith(".xlsx"):
        table.to_excel(root / sheet, index=False)
    else:
        table.to_csv(root / sheet, index=False)
    return root


REAL_ROWS = [(1, "EP02_01f", 46, 48, 51, "1+2+25", "happiness"),
             (1, "EP03_02", 46, "/", 50, "4+L10", "others"),
             (2, "EP01_11f", 47, 49, 51, "R12", "sadness"),
             (2, "EP19_05f", 46, 47, 49, "4+7", "repression")]


@pytest.mark.parametrize("sheet", ["coding.csv", "CASME2-coding-20140508.xlsx"])
def test_casme2_reads_real_layout(tmp_path, sheet):
    ds = read("casme2", _casme_tree(tmp_path, REAL_ROWS, sheet), frames="apex")
    m = ds.manifest
    assert ds.classes == ("happiness", "disgust", "repression", "surprise", "others")
    assert list(m["sequence"]) == ["sub01_EP02_01f", "sub02_EP19_05f"] and list(m["subject"]) == ["sub01", "sub02"]
    assert list(m["frame"]) == [48, 47] and list(m["label_name"]) == ["happiness", "repression"]
    assert ds.extras["dropped"] == {"class_not_kept": 1, "apex_unknown": 1}
    assert list(m["AU25"]) == [1, 0] and list(m["AU7"]) == [0, 1]
    assert m["path"].iloc[0] == "CASME2_RAW_selected/sub01/EP02_01f/img48.jpg"
    assert tuple(ds.images[0, 0, 0]) == (48, 48, 48)
    every = read_casme2(tmp_path, classes=CLASSES_ALL)
    assert len(every) == 4 * 6 and list(every.manifest.loc[every.manifest["sequence"] == "sub01_EP03_02", "AU10_side"])[0] == "L"
    assert every.manifest.loc[every.manifest["sequence"] == "sub02_EP01_11f", "AU12_side"].eq("R").all()


def test_parse_action_units():
    assert parse_action_units("4+7") == {4: "", 7: ""}
    assert parse_action_units("R12") == {12: "R"}
    assert parse_action_units("L10") == {10: "L"}
    assert parse_action_units("1+2+25") == {1: "", 2: "", 25: ""}
    assert parse_action_units("4+L10") == {4: "", 10: "L"}
    assert parse_action_units("L12+R12") == {12: ""}
    assert parse_action_units("") == {}
    with pytest.raises(DatasetFormatError, match="'X' is not an AU"):
        parse_action_units("4+X")


def test_casme2_bad_au_string_names_row(tmp_path):
    rows = list(REAL_ROWS)
    rows[2] = (2, "EP01_11f", 47, 49, 51, "4+X", "happiness")
    with pytest.raises(DatasetFormatError,
                       match=r"^coding.csv data row 3 \(line 4\): Action Units '4\+X': 'X' is not an AU"):
        read_casme2(_casme_tree(tmp_path, rows))


def test_casme2_missing_column(tmp_path):
    root = _casme_tree(tmp_path, REAL_ROWS)
    table = pd.read_csv(root / "coding.csv").drop(columns=["ApexFrame"])
    table.to_csv(root / "coding.csv", index=False)
    with pytest.raises(DatasetFormatError, match=r"coding.csv: missing column\(s\) \['ApexFrame'\]"):
        read_casme2(root)


def test_casme2_bad_frame_number(tmp_path):
    rows = list(REAL_ROWS)
    rows[0] = (1, "EP02_01f", "abc", 48, 51, "1", "happiness")
    with pytest.raises(DatasetFormatError,
                       match=r"^coding.csv data row 1 \(line 2\): OnsetFrame 'abc' is not a frame number$"):
        read_casme2(_casme_tree(tmp_path, rows))


@pytest.mark.parametrize("sheet, where", [("coding.csv", "line"), ("CASME2-coding-20140508.xlsx", "sheet row")])
def test_casme2_bad_cell_names_data_row_and_line(tmp_path, sheet, where):
    root = _casme_tree(tmp_path, REAL_ROWS, sheet)

    def second_row_is(bad):
        table = pd.DataFrame(REAL_ROWS[:1] + [bad] + REAL_ROWS[2:], columns=list(CASME2_COLUMNS))
        if sheet.endswith(".xlsx"):
            table.to_excel(root / sheet, index=False)
        else:
            table.to_csv(root / sheet, index=False)
        with pytest.raises(DatasetFormatError) as err:
            read_casme2(root)
        assert "\n" not in str(err.value)
        return str(err.value)

    prefix = f"{sheet} data row 2 ({where} 3): "
    assert second_row_is((1, "EP03_02", 46, "4?", 50, "4+L10", "others")) == \
        prefix + "ApexFrame '4?' is not a frame number or '/'"
    assert second_row_is((1, "EP03_02", 46, 48, 50, "4+L10", "bored")).startswith(
        prefix + "Estimated Emotion: label 'bored' is not in the mapping")
    assert second_row_is(("subX", "EP03_02", 46, 48, 50, "4+L10", "others")).startswith(
        prefix + "Subject 'X' is not a subject number")
    assert second_row_is((1, "", 46, 48, 50, "4+L10", "others")) == prefix + "Filename is empty"


def test_casme2_ragged_csv_row(tmp_path):
    root = _casme_tree(tmp_path, REAL_ROWS)
    lines = (root / "coding.csv").read_text().splitlines()
    lines[3] += ",extra"
    (root / "coding.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError,
                       match=r"^coding.csv data row 3 \(line 4\): 8 fields, expected 7: .* extra 'extra'$"):
        read_casme2(root)


def test_casme2_filename_escaping_root(tmp_path):
    root = _casme_tree(tmp_path / "casme", REAL_ROWS)
    _png(tmp_path / "secret" / "img48.jpg", np.zeros((30, 40, 3), np.uint8))
    table = pd.read_csv(root / "coding.csv", dtype=str)
    table.loc[0, "Filename"] = "../../../secret"
    table.to_csv(root / "coding.csv", index=False)
    with pytest.raises(DatasetFormatError, match=r"data row 1 \(line 2\): Filename: .*outside the dataset root"):
        read_casme2(root)


def test_casme2_truncated_jpeg(tmp_path):
    root = _casme_tree(tmp_path, REAL_ROWS)
    frame = root / "CASME2_RAW_selected/sub01/EP02_01f/img48.jpg"
    frame.write_bytes(frame.read_bytes()[:-40])
    with pytest.raises(DatasetFormatError, match="img48.jpg: truncated JPEG"):
        read_casme2(root, frames="apex")


def test_casme2_writer_needs_marks(tmp_path):
    ds = make("posed", n=2, seed=0, size=32)
    with pytest.raises(DatasetFormatError, match=r"lacks \['onset', 'apex', 'offset'\]"):
        write_casme2(ds, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_casme2_writer_without_side_columns(tmp_path, micro):
    m = micro.manifest.drop(columns=[c for c in micro.manifest.columns if c.endswith("_side")])
    write_casme2(type(micro)(micro.images, m, micro.classes), tmp_path / "c")
    sheet = pd.read_csv(tmp_path / "c/CASME2-coding-synth.csv", dtype=str, keep_default_na=False)
    assert not sheet["Action Units"].str.contains("[LR]").any()
    assert "/" in set(sheet["ApexFrame"])


# --- image folders --------------------------------------------------------------------------------------------

def test_folders_round_trip(tmp_path):
    ds = make("wild", n=14, seed=6, size=40, channels=3)
    write_folders(ds, tmp_path / "f")
    first = ds.manifest.iloc[0]
    assert (tmp_path / "f" / first["split"] / first["label_name"]).is_dir()
    back = read_folders(tmp_path / "f", subject_pattern=FEROPS_PATTERN)
    got = back.manifest.sort_values("subject").reset_index()
    exp = ds.manifest.sort_values("subject").reset_index()
    for col in ("label_name", "subject", "sequence", "frame", "split"):
        assert list(got[col]) == list(exp[col]), col
    np.testing.assert_array_equal(back.images[got["index"]], ds.images[exp["index"]])


def test_folders_ckplus48_layout(tmp_path):
    for folder, names in {"anger": ["S010_004_00000017", "S010_004_00000018"], "contempt": ["S138_008_00000007"],
                          "happy": ["S011_006_00000013"]}.items():
        for name in names:
            _png(tmp_path / "CK+48" / folder / f"{name}.png", draw_face(48))
    (tmp_path / "CK+48/anger/README.txt").write_text("not an image")
    ds = read_folders(tmp_path / "CK+48", subject_pattern=r"^(S\d{3})_")
    assert list(ds.manifest["subject"]) == ["S010", "S010", "S138", "S011"]
    assert ds.classes == ("anger", "contempt", "happiness") and set(ds.manifest["split"]) == {"unsplit"}
    assert ds.extras["skipped_files"] == {"not images": {".txt": 1}} and ds.extras["subjects_known"] is True
    ds = read_folders(tmp_path / "CK+48", subject_pattern=CKPLUS48_PATTERN, channels=1)
    assert list(ds.manifest["sequence"]) == ["S010_004", "S010_004", "S138_008", "S011_006"]
    assert list(ds.manifest["frame"]) == [17, 18, 7, 13] and ds.images.shape[-1] == 1


def test_folders_fer_variant(tmp_path):
    for split in ("train", "test"):
        for folder in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"):
            _png(tmp_path / "fer" / split / folder / f"im{len(folder)}.jpg", draw_face(48))
    ds = read("folders", tmp_path / "fer")
    assert len(ds) == 14 and set(ds.manifest["split"]) == {"train", "test"}
    assert set(ds.manifest["label_name"]) == {"anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"}
    # no subject_pattern: image-level, and the subject is the path (train/ and test/ repeat file names)
    assert ds.manifest["subject"].is_unique and ds.manifest["subject"].iloc[0] == "test/angry/im5.jpg"
    assert ds.extras == {"subjects_known": False}
    assert ds.images.shape[1:] == (48, 48, 1)


def test_folders_unmapped_class_folder(tmp_path):
    _png(tmp_path / "f/train/happy/a.png", draw_face(48))
    _png(tmp_path / "f/train/bored/b.png", draw_face(48))
    with pytest.raises(DatasetFormatError, match="class folder 'bored' is not in the mapping"):
        read_folders(tmp_path / "f")
    _png(tmp_path / "g/happy/a.png", draw_face(48))
    _png(tmp_path / "g/bored/b.png", draw_face(48))
    with pytest.raises(DatasetFormatError, match=r"folder\(s\) \['bored'\] are not class names"):
        read_folders(tmp_path / "g")


def test_folders_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match="empty folder"):
        read_folders(tmp_path / "empty")
    (tmp_path / "f/happy").mkdir(parents=True)
    with pytest.raises(DatasetFormatError, match="happy: empty folder"):
        read_folders(tmp_path / "f")


def test_folders_symlink_escape(tmp_path):
    _png(tmp_path / "outside.png", draw_face(48))
    (tmp_path / "f/happy").mkdir(parents=True)
    os.symlink(tmp_path / "outside.png", tmp_path / "f/happy/a.png")
    with pytest.raises(DatasetFormatError, match="outside the dataset root"):
        read_folders(tmp_path / "f")


def test_folders_subject_pattern_must_match(tmp_path):
    _png(tmp_path / "f/train/happy/Training_123.jpg", draw_face(48))
    with pytest.raises(DatasetFormatError) as err:
        read_folders(tmp_path / "f", subject_pattern=r"^(S\d{3})_")
    message = str(err.value)
    assert message.startswith(f"{tmp_path}/f/train/happy/Training_123.jpg: subject_pattern '^(S\\\\d{{3}})_' does not "
                              f"match the file name 'Training_123'")
    assert "set `subject_pattern: null`" in message and "\n" not in message
    with pytest.raises(FeropsError, match="needs a group"):
        read_folders(tmp_path / "f", subject_pattern=r"^S\d{3}_")
    with pytest.raises(FeropsError, match="not a valid regular expression"):
        read_folders(tmp_path / "f", subject_pattern=r"^(S\d{3}_")


@pytest.mark.parametrize("pattern", [None, ""])
def test_folders_without_subject_pattern_are_image_level(tmp_path, pattern):
    """The standard FER2013 folder copy: no subject ids, so every image is its own subject, flagged and saved."""
    names = {"train/angry": ["Training_123.jpg", "Training_99.jpg"], "test/angry": ["PrivateTest_10131363.jpg"],
             "train/happy": ["Training_7.jpg"], "test/happy": ["Training_7.jpg"]}  # same name on both sides
    for folder, files in names.items():
        for name in files:
            _png(tmp_path / "fer" / folder / name, draw_face(48, shade=150 + len(name)))
    ds = read("folders", tmp_path / "fer", subject_pattern=pattern)
    assert sorted(ds.manifest["subject"]) == sorted(f"{folder}/{n}" for folder, files in names.items() for n in files)
    assert (ds.manifest["subject"] == ds.manifest["path"]).all()
    assert (ds.manifest["sequence"] == ds.manifest["path"]).all()
    assert ds.extras["subjects_known"] is False and not ds.subjects_known
    saved = Dataset.load(ds.save(tmp_path / "processed"))
    assert saved.extras["subjects_known"] is False and not saved.subjects_known
    assert '"subjects_known": false' in (tmp_path / "processed" / "meta.json").read_text()


def test_subjects_known_per_format(tmp_path, wild):
    write_fer2013(wild, tmp_path / "fer")
    assert not read_fer2013(tmp_path / "fer").subjects_known
    assert read_fer2013(tmp_path / "fer").extras["subjects_known"] is False
    _png(tmp_path / "ck48/happy/S010_004_00000017.png", draw_face(48))
    assert read_folders(tmp_path / "ck48", subject_pattern=CKPLUS48_PATTERN).subjects_known
    posed = make("posed", n=2, seed=0, size=32)
    assert posed.extras["subjects_known"] is True  # SynthFACS says so: its presets draw a fixed set of people
    assert make("wild", n=3, seed=0, size=32).extras["subjects_known"] is False  # a new identity per image
    unflagged = Dataset(posed.images, posed.manifest, posed.classes, "x")  # in memory, no flag: derived
    assert unflagged.subjects_known  # subjects repeat, so they are known
    assert not unflagged.subset([0]).subjects_known  # one image per subject: image-level


def test_folders_skipped_files_are_counted_by_reason(tmp_path):
    _png(tmp_path / "fer/train/happy/a.png", draw_face(48))
    _png(tmp_path / "fer/test/happy/b.png", draw_face(48))
    (tmp_path / "fer/train/happy/notes.txt").write_text("x")
    (tmp_path / "fer/test/happy/.DS_Store").write_bytes(b"\0")
    (tmp_path / "fer/test/happy/._b.png").write_bytes(b"\0")
    (tmp_path / "fer/test/happy/more").mkdir()
    (tmp_path / "fer/README.md").write_text("x")
    (tmp_path / "fer/train/labels.csv").write_text("x")
    ds = read_folders(tmp_path / "fer")
    assert len(ds) == 2
    assert ds.extras["skipped_files"] == {
        "outside class folders": {".md": 1, ".csv": 1},
        "not images": {".DS_Store": 1, "._* (macOS metadata)": 1, ".txt": 1},
        "folders inside class folders (not read)": {"folder": 1},
    }
    assert describe(ds.extras["skipped_files"]) == (
        "skipped 6 files: 2 outside class folders (1 .md, 1 .csv), "
        "3 not images (1 .DS_Store, 1 ._* (macOS metadata), 1 .txt), "
        "1 folders inside class folders (not read) (1 folder)")
    assert describe({}) is None and describe(None) is None


def test_reader_notes_name_format_exclusions(tmp_path):
    assert reader_notes({"dropped": {"class_not_kept": 3, "apex_unknown": 0}}) == [
        "excluded 3 by the format's protocol: 3 class not kept"]
    assert reader_notes({"skipped_files": {"not images": {".txt": 2}}}) == ["skipped 2 files: 2 not images (2 .txt)"]
    assert reader_notes({}) == []


def test_folders_writer_refuses_micro_labels(tmp_path):
    ds = make("micro", n=3, seed=0, size=32)
    ds.manifest["label_name"] = "repression"
    with pytest.raises(DatasetFormatError, match="'repression' has no class folder"):
        write_folders(ds, tmp_path / "f")
    assert not (tmp_path / "f").exists()


# --- registry -------------------------------------------------------------------------------------------------

def test_registry():
    assert set(FORMATS) == {"fer2013", "ck+", "casme2", "folders"}
    assert issubclass(DatasetFormatError, ValueError) and formats.DatasetFormatError is DatasetFormatError
    with pytest.raises(ValueError, match="unknown dataset format 'jaffe'"):
        read("jaffe", ".")


def test_fer2013_extra_field(tmp_path):
    path = _fer_csv(tmp_path, [GOOD, GOOD + ",oops", GOOD])
    with pytest.raises(DatasetFormatError) as err:
        read_fer2013(path)
    assert str(err.value) == ("fer2013.csv data row 2 (line 3): 4 fields, expected 3: emotion,pixels,Usage; "
                              "extra 'oops'")


def test_ferplus_bad_rows_name_the_row(tmp_path):
    pixels = " ".join(["5"] * 2304)
    _fer_csv(tmp_path, [f"3,{pixels},Training"] * 3)
    header = "Usage,Image name," + ",".join(FERPLUS_COLUMNS)
    good = "Training,fer0.png,0,10,0,0,0,0,0,0,0,0"
    (tmp_path / "fer2013new.csv").write_text("\n".join([header, good, "Training,fer1.png,0,10,0,x,0,0,0,0,0,0", good]))
    with pytest.raises(DatasetFormatError,
                       match=r"^fer2013new.csv data row 2 \(line 3\): sadness 'x' is not an integer"):
        read_fer2013(tmp_path, ferplus=True)
    (tmp_path / "fer2013new.csv").write_text("\n".join([header, good, good, "Training,fer2.png,0,10,0,0,0,0,0,0,0"]))
    with pytest.raises(DatasetFormatError, match=r"^fer2013new.csv data row 3 \(line 4\): 11 fields .*expected 12: "
                                                 r"Usage,Image name,neutral.*a field is missing$"):
        read_fer2013(tmp_path, ferplus=True)


def test_read_ignores_other_formats_options_but_not_typos(tmp_path, wild):
    write("fer2013", wild, tmp_path)
    ds = read("fer2013", tmp_path, last_k=3, subject_pattern=r"^(S\d{3})_")  # CK+ / folders options
    assert len(ds) == len(wild)
    with pytest.raises(TypeError, match=r"unknown reader option\(s\) \['last_kk'\]"):
        read("fer2013", tmp_path, last_kk=3)

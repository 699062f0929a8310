"""`ferops predict` on what users have: folders of mixed images, videos, broken files (a plain .keras model).

Runs the real command in-process (ferops.cli.main) on real files; the bundle (fer-pipeline) path and its
agreement with the pyfunc and REST are in test_serving.py.
"""

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from ferops.cli import main
from ferops.config import overlay
from ferops.models import build_cnn
from ferops.serving.synthetic import background, still, write_video

from conftest import ROOT, TINY, make_params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder with params.yaml (TINY) and an untrained tiny emotion model: scoring needs no training."""
    root = tmp_path_factory.mktemp("predict")
    data = overlay(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (root / "params.yaml").write_text(yaml.safe_dump(data))
    build_cnn(dataclasses.replace(make_params().model, width=0.125), (48, 48, 1), 8).save(root / "model.keras")
    return root


def _predict(project, capsys, *args):
    """(exit status, stdout, stderr lines) of `ferops predict --model model.keras ARGS`."""
    try:
        main(["--params", str(project / "params.yaml"), "predict", "--model", str(project / "model.keras"), *args])
        status = 0
    except SystemExit as exc:
        status = exc.code
    out = capsys.readouterr()
    return status, out.out, out.err.strip().splitlines()


def _bgr(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def test_a_folder_of_mixed_images_scores_every_readable_face_and_names_the_broken_file(project, tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(still(1), cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(folder / "rgb.png"), _bgr(still(3)))
    # Scenes whose face Haar finds: it misses 4 of stills 0-59 (4, 14, 19, 31), a detector limit, not a format one.
    cv2.imwrite(str(folder / "sub" / "rgba.png"), cv2.cvtColor(still(2), cv2.COLOR_RGB2BGRA))
    cv2.imwrite(str(folder / "sub" / "deep.png"), _bgr(still(5)).astype(np.uint16) * 257)  # 16-bit PNG
    cv2.imwrite(str(folder / "photo.jpg"), _bgr(still(6)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(folder / "two.png"), _bgr(still(7, faces=2)))
    cv2.imwrite(str(folder / "empty.png"), _bgr(background(np.random.default_rng(0), 320, 240)))
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (folder / "notes.txt").write_text("not an image: skipped")

    status, _, err = _predict(project, capsys, str(folder), "--out", str(tmp_path / "faces.csv"))

    assert status == 1  # some input unreadable, the rest written
    rows = pd.read_csv(tmp_path / "faces.csv")
    readable = {"gray.png", "rgb.png", "sub/rgba.png", "sub/deep.png", "photo.jpg", "two.png"}
    assert {Path(p).relative_to(folder).as_posix() for p in rows["image"]} == readable
    two = rows[rows["image"].str.endswith("two.png")].sort_values("face")
    assert len(two) == 2 and two["w"].iloc[0] >= two["w"].iloc[1]  # one row per face, largest first
    probs = rows.filter(like="p_")
    assert probs.shape[1] == 8 and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert (rows["prediction"] == probs.idxmax(axis=1).str.removeprefix("p_")).all()
    broken = [line for line in err if "broken.png" in line]
    assert len(broken) == 1 and "truncated PNG" in broken[0]
    assert any(line.endswith("empty.png: no face found") for line in err)
    assert "scored 7 faces in 7 frames of 8 inputs" in err[-1] and "frames/s" in err[-1]
    # 16-bit and 8-bit copies of one picture, and its gray/RGBA versions, go through the same decoder:
    status, out, _ = _predict(project, capsys, str(folder / "two.png"), "--max-faces", "1")
    assert status == 0 and len(json.loads(out)) == 1


def test_json_on_stdout_groups_box_and_probabilities(project, tmp_path, capsys):
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), _bgr(still(3)))
    status, out, err = _predict(project, capsys, str(face))
    assert status == 0, err
    (record,) = json.loads(out)
    assert record["image"] == str(face) and record["frame"] == 0 and record["face"] == 0
    assert len(record["box"]) == 4 and isinstance(record["aligned"], bool)
    assert set(record["probabilities"]) == {"neutral", "anger", "contempt", "disgust", "fear", "happiness",
                                            "sadness", "surprise"}
    assert record["prediction"] == max(record["probabilities"], key=record["probabilities"].get)


def test_videos_stream_with_stride_annotation_and_broken_files_named(project, tmp_path, capsys):
    video = tmp_path / "clip.avi"
    counts = write_video(video, 20, width=320, height=240, size=100, segment=10)  # 2 faces, then 1
    assert counts == [2] * 10 + [1] * 10
    data = video.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])  # truncated: frames up to the cut are readable
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4000))  # not a video at all

    status, _, err = _predict(project, capsys, str(video), str(tmp_path / "cut.avi"), str(tmp_path / "noise.mp4"),
                              "--stride", "2", "--out", str(tmp_path / "rows.csv"), "--annotate", str(tmp_path / "ann"))

    assert status == 1
    rows = pd.read_csv(tmp_path / "rows.csv")
    clip = rows[rows["image"] == str(video)]
    assert set(clip["frame"]) <= set(range(0, 20, 2)) and {0, 18} <= set(clip["frame"])
    per_frame = clip.groupby("frame").size()
    assert per_frame.loc[0] >= 2 and per_frame.loc[18] == 1  # the two-face shot, then the one-face shot
    assert (clip.groupby("frame")["face"].apply(lambda f: sorted(f) == list(range(len(f))))).all()
    cut = rows[rows["image"] == str(tmp_path / "cut.avi")]
    assert 0 < cut["frame"].max() < 18
    assert any("noise.mp4: cannot open as a video" in line for line in err)
    assert any("cut.avi: video ended after" in line and "the frames read were scored" in line for line in err)
    annotated = cv2.VideoCapture(str(tmp_path / "ann" / "clip.mp4"))
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 10 and annotated.read()[1].shape == (240, 320, 3)
    annotated.release()
    assert (tmp_path / "ann" / "cut.mp4").exists()


def test_bad_requests_are_one_line(project, tmp_path, capsys):
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), _bgr(still(3)))
    for args, fragment in (([str(face), "--annotate", str(tmp_path / "a.mp4")], "a video file takes exactly one"),
                           ([str(face), "--out", str(tmp_path / "rows.txt")], "expected a .csv or .json"),
                           ([str(face), "--stride", "0"], "--stride 0: must be >= 1"),
                           ([str(tmp_path / "missing.png")], "missing.png: no such file or folder")):
        status, _, err = _predict(project, capsys, *args)
        assert status == 2 and len(err) == 1 and fragment in err[0], err

"""The preprocess step counts on stdout every image it leaves out, and writes data + rejects.csv as one unit."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from ferops import pipeline
from ferops.data.dataset import Dataset

from conftest import make_params
from format_fixtures import face_on_canvas


def test_preprocess_prints_face_rejects_and_reader_skips(tmp_path, capsys):
    raw = tmp_path / "raw"
    for i, name in enumerate(("S001_001_00000001", "S002_001_00000001")):
        (raw / "happy").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(raw / "happy" / f"{name}.png"), face_on_canvas(200, 480, angle=4 * i)[:, :, 0])
    cv2.imwrite(str(raw / "happy" / "S003_001_00000001.png"), np.full((480, 480), 90, np.uint8))  # no face
    (raw / "happy" / "Thumbs.db").write_bytes(b"\0")
    params = make_params({"dataset": {"format": "folders", "raw_dir": str(raw), "processed_dir": str(tmp_path / "p"),
                                      "subject_pattern": r"^(S\d{3})_"},
                          "preprocess": {"detect_faces": True}})
    out = pipeline.preprocess(params)
    assert capsys.readouterr().out.splitlines() == [
        f"{raw}: skipped 1 file: 1 not images (1 .db)",
        "preprocess: rejected 1 image: no face detected (listed in rejects.csv)",
    ]
    rejects = pd.read_csv(out / "rejects.csv")
    assert rejects.to_dict("records") == [{"path": "happy/S003_001_00000001.png", "reason": "no face detected"}]
    processed = Dataset.load(out)
    assert list(processed.manifest["subject"]) == ["S001", "S002"] and processed.extras["subjects_known"] is True
    assert processed.extras["skipped_files"] == {"not images": {".db": 1}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p", "raw"]  # no temp dirs left beside the output

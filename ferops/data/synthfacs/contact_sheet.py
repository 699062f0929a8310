"""A one-glance PNG of a dataset: rows are classes, columns are subjects.

Looking at the data is the cheapest validation there is; a sheet per generated
or loaded dataset catches a broken renderer, a shifted label mapping or a bad
crop before any training time is spent. Sequences contribute their apex frame
(`is_apex`, else the last frame), because that is where the label is true; a
class with no apex rows of its own (CK+ neutral) is shown from first frames.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ferops.data.dataset import Dataset
from ferops.io import atomic_file

LABEL_WIDTH = 110
MIN_CELL = 96


def _representative_rows(dataset: Dataset) -> dict[str, dict[str, int]]:
    """{class: {subject: row}}: apex frames per class and subject; neutral first frames for sequences."""
    m = dataset.manifest.reset_index(drop=True)
    if "is_apex" in m.columns:
        apex = m.index[m["is_apex"].astype(bool)]
    else:
        apex = m.groupby("sequence")["frame"].idxmax().to_numpy()
    cells: dict[str, dict[str, int]] = {name: {} for name in dataset.classes}
    for row in apex:
        cells.setdefault(m.at[row, "label_name"], {}).setdefault(str(m.at[row, "subject"]), int(row))
    if "neutral" in cells and not cells["neutral"] and m["sequence"].nunique() < len(m):
        for row in m.groupby("sequence")["frame"].idxmin().to_numpy():
            cells["neutral"].setdefault(str(m.at[row, "subject"]), int(row))
    return cells


def contact_sheet(dataset: Dataset, path: str | Path, n_subjects: int = 8) -> Path:
    """Write a class x subject grid of faces to `path` (PNG, atomically) and return the path.

    Columns follow the subjects that cover the most classes; where such a subject
    lacks a class (single-image datasets), the row borrows another subject, whose id
    is printed under the face.
    """
    if len(dataset) == 0:
        raise ValueError(f"{dataset.name}: empty dataset, nothing to draw")
    cells = _representative_rows(dataset)
    coverage: dict[str, int] = {}
    for by_subject in cells.values():
        for subject in by_subject:
            coverage[subject] = coverage.get(subject, 0) + 1
    columns = sorted(coverage, key=lambda s: (-coverage[s], s))[:n_subjects]

    h, w, channels = dataset.images.shape[1:]
    cell = max(MIN_CELL, h)
    pad, caption = 4, 14
    rows = len(dataset.classes)
    sheet = np.full((pad + rows * (cell + caption + pad), LABEL_WIDTH + n_subjects * (cell + pad) + pad, 3), 32, np.uint8)
    for r, name in enumerate(dataset.classes):
        y = pad + r * (cell + caption + pad)
        cv2.putText(sheet, name, (6, y + cell // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
        by_subject = cells.get(name, {})
        chosen = [s for s in columns if s in by_subject]
        chosen += [s for s in sorted(by_subject) if s not in chosen][: n_subjects - len(chosen)]
        for c, subject in enumerate(chosen[:n_subjects]):
            face = dataset.images[by_subject[subject]]
            face = np.repeat(face, 3, axis=2) if channels == 1 else face
            face = cv2.resize(face, (cell, cell), interpolation=cv2.INTER_CUBIC if cell > h else cv2.INTER_AREA)
            x = LABEL_WIDTH + pad + c * (cell + pad)
            sheet[y:y + cell, x:x + cell] = face
            cv2.putText(sheet, subject, (x + 2, y + cell + caption - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        (190, 190, 190), 1, cv2.LINE_AA)
    path = Path(path)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"OpenCV could not encode the contact sheet for {dataset.name}")
    with atomic_file(path) as tmp:
        tmp.write_bytes(encoded.tobytes())
    return path

"""Time parsing a full-size (35,887-row) FER2013 csv; the budget is 10 s.

Generates random pixels in a temp dir so it needs no licensed data.
Run: .venv/bin/python benchmarks/fer2013_parse.py [rows]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ferops.data.formats.fer2013_csv import HEADER, read_fer2013

FULL_ROWS = 35_887


def make_csv(path: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(rows, 2304), dtype=np.uint8)
    lut = np.array([str(v) for v in range(256)], dtype=object)
    usage = np.array(["Training", "PublicTest", "PrivateTest"])[rng.integers(0, 3, rows)]
    table = pd.DataFrame({"emotion": rng.integers(0, 7, rows), "pixels": [" ".join(lut[p]) for p in pixels], "Usage": usage})
    table.to_csv(path, index=False, lineterminator="\n")
    assert path.read_text()[: len(HEADER)] == HEADER
    return path


def main(rows: int = FULL_ROWS) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        csv = make_csv(Path(tmp) / "fer2013.csv", rows)
        size_mb = csv.stat().st_size / 1e6
        start = time.perf_counter()
        ds = read_fer2013(csv)
        seconds = time.perf_counter() - start
    assert ds.images.shape == (rows, 48, 48, 1)
    print(f"parsed {rows} rows ({size_mb:.0f} MB) in {seconds:.2f} s")
    return seconds


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else FULL_ROWS)

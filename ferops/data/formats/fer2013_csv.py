"""FER2013 as shipped on Kaggle: one csv, 48x48 gray faces as pixel strings.

The file is ~290 MB of text (35,887 rows x 2,304 numbers); parsing it with
Python's str.split costs minutes and gigabytes, so the pixel column is parsed
as raw bytes with numpy in chunks of rows, and every error is traced back to
its 1-based data row so users can find it in their copy.

FER2013 has no subject ids: each image is its own subject (subject = sequence
= "fer2013-<row>"), so subject-wise splits degrade to image-wise ones; the
dataset says so (`extras["subjects_known"] = False`, kept in meta.json) so
results can be labelled image-level rather than subject-independent.

Optional FERPlus relabelling (Barsoum et al. 2016, `fer2013new.csv`,
row-aligned): the label is the emotion with the most of the 10 votes. Rows are
dropped when the winner is `unknown` or `NF` (not a face), when the top vote
is tied, or when there are no votes; the counts per reason are logged and kept
in `Dataset.extras["dropped"]`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.formats._images import convert_channels
from ferops.data.formats._manifest import UNSPLIT, label_indices
from ferops.data.formats._rows import ragged_row, row_ref
from ferops.data.formats.errors import DatasetFormatError
from ferops.data.vocab import EMOTIONS, FER2013_CODES, FERPLUS_COLUMNS
from ferops.io import atomic_file

log = logging.getLogger(__name__)

HEADER = "emotion,pixels,Usage"
FERPLUS_HEADER = ("Usage", "Image name") + FERPLUS_COLUMNS
SIDE = 48
N_PIXELS = SIDE * SIDE
CLASSES: tuple[str, ...] = tuple(e for e in EMOTIONS if e != "contempt")
FERPLUS_CLASSES: tuple[str, ...] = EMOTIONS
USAGES = ("Training", "PublicTest", "PrivateTest")  # kept verbatim as the manifest split
SPLIT_TO_USAGE = {  # what the writer accepts, lower-cased
    "train": "Training", "training": "Training", UNSPLIT: "Training",
    "val": "PublicTest", "valid": "PublicTest", "validation": "PublicTest", "publictest": "PublicTest",
    "test": "PrivateTest", "privatetest": "PrivateTest",
}
_CHUNK_ROWS = 2048


def _locate(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "fer2013.csv", path / "fer2013" / "fer2013.csv"):
            if candidate.is_file():
                return candidate
        raise DatasetFormatError(f"{path}: no fer2013.csv in this folder")
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found, expected FER2013's fer2013.csv")
    return path


def _check_header(path: Path, expected: str) -> None:
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8-sig", errors="replace").strip()
    if first != expected:
        raise DatasetFormatError(f"{path.name}: header is {first!r}, expected exactly {expected!r}")


def _read_table(path: Path, fields: tuple[str, ...]) -> pd.DataFrame:
    """All columns as strings; pyarrow's reader is multi-threaded and, unlike the C
    engine, refuses a first data row with an extra field instead of making it an index.
    Its errors carry no row number, so a refused file is rescanned to name the row."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, engine="pyarrow")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        ragged = ragged_row(path, fields)
        if ragged:
            raise DatasetFormatError(ragged) from exc
        raise DatasetFormatError(f"{path.name}: not a well-formed csv ({' '.join(str(exc).split())[:300]})") from exc


def _bad_token(text: str) -> str:
    for token in text.split(" "):
        if token and not (token.isascii() and token.isdigit() and len(token) <= 3 and int(token) <= 255):
            return token[:40]
    return text[:40]


# Byte classes and digit values, so one table lookup replaces several comparisons.
_OTHER, _DIGIT, _SPACE, _NEWLINE = 0, 1, 2, 3
_CLASS = np.zeros(256, np.uint8)
_CLASS[48:58], _CLASS[32], _CLASS[10] = _DIGIT, _SPACE, _NEWLINE
_DIGIT_VALUE = np.zeros(256, np.uint16)
_DIGIT_VALUE[48:58] = np.arange(10)


def _parse_chunk(rows: np.ndarray, first_row: int, name: str) -> np.ndarray:
    """Parse pixel strings (numbers 0..255 separated by spaces) into (n, 2304) uint8.

    Tokens are runs of digit bytes; a token's value is read from its last
    three bytes (non-digits count 0), so no Python-level loop touches a pixel.
    """
    text = "  " + "\n".join(rows) + "\n"  # leading pad: every token has 3 bytes before its end
    buf = np.frombuffer(text.encode("utf-8"), np.uint8)
    cls = _CLASS[buf]
    newlines = np.flatnonzero(cls == _NEWLINE)
    if len(newlines) != len(rows):
        bad = next(i for i, r in enumerate(rows) if "\n" in r)
        raise DatasetFormatError(f"{row_ref(name, first_row + bad)}: pixels contains a line break")
    invalid = np.flatnonzero(cls == _OTHER)
    if len(invalid):
        r = int(np.searchsorted(newlines, invalid[0]))
        raise DatasetFormatError(
            f"{row_ref(name, first_row + r)}: pixels value {_bad_token(rows[r])!r} is not an integer 0..255"
        )
    is_digit = cls == _DIGIT
    starts = np.flatnonzero(is_digit[1:] & ~is_digit[:-1]) + 1
    ends = np.flatnonzero(is_digit[:-1] & ~is_digit[1:]) + 1
    counts = np.diff(np.searchsorted(starts, newlines), prepend=0)
    wrong = np.flatnonzero(counts != N_PIXELS)
    if len(wrong):
        r = int(wrong[0])
        found = f"has {counts[r]} values" if counts[r] else "is empty"
        raise DatasetFormatError(f"{row_ref(name, first_row + r)}: pixels {found}, expected {N_PIXELS} values")
    lengths = ends - starts
    values = (_DIGIT_VALUE[buf[ends - 1]] + 10 * _DIGIT_VALUE[buf[ends - 2]]
              + 100 * _DIGIT_VALUE[buf[ends - 3]] * (lengths >= 3))
    bad = (lengths > 3) | (values > 255)
    if bad.any():
        r = int(np.searchsorted(newlines, starts[np.flatnonzero(bad)[0]]))
        raise DatasetFormatError(
            f"{row_ref(name, first_row + r)}: pixels value {_bad_token(rows[r])!r} is not an integer 0..255"
        )
    return values.astype(np.uint8).reshape(len(rows), N_PIXELS)


def parse_pixels(pixels: pd.Series, name: str = "fer2013.csv") -> np.ndarray:
    """All rows' pixel strings -> (n, 48, 48, 1) uint8, chunked to bound memory."""
    rows = pixels.to_numpy(dtype=object)
    out = np.empty((len(rows), N_PIXELS), np.uint8)
    for lo in range(0, len(rows), _CHUNK_ROWS):
        out[lo : lo + _CHUNK_ROWS] = _parse_chunk(rows[lo : lo + _CHUNK_ROWS], lo + 1, name)
    return out.reshape(len(rows), SIDE, SIDE, 1)


def _column_codes(values: pd.Series, name: str, field: str, allowed: dict) -> np.ndarray:
    codes = pd.to_numeric(values.str.strip(), errors="coerce")
    bad = ~codes.isin(list(allowed))
    if bad.any():
        r = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetFormatError(f"{row_ref(name, r + 1)}: {field} {values.iloc[r]!r} is not one of {sorted(allowed)}")
    return codes.to_numpy(dtype=np.int64)


def _ferplus_labels(path: Path, n_rows: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict]:
    """Majority-vote FERPlus labels; returns (keep mask, label names, votes, drop counts)."""
    _check_header(path, ",".join(FERPLUS_HEADER))
    table = _read_table(path, FERPLUS_HEADER)
    if len(table) != n_rows:
        raise DatasetFormatError(
            f"{path.name}: {len(table)} rows but fer2013.csv has {n_rows}; the files must be row-aligned"
        )
    votes = table[list(FERPLUS_COLUMNS)].apply(lambda c: pd.to_numeric(c.str.strip(), errors="coerce"))
    if votes.isna().any().any():
        r, c = np.argwhere(votes.isna().to_numpy())[0]
        raise DatasetFormatError(f"{row_ref(path.name, int(r) + 1)}: {FERPLUS_COLUMNS[c]} "
                                 f"{table.iloc[r][FERPLUS_COLUMNS[c]]!r} is not an integer vote count")
    v = votes.to_numpy(dtype=np.int64)
    top = v.max(axis=1)
    winner = np.array(FERPLUS_COLUMNS)[v.argmax(axis=1)]
    no_votes = top == 0
    tie = ((v == top[:, None]).sum(axis=1) > 1) & ~no_votes
    not_emotion = np.isin(winner, ["unknown", "NF"]) & ~tie & ~no_votes
    keep = ~(no_votes | tie | not_emotion)
    dropped = {"ferplus_unknown_or_nf": int(not_emotion.sum()), "ferplus_tie": int(tie.sum()),
               "ferplus_no_votes": int(no_votes.sum())}
    votes.columns = [f"ferplus_{c}" for c in FERPLUS_COLUMNS]
    return keep, winner, votes, dropped


def read_fer2013(path: str | Path, ferplus: bool | str | Path | None = None) -> Dataset:
    """Read fer2013.csv (a file, or a folder holding it); `ferplus` True or a path adds FERPlus labels."""
    csv = _locate(path)
    name = csv.name
    _check_header(csv, HEADER)
    table = _read_table(csv, tuple(HEADER.split(",")))
    if len(table) == 0:
        raise DatasetFormatError(f"{name}: header only, no data rows")
    codes = _column_codes(table["emotion"], name, "emotion", FER2013_CODES)
    usage = table["Usage"].str.strip()
    bad = ~usage.isin(USAGES)
    if bad.any():
        r = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetFormatError(f"{row_ref(name, r + 1)}: Usage {usage.iloc[r]!r} is not one of {list(USAGES)}")
    images = parse_pixels(table["pixels"], name)
    rows = np.arange(1, len(table) + 1)
    subjects = [f"fer2013-{r}" for r in rows]
    manifest = pd.DataFrame({
        "path": [f"{name}:{r}" for r in rows],
        "label_name": [FER2013_CODES[c] for c in codes],
        "subject": subjects,
        "sequence": subjects,
        "frame": np.zeros(len(rows), np.int64),
        "split": usage.to_numpy(),
        "row": rows,
    })
    classes, extras = CLASSES, {"subjects_known": False,
                                "subject_note": "FER2013 has no subject ids; each image is its own subject (row id)"}
    if ferplus:
        plus = csv.with_name("fer2013new.csv") if ferplus is True else Path(ferplus)
        if not plus.is_file():
            raise DatasetFormatError(f"{plus}: FERPlus file not found (expected fer2013new.csv beside fer2013.csv)")
        keep, winner, votes, dropped = _ferplus_labels(plus, len(table))
        manifest["fer2013_label_name"] = manifest["label_name"]
        manifest["label_name"] = pd.Series(winner).map(lambda w: w if w in EMOTIONS else "neutral").to_numpy()
        manifest = pd.concat([manifest, votes], axis=1)
        log.info("FERPlus: dropped %d of %d rows: %s", int((~keep).sum()), len(keep), dropped)
        manifest, images = manifest[keep].reset_index(drop=True), images[keep]
        classes, extras["dropped"] = FERPLUS_CLASSES, dropped
    manifest.insert(1, "label", label_indices(manifest["label_name"], classes))
    return Dataset(images, manifest, classes, name="fer2013plus" if ferplus else "fer2013", extras=extras)


def write_fer2013(dataset: Dataset, path: str | Path) -> Path:
    """Write fer2013.csv; `path` is the csv or a folder to hold it.

    Images that are not 48x48 gray are converted (RGB->gray, INTER_AREA
    resize) because the format cannot hold anything else. Usage comes from
    `split`: Training/PublicTest/PrivateTest verbatim, or train/val/test
    (and "unsplit" -> Training).
    """
    import cv2

    path = Path(path)
    out = path if path.suffix.lower() == ".csv" else path / "fer2013.csv"
    inverse = {v: k for k, v in FER2013_CODES.items()}
    m = dataset.manifest
    for i, label in enumerate(m["label_name"]):
        if label not in inverse:
            raise DatasetFormatError(
                f"{dataset.name} row {i + 1} ({m['path'].iloc[i]}): label {label!r} has no FER2013 code; "
                f"expected one of {list(inverse)}"
            )
    usage = m["split"].astype(str).str.strip().str.lower().map(SPLIT_TO_USAGE)
    if usage.isna().any():
        r = int(np.flatnonzero(usage.isna().to_numpy())[0])
        raise DatasetFormatError(
            f"{dataset.name} row {r + 1}: split {m['split'].iloc[r]!r} has no FER2013 Usage; "
            f"expected one of {list(USAGES)} or {sorted(set(SPLIT_TO_USAGE) - {u.lower() for u in USAGES})}"
        )
    lut = np.array([str(v) for v in range(256)], dtype=object)
    pixels = []
    for img in dataset.images:
        gray = convert_channels(img, 1)[:, :, 0]
        if gray.shape != (SIDE, SIDE):
            gray = cv2.resize(gray, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        pixels.append(" ".join(lut[gray.ravel()]))
    table = pd.DataFrame({"emotion": m["label_name"].map(inverse).to_numpy(), "pixels": pixels, "Usage": usage.to_numpy()})
    with atomic_file(out) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    return out

"""CK+ (Lucey et al. 2010) as shipped: image sequences plus sparse label files.

    cohn-kanade-images/S005/001/S005_001_00000001.png ...
    Emotion/S005/001/S005_001_00000011_emotion.txt   "   3.0000000e+00"
    FACS/S005/001/S005_001_00000011_facs.txt         "   1.2000000e+01   4.0000000e+00" per line

Only 327 of 593 sequences carry an Emotion file and the label describes the
last (peak) frame, so the standard protocol - used by Breuer & Kimmel - takes
the last K frames of each labelled sequence as that emotion and the first
frame as neutral. Sequences without an Emotion file are skipped (their FACS
files are ignored); FACS AUs are assigned to the peak frames only, the neutral
frame gets every AU absent. A FACS intensity of 0 means "present, not rated"
(intensity NaN). Images are returned RGB if any is colour (channels=None);
mixed native sizes are zero-padded (see _images.stack_images) and the
original sizes kept in the manifest's height/width columns.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.formats._images import IMAGE_SUFFIXES, inside, load_images, safe_name, write_image
from ferops.data.formats._manifest import UNSPLIT, au_columns, label_indices, present_aus
from ferops.data.formats.errors import DatasetFormatError
from ferops.data.vocab import CKPLUS_CODES, EMOTIONS, au_intensity_column
from ferops.io import atomic_dir

IMAGES, EMOTION, FACS = "cohn-kanade-images", "Emotion", "FACS"
CLASSES: tuple[str, ...] = EMOTIONS
_FRAME = re.compile(r"_(\d+)$")


def format_float(value: float) -> str:
    """CK+'s label number format: width 16, 7 decimals, exponent ('   3.0000000e+00')."""
    return f"{float(value):16.7e}"


def _floats(path: Path, root: Path) -> list[list[float]]:
    """Non-blank lines of a CK+ label file as lists of floats."""
    inside(path, root, "label file")
    lines = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append([float(tok) for tok in line.split()])
        except ValueError:
            raise DatasetFormatError(f"{path} line {n}: {line.strip()!r} is not a list of numbers") from None
    return lines


def _integral(value: float, path: Path, field: str) -> int:
    if not math.isfinite(value) or value != int(value):
        raise DatasetFormatError(f"{path}: {field} {value!r} is not a whole number")
    return int(value)


def _read_emotion(path: Path, root: Path) -> str:
    lines = _floats(path, root)
    if len(lines) != 1 or len(lines[0]) != 1:
        raise DatasetFormatError(f"{path}: expected exactly one number (the emotion code 0..7)")
    code = _integral(lines[0][0], path, "emotion code")
    if code not in CKPLUS_CODES:
        raise DatasetFormatError(f"{path}: emotion code {code} is not one of {sorted(CKPLUS_CODES)}")
    return CKPLUS_CODES[code]


def _read_facs(path: Path, root: Path) -> dict[int, float]:
    aus: dict[int, float] = {}
    for line in _floats(path, root):
        if len(line) != 2:
            raise DatasetFormatError(f"{path}: each line must hold 2 numbers (AU code, intensity), got {line}")
        code = _integral(line[0], path, "AU code")
        intensity = _integral(line[1], path, "AU intensity")
        if not 0 <= intensity <= 5:
            raise DatasetFormatError(f"{path}: AU{code} intensity {intensity} is not in 0..5")
        aus[code] = math.nan if intensity == 0 else float(intensity)
    return aus


def _frame_number(path: Path) -> int:
    match = _FRAME.search(path.stem.removesuffix("_emotion").removesuffix("_facs"))
    if not match:
        raise DatasetFormatError(f"{path}: file name does not end in _<frame number>")
    return int(match.group(1))


def _one_label_file(folder: Path, suffix: str) -> Path | None:
    files = sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []
    if len(files) > 1:
        raise DatasetFormatError(f"{folder}: {len(files)} *{suffix} files, expected at most one")
    return files[0] if files else None


def _sequence_frames(folder: Path, root: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        raise DatasetFormatError(f"{folder}: labelled sequence has no image folder")
    inside(folder, root, "sequence folder")
    frames = sorted((_frame_number(p), p) for p in folder.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not frames:
        raise DatasetFormatError(f"{folder}: empty folder, expected the sequence's PNG frames")
    return frames


def read_ckplus(root: str | Path, last_k: int = 3, neutral_first_frame: bool = True,
                channels: int | None = None, size=None) -> Dataset:
    """Read a CK+ tree (the folder holding cohn-kanade-images/, Emotion/, FACS/)."""
    root = Path(root)
    for sub in (IMAGES, EMOTION):
        if not (root / sub).is_dir():
            raise DatasetFormatError(f"{root}: no {sub}/ folder; expected CK+'s {IMAGES}/, {EMOTION}/ and {FACS}/")
    if last_k < 1:
        raise ValueError(f"last_k must be >= 1, got {last_k}")
    records, aus, paths = [], [], []
    for seq_dir in sorted(p for p in (root / EMOTION).glob("*/*") if p.is_dir()):
        subject, seq = seq_dir.parent.name, seq_dir.name
        emotion_file = _one_label_file(seq_dir, "_emotion.txt")
        if emotion_file is None:
            continue
        label = _read_emotion(emotion_file, root)
        peak_frame = _frame_number(emotion_file)
        facs_file = _one_label_file(root / FACS / subject / seq, "_facs.txt")
        facs = _read_facs(facs_file, root) if facs_file else None
        frames = [f for f in _sequence_frames(root / IMAGES / subject / seq, root) if f[0] <= peak_frame]
        if not frames or frames[-1][0] != peak_frame:
            raise DatasetFormatError(f"{emotion_file}: labels frame {peak_frame} but that frame's image is missing")
        first_peak = max(len(frames) - last_k, 1 if neutral_first_frame and len(frames) > 1 else 0)
        chosen = [(frames[0], "neutral", "neutral")] if neutral_first_frame and first_peak > 0 else []
        chosen += [(f, label, "peak") for f in frames[first_peak:]]
        for (frame, path), name, role in chosen:
            paths.append(path)
            records.append({"path": path.relative_to(root).as_posix(), "label_name": name, "subject": subject,
                            "sequence": f"{subject}_{seq}", "frame": frame, "split": UNSPLIT, "role": role})
            aus.append({} if role == "neutral" else facs)
    if not records:
        raise DatasetFormatError(f"{root / EMOTION}: no *_emotion.txt files; no labelled sequences to read")
    images, heights, widths = load_images(paths, root, channels, size)
    manifest = pd.DataFrame(records)
    manifest.insert(1, "label", label_indices(manifest["label_name"], CLASSES))
    manifest["height"], manifest["width"] = heights, widths
    manifest = pd.concat([manifest, au_columns(aus)], axis=1)
    return Dataset(images, manifest, CLASSES, name="ck+")


def sequence_folder(subject: str, sequence: str) -> str:
    """Writer's sequence folder: the manifest sequence minus a leading '<subject>_'."""
    return sequence[len(subject) + 1:] if sequence.startswith(f"{subject}_") else sequence


def _facs_lines(row: pd.Series, codes: list[int]) -> str:
    lines = []
    for code in codes:
        if row[f"AU{code}"] == 1:
            intensity = row.get(au_intensity_column(code), math.nan)
            intensity = 0 if pd.isna(intensity) else int(round(float(intensity)))
            lines.append(format_float(code) + format_float(intensity) + "\n")
    return "".join(lines)


def _coded(row: pd.Series, codes: list[int]) -> bool:
    """Whether the apex frame's AUs are known: CK+ has no FACS file for an uncoded sequence."""
    return any(pd.notna(row[f"AU{code}"]) for code in codes)


def write_ckplus(dataset: Dataset, path: str | Path) -> Path:
    """Write a CK+ tree from whole sequences (every frame, last frame = apex).

    All frames become PNGs; each non-neutral sequence gets an Emotion file and,
    if its last frame's AUs are known (AU columns not NaN), a FACS file for that
    frame only, as CK+ codes only the apex: AUs of earlier frames are not
    written, whatever the manifest knows about them. The FACS intensity comes
    from AU<code>_int (present with unknown intensity -> 0).
    The sequence folder is the manifest sequence minus a '<subject>_' prefix,
    so reading back yields sequence '<subject>_<folder>'.
    """
    path = Path(path)
    m = dataset.manifest
    inverse = {v: k for k, v in CKPLUS_CODES.items()}
    codes = present_aus(m)
    plan = []
    for sequence, group in m.groupby("sequence", sort=False):
        subjects = group["subject"].astype(str).unique()
        if len(subjects) != 1:
            raise DatasetFormatError(f"{dataset.name}: sequence {sequence!r} spans subjects {list(subjects)}")
        subject = safe_name(subjects[0], "subject")
        folder = safe_name(sequence_folder(subject, str(sequence)), "sequence")
        frames = group["frame"].astype(np.int64)
        if frames.duplicated().any() or (frames < 0).any() or (frames > 99_999_999).any():
            raise DatasetFormatError(
                f"{dataset.name}: sequence {sequence!r} frame numbers must be unique and in 0..99999999")
        group = group.assign(frame=frames).sort_values("frame")
        last = group.iloc[-1]
        if last["label_name"] not in inverse:
            raise DatasetFormatError(
                f"{dataset.name}: sequence {sequence!r} label {last['label_name']!r} has no CK+ code; "
                f"expected one of {list(inverse)}")
        plan.append((subject, folder, group, last))
    with atomic_dir(path, stage="generate") as tmp:
        for subject, folder, group, last in plan:
            stem = f"{subject}_{folder}_"
            for idx, frame in zip(group.index, group["frame"]):
                write_image(tmp / IMAGES / subject / folder / f"{stem}{frame:08d}.png", dataset.images[idx])
            if last["label_name"] == "neutral":
                continue
            peak = f"{stem}{int(last['frame']):08d}"
            emotion = tmp / EMOTION / subject / folder / f"{peak}_emotion.txt"
            emotion.parent.mkdir(parents=True, exist_ok=True)
            emotion.write_text(format_float(inverse[last["label_name"]]) + "\n")
            if _coded(last, codes):
                facs = tmp / FACS / subject / folder / f"{peak}_facs.txt"
                facs.parent.mkdir(parents=True, exist_ok=True)
                facs.write_text(_facs_lines(last, codes))
    return path

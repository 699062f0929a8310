"""CASME II (Yan et al. 2014) micro-expressions: frame folders plus a coding sheet.

    CASME2_RAW_selected/sub01/EP02_01f/img46.jpg ...
    CASME2-coding-*.xlsx (or .csv): Subject, Filename, OnsetFrame, ApexFrame,
        OffsetFrame, Action Units, Estimated Emotion

The sheet is the only label source, so it is parsed strictly: an AU string
such as `4+L10` becomes AU4 and AU10 present with AU10_side "L" (a code seen
on both sides gets side ""); anything else (`4+X`) is an error naming the row.
CASME II codes no AU intensities: present AUs get intensity NaN, absent 0.
The clip's AUs are attached to every frame returned from it.

By default only the five classes CASME II papers evaluate are kept
(happiness, disgust, repression, surprise, others) - sadness and fear have too
few clips; the excluded count is logged and kept in extras["dropped"]. Pass
classes=CASME2_CLASSES_ALL (or any subset) to keep more. With frames="apex" or
"onset_apex_offset", clips whose ApexFrame is "/" (unknown) are dropped and
counted the same way; frames="all" (default) returns every frame in the clip
folder, which for the full dataset is ~17k 640x480 images (~15 GB): pass size=,
which resizes each frame as it is decoded.

read_casme2_clips is the micro-expression route: one clip per row, only the
frames a model needs decoded, each clip cropped (one face crop for all its
frames) before the next is read, so memory stays at the size of the crops.
"""

from __future__ import annotations

import logging
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.formats._images import (
    IMAGE_SUFFIXES,
    convert_channels,
    inside,
    load_images,
    parse_size,
    read_image,
    safe_name,
    stack_images,
    write_image,
)
from ferops.data.formats._manifest import UNSPLIT, au_columns, label_indices, present_aus
from ferops.data.formats._rows import ragged_row, row_ref
from ferops.data.formats.errors import DatasetFormatError
from ferops.data.vocab import CASME2_NAMES, au_column, to_canonical
from ferops.io import atomic_dir

log = logging.getLogger(__name__)

FRAMES_DIR = "CASME2_RAW_selected"
SHEET_NAME = "CASME2-coding-synth"
COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion")
CLASSES: tuple[str, ...] = ("happiness", "disgust", "repression", "surprise", "others")
CLASSES_ALL: tuple[str, ...] = tuple(dict.fromkeys(CASME2_NAMES.values()))
FRAME_MODES = ("all", "apex", "onset_apex_offset")
_AU_TOKEN = re.compile(r"^([LR]?)(\d+)(?:\.0+)?$")
_FRAME = re.compile(r"(\d+)$")


def parse_action_units(text: str, where: str = "") -> dict[int, str]:
    """'4+L10' -> {4: '', 10: 'L'}; empty -> {}. Raises naming the bad token (after `where`, the row)."""
    text = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text).strip()
    aus: dict[int, str] = {}
    if not text:
        return aus
    for token in text.split("+"):
        match = _AU_TOKEN.match(token.strip().upper())
        if not match:
            raise DatasetFormatError(
                f"{where + ': ' if where else ''}Action Units {text!r}: {token.strip()!r} is not an AU "
                f"(expected e.g. 4, L10, R12)")
        side, code = match.group(1), int(match.group(2))
        aus[code] = side if code not in aus or aus[code] == side else ""
    return aus


def format_action_units(aus: dict[int, str]) -> str:
    return "+".join(f"{side}{code}" for code, side in sorted(aus.items()))


def _find_sheet(root: Path) -> Path:
    for pattern in ("*.xlsx", "*.csv"):
        found = sorted(p for p in root.glob(pattern) if not p.name.startswith((".", "~$")))
        coding = [p for p in found if "coding" in p.name.lower()] or found
        if len(coding) == 1:
            return coding[0]
        if len(coding) > 1:
            raise DatasetFormatError(f"{root}: several coding sheets {[p.name for p in coding]}; pass sheet=")
    raise DatasetFormatError(f"{root}: no coding sheet (*.xlsx or *.csv) found; pass sheet=")


def read_sheet(sheet: Path) -> pd.DataFrame:
    """The coding sheet as strings, column names checked."""
    try:
        if is_spreadsheet(sheet):
            table = pd.read_excel(sheet, dtype=str, engine="openpyxl", keep_default_na=False)
        else:
            table = pd.read_csv(sheet, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:  # openpyxl/pandas raise many types for a damaged file
        ragged = None if is_spreadsheet(sheet) else ragged_row(sheet, COLUMNS)
        raise DatasetFormatError(ragged or f"{sheet.name}: cannot read coding sheet "
                                           f"({' '.join(str(exc).split())[:300]})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DatasetFormatError(f"{sheet.name}: missing column(s) {missing}; expected {list(COLUMNS)}")
    return table.fillna("").apply(lambda c: c.astype(str).str.strip())


def is_spreadsheet(sheet: Path) -> bool:
    return sheet.suffix.lower() in (".xlsx", ".xlsm")


def _int(value: str, where: str, field: str, allow_unknown: bool = False, what: str = "a frame number") -> float:
    if allow_unknown and value in ("/", ""):
        return math.nan
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number):
        hint = " or '/'" if allow_unknown else ""
        raise DatasetFormatError(f"{where}: {field} {value!r} is not {what}{hint}")
    return int(number)


def subject_folder(subject: str, where: str) -> str:
    """Sheet Subject 1 / '01' / 'sub01' -> folder 'sub01'."""
    text = subject.strip()
    if text.lower().startswith("sub"):
        text = text[3:]
    number = _int(text, where, "Subject", what="a subject number (e.g. 1, 01 or sub01)")
    return f"sub{number:02d}"


def _clip_frames(folder: Path, root: Path) -> dict[int, Path]:
    if not folder.is_dir():
        raise DatasetFormatError(f"{folder}: clip folder named in the coding sheet does not exist")
    frames = {}
    for p in folder.iterdir():
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            match = _FRAME.search(p.stem)
            if not match:
                raise DatasetFormatError(f"{p}: file name has no frame number (expected e.g. img46.jpg)")
            frames[int(match.group(1))] = p
    if not frames:
        raise DatasetFormatError(f"{folder}: empty folder, expected the clip's frames")
    return frames


def _sheet_clips(root: Path, sheet: str | Path | None, classes: tuple[str, ...], need_apex: bool,
                 frames_dir: str, dropped: dict) -> Iterator[tuple[str, dict, dict, Path]]:
    """Each kept clip of the coding sheet: (row reference, manifest fields, AUs, folder); exclusions counted."""
    unknown = [c for c in classes if c not in CLASSES_ALL]
    if unknown:
        raise ValueError(f"classes {unknown} are not CASME II classes {CLASSES_ALL}")
    frame_root = root / frames_dir
    if not frame_root.is_dir():
        raise DatasetFormatError(f"{root}: no {frames_dir}/ folder with the clips' frames")
    sheet = Path(sheet) if sheet else _find_sheet(root)
    table = read_sheet(sheet)
    for i, row in table.iterrows():
        where = row_ref(sheet.name, int(i) + 1, spreadsheet=is_spreadsheet(sheet))
        subject = subject_folder(row["Subject"], where)
        clip = row["Filename"]
        if not clip:
            raise DatasetFormatError(f"{where}: Filename is empty")
        onset = _int(row["OnsetFrame"], where, "OnsetFrame")
        apex = _int(row["ApexFrame"], where, "ApexFrame", allow_unknown=True)
        offset = _int(row["OffsetFrame"], where, "OffsetFrame")
        clip_aus = parse_action_units(row["Action Units"], where)
        try:
            label = to_canonical(row["Estimated Emotion"], CASME2_NAMES, f"{where}: Estimated Emotion")
        except ValueError as exc:
            raise DatasetFormatError(str(exc)) from None
        folder = inside(frame_root / subject / clip, frame_root, f"{where}: Filename")
        if label not in classes:
            dropped["class_not_kept"] += 1
            continue
        if need_apex and math.isnan(apex):
            dropped["apex_unknown"] += 1
            continue
        fields = {"label_name": label, "subject": subject, "sequence": f"{subject}_{clip}", "split": UNSPLIT,
                  "onset": onset, "apex": apex, "offset": offset, "action_units": row["Action Units"],
                  "emotion_raw": row["Estimated Emotion"]}
        yield where, fields, clip_aus, folder
    if any(dropped.values()):
        log.info("CASME II %s: excluded clips %s (kept classes %s)", sheet.name, dropped, list(classes))


def _finish(records: list[dict], aus: list[dict], classes: tuple[str, ...]) -> pd.DataFrame:
    """Manifest with label indices and AU presence/side columns (CASME II codes no intensities)."""
    manifest = pd.DataFrame(records)
    manifest["apex"] = manifest["apex"].astype(np.float64)
    manifest.insert(1, "label", label_indices(manifest["label_name"], classes))
    au = au_columns([{code: math.nan for code in a} for a in aus])
    sides = {f"{au_column(code)}_side": [a.get(code, "") for a in aus] for code in present_aus(au)}
    return pd.concat([manifest, au, pd.DataFrame(sides)], axis=1)


def _load_resized(paths: list[Path], root: Path, channels: int | None, size) -> tuple:
    """Decode in threads, resizing each image as it is decoded: full-size frames never pile up."""
    hw = parse_size(size)
    if hw is None:
        return load_images(paths, root, channels, size)

    def one(p: Path) -> np.ndarray:
        im = read_image(p, root)
        native = im.shape[:2]
        im = convert_channels(im, channels) if channels else im
        return cv2.resize(im, (hw[1], hw[0]), interpolation=cv2.INTER_AREA).reshape(*hw, -1), native

    with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(one, paths))
    images, _, _ = stack_images([im for im, _ in decoded], channels, size)  # same channel rule, no resize left
    return images, np.array([n[0] for _, n in decoded]), np.array([n[1] for _, n in decoded])


def read_casme2(root: str | Path, sheet: str | Path | None = None, frames: str = "all",
                classes: tuple[str, ...] = CLASSES, channels: int | None = None, size=None,
                frames_dir: str = FRAMES_DIR) -> Dataset:
    """Read CASME II from `root` (holding CASME2_RAW_selected/ and the coding sheet), one row per frame.

    With `size`, each frame is resized as it is decoded. For clips (one crop per clip, only
    the frames a model needs) use read_casme2_clips.
    """
    root = Path(root)
    if frames not in FRAME_MODES:
        raise ValueError(f"frames must be one of {FRAME_MODES}, got {frames!r}")
    records, paths, aus = [], [], []
    dropped = {"class_not_kept": 0, "apex_unknown": 0}
    for where, fields, clip_aus, folder in _sheet_clips(root, sheet, classes, frames != "all", frames_dir, dropped):
        onset, apex, offset = fields["onset"], fields["apex"], fields["offset"]
        available = _clip_frames(folder, root)
        if frames == "all":
            wanted = [(f, "frame") for f in sorted(available)]
        else:
            wanted = [(apex, "apex")] if frames == "apex" else [(onset, "onset"), (apex, "apex"), (offset, "offset")]
        for frame, role in wanted:
            if frame not in available:
                raise DatasetFormatError(f"{where}: {role} frame {frame} has no image in {folder}")
            paths.append(available[frame])
            records.append({"path": available[frame].relative_to(root).as_posix(), "frame": int(frame),
                            "role": role, **fields})
            aus.append(clip_aus)
    if not records:
        raise DatasetFormatError(f"{root}: no clips left with classes {list(classes)}")
    images, heights, widths = _load_resized(paths, root, channels, size)
    manifest = _finish(records, aus, classes)
    manifest["height"], manifest["width"] = heights, widths
    return Dataset(images, manifest, tuple(classes), name="casme2", extras={"dropped": dropped})


# (available frame numbers, onset, apex, offset) -> frame numbers to read, in time order
FramePicker = Callable[[list[int], int, float, int], list[int]]
# (the clip's frames at native size, index of the onset frame) -> (T x h x w x c uint8, info columns)
ClipCropper = Callable[[list[np.ndarray], int], tuple[np.ndarray, dict]]


def read_casme2_clips(root: str | Path, pick: FramePicker, crop: ClipCropper, sheet: str | Path | None = None,
                      classes: tuple[str, ...] = CLASSES, frames_dir: str = FRAMES_DIR,
                      workers: int | None = None) -> Dataset:
    """One clip per sheet row: only the frames `pick` names are decoded, and `crop` shrinks them at once.

    The full dataset as 640x480 frames is ~15 GB; here at most `workers` clips are at native
    size at any moment, so memory is the cropped clips plus a few frames (benchmarks/casme2_memory.py).
    Clips with an unknown apex are dropped and counted (extras["dropped"]); marks that name a frame
    the folder lacks snap to the nearest frame there (counted as "frame_snapped").
    """
    root = Path(root)
    dropped = {"class_not_kept": 0, "apex_unknown": 0, "frame_snapped": 0}
    plans = []
    for where, fields, clip_aus, folder in _sheet_clips(root, sheet, classes, True, frames_dir, dropped):
        available = _clip_frames(folder, root)
        marks = (fields["onset"], int(fields["apex"]), fields["offset"])
        dropped["frame_snapped"] += any(f not in available for f in marks)
        numbers = pick(sorted(available), *marks)
        onset_at = min(range(len(numbers)), key=lambda k: abs(numbers[k] - fields["onset"]))
        record = {"path": folder.relative_to(root.resolve()).as_posix(), "frame": marks[1], **fields}
        plans.append((record, clip_aus, [available[f] for f in numbers], numbers, onset_at))
    if not plans:
        raise DatasetFormatError(f"{root}: no clips left with classes {list(classes)}")

    def load(plan):
        _, _, paths, _, onset_at = plan
        return crop([read_image(p, root) for p in paths], onset_at)

    with ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1)) as pool:
        cropped = list(pool.map(load, plans))
    manifest = _finish([{**p[0], **info} for p, (_, info) in zip(plans, cropped)], [p[1] for p in plans], classes)
    clips = np.stack([c for c, _ in cropped])
    return Dataset(clips, manifest, tuple(classes), name="casme2",
                   extras={"dropped": dropped, "clip_frames": np.array([p[3] for p in plans], np.int64)})


def _subject_numbers(subjects: list[str]) -> dict[str, int]:
    """Sheet Subject ints: trailing digits of each subject if they are unique, else order of appearance."""
    digits = {s: re.search(r"(\d+)$", s) for s in subjects}
    numbers = {s: int(m.group(1)) for s, m in digits.items() if m}
    if len(numbers) == len(subjects) and len(set(numbers.values())) == len(subjects):
        return numbers
    return {s: i + 1 for i, s in enumerate(subjects)}


def _clip_aus(row: pd.Series, codes: list[int]) -> dict[int, str]:
    aus = {}
    for code in codes:
        if row[au_column(code)] == 1:
            side = row.get(f"{au_column(code)}_side", "")
            aus[code] = side if side in ("L", "R") else ""
    return aus


def write_casme2(dataset: Dataset, path: str | Path) -> Path:
    """Write frames (JPEG q95) and CASME2-coding-synth.xlsx + .csv under `path`.

    Needs sequence, frame, onset, apex, offset columns. Subjects become
    sub<NN> from their trailing digits (or order of appearance); the clip
    folder is the sequence minus a '<subject>_' prefix. AUs come from the apex
    frame's row (first row if apex is unknown), sides from AU<code>_side.
    """
    path = Path(path)
    m = dataset.manifest
    missing = [c for c in ("onset", "apex", "offset") if c not in m.columns]
    if missing:
        raise DatasetFormatError(f"{dataset.name}: manifest lacks {missing}, needed for the CASME II coding sheet")
    codes = present_aus(m)
    numbers = _subject_numbers(list(dict.fromkeys(m["subject"].astype(str))))
    plan, rows, seen = [], [], set()
    for sequence, group in m.groupby("sequence", sort=False):
        subjects = group["subject"].astype(str).unique()
        if len(subjects) != 1:
            raise DatasetFormatError(f"{dataset.name}: sequence {sequence!r} spans subjects {list(subjects)}")
        number = numbers[subjects[0]]
        folder = f"sub{number:02d}"
        clip = str(sequence)
        for prefix in (f"{subjects[0]}_", f"{folder}_"):
            clip = clip.removeprefix(prefix)
        clip = safe_name(clip, "sequence")
        if (folder, clip) in seen:
            raise DatasetFormatError(f"{dataset.name}: two sequences map to clip {folder}/{clip}")
        seen.add((folder, clip))
        marks = group[["onset", "apex", "offset"]].drop_duplicates()
        if len(marks) != 1:
            raise DatasetFormatError(f"{dataset.name}: sequence {sequence!r} has differing onset/apex/offset values")
        onset, apex, offset = marks.iloc[0]
        label = group["label_name"].iloc[0]
        if label not in CLASSES_ALL or group["label_name"].nunique() != 1:
            raise DatasetFormatError(
                f"{dataset.name}: sequence {sequence!r} label(s) {list(group['label_name'].unique())} "
                f"must be one CASME II emotion {list(CLASSES_ALL)}")
        frames = group["frame"].astype(np.int64)
        if frames.duplicated().any() or (frames < 0).any():
            raise DatasetFormatError(f"{dataset.name}: sequence {sequence!r} frame numbers must be unique and >= 0")
        apex_rows = group[frames == apex] if pd.notna(apex) else group.iloc[:0]
        au_row = (apex_rows if len(apex_rows) else group).iloc[0]
        rows.append({"Subject": number, "Filename": clip, "OnsetFrame": int(onset),
                     "ApexFrame": int(apex) if pd.notna(apex) else "/", "OffsetFrame": int(offset),
                     "Action Units": format_action_units(_clip_aus(au_row, codes)), "Estimated Emotion": label})
        plan.append((folder, clip, group.index, frames))
    sheet = pd.DataFrame(rows, columns=list(COLUMNS))
    with atomic_dir(path, stage="generate") as tmp:
        for folder, clip, index, frames in plan:
            for idx, frame in zip(index, frames):
                write_image(tmp / FRAMES_DIR / folder / clip / f"img{frame}.jpg", dataset.images[idx], jpeg_quality=95)
        sheet.to_excel(tmp / f"{SHEET_NAME}.xlsx", index=False, engine="openpyxl")
        sheet.to_csv(tmp / f"{SHEET_NAME}.csv", index=False, lineterminator="\n")
    return path

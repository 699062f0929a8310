"""Class-per-folder image trees: `<root>/<split>/<class>/*` or `<root>/<class>/*`.

This is how most circulating copies look (the FER2013 `train/`, `test/`
folders; CK+48 with anger/contempt/.../surprise). The layout is decided from
the top-level folder names: if they are class names (vocab.FOLDER_NAMES) it is
class-only, otherwise each is a split holding class folders. A folder that is
neither is an error naming it - a misspelt class must not become a split.

Such copies rarely keep subject ids, which subject-wise splits need; a regex
(`subject_pattern`, searched in the file stem, group "subject" or group 1,
optional groups "sequence" and "frame") recovers them, e.g. `^(S\d{3})_`
for CK+48's `S010_006_00000013.png`. Without one (None or "") the data is
image-level: each image is its own subject (its path) and
extras["subjects_known"] is False, so no result can claim to be
subject-independent. A pattern that is set but misses a file name stays an
error: falling back per file would mix grouped and ungrouped images.
Entries that are not read (non-images, files outside class folders, folders
nested in class folders) are counted by reason in extras["skipped_files"].
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.formats._images import IMAGE_SUFFIXES, inside, load_images, safe_name, write_image
from ferops.data.formats._manifest import UNSPLIT, label_indices
from ferops.data.formats.errors import DatasetFormatError
from ferops.data.formats.skipped import NESTED, NOT_IMAGE, OUTSIDE, SkipCounter, describe
from ferops.data.vocab import CANONICAL, FOLDER_NAMES
from ferops.errors import FeropsError
from ferops.io import atomic_dir

log = logging.getLogger(__name__)

# CK+48 names: S010_006_00000013 -> subject S010, sequence S010_006, frame 13
CKPLUS48_PATTERN = r"^(?P<sequence>(?P<subject>S\d{3})_\d{3})_(?P<frame>\d+)"
# Names written by write_folders: <subject>__<sequence>__<frame>[__<n>].png
FEROPS_PATTERN = r"^(?P<subject>.+?)__(?P<sequence>.+?)__(?P<frame>\d+)(?:__\d+)?$"


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _stray_files(folder: Path, skipped: SkipCounter) -> None:
    for p in sorted(folder.iterdir()):
        if p.is_file():
            skipped.add(OUTSIDE, p)


def _layout(root: Path, skipped: SkipCounter) -> list[tuple[str, Path]]:
    """(split, class folder) pairs."""
    top = _visible_dirs(root)
    if not top:
        raise DatasetFormatError(f"{root}: empty folder, expected class folders or split folders")
    _stray_files(root, skipped)
    is_class = [p.name.lower() in FOLDER_NAMES for p in top]
    if all(is_class):
        return [(UNSPLIT, p) for p in top]
    if any(is_class):
        odd = [p.name for p, c in zip(top, is_class) if not c]
        raise DatasetFormatError(
            f"{root}: folder(s) {odd} are not class names; known classes: {sorted(FOLDER_NAMES)}")
    pairs = []
    for split in top:
        classes = _visible_dirs(split)
        if not classes:
            raise DatasetFormatError(f"{split}: empty folder, expected class folders")
        _stray_files(split, skipped)
        for folder in classes:
            if folder.name.lower() not in FOLDER_NAMES:
                raise DatasetFormatError(
                    f"{folder}: class folder {folder.name!r} is not in the mapping; "
                    f"known classes: {sorted(FOLDER_NAMES)}")
            pairs.append((split.name, folder))
    return pairs


def compile_subject_pattern(subject_pattern: str | None) -> re.Pattern | None:
    """None for image-level data (no pattern); a compiled regex with a subject group otherwise."""
    if not subject_pattern:
        return None
    try:
        pattern = re.compile(subject_pattern)
    except re.error as exc:
        raise FeropsError(f"dataset.subject_pattern {subject_pattern!r} is not a valid regular expression ({exc})")
    if pattern.groups == 0:
        raise FeropsError(f"dataset.subject_pattern {subject_pattern!r} needs a group: (...) or (?P<subject>...)")
    return pattern


def _ids(relative: str, stem: str, pattern: re.Pattern | None, file: Path) -> tuple[str, str, int]:
    if pattern is None:
        return relative, relative, 0  # the path: unique, unlike the stem (train/ and test/ repeat names)
    match = pattern.search(stem)
    if not match:
        raise DatasetFormatError(
            f"{file}: subject_pattern {pattern.pattern!r} does not match the file name {stem!r}; for data without "
            f"subject ids (e.g. FER2013's train/ and test/ folders) set `subject_pattern: null` in params.yaml")
    groups = match.groupdict()
    subject = groups.get("subject") or match.group(1)
    frame = groups.get("frame")
    return subject, groups.get("sequence") or stem, int(frame) if frame else 0


def read_folders(root: str | Path, subject_pattern: str | None = None, classes: tuple[str, ...] | None = None,
                 channels: int | None = None, size=None) -> Dataset:
    """Read a class-per-folder tree; classes default to those present, in vocab order."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: not a folder")
    pattern = compile_subject_pattern(subject_pattern)
    records, paths, skipped = [], [], SkipCounter()
    for split, folder in _layout(root, skipped):
        inside(folder, root, "class folder")
        images = []
        for p in sorted(folder.iterdir()):
            if p.is_dir():
                skipped.add(NESTED, p)
            elif p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
                images.append(p)
            else:
                skipped.add(NOT_IMAGE, p)
        if not images:
            raise DatasetFormatError(f"{folder}: empty folder, expected {sorted(IMAGE_SUFFIXES)} images")
        label = FOLDER_NAMES[folder.name.lower()]
        for file in images:
            relative = file.relative_to(root).as_posix()
            subject, sequence, frame = _ids(relative, file.stem, pattern, file)
            paths.append(file)
            records.append({"path": relative, "label_name": label, "subject": subject,
                            "sequence": sequence, "frame": frame, "split": split, "class_folder": folder.name})
    skipped_files = skipped.to_dict()
    if skipped_files:
        log.info("%s: %s", root, describe(skipped_files))
    manifest = pd.DataFrame(records)
    present = set(manifest["label_name"])
    if classes is None:
        classes = tuple(c for c in CANONICAL if c in present)
    elif missing := present - set(classes):
        raise ValueError(f"{root}: classes {sorted(missing)} are present but not in classes={list(classes)}")
    images, heights, widths = load_images(paths, root, channels, size)
    manifest.insert(1, "label", label_indices(manifest["label_name"], classes))
    manifest["height"], manifest["width"] = heights, widths
    extras = {"subjects_known": pattern is not None}
    if skipped_files:
        extras["skipped_files"] = skipped_files
    return Dataset(images, manifest, tuple(classes), name=root.name, extras=extras)


def write_folders(dataset: Dataset, path: str | Path) -> Path:
    """Write `<path>/<split>/<class>/<subject>__<sequence>__<frame>.png` (read back with FEROPS_PATTERN)."""
    path = Path(path)
    m = dataset.manifest
    targets = set(FOLDER_NAMES.values())
    names, used = [], set()
    for i, row in enumerate(m.itertuples(index=False)):
        if row.label_name not in targets:
            raise DatasetFormatError(
                f"{dataset.name} row {i + 1}: label {row.label_name!r} has no class folder; "
                f"expected one of {sorted(targets)}")
        split = safe_name(row.split, "split")
        if split.lower() in FOLDER_NAMES:
            raise DatasetFormatError(f"{dataset.name} row {i + 1}: split {split!r} would read back as a class folder")
        subject, sequence = safe_name(row.subject, "subject"), safe_name(row.sequence, "sequence")
        if "__" in subject or "__" in sequence:
            raise DatasetFormatError(f"{dataset.name} row {i + 1}: subject/sequence must not contain '__'")
        stem = f"{subject}__{sequence}__{int(row.frame):08d}"
        file = f"{split}/{row.label_name}/{stem}"
        if file in used:
            file = f"{file}__{i}"
        used.add(file)
        names.append(file + ".png")
    with atomic_dir(path, stage="generate") as tmp:
        for i, name in enumerate(names):
            write_image(tmp / name, dataset.images[i])
    return path

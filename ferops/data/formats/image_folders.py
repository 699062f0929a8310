"""Class-per-folder image trees: `<root>/<split>/<class>/*` or `<root>/<class>/*`.

This is how most circulating copies look (the FER2013 `train/`, `test/`
folders; CK+48 with anger/contempt/.../surprise). The layout is decided from
the top-level folder names: if they are class names (vocab.FOLDER_NAMES) it is
class-only, otherwise each is a split holding class folders. A folder that is
neither is an error naming it - a misspelt class must not become a split.

Such copies rarely keep subject ids, which subject-wise splits need; a regex
(`subject_pattern`, searched in the file stem, group "subject" or group 1,
optional groups "sequence" and "frame") recovers them, e.g. `^(S\\d{3})_`
for CK+48's `S010_006_00000013.png`. Without one each image is its own subject.
Non-image files are skipped and counted (extras["skipped_files"]).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.formats._images import IMAGE_SUFFIXES, inside, load_images, safe_name, write_image
from ferops.data.formats._manifest import UNSPLIT, label_indices
from ferops.data.formats.errors import DatasetFormatError
from ferops.data.vocab import CANONICAL, FOLDER_NAMES
from ferops.io import atomic_dir

log = logging.getLogger(__name__)

# CK+48 names: S010_006_00000013 -> subject S010, sequence S010_006, frame 13
CKPLUS48_PATTERN = r"^(?P<sequence>(?P<subject>S\d{3})_\d{3})_(?P<frame>\d+)"
# Names written by write_folders: <subject>__<sequence>__<frame>[__<n>].png
FEROPS_PATTERN = r"^(?P<subject>.+?)__(?P<sequence>.+?)__(?P<frame>\d+)(?:__\d+)?$"


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _layout(root: Path) -> list[tuple[str, Path]]:
    """(split, class folder) pairs."""
    top = _visible_dirs(root)
    if not top:
        raise DatasetFormatError(f"{root}: empty folder, expected class folders or split folders")
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
        for folder in classes:
            if folder.name.lower() not in FOLDER_NAMES:
                raise DatasetFormatError(
                    f"{folder}: class folder {folder.name!r} is not in the mapping; "
                    f"known classes: {sorted(FOLDER_NAMES)}")
            pairs.append((split.name, folder))
    return pairs


def _ids(stem: str, pattern: re.Pattern | None, file: Path) -> tuple[str, str, int]:
    if pattern is None:
        return stem, stem, 0
    match = pattern.search(stem)
    if not match:
        raise DatasetFormatError(f"{file}: subject pattern {pattern.pattern!r} does not match the file name")
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
    pattern = re.compile(subject_pattern) if subject_pattern else None
    if pattern is not None and pattern.groups == 0:
        raise ValueError(f"subject_pattern {subject_pattern!r} needs a group (group 1 or (?P<subject>...))")
    records, paths, skipped = [], [], Counter()
    for split, folder in _layout(root):
        inside(folder, root, "class folder")
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        skipped.update(p.suffix.lower() or p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES)
        if not images:
            raise DatasetFormatError(f"{folder}: empty folder, expected {sorted(IMAGE_SUFFIXES)} images")
        label = FOLDER_NAMES[folder.name.lower()]
        for file in images:
            subject, sequence, frame = _ids(file.stem, pattern, file)
            paths.append(file)
            records.append({"path": file.relative_to(root).as_posix(), "label_name": label, "subject": subject,
                            "sequence": sequence, "frame": frame, "split": split, "class_folder": folder.name})
    if skipped:
        log.info("%s: skipped %d non-image files %s", root, sum(skipped.values()), dict(skipped))
    manifest = pd.DataFrame(records)
    present = set(manifest["label_name"])
    if classes is None:
        classes = tuple(c for c in CANONICAL if c in present)
    elif missing := present - set(classes):
        raise ValueError(f"{root}: classes {sorted(missing)} are present but not in classes={list(classes)}")
    images, heights, widths = load_images(paths, root, channels, size)
    manifest.insert(1, "label", label_indices(manifest["label_name"], classes))
    manifest["height"], manifest["width"] = heights, widths
    return Dataset(images, manifest, tuple(classes), name=root.name,
                   extras={"skipped_files": dict(skipped)} if skipped else {})


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
    with atomic_dir(path) as tmp:
        for i, name in enumerate(names):
            write_image(tmp / name, dataset.images[i])
    return path

"""Readers and writers for the datasets' on-disk formats, by name.

Every real dataset is read exactly as its licence holders receive it, and the
same formats can be written so synthetic data (SynthFACS) travels through the
identical loading code as the real thing. One registry lets the CLI, the
import step and pipelines select a format by the name in params.yaml.

Conventions shared by all formats: images come back uint8 N x H x W x C, RGB
when C = 3; datasets shipped without a split get split "unsplit"; every
problem with the data raises DatasetFormatError naming the file/row/field;
writers go through ferops.io.atomic_dir/atomic_file, so bad input leaves
nothing behind.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

from ferops.data.dataset import Dataset
from ferops.data.formats.casme2 import read_casme2, write_casme2
from ferops.data.formats.ckplus import read_ckplus, write_ckplus
from ferops.data.formats.errors import DatasetFormatError
from ferops.data.formats.fer2013_csv import read_fer2013, write_fer2013
from ferops.data.formats.image_folders import read_folders, write_folders

Reader = Callable[..., Dataset]
Writer = Callable[[Dataset, Path], Path]

FORMATS: dict[str, tuple[Reader, Writer]] = {
    "fer2013": (read_fer2013, write_fer2013),
    "ck+": (read_ckplus, write_ckplus),
    "casme2": (read_casme2, write_casme2),
    "folders": (read_folders, write_folders),
}


def _lookup(format: str) -> tuple[Reader, Writer]:
    if format not in FORMATS:
        raise ValueError(f"unknown dataset format {format!r}; expected one of {list(FORMATS)}")
    return FORMATS[format]


def _reader_options(reader: Reader) -> set[str]:
    return set(list(inspect.signature(reader).parameters)[1:])


def read(format: str, path: str | Path, **opts) -> Dataset:
    """Read `path` in the named format; opts go to the format's reader.

    params.yaml keeps every format's options in one `dataset` section, so an
    option that belongs to another format (last_k when reading folders) is
    ignored; an option no format knows is still an error (a typo must not pass).
    """
    reader = _lookup(format)[0]
    known = set().union(*(_reader_options(r) for r, _ in FORMATS.values()))
    unknown = sorted(set(opts) - known)
    if unknown:
        raise TypeError(f"unknown reader option(s) {unknown}; readers take {sorted(known)}")
    mine = _reader_options(reader)
    return reader(Path(path), **{k: v for k, v in opts.items() if k in mine})


def write(format: str, dataset: Dataset, path: str | Path) -> Path:
    """Write `dataset` in the named format at `path` (atomically)."""
    return _lookup(format)[1](dataset, Path(path))


__all__ = ["DatasetFormatError", "FORMATS", "read", "write", "read_fer2013", "write_fer2013", "read_ckplus",
           "write_ckplus", "read_casme2", "write_casme2", "read_folders", "write_folders"]

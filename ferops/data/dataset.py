"""The common form every loader produces and every stage consumes.

A dataset is a uint8 image array (N x H x W x C, or N x T x H x W x C for
clips) plus a pandas manifest with one row per image (or clip). Keeping the two
together (and the manifest's column names fixed) is what lets one training,
validation and analysis path serve CK+, FER2013, CASME II and the synthetic
generator alike.

Manifest columns (required): path, label, label_name, subject, sequence, frame, split.
Optional AU columns, one pair per coded AU:
    AU<code>        presence: 1 present, 0 absent, NaN unknown (nobody coded it)
    AU<code>_int    intensity 0..5: 0 absent, NaN unrated or unknown
and for lateral AUs either per-side grades L<code>_int / R<code>_int (SynthFACS)
or AU<code>_side in {"L", "R", "", "both"} ("" with the AU present = bilateral, CASME II).
Plus any dataset-specific extras (nuisance values, onset/apex/offset indices...).
`label` indexes `classes` (-1 = emotion unknown); `label_name` is the canonical name (ferops.data.vocab).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ferops.io import atomic_dir

REQUIRED_COLUMNS: tuple[str, ...] = ("path", "label", "label_name", "subject", "sequence", "frame", "split")
_AU_LABEL = re.compile(r"(AU|L|R)?0*(\d+)")
_BOTH_SIDES = ("", "both")


def au_label(key: int | str) -> str:
    """Canonical AU target name: 12 / "12" / "au12" -> "AU12" (either side); "L12" / "R12" one side."""
    match = _AU_LABEL.fullmatch(str(key).strip().upper())
    if not match:
        raise ValueError(f"AU {key!r}: expected a code such as 12, 'AU12', 'L12' or 'R12'")
    return f"{match.group(1) or 'AU'}{int(match.group(2))}"


def mirrored(label: str) -> str:
    """The AU a horizontal flip turns `label` into: L12 <-> R12; bilateral AUs map to themselves."""
    label, swap = au_label(label), {"L": "R", "R": "L"}
    return swap[label[0]] + label[1:] if label[0] in swap else label


def _numbers(manifest: pd.DataFrame, column: str) -> np.ndarray:
    """A numeric column as float32 with NaN for missing values; all NaN if the dataset lacks the column."""
    if column not in manifest.columns:
        return np.full(len(manifest), np.nan, np.float32)
    return pd.to_numeric(manifest[column]).to_numpy(dtype=np.float32, na_value=np.nan)


@dataclass
class Dataset:
    images: np.ndarray
    manifest: pd.DataFrame
    classes: tuple[str, ...]
    name: str = "dataset"
    extras: dict = field(default_factory=dict)  # e.g. {"masks": uint8 array N x K x H x W}

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim not in (4, 5):
            raise ValueError(
                f"{self.name}: images must be uint8 N x H x W x C (or N x T x H x W x C clips), "
                f"got {self.images.dtype} {self.images.shape}"
            )
        if len(self.images) != len(self.manifest):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.manifest)} manifest rows")
        missing = [c for c in REQUIRED_COLUMNS if c not in self.manifest.columns]
        if missing:
            raise ValueError(f"{self.name}: manifest lacks required columns {missing}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def is_clips(self) -> bool:
        return self.images.ndim == 5

    @property
    def labels(self) -> np.ndarray:
        return self.manifest["label"].to_numpy(dtype=np.int64)

    @property
    def subjects(self) -> np.ndarray:
        return self.manifest["subject"].astype(str).to_numpy()

    @property
    def subjects_known(self) -> bool:
        """False for image-level data (FER2013, image folders without subject_pattern).

        Their "subjects" are image ids, so grouping by them keeps no person out of
        training: a result must then say "image-level", never "subject-independent".
        The reader's flag (extras["subjects_known"], kept in meta.json) decides; data
        built in memory without one is image-level when every image has its own subject.
        """
        flag = self.extras.get("subjects_known")
        if flag is not None:
            return bool(flag)
        return len(np.unique(self.subjects)) < len(self)

    @property
    def sequences(self) -> np.ndarray:
        return self.manifest["sequence"].astype(str).to_numpy()

    @property
    def frames(self) -> np.ndarray:
        return self.manifest["frame"].to_numpy(dtype=np.int64)

    @property
    def au_codes(self) -> list[int]:
        """AU codes that have a presence column in the manifest."""
        return sorted(int(c[2:]) for c in self.manifest.columns if c.startswith("AU") and c[2:].isdigit())

    @property
    def au_labels(self) -> list[str]:
        """Every AU target this dataset can give: AU<code> for each coded AU, plus L/R for lateral ones."""
        cols = self.manifest.columns
        lateral = [c for c in self.au_codes if f"AU{c}_side" in cols or f"L{c}_int" in cols]
        return [f"AU{c}" for c in self.au_codes] + [f"{s}{c}" for c in lateral for s in "LR"]

    def au_presence(self, labels) -> np.ndarray:
        """N x K float32: 1 present, 0 absent, NaN unknown, for AU labels such as 12, "AU12", "L12"."""
        return np.stack([self._au(label, intensity=False) for label in labels], axis=1)

    def au_known(self, labels) -> np.ndarray:
        """N x K bool: whether each AU's presence was coded (the mask a loss or a metric must respect)."""
        return ~np.isnan(self.au_presence(labels))

    def au_intensity(self, labels) -> np.ndarray:
        """N x K float32 intensities 0..5, NaN where unrated or unknown."""
        return np.stack([self._au(label, intensity=True) for label in labels], axis=1)

    def _au(self, label, intensity: bool) -> np.ndarray:
        m = self.manifest
        label = au_label(label)
        code = label.lstrip("AULR")
        presence = _numbers(m, f"AU{code}")
        if label.startswith("AU"):
            if not intensity:
                return presence
            grade = _numbers(m, f"AU{code}_int")
            return np.where(presence == 0, 0.0, np.where(np.isnan(presence), np.nan, grade)).astype(np.float32)
        side = label[0]
        if f"{side}{code}_int" in m.columns:  # per-side grades (SynthFACS)
            grade = _numbers(m, f"{side}{code}_int")
            return grade if intensity else np.where(np.isnan(grade), np.nan, grade > 0).astype(np.float32)
        whole = self._au(f"AU{code}", intensity)
        present = presence == 1
        if f"AU{code}_side" in m.columns:  # one side named, or both (CASME II)
            sides = m[f"AU{code}_side"].fillna("").astype(str).str.strip()
            on_side = sides.isin((side, *_BOTH_SIDES)).to_numpy()
            return np.where(present & ~on_side, 0.0, whole).astype(np.float32)
        # Side never coded (CK+): an absent AU is absent on both sides, a present one on an unknown side.
        return np.where(present, np.nan, whole).astype(np.float32)

    def subset(self, index) -> "Dataset":
        index = np.asarray(index)
        extras = {k: v[index] if isinstance(v, np.ndarray) and len(v) == len(self) else v for k, v in self.extras.items()}
        return Dataset(self.images[index], self.manifest.iloc[index].reset_index(drop=True), self.classes, self.name, extras)

    def clips(self, length: int) -> "Dataset":
        """One clip per sequence: `length` frames spread evenly from its first to its last frame.

        Sequence models (the paper's CNN+LSTM on micro-expressions) take a fixed
        number of time steps; spreading them over the whole recording keeps
        onset, apex and offset in every clip whatever its length (short ones
        repeat frames). A clip's manifest row (label, AUs) is its apex frame's:
        `is_apex` (SynthFACS), `apex` (CASME II), else the last frame (CK+ codes
        the last). Per-image array extras become per-clip N x T x ... arrays;
        extras["clip_frames"] holds each clip's frame numbers.
        """
        if self.is_clips:
            raise ValueError(f"{self.name}: already clips")
        if length < 1:
            raise ValueError(f"clip length must be >= 1, got {length}")
        m = self.manifest.assign(_row=np.arange(len(self)))
        m = m.sort_values(["sequence", "frame"], kind="stable")
        picks, heads = [], []
        for _, group in m.groupby("sequence", sort=False):
            rows = group["_row"].to_numpy()
            picks.append(rows[np.round(np.linspace(0, len(rows) - 1, length)).astype(int)])
            heads.append(_apex_row(group))
        picks = np.stack(picks)
        extras = {k: v[picks] if isinstance(v, np.ndarray) and len(v) == len(self) else v for k, v in self.extras.items()}
        extras["clip_frames"] = self.frames[picks]
        manifest = self.manifest.iloc[heads].reset_index(drop=True)
        return Dataset(self.images[picks], manifest, self.classes, f"{self.name}_clips{length}", extras)

    def save(self, directory: str | Path) -> Path:
        """Write images.npy + manifest.parquet + meta.json (+ extras) atomically."""
        directory = Path(directory)
        with atomic_dir(directory, stage="dataset") as tmp:
            np.save(tmp / "images.npy", self.images)
            self.manifest.to_parquet(tmp / "manifest.parquet", index=False)
            arrays = {k: v for k, v in self.extras.items() if isinstance(v, np.ndarray)}
            for key, value in arrays.items():
                np.save(tmp / f"extra_{key}.npy", value)
            meta = {"name": self.name, "classes": list(self.classes), "n": len(self),
                    "shape": list(self.images.shape[1:]),
                    "extras": {k: v for k, v in self.extras.items() if not isinstance(v, np.ndarray)}}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False) -> "Dataset":
        """Read a saved dataset; with `mmap` the arrays stay on disk and pages load as training touches them."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{directory}: not a ferops dataset (no meta.json); run the preprocess stage first")
        meta = json.loads(meta_path.read_text())
        mode = "r" if mmap else None
        images = np.load(directory / "images.npy", mmap_mode=mode)
        manifest = pd.read_parquet(directory / "manifest.parquet")
        extras = dict(meta.get("extras", {}))
        for f in directory.glob("extra_*.npy"):
            extras[f.stem[len("extra_"):]] = np.load(f, mmap_mode=mode)
        return cls(images, manifest, tuple(meta["classes"]), meta["name"], extras)


def _apex_row(group: pd.DataFrame) -> int:
    """Row (original position) of a sequence's apex frame."""
    if "is_apex" in group.columns and group["is_apex"].astype(bool).any():
        return int(group.loc[group["is_apex"].astype(bool), "_row"].iloc[0])
    if "apex" in group.columns:
        hit = group[group["frame"] == group["apex"]]
        if len(hit):
            return int(hit["_row"].iloc[0])
    return int(group["_row"].iloc[-1])

"""The common form every loader produces and every stage consumes.

A dataset is a uint8 image array (N x H x W x C) plus a pandas manifest with
one row per image. Keeping the two together (and the manifest's column names
fixed) is what lets one training, validation and analysis path serve CK+,
FER2013, CASME II and the synthetic generator alike.

Manifest columns (required): path, label, label_name, subject, sequence, frame, split.
Optional: AU<code> (presence 0/1) and AU<code>_int (intensity 0..5, NaN = unrated),
and any dataset-specific extras (nuisance values, onset/apex/offset indices...).
`label` indexes `classes`; `label_name` is the canonical name (ferops.data.vocab).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ferops.io import atomic_dir

REQUIRED_COLUMNS: tuple[str, ...] = ("path", "label", "label_name", "subject", "sequence", "frame", "split")


@dataclass
class Dataset:
    images: np.ndarray
    manifest: pd.DataFrame
    classes: tuple[str, ...]
    name: str = "dataset"
    extras: dict = field(default_factory=dict)  # e.g. {"masks": uint8 array N x K x H x W}

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"{self.name}: images must be uint8 N x H x W x C, got {self.images.dtype} {self.images.shape}"
            )
        if len(self.images) != len(self.manifest):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.manifest)} manifest rows")
        missing = [c for c in REQUIRED_COLUMNS if c not in self.manifest.columns]
        if missing:
            raise ValueError(f"{self.name}: manifest lacks required columns {missing}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> np.ndarray:
        return self.manifest["label"].to_numpy(dtype=np.int64)

    @property
    def subjects(self) -> np.ndarray:
        return self.manifest["subject"].astype(str).to_numpy()

    @property
    def au_codes(self) -> list[int]:
        """AU codes that have a presence column in the manifest."""
        return sorted(int(c[2:]) for c in self.manifest.columns if c.startswith("AU") and c[2:].isdigit())

    def subset(self, index) -> "Dataset":
        index = np.asarray(index)
        extras = {k: v[index] if isinstance(v, np.ndarray) and len(v) == len(self) else v for k, v in self.extras.items()}
        return Dataset(self.images[index], self.manifest.iloc[index].reset_index(drop=True), self.classes, self.name, extras)

    def save(self, directory: str | Path) -> Path:
        """Write images.npy + manifest.parquet + meta.json (+ extras) atomically."""
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
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
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{directory}: not a ferops dataset (no meta.json); run the preprocess stage first")
        meta = json.loads(meta_path.read_text())
        images = np.load(directory / "images.npy", mmap_mode="r" if mmap else None)
        manifest = pd.read_parquet(directory / "manifest.parquet")
        extras = dict(meta.get("extras", {}))
        for f in directory.glob("extra_*.npy"):
            extras[f.stem[len("extra_"):]] = np.load(f, mmap_mode="r" if mmap else None)
        return cls(np.asarray(images) if not mmap else images, manifest, tuple(meta["classes"]), meta["name"], extras)

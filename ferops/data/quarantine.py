"""validate.on_fail: quarantine - take images that fail a per-image check out, list them, go on.

A handful of blank frames or train copies of test images in 35k (FER2013 has
both) should not stop a run, nor be trained on. Under `quarantine` they leave
the processed set for `rejects.csv`, with their reason, and the run goes on;
checks about the dataset as a whole (images per class, labels, folds) still
stop it, because no image can be dropped to fix those.

It runs inside the preprocess step, before the processed set is saved, not
inside validate: the processed dir is the validate stage's dependency, and a
DVC stage must not rewrite its own dependency. So preprocess writes the
cleaned set once, and validate only checks it (its per-image checks then pass,
which double-checks this module against the Great Expectations suite: both use
the same statistics, ranges and hashes from ferops.data.validation).

Each image gets one reason, the first that applies: blank, dark/bright,
high_contrast (pixel checks), then duplicates among the images left.
Of exact copies the held-out one is kept (a train copy of a test image is what
inflates test accuracy); otherwise the first one is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.validation import image_hashes, pixel_stats, split_sides

REASONS: dict[str, str] = {
    "blank": "pixel std below range: a flat or near-flat frame, not a face",
    "dark": "pixel mean below range",
    "bright": "pixel mean above range",
    "high_contrast": "pixel std above range",
    "duplicate_of_test": "train copy of a held-out image; the held-out copy is kept",
    "duplicate": "exact copy of an earlier image; the first is kept",
}
REJECT_COLUMNS = ["path", "reason"]  # as the face step writes them, so one rejects.csv holds both


@dataclass
class Quarantined:
    """What quarantine took out: the rejects table and counts for every reason (0 included, for comparable metrics)."""

    rejects: pd.DataFrame
    counts: dict[str, int]
    n_before: int

    def lines(self, rejects_path: str | Path) -> list[str]:
        """One line per reason that took images out, then where they are listed."""
        out = [f"quarantine: {n} {reason} ({REASONS[reason]})" for reason, n in self.counts.items() if n]
        kept = self.n_before - len(self.rejects)
        out.append(f"quarantine: kept {kept} of {self.n_before} images; "
                   + (f"rejects listed in {rejects_path}" if len(self.rejects) else "nothing quarantined"))
        return out


def quarantine(dataset: Dataset, pixel_mean_range: tuple[float, float],
               pixel_std_range: tuple[float, float]) -> tuple[Dataset, Quarantined]:
    """Split `dataset` into the images that pass the per-image checks and a rejects table with reasons."""
    (m0, m1), (s0, s1) = pixel_mean_range, pixel_std_range
    paths = dataset.manifest["path"].astype(str).to_numpy()
    mean, std = pixel_stats(dataset.images)
    reason = np.full(len(dataset), "", dtype=object)
    detail = np.full(len(dataset), "", dtype=object)
    rules = [
        ("blank", std < s0, lambda i: f"pixel std {std[i]:.1f} < {s0:g}"),
        ("dark", mean < m0, lambda i: f"pixel mean {mean[i]:.1f} < {m0:g}"),
        ("bright", mean > m1, lambda i: f"pixel mean {mean[i]:.1f} > {m1:g}"),
        ("high_contrast", std > s1, lambda i: f"pixel std {std[i]:.1f} > {s1:g}"),
    ]
    for name, failed, describe in rules:
        for i in np.flatnonzero(failed & (reason == "")):
            reason[i], detail[i] = name, describe(i)
    _mark_duplicates(dataset, paths, reason, detail)

    out = reason != ""
    rejects = pd.DataFrame({"path": paths[out], "reason": [f"{r}: {d}" for r, d in zip(reason[out], detail[out])]},
                           columns=REJECT_COLUMNS)
    counts = {name: int((reason == name).sum()) for name in REASONS}
    kept = dataset.subset(np.flatnonzero(~out))
    kept.extras["quarantine"] = {"counts": counts, "n_before": len(dataset),
                                 "pixel_mean_range": [m0, m1], "pixel_std_range": [s0, s1]}
    return kept, Quarantined(rejects, counts, len(dataset))


def _mark_duplicates(dataset: Dataset, paths: np.ndarray, reason: np.ndarray, detail: np.ndarray) -> None:
    """Among images not already rejected, mark all but one of each set of exact copies."""
    rows = np.flatnonzero(reason == "")
    side = split_sides(dataset.manifest)
    groups: dict[str, list[int]] = {}
    for row, digest in zip(rows, image_hashes(dataset.images, rows)):
        groups.setdefault(digest, []).append(int(row))
    for copies in groups.values():
        if len(copies) < 2:
            continue
        held_out = [i for i in copies if side[i] == "test"]
        keep = held_out[0] if held_out else copies[0]
        for i in copies:
            if i == keep:
                continue
            kind = "duplicate_of_test" if side[i] == "train" and side[keep] == "test" else "duplicate"
            reason[i], detail[i] = kind, f"same pixels as {paths[keep]} (kept)"


def notes(record: dict | None, on_fail: str, pixel_mean_range, pixel_std_range, rejects_path: Path) -> list[str]:
    """What the validation summary should say about quarantine, given the processed set's record and params."""
    if record is None:
        if on_fail == "quarantine":
            return [f"validate.on_fail is quarantine, but {rejects_path.parent} was preprocessed without it: "
                    f"rerun the preprocess step (`dvc repro` or `ferops preprocess`) to quarantine per-image failures"]
        return []
    counts = {k: v for k, v in record["counts"].items() if v}
    taken = ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing"
    out = [f"quarantined by preprocess: {taken} (of {record['n_before']} images; listed in {rejects_path})"]
    same = (list(record["pixel_mean_range"]) == list(pixel_mean_range)
            and list(record["pixel_std_range"]) == list(pixel_std_range))
    if on_fail != "quarantine" or not same:
        out.append(f"{rejects_path.parent} was quarantined under other settings than params.yaml's validate section "
                   f"now; rerun the preprocess step to validate what params.yaml asks for")
    return out

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

Copies within the held-out splits (FER2013's PublicTest and PrivateTest) are
another matter: dropping them changes the standard test split every published
FER2013 figure is quoted on (7,178 images). Under validate.test_duplicates: keep
(the default) they stay in the set and are only flagged, in `flagged.csv`;
`drop` removes all but one. Either way the record in meta.json counts, per
split, the images before and after and what was quarantined or flagged, and
ferops.data.splits.data_report carries the test split's numbers into every
CV or test figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.splits import held_out_names, split_sides
from ferops.data.validation import image_hashes, pixel_stats

REASONS: dict[str, str] = {
    "blank": "pixel std below range: a flat or near-flat frame, not a face",
    "dark": "pixel mean below range",
    "bright": "pixel mean above range",
    "high_contrast": "pixel std above range",
    "duplicate_of_test": "train copy of a held-out image; the held-out copy is kept",
    "duplicate": "exact copy of an earlier image; the first is kept",
}
# Kept in the set, listed in flagged.csv (same columns): not a reason to quarantine, a reason to know.
FLAGS: dict[str, str] = {
    "duplicate_in_test": "exact copy of another held-out image; both kept (validate.test_duplicates: keep)",
}
REJECT_COLUMNS = ["path", "reason"]  # as the face step writes them, so one rejects.csv holds both
FLAGGED = "flagged.csv"  # beside rejects.csv in the processed dir


@dataclass
class Quarantined:
    """What quarantine took out: the rejects table and counts for every reason (0 included, for comparable metrics)."""

    rejects: pd.DataFrame
    counts: dict[str, int]
    n_before: int
    flagged: pd.DataFrame  # images kept but listed (FLAGS), for flagged.csv
    record: dict  # what meta.json keeps (extras["quarantine"]): counts, settings, per-split sizes

    def lines(self, rejects_path: str | Path) -> list[str]:
        """One line per reason that took images out, then where they are listed, then the sizes of the splits."""
        out = [f"quarantine: {n} {reason} ({REASONS[reason]})" for reason, n in self.counts.items() if n]
        out += [f"quarantine: flagged {n} {flag} ({FLAGS[flag]}), listed in {Path(rejects_path).with_name(FLAGGED)}"
                for flag, n in self.record["flagged"].items() if n]
        kept = self.n_before - len(self.rejects)
        out.append(f"quarantine: kept {kept} of {self.n_before} images; "
                   + (f"rejects listed in {rejects_path}" if len(self.rejects) else "nothing quarantined"))
        out += [f"quarantine: split {name}: {_sizes(c)}" for name, c in self.record["splits"].items()]
        if self.record["test_split"]["splits"]:
            out.append(f"quarantine: {describe_test_split(self.record)}")
        return out


def _sizes(c: dict) -> str:
    """'3589 -> 3541 images (48 quarantined: 40 duplicate, 8 blank; 3 flagged and kept)'."""
    why = ", ".join(f"{n} {reason}" for reason, n in c.get("reasons", {}).items())
    flagged = f"; {c['flagged_kept']} flagged and kept" if c["flagged_kept"] else ""
    return f"{c['before']} -> {c['after']} images ({c['quarantined']} quarantined{': ' + why if why else ''}{flagged})"


def describe_test_split(record: dict) -> str:
    """The held-out splits together: what a figure on the standard test split stands on."""
    t = record["test_split"]
    return (f"test split ({', '.join(t['splits'])}): {_sizes(t)}, "
            f"within-test duplicates {'kept' if record['test_duplicates'] == 'keep' else 'dropped'} "
            f"(validate.test_duplicates: {record['test_duplicates']})")


def quarantine(dataset: Dataset, pixel_mean_range: tuple[float, float], pixel_std_range: tuple[float, float], *,
               test_duplicates: str) -> tuple[Dataset, Quarantined]:
    """Split `dataset` into the images that pass the per-image checks and a rejects table with reasons.

    test_duplicates (validate.test_duplicates): "keep" flags copies within the held-out splits and keeps them,
    "drop" quarantines all but one.
    """
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
    _mark_duplicates(dataset, paths, reason, detail, keep_test_copies=test_duplicates == "keep")

    out = np.isin(reason, list(REASONS))
    flag = np.isin(reason, list(FLAGS))

    def table(rows):
        return pd.DataFrame({"path": paths[rows], "reason": [f"{r}: {d}" for r, d in zip(reason[rows], detail[rows])]},
                            columns=REJECT_COLUMNS)

    counts = {name: int((reason == name).sum()) for name in REASONS}
    splits = _split_counts(dataset, reason, out, flag)
    record = {"counts": counts, "n_before": len(dataset), "pixel_mean_range": [m0, m1], "pixel_std_range": [s0, s1],
              "test_duplicates": test_duplicates, "flagged": {name: int((reason == name).sum()) for name in FLAGS},
              **splits}
    kept = dataset.subset(np.flatnonzero(~out))
    kept.extras["quarantine"] = record
    return kept, Quarantined(table(out), counts, len(dataset), table(flag), record)


def _split_counts(dataset: Dataset, reason: np.ndarray, out: np.ndarray, flag: np.ndarray) -> dict:
    """{"splits": {name: counts}, "test_split": the held-out splits' counts summed}; counts: before, quarantined,
    after, flagged_kept, and reasons (quarantined by reason, nonzero only)."""
    split = dataset.manifest["split"].astype(str).str.strip().to_numpy()

    def counts(rows: np.ndarray) -> dict:
        taken = reason[rows & out]
        return {"before": int(rows.sum()), "quarantined": int(len(taken)), "after": int((rows & ~out).sum()),
                "flagged_kept": int((rows & flag).sum()),
                "reasons": {r: int((taken == r).sum()) for r in REASONS if (taken == r).any()}}

    held_out = held_out_names(dataset.manifest)
    return {"splits": {name: counts(split == name) for name in sorted(set(split))},
            "test_split": {"splits": held_out, **counts(np.isin(split, held_out))}}


def _mark_duplicates(dataset: Dataset, paths: np.ndarray, reason: np.ndarray, detail: np.ndarray,
                     keep_test_copies: bool) -> None:
    """Among images not already rejected, mark all but one of each set of exact copies.

    With keep_test_copies, held-out copies of the held-out one kept are marked duplicate_in_test (a flag: they stay).
    """
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
            if keep_test_copies and side[i] == "test":  # then side[keep] is "test" too: the first held-out copy
                kind, kept = "duplicate_in_test", "both kept"
            else:
                kind = "duplicate_of_test" if side[i] == "train" and side[keep] == "test" else "duplicate"
                kept = "kept"
            reason[i], detail[i] = kind, f"same pixels as {paths[keep]} ({kept})"


def notes(record: dict | None, on_fail: str, pixel_mean_range, pixel_std_range, rejects_path: Path,
          test_duplicates: str) -> list[str]:
    """What the validation summary should say about quarantine, given the processed set's record and params."""
    if record is None:
        if on_fail == "quarantine":
            return [f"validate.on_fail is quarantine, but {rejects_path.parent} was preprocessed without it: "
                    f"rerun the preprocess step (`dvc repro` or `ferops preprocess`) to quarantine per-image failures"]
        return []
    counts = {k: v for k, v in record["counts"].items() if v}
    taken = ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing"
    out = [f"quarantined by preprocess: {taken} (of {record['n_before']} images; listed in {rejects_path})"]
    flagged = {k: v for k, v in record.get("flagged", {}).items() if v}
    if flagged:
        out.append(f"flagged and kept by preprocess: {', '.join(f'{n} {k}' for k, n in flagged.items())} "
                   f"(listed in {rejects_path.with_name(FLAGGED)})")
    if record.get("test_split", {}).get("splits"):
        out.append(describe_test_split(record))
    same = (list(record["pixel_mean_range"]) == list(pixel_mean_range)
            and list(record["pixel_std_range"]) == list(pixel_std_range)
            and record.get("test_duplicates", "drop") == test_duplicates)  # a record without it: dropped, as then
    if on_fail != "quarantine" or not same:
        out.append(f"{rejects_path.parent} was quarantined under other settings than params.yaml's validate section "
                   f"now; rerun the preprocess step to validate what params.yaml asks for")
    return out
